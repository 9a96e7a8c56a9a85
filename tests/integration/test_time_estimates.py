"""Time to full and time to empty: the simulator's current and capacity, the pack's thresholds."""

from __future__ import annotations

from homeassistant.const import STATE_UNKNOWN
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.syscom_ress.estimates import EndSource, empty_end, full_end
from custom_components.syscom_ress.ress_bms.lifepo4 import state_of_charge
from custom_components.syscom_ress.ress_bms.simulator import Simulator

from .control_helpers import refresh

PACK1 = "sensor.ress_battery_pack_1_"
PACK2 = "sensor.ress_battery_pack_2_"
STACK = "sensor.ress_battery_"


async def _run(
    hass: HomeAssistant, sim: Simulator, entry: MockConfigEntry, **demand: float
) -> None:
    for address, amperes in demand.items():
        sim.pack(int(address.removeprefix("pack"))).demand = amperes
    sim.advance(1)
    await refresh(hass, entry.runtime_data)


def _hours(hass: HomeAssistant, entity_id: str) -> float:
    return float(hass.states.get(entity_id).state)


def _two_digits(hours: float) -> float:
    """What an estimate shows: two significant digits."""
    return float(f"{hours:.2g}")


async def test_time_to_empty_at_a_known_current(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """25 A out of pack 1: remaining capacity over 25 A, to 0 % until the thresholds are read."""
    await _run(hass, sim, loaded_entry, pack1=-25.0)
    analog = sim.pack(1).analog()
    assert analog.current == -25.0
    state = hass.states.get(PACK1 + "time_to_empty")
    assert float(state.state) == _two_digits(analog.remaining_capacity / 25.0)
    assert state.attributes == {**state.attributes, "end_soc": 0.0, "end_source": "capacity"}
    assert state.attributes["unit_of_measurement"] == "h"
    assert hass.states.get(PACK1 + "time_to_full").state == STATE_UNKNOWN  # discharging

    # The thresholds once read: the pack under-voltage protection (44.8 V, 2.8 V a cell) trips
    # before the cell protection (2.5 V), at 1.5 % on the LiFePO4 curve.
    await loaded_entry.runtime_data.control.async_read_parameters(1)
    await hass.async_block_till_done()
    state = hass.states.get(PACK1 + "time_to_empty")
    assert state.attributes["end_source"] == "pack_under_voltage_protection"
    assert state.attributes["end_soc"] == 1.5
    usable = analog.remaining_capacity - analog.full_capacity * 0.015
    assert float(state.state) == pytest.approx(usable / 25.0, rel=0.05)
    # Pack 2's thresholds were not read: it still runs to 0 %.
    assert hass.states.get(PACK2 + "time_to_empty").state == STATE_UNKNOWN  # idle
    assert hass.states.get(PACK2 + "time_to_empty").attributes["end_source"] == "capacity"


async def test_time_to_full_ends_at_the_full_charge_voltage(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """20 A in: to 100 %, then to where the pack's own full-charge voltage puts the end."""
    await _run(hass, sim, loaded_entry, pack1=20.0)
    analog = sim.pack(1).analog()
    missing = analog.full_capacity - analog.remaining_capacity
    assert _hours(hass, PACK1 + "time_to_full") == _two_digits(missing / analog.current)
    assert hass.states.get(PACK1 + "time_to_empty").state == STATE_UNKNOWN

    control = loaded_entry.runtime_data.control
    await control.async_write_parameters(1, {"full_charge_voltage": 54.4})  # 3.4 V a cell: 98 %
    await refresh(hass, loaded_entry.runtime_data)
    analog = sim.pack(1).analog()
    state = hass.states.get(PACK1 + "time_to_full")
    assert state.attributes["end_source"] == "full_charge_voltage"
    assert state.attributes["end_soc"] == 98.0
    missing = analog.full_capacity * 0.98 - analog.remaining_capacity
    assert float(state.state) == pytest.approx(missing / analog.current, rel=0.05)


async def test_unknown_while_idle(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """Below the idle threshold either way there is no estimate, for a pack or the stack."""
    await _run(hass, sim, loaded_entry, pack1=0.1, pack2=-0.1, pack3=0.0)
    for entity_id in (PACK1 + "time_to_full", PACK2 + "time_to_empty", STACK + "time_to_empty"):
        assert hass.states.get(entity_id).state == STATE_UNKNOWN, entity_id


async def test_stack_time_to_empty(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """The capacity every pack has left to its end over the stack's current."""
    await _run(hass, sim, loaded_entry, pack1=-10.0, pack2=-10.0, pack3=-20.0)
    analogs = [sim.pack(a).analog() for a in (1, 2, 3)]
    left = sum(a.remaining_capacity for a in analogs)
    state = hass.states.get(STACK + "time_to_empty")
    assert float(state.state) == _two_digits(left / 40.0)
    assert state.attributes["end_source"] == "capacity"
    assert hass.states.get(STACK + "time_to_full").state == STATE_UNKNOWN

    await loaded_entry.runtime_data.control.async_read_parameters(1)
    await hass.async_block_till_done()
    state = hass.states.get(STACK + "time_to_empty")
    assert state.attributes["end_source"] == "partial"
    full = sum(a.full_capacity for a in analogs)
    assert state.attributes["end_soc"] == round(analogs[0].full_capacity * 1.5 / full, 1)
    left -= analogs[0].full_capacity * 0.015
    assert float(state.state) == pytest.approx(left / 40.0, rel=0.05)


def test_ends() -> None:
    """From the parameter table's keys; the higher under-voltage end wins; none: 100 / 0 %."""
    assert full_end(None, 16).source is EndSource.CAPACITY
    assert full_end({"full_charge_voltage": 56.0}, 16).soc == 1.0
    assert full_end({"full_charge_voltage": 53.6}, 16).soc == pytest.approx(state_of_charge(3.35))
    assert empty_end({}, 16).soc == 0.0
    cell = empty_end(
        {"cell_under_voltage_protection": 3.0, "pack_under_voltage_protection": 44.8}, 16
    )
    assert cell.source is EndSource.CELL_UNDER_VOLTAGE
    assert cell.soc == pytest.approx(state_of_charge(3.0))
    pack = empty_end(
        {"cell_under_voltage_protection": 2.5, "pack_under_voltage_protection": 44.8}, 16
    )
    assert (pack.source, pack.soc) == (EndSource.PACK_UNDER_VOLTAGE, pytest.approx(0.015))
