"""The blueprints of blueprints/automation/syscom_ress and the dashboard of dashboards/, loaded
as Home Assistant loads them and run against a simulated stack: every entity and action they
name exists, every selector finds the entities it is meant for, and each automation does what
its description says."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
import shutil
from typing import Any

from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from homeassistant.util.yaml import load_yaml
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
    async_mock_service,
)
import yaml

from custom_components.syscom_ress.const import DOMAIN
from custom_components.syscom_ress.ress_bms.simulator import Simulator

from .control_helpers import refresh

ROOT = Path(__file__).resolve().parents[2]
BLUEPRINTS = ROOT / "blueprints" / "automation" / DOMAIN
DASHBOARD = ROOT / "dashboards" / "syscom_ress.yaml"
CORE_CARDS = {
    "entities", "gauge", "glance", "history-graph", "markdown", "tile", "vertical-stack",
    "horizontal-stack", "grid", "statistics-graph", "sensor", "entity",
}  # fmt: skip


def test_three_blueprints() -> None:
    assert sorted(p.name for p in BLUEPRINTS.glob("*.yaml")) == [
        "notify_protection.yaml",
        "pack_offline.yaml",
        "shed_load.yaml",
    ]


@pytest.fixture
def config_dir(hass: HomeAssistant, tmp_path: Path) -> Iterator[Path]:
    """A configuration folder with the blueprints where Home Assistant looks for them."""
    before = hass.config.config_dir
    hass.config.config_dir = str(tmp_path)
    shutil.copytree(BLUEPRINTS, tmp_path / "blueprints" / "automation" / DOMAIN)
    yield tmp_path
    hass.config.config_dir = before


@pytest.fixture
async def automations(
    hass: HomeAssistant, config_dir: Path, loaded_entry: MockConfigEntry
) -> AsyncIterator[None]:
    """One automation from each blueprint, with the simulated stack's entities as inputs."""
    inputs: dict[str, dict[str, Any]] = {
        "notify_protection.yaml": {"kinds": ["protection", "fault"]},
        "shed_load.yaml": {
            "soc_sensor": "sensor.ress_battery_state_of_charge",
            "soc_below": 30,
            "protection_events": [
                f"event.ress_battery_pack_{n}_protection_event" for n in (1, 2, 3)
            ],
            "load": {"entity_id": "switch.water_heater"},
        },
        "pack_offline.yaml": {
            "pack_states": [f"sensor.ress_battery_pack_{n}_state" for n in (1, 2, 3)],
            "minutes": 3,
        },
    }
    config = [
        {"id": name, "use_blueprint": {"path": f"{DOMAIN}/{name}", "input": values}}
        for name, values in inputs.items()
    ]
    assert await async_setup_component(hass, "automation", {"automation": config})
    await hass.async_block_till_done()
    yield
    await hass.services.async_call(
        "automation", "turn_off", {"entity_id": "all", "stop_actions": True}, blocking=True
    )


@pytest.mark.usefixtures("automations")
def test_each_blueprint_makes_a_valid_automation(hass: HomeAssistant) -> None:
    automations = hass.states.async_all("automation")
    assert len(automations) == 3
    assert all(s.state == "on" for s in automations), automations


def test_the_selectors_find_the_entities_they_are_for() -> None:
    """Each entity input's filter matches what the integration makes (integration, domain,
    device class), read from the entity descriptions rather than trusted."""
    from custom_components.syscom_ress.event import PROTECTION_EVENT
    from custom_components.syscom_ress.sensor import PACK_SENSORS, STACK_SENSORS

    classes = {
        ("sensor", d.key): str(d.device_class) if d.device_class else None
        for d in (*PACK_SENSORS, *STACK_SENSORS)
    }
    wanted = {
        ("shed_load.yaml", "soc_sensor"): ("sensor", "soc"),
        ("shed_load.yaml", "protection_events"): ("event", PROTECTION_EVENT.key),
        ("pack_offline.yaml", "pack_states"): ("sensor", "state"),
    }
    for (name, key), (domain, entity_key) in wanted.items():
        blueprint = load_yaml(BLUEPRINTS / name)
        (selected,) = blueprint["blueprint"]["input"][key]["selector"]["entity"]["filter"]
        assert selected["integration"] == DOMAIN
        assert selected["domain"] == domain
        if "device_class" in selected:
            assert classes[domain, entity_key] == selected["device_class"], (name, key)


