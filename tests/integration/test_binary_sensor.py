"""Binary sensors: one per status bit of the library's table, summaries, balancing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from unittest.mock import PropertyMock, patch

from homeassistant.components.binary_sensor import BinarySensorDeviceClass
from homeassistant.const import STATE_OFF, STATE_ON, EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.syscom_ress.binary_sensor import (
    PACK_BINARY_SENSORS,
    STATE_PRESENTATION,
    PackBinarySensor,
    cell_balancing_description,
)
from custom_components.syscom_ress.const import ALARM_CLEAR_HOLD, BALANCING_HOLD
from custom_components.syscom_ress.ress_bms.simulator import Simulator
from custom_components.syscom_ress.ress_bms.status import (
    STATUS_BITS,
    Kind,
    PackStatus,
    StatusByte,
    balance_bytes,
)

PACK2 = "binary_sensor.ress_battery_pack_2_"


@pytest.fixture
def enable_bits() -> Iterator[None]:
    """Every binary sensor is enabled (the single bits are disabled by default)."""
    with patch.object(
        PackBinarySensor,
        "entity_registry_enabled_default",
        new_callable=PropertyMock,
        return_value=True,
    ):
        yield


async def _refresh(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    await entry.runtime_data.async_refresh()
    await hass.async_block_till_done()


def test_every_bit_but_settings_has_a_description() -> None:
    """The table is walked: each protection, alarm, fault and state bit, nothing twice."""
    keys = [d.key for d in PACK_BINARY_SENSORS]
    assert len(keys) == len(set(keys))
    for bit in STATUS_BITS:
        assert (bit.key in keys) is (bit.kind is not Kind.SETTING), bit.key
    assert {"any_protection", "any_alarm", "any_fault", "balancing"} <= set(keys)
    assert set(STATE_PRESENTATION) <= {b.key for b in STATUS_BITS if b.kind is Kind.STATE}


async def test_bit_entity_registry(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """Single problem bits are problem-class and off by default; states as presented."""
    serial = sim.pack(1).bms_serial
    registry = er.async_get(hass)
    for bit in STATUS_BITS:
        unique_id = f"{serial}_pack2_{bit.key}"
        entity_id = registry.async_get_entity_id("binary_sensor", "syscom_ress", unique_id)
        if bit.kind is Kind.SETTING:
            assert entity_id is None, bit.key
            continue
        assert entity_id is not None, bit.key
        entry = registry.async_get(entity_id)
        assert entry is not None
        assert entry.translation_key == bit.key
        if bit.kind in (Kind.PROTECTION, Kind.ALARM, Kind.FAULT):
            assert entry.original_device_class == BinarySensorDeviceClass.PROBLEM, bit.key
            assert entry.disabled_by is not None, bit.key
            assert entry.entity_category is None, bit.key
        elif bit.key in STATE_PRESENTATION and not bit.rare:
            presentation = STATE_PRESENTATION[bit.key]
            assert (entry.disabled_by is None) is presentation.enabled, bit.key
            assert entry.original_device_class == presentation.device_class
        else:
            assert entry.disabled_by is not None, bit.key
            assert entry.entity_category is EntityCategory.DIAGNOSTIC, bit.key


async def test_default_binary_sensors(hass: HomeAssistant, loaded_entry: MockConfigEntry) -> None:
    """On by default: the three summaries, the two MOSFETs and Balancing, nothing else."""
    enabled = {
        e.entity_id.removeprefix(PACK2)
        for e in er.async_entries_for_config_entry(er.async_get(hass), loaded_entry.entry_id)
        if e.domain == "binary_sensor" and e.entity_id.startswith(PACK2) and not e.disabled_by
    }
    assert enabled == {"protection", "alarm", "fault", "charge_mos", "discharge_mos", "balancing"}


@pytest.mark.usefixtures("enable_bits")
async def test_protection_raised_and_cleared(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """A protection on pack 2 turns its bit and its summary on, names its cell, then clears."""
    assert hass.states.get(PACK2 + "cell_over_voltage_protection").state == STATE_OFF
    sim.raise_protection(2, "cell_over_voltage", cell=12)
    await _refresh(hass, loaded_entry)
    assert hass.states.get(PACK2 + "cell_over_voltage_protection").state == STATE_ON
    summary = hass.states.get(PACK2 + "protection")
    assert summary.state == STATE_ON
    assert summary.attributes["active"] == ["cell_over_voltage"]
    assert summary.attributes["messages"] == ["Pack 2 · Cell 12 · Cell over-voltage protection"]
    assert summary.attributes["device_class"] == "problem"
    assert hass.states.get(PACK2 + "alarm").state == STATE_OFF
    assert hass.states.get("binary_sensor.ress_battery_pack_1_protection").state == STATE_OFF

    sim.clear_protection(2)
    await _refresh(hass, loaded_entry)  # a protection clears at once
    assert hass.states.get(PACK2 + "cell_over_voltage_protection").state == STATE_OFF
    summary = hass.states.get(PACK2 + "protection")
    assert summary.state == STATE_OFF
    assert summary.attributes["active"] == []
    assert summary.attributes["messages"] == []


@pytest.mark.usefixtures("enable_bits")
async def test_an_alarm_clears_once_it_stayed_clear(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """An alarm that flickers at its threshold reads as one alarm, in its bit and summary."""
    sim.raise_protection(2, "cell_under_voltage_alarm", cell=3)
    await _refresh(hass, loaded_entry)
    summary = hass.states.get(PACK2 + "alarm")
    assert summary.state == STATE_ON
    assert summary.attributes["messages"] == ["Pack 2 · Cell 3 · Cell under-voltage alarm"]
    for _ in range(3):  # clear, back, clear ...: still the one alarm
        sim.clear_protection(2)
        await _refresh(hass, loaded_entry)
        assert hass.states.get(PACK2 + "alarm").state == STATE_ON
        assert hass.states.get(PACK2 + "cell_under_voltage_alarm").state == STATE_ON
        sim.raise_protection(2, "cell_under_voltage_alarm", cell=3)
        await _refresh(hass, loaded_entry)
    sim.clear_protection(2)
    await _refresh(hass, loaded_entry)
    async_fire_time_changed(hass, dt_util.utcnow() + ALARM_CLEAR_HOLD - timedelta(seconds=5))
    await hass.async_block_till_done()
    held = hass.states.get(PACK2 + "alarm")
    assert held.state == STATE_ON
    assert held.attributes["messages"] == ["Pack 2 · Cell 3 · Cell under-voltage alarm"]
    async_fire_time_changed(hass, dt_util.utcnow() + ALARM_CLEAR_HOLD + timedelta(seconds=1))
    await hass.async_block_till_done()
    assert hass.states.get(PACK2 + "alarm").state == STATE_OFF
    assert hass.states.get(PACK2 + "cell_under_voltage_alarm").state == STATE_OFF


@pytest.mark.usefixtures("enable_bits")
async def test_fault_and_mos(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """A fault shows in its bit and the fault summary; the MOS states read as the BMS says."""
    sim.raise_protection(2, "ntc_fault", sensor=5)
    await _refresh(hass, loaded_entry)
    assert hass.states.get(PACK2 + "ntc_fault").state == STATE_ON
    fault = hass.states.get(PACK2 + "fault")
    assert fault.state == STATE_ON
    assert fault.attributes["active"] == ["ntc"]
    assert fault.attributes["messages"] == ["Pack 2 · MOS temperature · NTC fault"]
    assert hass.states.get("sensor.ress_battery_pack_2_state").state == "failure"
    assert hass.states.get(PACK2 + "charge_mos").state == STATE_ON
    assert hass.states.get(PACK2 + "discharge_mos").state == STATE_ON


async def test_messages_in_the_language_of_home_assistant(
    hass: HomeAssistant, sim: Simulator, config_entry: MockConfigEntry
) -> None:
    """German: the place and the bit's name from de.json."""
    await hass.config.async_update(language="de")
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    sim.raise_protection(2, "charge_high_temperature", sensor=2)
    await _refresh(hass, config_entry)
    serial = sim.pack(1).bms_serial
    entity_id = er.async_get(hass).async_get_entity_id(
        "binary_sensor", "syscom_ress", f"{serial}_pack2_any_protection"
    )
    assert entity_id is not None
    protection = hass.states.get(entity_id)
    assert protection.attributes["messages"] == [
        "Akkupack 2 · Zelltemperatur 2 · Ladeübertemperaturschutz"
    ]


