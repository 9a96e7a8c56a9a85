"""A stack in every dialect set up in Home Assistant: the entities its dialect can fill.

Each dialect with a reader (Seplos V2, Pylontech, EG4, PACE Modbus, Seplos V3) on the
simulator: its packs become devices with their own values; the status bits the dialect has
become binary sensors and no others; thresholds, switches and the history log, which no
document of these dialects defines precisely enough, are not offered, and the actions say why.
A silent pack goes unavailable while the others keep updating.
"""

from __future__ import annotations

import json

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_DEVICE_ID, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import device_registry as dr, entity_registry as er, issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.syscom_ress.const import CONF_DIALECT, DOMAIN, MISSED_REFRESHES_UNAVAILABLE
from custom_components.syscom_ress.ress_bms.dialects import READERS
from custom_components.syscom_ress.ress_bms.simulator import Simulator
from custom_components.syscom_ress.ress_bms.status import STATUS_BITS

from .conftest import set_up_entry
from .control_helpers import refresh

pytestmark = pytest.mark.usefixtures("socket_enabled")

PACK = "sensor.ress_battery_pack_{}_{}"


async def _set_up(hass: HomeAssistant, sim: Simulator, dialect: str) -> MockConfigEntry:
    entry = await set_up_entry(hass, sim.url, f"{dialect}-stack", **{CONF_DIALECT: dialect})
    assert entry.state is ConfigEntryState.LOADED
    return entry


@pytest.mark.parametrize("dialect", sorted(READERS))
async def test_each_pack_shows_its_own_values(hass: HomeAssistant, dialect: str) -> None:
    async with Simulator(2, seed=3, dialect=dialect) as sim:
        sim.pack(1).demand, sim.pack(2).demand = -20.0, 10.0
        sim.advance(30)
        entry = await _set_up(hass, sim, dialect)
        packs = [
            d
            for d in dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
            if d.via_device_id is not None
        ]
        assert len(packs) == 2
        for n in (1, 2):
            voltage = hass.states.get(PACK.format(n, "voltage"))
            assert voltage is not None
            assert float(voltage.state) == pytest.approx(
                sim.pack(n).analog().voltage, abs=0.016
            )  # shown in 10 mV steps, 10 mV of jitter held
            soc = hass.states.get(PACK.format(n, "state_of_charge"))
            assert soc is not None
            assert float(soc.state) == pytest.approx(sim.pack(n).physics.soc, abs=1.0)
        current = [hass.states.get(PACK.format(n, "current")) for n in (1, 2)]
        # positive while discharging (the energy dashboard's convention): pack 1 discharges
        assert [float(s.state) > 0 for s in current if s is not None] == [True, False]
        assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize("dialect", sorted(READERS))
async def test_only_what_the_dialect_has_is_offered(hass: HomeAssistant, dialect: str) -> None:
    keys = READERS[dialect]().status_keys
    async with Simulator(1, seed=4, dialect=dialect) as sim:
        entry = await _set_up(hass, sim, dialect)
        entities = er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
        domains = {e.domain for e in entities}
        assert "number" not in domains and "switch" not in domains
        assert not [e for e in entities if e.unique_id.endswith("_last_record")]
        bits = {
            e.unique_id.rsplit("_pack1_", 1)[1]
            for e in entities
            if e.domain == "binary_sensor" and "_pack1_" in e.unique_id
        }
        shared = {b.key for b in STATUS_BITS}
        assert bits & shared == keys & shared
        assert ("balancing" in bits) is ("balancing" in keys)
        assert len(bits) >= 5
        assert await hass.config_entries.async_unload(entry.entry_id)