@pytest.mark.usefixtures("automations")
async def test_notify_on_any_protection(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """A protection (or fault, as chosen) of any pack is told, with the pack's device name."""
    notify = async_mock_service(hass, "notify", "notify")
    sim.raise_protection(2, "cell_over_voltage", cell=7)
    sim.raise_protection(3, "low_soc")  # an alarm: not chosen
    await refresh(hass, loaded_entry.runtime_data)
    assert [c.data for c in notify] == [
        {
            "title": "RESS battery pack 2",
            "message": "Pack 2 · Cell 7 · Cell over-voltage protection",
        }
    ]
    sim.raise_protection(1, "ntc_fault")
    await refresh(hass, loaded_entry.runtime_data)
    assert notify[-1].data["title"] == "RESS battery pack 1"
    assert len(notify) == 2


@pytest.mark.usefixtures("automations")
async def test_shed_a_load(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """The cell under-voltage alarm of any pack, or a low charge: the load is switched off."""
    turn_off = async_mock_service(hass, "switch", "turn_off")
    coordinator = loaded_entry.runtime_data
    sim.raise_protection(2, "ntc_fault")
    await refresh(hass, coordinator)
    assert turn_off == []
    sim.raise_protection(3, "cell_under_voltage_alarm")
    await refresh(hass, coordinator)
    assert [c.data["entity_id"] for c in turn_off] == [["switch.water_heater"]]
    sim.clear_protection(3)
    for address in (1, 2, 3):
        sim.pack(address).physics.soc = 25
    await refresh(hass, coordinator)
    assert len(turn_off) == 2


@pytest.mark.usefixtures("automations")
async def test_a_pack_went_offline(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """Pack 3 silent: unavailable after three polls, told three minutes later, by its name."""
    notify = async_mock_service(hass, "notify", "notify")
    sim.set_offline(3)
    for _ in range(3):
        await refresh(hass, loaded_entry.runtime_data)
    assert hass.states.get("sensor.ress_battery_pack_3_state").state == STATE_UNAVAILABLE
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=2))
    await hass.async_block_till_done()
    assert notify == []
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=3, seconds=1))
    await hass.async_block_till_done()
    assert [c.data for c in notify] == [
        {"title": "Battery pack offline", "message": "RESS battery pack 3 stopped answering"}
    ]


# -- the dashboard -------------------------------------------------------------------------


def _cards(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if "type" in node and ("entity" in node or "entities" in node or "cards" in node):
            yield node
        for value in node.values():
            yield from _cards(value)
    elif isinstance(node, list):
        for value in node:
            yield from _cards(value)


def _entity_ids(card: dict[str, Any]) -> list[str]:
    ids = [card["entity"]] if "entity" in card else []
    for item in card.get("entities", []):
        if isinstance(item, str):
            ids.append(item)
        elif "entity" in item:
            ids.append(item["entity"])
    return ids


def test_the_dashboard_uses_core_cards_only() -> None:
    dashboard = yaml.safe_load(DASHBOARD.read_text(encoding="utf-8"))
    types = {card["type"] for card in _cards(dashboard["views"])}
    assert types <= CORE_CARDS, types - CORE_CARDS
    views = [view["path"] for view in dashboard["views"]]
    assert views == ["stack", "packs", "cells"]


async def test_every_entity_of_the_dashboard_exists(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    """On the simulated stack (named RESS battery, 3 packs): every entity exists; outside the
    Cells view (per-cell voltages, disabled by default) every one is enabled by default."""
    registry = er.async_get(hass)
    dashboard = yaml.safe_load(DASHBOARD.read_text(encoding="utf-8"))
    for view in dashboard["views"]:
        ids = [i for card in _cards(view["cards"]) for i in _entity_ids(card)]
        assert ids, view["path"]
        for entity_id in ids:
            entry = registry.async_get(entity_id)
            assert entry is not None, entity_id
            assert entry.platform == DOMAIN
            if view["path"] != "cells":
                assert entry.disabled_by is None, entity_id
                assert hass.states.get(entity_id) is not None, entity_id
    packs = {
        i.split("_pack_")[1].split("_")[0]
        for view in dashboard["views"]
        for card in _cards(view["cards"])
        for i in _entity_ids(card)
        if "_pack_" in i
    }
    assert packs == {"1", "2", "3"}
