"""Protection events: the event entity and the bus event, on transitions between refreshes."""

from __future__ import annotations

from homeassistant.components.event import ATTR_EVENT_TYPE, ATTR_EVENT_TYPES
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

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

    sim.raise_protection(2, "cell_over_voltage")
    await refresh(hass, coordinator)
    state = hass.states.get(EVENT2)
    assert state.attributes[ATTR_EVENT_TYPE] == "cell_over_voltage_protection_raised"
    assert state.attributes["kind"] == "protection"
    assert state.attributes["name"] == "cell_over_voltage"
    assert hass.states.get(f"binary_sensor.{PACK2}cell_over_voltage_protection").state == STATE_ON
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
        }
    ]
    assert events[0].data["device_id"] is not None

    await refresh(hass, coordinator)  # still active: nothing new
    assert len(events) == 1

    sim.clear_protection(2)
    await refresh(hass, coordinator)
    state = hass.states.get(EVENT2)
    assert state.attributes[ATTR_EVENT_TYPE] == "cell_over_voltage_protection_cleared"
    assert hass.states.get(f"binary_sensor.{PACK2}cell_over_voltage_protection").state == STATE_OFF
    assert [e.data["state"] for e in events] == ["raised", "cleared"]


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
    assert hass.states.get("binary_sensor.ress_battery_pack_3_ntc_fault").state == STATE_ON
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