async def test_balancing_holds_for_a_while(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """On as soon as a cell is balanced; off only once none has been for the hold time."""
    balancing = "binary_sensor.ress_battery_pack_1_balancing"
    sim.pack(1).bms.balancing = (3, 12)  # held: the simulator is not advanced
    await _refresh(hass, loaded_entry)
    assert hass.states.get(balancing).state == STATE_ON
    sim.pack(1).bms.balancing = ()
    await _refresh(hass, loaded_entry)
    assert hass.states.get(balancing).state == STATE_ON
    async_fire_time_changed(hass, dt_util.utcnow() + BALANCING_HOLD - timedelta(seconds=5))
    await hass.async_block_till_done()
    assert hass.states.get(balancing).state == STATE_ON
    async_fire_time_changed(hass, dt_util.utcnow() + BALANCING_HOLD + timedelta(seconds=1))
    await hass.async_block_till_done()
    assert hass.states.get(balancing).state == STATE_OFF


async def test_cell_balancing_entities(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """One per cell, diagnostic and off by default."""
    serial = sim.pack(1).bms_serial
    registry = er.async_get(hass)
    for cell in (1, 16):
        entity_id = registry.async_get_entity_id(
            "binary_sensor", "syscom_ress", f"{serial}_pack1_cell_{cell}_balancing"
        )
        assert entity_id == f"binary_sensor.ress_battery_pack_1_cell_{cell}_balancing"
        entry = registry.async_get(entity_id)
        assert entry is not None
        assert entry.disabled_by is not None
        assert entry.entity_category is EntityCategory.DIAGNOSTIC
    assert hass.states.get("binary_sensor.ress_battery_pack_1_balancing").state == STATE_OFF


def test_balancing_reads_the_balance_bytes() -> None:
    """Balancing is on when any balance bit is; each cell reads its own bit."""
    first, second = balance_bytes([3, 12])
    status = PackStatus(
        1,
        (0,) * 16,
        (0,) * 6,
        0,
        0,
        0,
        {StatusByte.BALANCE_1: first, StatusByte.BALANCE_2: second},
    )
    balancing = next(d for d in PACK_BINARY_SENSORS if d.key == "balancing")
    assert balancing.is_on_fn(status)
    assert cell_balancing_description(3).is_on_fn(status)
    assert cell_balancing_description(12).is_on_fn(status)
    assert not cell_balancing_description(4).is_on_fn(status)
