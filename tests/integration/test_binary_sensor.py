"""Binary sensors: one per status bit of the library's table, summaries, balancing."""

from __future__ import annotations

from homeassistant.components.binary_sensor import BinarySensorDeviceClass
from homeassistant.const import STATE_OFF, STATE_ON, EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.syscom_ress.binary_sensor import (
    PACK_BINARY_SENSORS,
    STATE_PRESENTATION,
    cell_balancing_description,
)
from custom_components.syscom_ress.ress_bms.simulator import Simulator
from custom_components.syscom_ress.ress_bms.status import (
    STATUS_BITS,
    Kind,
    PackStatus,
    StatusByte,
    balance_bytes,
)

PACK2 = "binary_sensor.ress_battery_pack_2_"


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
    """Problems are problem-class and on by default unless rare; other states as presented."""
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
            assert (entry.disabled_by is None) is not bit.rare, bit.key
            assert entry.entity_category is None, bit.key
        elif bit.key in STATE_PRESENTATION and not bit.rare:
            assert entry.disabled_by is None, bit.key
            assert entry.original_device_class == STATE_PRESENTATION[bit.key].device_class
        else:
            assert entry.disabled_by is not None, bit.key
            assert entry.entity_category is EntityCategory.DIAGNOSTIC, bit.key


async def test_protection_raised_and_cleared(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """A protection on pack 2 turns its bit and its summary on, then both off again."""
    coordinator = loaded_entry.runtime_data
    assert hass.states.get(PACK2 + "cell_over_voltage_protection").state == STATE_OFF
    sim.raise_protection(2, "cell_over_voltage")
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    assert hass.states.get(PACK2 + "cell_over_voltage_protection").state == STATE_ON
    summary = hass.states.get(PACK2 + "protection")
    assert summary.state == STATE_ON
    assert summary.attributes["active"] == ["cell_over_voltage"]
    assert summary.attributes["device_class"] == "problem"
    assert hass.states.get(PACK2 + "alarm").state == STATE_OFF
    assert hass.states.get("binary_sensor.ress_battery_pack_1_protection").state == STATE_OFF

    sim.clear_protection(2)
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    assert hass.states.get(PACK2 + "cell_over_voltage_protection").state == STATE_OFF
    summary = hass.states.get(PACK2 + "protection")
    assert summary.state == STATE_OFF
    assert summary.attributes["active"] == []


async def test_fault_and_mos(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """A fault shows in its bit and the fault summary; the MOS states read as the BMS says."""
    sim.raise_protection(2, "ntc_fault")
    await loaded_entry.runtime_data.async_refresh()
    await hass.async_block_till_done()
    assert hass.states.get(PACK2 + "ntc_fault").state == STATE_ON
    assert hass.states.get(PACK2 + "fault").state == STATE_ON
    assert hass.states.get("sensor.ress_battery_pack_2_state").state == "failure"
    assert hass.states.get(PACK2 + "charge_mos").state == STATE_ON
    assert hass.states.get(PACK2 + "discharge_mos").state == STATE_ON


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
