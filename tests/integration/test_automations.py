"""The three automation examples of docs/control.md, run as written against the simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
import re

from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
    async_mock_service,
)
import yaml

from custom_components.syscom_ress.ress_bms.simulator import Simulator

from .control_helpers import refresh

DOCS = Path(__file__).resolve().parents[2] / "docs" / "control.md"


def documented_automations() -> list[dict]:  # type: ignore[type-arg]
    """Every YAML block of the control docs that is an automation (starts with ``- alias:``)."""
    blocks = re.findall(r"```yaml\n(- alias:.*?)```", DOCS.read_text(), re.DOTALL)
    return [automation for block in blocks for automation in yaml.safe_load(block)]


def test_three_examples() -> None:
    """The docs promise three."""
    assert [a["alias"] for a in documented_automations()] == [
        "Battery protection",
        "Shed load on cell under-voltage",
        "Battery pack offline",
    ]


@pytest.fixture
async def automations(hass: HomeAssistant, loaded_entry: MockConfigEntry) -> AsyncIterator[None]:
    """The documented automations, set up after the stack and off before it unloads."""
    assert await async_setup_component(hass, "automation", {"automation": documented_automations()})
    await hass.async_block_till_done()
    yield
    # Unloading makes every entity unavailable: that must not start the offline timer.
    await hass.services.async_call(
        "automation", "turn_off", {"entity_id": "all", "stop_actions": True}, blocking=True
    )


@pytest.mark.usefixtures("automations")
async def test_notify_on_any_protection(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """A protection of any pack is notified once, with its pack and name; alarms are not."""
    notify = async_mock_service(hass, "notify", "notify")
    sim.raise_protection(2, "cell_over_voltage", cell=7)
    sim.raise_protection(3, "low_soc")
    await refresh(hass, loaded_entry.runtime_data)
    assert [c.data for c in notify] == [
        {"title": "Battery pack 2", "message": "Pack 2 · Cell 7 · Cell over-voltage protection"}
    ]
    sim.clear_protection(2)
    await refresh(hass, loaded_entry.runtime_data)
    assert len(notify) == 1


@pytest.mark.usefixtures("automations")
async def test_shed_load_on_cell_under_voltage(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """The cell under-voltage alarm of pack 1 switches the load off; other events do not."""
    turn_off = async_mock_service(hass, "switch", "turn_off")
    sim.raise_protection(1, "ntc_fault")
    await refresh(hass, loaded_entry.runtime_data)
    assert turn_off == []
    sim.raise_protection(1, "cell_under_voltage_alarm")
    await refresh(hass, loaded_entry.runtime_data)
    assert [c.data["entity_id"] for c in turn_off] == [["switch.water_heater"]]


@pytest.mark.usefixtures("automations")
async def test_alert_when_a_pack_drops_off(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """Pack 3 silent: after three polls its state is unavailable, two minutes later a message."""
    notify = async_mock_service(hass, "notify", "notify")
    sim.set_offline(3)
    for _ in range(3):
        await refresh(hass, loaded_entry.runtime_data)
    assert hass.states.get("sensor.ress_battery_pack_3_state").state == STATE_UNAVAILABLE
    assert notify == []
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=2, seconds=1))
    await hass.async_block_till_done()
    assert [c.data["message"] for c in notify] == ["RESS battery pack 3 State stopped answering"]
