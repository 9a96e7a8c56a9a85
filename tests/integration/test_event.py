"""Protection events: the event entity and the bus event, on transitions between refreshes."""

from __future__ import annotations

from datetime import timedelta

from homeassistant.components.event import ATTR_EVENT_TYPE, ATTR_EVENT_TYPES
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)

from custom_components.syscom_ress.const import ALARM_CLEAR_HOLD
from custom_components.syscom_ress.control import EVENT_PROTECTION, EVENT_TYPES, PROBLEM_BITS
from custom_components.syscom_ress.ress_bms.simulator import Simulator

from .control_helpers import PACK1, PACK2, refresh

EVENT2 = f"event.{PACK2}protection_event"


def test_event_types() -> None:
    """Raised and cleared for every protection, alarm and fault bit."""
    assert len(PROBLEM_BITS) == 45
    assert len(EVENT_TYPES) == 90
    assert "cell_over_voltage_protection_raised" in EVENT_TYPES
    assert "ntc_fault_cleared" in EVENT_TYPES
    assert "low_soc_alarm_raised" in EVENT_TYPES


async def test_cell_over_voltage_raised_then_cleared(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """A cell over-voltage fires the event and turns the binary sensor on; then both clear."""
    coordinator = loaded_entry.runtime_data
    events = async_capture_events(hass, EVENT_PROTECTION)
    state = hass.states.get(EVENT2)
    assert state.state == STATE_UNKNOWN
    assert len(state.attributes[ATTR_EVENT_TYPES]) == 90

    sim.raise_protection(2, "cell_over_voltage", cell=12)
    await refresh(hass, coordinator)
    state = hass.states.get(EVENT2)
    assert state.attributes[ATTR_EVENT_TYPE] == "cell_over_voltage_protection_raised"
    assert state.attributes["kind"] == "protection"
    assert state.attributes["name"] == "cell_over_voltage"
    assert state.attributes["cells"] == [12]
    assert state.attributes["sensors"] == []
    assert state.attributes["message"] == "Pack 2 · Cell 12 · Cell over-voltage protection"
    assert hass.states.get(f"binary_sensor.{PACK2}protection").state == STATE_ON
    assert hass.states.get(f"event.{PACK1}protection_event").state == STATE_UNKNOWN
    assert [e.data for e in events] == [
        {
            "config_entry_id": loaded_entry.entry_id,
            "device_id": events[0].data["device_id"],
            "pack": 2,
            "name": "cell_over_voltage",
            "key": "cell_over_voltage_protection",
            "kind": "protection",
            "state": "raised",
            "cells": [12],
            "sensors": [],
            "message": "Pack 2 · Cell 12 · Cell over-voltage protection",
        }
    ]
    assert events[0].data["device_id"] is not None

    await refresh(hass, coordinator)  # still active: nothing new
    assert len(events) == 1

    sim.clear_protection(2)
    await refresh(hass, coordinator)
    state = hass.states.get(EVENT2)
    assert state.attributes[ATTR_EVENT_TYPE] == "cell_over_voltage_protection_cleared"
    # The place it was at: the cell's code is back to normal, the event still says which.
    assert state.attributes["cells"] == [12]
    assert hass.states.get(f"binary_sensor.{PACK2}protection").state == STATE_OFF
    assert [e.data["state"] for e in events] == ["raised", "cleared"]
    assert events[1].data["message"] == "Pack 2 · Cell 12 · Cell over-voltage protection"


async def test_events_name_the_sensor_and_the_default_cell(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """The simulator flags the lowest cell for an under-voltage; a temperature names its sensor."""
    events = async_capture_events(hass, EVENT_PROTECTION)
    cells = sim.pack(3).analog().cell_voltages
    lowest = cells.index(min(cells)) + 1
    sim.raise_protection(3, "cell_under_voltage")
    sim.raise_protection(1, "discharge_low_temperature_alarm", sensor=4)
    sim.raise_protection(1, "pack_over_voltage")  # one value: no place beyond the pack
    await refresh(hass, loaded_entry.runtime_data)
    found = {(e.data["pack"], e.data["key"]): e.data for e in events}
    assert found[(3, "cell_under_voltage_protection")]["cells"] == [lowest]
    assert found[(3, "cell_under_voltage_protection")]["message"] == (
        f"Pack 3 · Cell {lowest} · Cell under-voltage protection"
    )
    alarm = found[(1, "discharge_low_temperature_alarm")]
    assert (alarm["cells"], alarm["sensors"]) == ([], ["cell_temperature_4"])
    assert alarm["message"] == "Pack 1 · Cell temperature 4 · Discharge low temperature alarm"
    assert found[(1, "pack_over_voltage_protection")]["message"] == (
        "Pack 1 · Pack over-voltage protection"
    )


async def test_active_at_start_up_is_no_event(
    hass: HomeAssistant, sim: Simulator, config_entry: MockConfigEntry
) -> None:
    """What is active when the integration starts shows in the binary sensor, not as an event."""
    sim.raise_protection(3, "ntc_fault")
    events = async_capture_events(hass, EVENT_PROTECTION)
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    await refresh(hass, config_entry.runtime_data)
    fault = hass.states.get("binary_sensor.ress_battery_pack_3_fault")
    assert (fault.state, fault.attributes["active"]) == (STATE_ON, ["ntc"])
    assert hass.states.get("event.ress_battery_pack_3_protection_event").state == STATE_UNKNOWN
    assert events == []

    sim.clear_protection(3)
    await refresh(hass, config_entry.runtime_data)
    assert [(e.data["key"], e.data["state"]) for e in events] == [("ntc_fault", "cleared")]


async def test_a_pack_back_from_silence_reports_what_changed(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """Transitions while a pack was silent are reported when it answers again."""
    coordinator = loaded_entry.runtime_data
    events = async_capture_events(hass, EVENT_PROTECTION)
    sim.set_offline(2)
    for _ in range(3):
        await refresh(hass, coordinator)
    sim.raise_protection(2, "low_soc")
    sim.set_offline(2, False)
    await refresh(hass, coordinator)
    assert [(e.data["pack"], e.data["key"]) for e in events] == [(2, "low_soc_alarm")]
    assert hass.states.get(EVENT2).attributes[ATTR_EVENT_TYPE] == "low_soc_alarm_raised"


async def test_a_flickering_alarm_is_one_raise_and_one_clear(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """An alarm back within the hold is no new event; cleared once it stayed clear."""
    coordinator = loaded_entry.runtime_data
    events = async_capture_events(hass, EVENT_PROTECTION)
    for _ in range(4):
        sim.raise_protection(2, "pack_over_voltage_alarm")
        await refresh(hass, coordinator)
        sim.clear_protection(2)
        await refresh(hass, coordinator)
    assert [e.data["state"] for e in events] == ["raised"]
    async_fire_time_changed(hass, dt_util.utcnow() + ALARM_CLEAR_HOLD + timedelta(seconds=1))
    await hass.async_block_till_done()
    assert [e.data["state"] for e in events] == ["raised", "cleared"]
    assert hass.states.get(EVENT2).attributes[ATTR_EVENT_TYPE] == "pack_over_voltage_alarm_cleared"