async def test_an_action_the_dialect_cannot_do_says_why(hass: HomeAssistant) -> None:
    async with Simulator(1, seed=5, dialect="seplos") as sim:
        entry = await _set_up(hass, sim, "seplos")
        device = next(
            d
            for d in dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
            if d.via_device_id is not None
        )
        assert device.model == "1101-SP16"  # what 51H names it
        for action in ("read_parameters", "read_history"):
            with pytest.raises(ServiceValidationError) as raised:
                await hass.services.async_call(
                    DOMAIN,
                    action,
                    {ATTR_DEVICE_ID: device.id},
                    blocking=True,
                    return_response=True,
                )
            assert raised.value.translation_key == "dialect_cannot"
            assert "Seplos V2.0" in str(raised.value.translation_placeholders)
        assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize("dialect", ["pylontech", "seplos_v3"])
async def test_a_silent_pack_goes_unavailable_the_other_keeps_updating(
    hass: HomeAssistant, dialect: str
) -> None:
    async with Simulator(2, seed=6, dialect=dialect) as sim:
        entry = await _set_up(hass, sim, dialect)
        sim.pack(2).online = False
        for _ in range(MISSED_REFRESHES_UNAVAILABLE):
            sim.pack(1).demand = -30.0
            sim.advance(60)
            await refresh(hass, entry.runtime_data)
        gone = hass.states.get(PACK.format(2, "voltage"))
        assert gone is not None and gone.state == STATE_UNAVAILABLE
        kept = hass.states.get(PACK.format(1, "voltage"))
        assert kept is not None and kept.state != STATE_UNAVAILABLE
        assert float(kept.state) == pytest.approx(
            sim.pack(1).analog().voltage, abs=0.016
        )  # shown in 10 mV steps, 10 mV of jitter held
        sim.pack(2).online = True
        await refresh(hass, entry.runtime_data)
        back = hass.states.get(PACK.format(2, "voltage"))
        assert back is not None and back.state != STATE_UNAVAILABLE
        assert await hass.config_entries.async_unload(entry.entry_id)


async def test_diagnostics_name_the_dialect_and_keep_serials_out(
    hass: HomeAssistant, hass_client: ClientSessionGenerator
) -> None:
    async with Simulator(2, seed=7, dialect="pace_modbus") as sim:
        entry = await _set_up(hass, sim, "pace_modbus")
        result = await get_diagnostics_for_config_entry(hass, hass_client, entry)
        link = result["link"]
        assert link["dialect"] == "pace_modbus"
        assert link["offered"] == ["alarms", "telemetry"]
        frames = link["last_frames"]
        assert frames and all(" " in f["request"] for f in frames.values())  # RTU frames in hex
        text = json.dumps(result)
        for n in (1, 2):
            for serial in (sim.pack(n).bms_serial, sim.pack(n).pack_serial):
                assert serial not in text
                assert serial.encode().hex(" ") not in text
        assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize("dialect", sorted(READERS))
async def test_a_healthy_stack_raises_no_repair_issue(hass: HomeAssistant, dialect: str) -> None:
    """Frames of its own dialect (VER 0x20, Modbus RTU) are no sign of an unknown firmware."""
    async with Simulator(2, seed=9, dialect=dialect) as sim:
        entry = await _set_up(hass, sim, dialect)
        for _ in range(2):
            sim.advance(30)
            await refresh(hass, entry.runtime_data)
        issues = [i.issue_id for i in ir.async_get(hass).issues.values() if i.domain == DOMAIN]
        assert issues == []
        assert await hass.config_entries.async_unload(entry.entry_id)


async def test_a_parameter_read_the_library_has_says_it_is_not_mapped(
    hass: HomeAssistant,
) -> None:
    """Pylontech reads its parameters (47H), but not into the shared table: the refusal says
    so, not that no document defines it."""
    async with Simulator(1, seed=5, dialect="pylontech") as sim:
        entry = await _set_up(hass, sim, "pylontech")
        device = next(
            d
            for d in dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
            if d.via_device_id is not None
        )
        with pytest.raises(ServiceValidationError) as raised:
            await hass.services.async_call(
                DOMAIN,
                "read_parameters",
                {ATTR_DEVICE_ID: device.id},
                blocking=True,
                return_response=True,
            )
        placeholders = raised.value.translation_placeholders or {}
        assert "not mapped to the shared parameter table" in placeholders["reason"]
        assert await hass.config_entries.async_unload(entry.entry_id)
