"""The default entity set: what a pack and the stack show out of the box, and a calm logbook.

Per pack (16 cells, 4 cell sensors) 22 entities are on by default: 15 sensors, 6 binary sensors
and the protection event (before issue 10: 62, 22 sensors, 39 binary sensors and the event). A
pack that commands reach adds its 5 default switches (and 54 threshold numbers, off). Every
other entity exists, disabled; docs/entities.md says why for each.
"""

from __future__ import annotations

from collections import Counter
import re
from typing import Final

from homeassistant.components.logbook.helpers import is_sensor_continuous
from homeassistant.const import EVENT_STATE_CHANGED
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.syscom_ress.ress_bms.simulator import Simulator

from .conftest import set_up_entry
from .control_helpers import chained, refresh

PACK_DEFAULT = {
    "sensor": {
        "state",
        "voltage",
        "current",
        "state_of_charge",
        "time_to_full",
        "time_to_empty",
        "lowest_cell_voltage",
        "highest_cell_voltage",
        "cell_voltage_difference",
        "cell_temperature_1",
        "cell_temperature_2",
        "cell_temperature_3",
        "cell_temperature_4",
        "mos_temperature",
        "environment_temperature",
    },
    "binary_sensor": {"protection", "alarm", "fault", "charge_mos", "discharge_mos", "balancing"},
    "event": {"protection_event"},
}
STACK_DEFAULT = {
    "state_of_charge",
    "voltage",
    "current",
    "power",
    "remaining_capacity",
    "full_capacity",
    "stored_energy",
    "energy_charged",
    "energy_discharged",
    "state_of_health",
    "lowest_cell_voltage",
    "highest_cell_voltage",
    "cell_voltage_difference",
    "state_of_charge_spread",
    "time_to_full",
    "time_to_empty",
    "packs_online",
    "link_quality",
}


def _entries(hass: HomeAssistant, entry: MockConfigEntry) -> list[er.RegistryEntry]:
    return er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)


PACK_ENTITY = re.compile(r"_pack\d+_")
HISTORY_SIDE: Final = {"last_bms_record"}
"""The history side's sensor (history_cache.py): on for packs commands reach; it changes once
per new record in the BMS's own log, which is what a logbook is for."""


def _enabled(entries: list[er.RegistryEntry], prefix: str) -> dict[str, set[str]]:
    """Enabled entities whose object id is ``prefix`` + a key (the stack's: no pack in it)."""
    found: dict[str, set[str]] = {}
    for e in entries:
        name = e.entity_id.split(".", 1)[1]
        if e.disabled_by is not None or not name.startswith(prefix):
            continue
        if prefix == "ress_battery_" and name.startswith("ress_battery_pack_"):
            continue
        found.setdefault(e.domain, set()).add(name.removeprefix(prefix))
    return found


async def test_the_default_set_of_a_pack_and_the_stack(
    hass: HomeAssistant,
    sim: Simulator,
    config_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A chained stack (slaves reached through the master only): exactly these are on."""
    chained(monkeypatch)
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    entries = _entries(hass, config_entry)

    pack2 = [e for e in entries if "_pack2_" in e.unique_id]
    assert _enabled(entries, "ress_battery_pack_2_") == PACK_DEFAULT
    assert sum(len(v) for v in PACK_DEFAULT.values()) == 22
    total = Counter(e.domain for e in pack2)
    assert total == {"sensor": 42, "binary_sensor": 78, "event": 1}  # 121, 99 of them off

    assert _enabled(entries, "ress_battery_") == {"sensor": STACK_DEFAULT}
    stack = [e for e in entries if not PACK_ENTITY.search(e.unique_id)]
    assert (len(stack), len(STACK_DEFAULT)) == (19, 18)  # the round-trip time is off

    # The master, which commands reach, adds its control entities: 5 switches on.
    master = _enabled(entries, "ress_battery_pack_1_")
    assert master["sensor"] - HISTORY_SIDE == PACK_DEFAULT["sensor"]
    assert master["binary_sensor"] == PACK_DEFAULT["binary_sensor"]
    assert len(master["switch"]) == 5
    assert "number" not in master


async def test_default_sensors_stay_out_of_the_logbook(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    """By the logbook's own rule, every default sensor but a pack's state is continuous."""
    registry = er.async_get(hass)
    logged = {
        e.entity_id
        for e in _entries(hass, loaded_entry)
        if e.domain == "sensor"
        and e.disabled_by is None
        and not is_sensor_continuous(hass, registry, e.entity_id)
        and e.entity_id.rsplit("_", 3)[-3:] != ["last", "bms", "record"]  # HISTORY_SIDE
    }
    assert logged == {f"sensor.ress_battery_pack_{n}_state" for n in (1, 2, 3)}


async def test_a_solar_day_leaves_a_short_logbook(
    hass: HomeAssistant, socket_enabled: None
) -> None:
    """A simulated solar day at 15-minute refreshes: a handful of entries, none from noise.

    One pack, physics in 1 s steps (the day costs a tenth of the default 0.1 s steps). On the
    simulator's solar day: 6 entries (the state 5 times, balancing once). On the harsher day it
    had before (alarms at the end of each charge) 14 entries, where the defaults before issue 10
    gave 118: 75 from the sensors naming the lowest and highest cell, 22 from alarms flickering
    at their threshold (single bits and events). The bounds below hold for both days.
    """
    async with Simulator(packs=1, seed=1, step=1.0, profile="solar-day") as sim:
        entry = await set_up_entry(hass, sim.url, sim.pack(1).bms_serial)
        entries = await _a_day(hass, sim, entry)
        assert await hass.config_entries.async_unload(entry.entry_id)
    assert set(entries) <= {
        "state",
        "protection",
        "alarm",
        "fault",
        "charge_mos",
        "discharge_mos",
        "balancing",
        "protection_event",
        *HISTORY_SIDE,
    }, entries
    assert max(entries.values()) <= 8, entries
    assert sum(entries.values()) <= 25, entries
    assert entries["state"] >= 3  # it does follow the day: discharge, charge, discharge


async def _a_day(hass: HomeAssistant, sim: Simulator, entry: MockConfigEntry) -> Counter[str]:
    """What a day of refreshes puts in the logbook, by entity key of pack 1."""
    registry = er.async_get(hass)
    entries: Counter[str] = Counter()

    @callback
    def changed(event: Event) -> None:
        new, old = event.data["new_state"], event.data["old_state"]
        if new is None or old is None or new.state == old.state:
            return
        if new.domain == "sensor" and is_sensor_continuous(hass, registry, new.entity_id):
            return
        entries[new.entity_id.split(".", 1)[1].removeprefix("ress_battery_pack_1_")] += 1

    stop = hass.bus.async_listen(EVENT_STATE_CHANGED, changed)
    for _ in range(24 * 4):
        sim.advance(900)
        await refresh(hass, entry.runtime_data)
    stop()
    return entries
