"""The history cache: filled in the background between refreshes, kept across restarts, new
records as events, logbook lines and the "Last BMS record" sensor; diagnostics and the
read_history action answer from it without a byte on the bus."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from homeassistant.const import ATTR_DEVICE_ID, STATE_UNAVAILABLE
from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.syscom_ress import history_cache, logbook
from custom_components.syscom_ress.const import DOMAIN
from custom_components.syscom_ress.coordinator import StackCoordinator
from custom_components.syscom_ress.history_cache import (
    CHECK_INTERVAL,
    EVENT_HISTORY,
    RECORDS_PER_REFRESH,
    storage_key,
)
from custom_components.syscom_ress.ress_bms.commands import Command
from custom_components.syscom_ress.ress_bms.simulator import Simulator

from .control_helpers import chained, refresh, settle_history

SENSOR = "sensor.ress_battery_pack_1_last_bms_record"


def _log(sim: Simulator, address: int, count: int) -> None:
    """``count`` more records in a pack's log, a second apart (distinct records)."""
    for _ in range(count):
        sim.advance(1)
        sim.pack(address).bms.log()


class Requests:
    """Counts the A1H requests the simulator answers."""

    def __init__(self, sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
        from custom_components.syscom_ress.ress_bms.simulator import protocol

        self.count = 0
        original = protocol.HANDLERS[Command.HISTORY]

        def counted(stack, pack, info):  # type: ignore[no-untyped-def]
            self.count += 1
            return original(stack, pack, info)

        monkeypatch.setitem(protocol.HANDLERS, Command.HISTORY, counted)


async def test_a_fresh_install_fills_the_log_slowly_without_events(
    hass: HomeAssistant, sim: Simulator, config_entry: MockConfigEntry, monkeypatch: Any
) -> None:
    """A few records per refresh, the whole log in the end, and no event for any of them."""
    _log(sim, 1, 20)  # 21 records with the power-on one
    requests = Requests(sim, monkeypatch)
    events = async_capture_events(hass, EVENT_HISTORY)
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    coordinator: StackCoordinator = config_entry.runtime_data
    assert requests.count == RECORDS_PER_REFRESH  # one step after set-up
    before = requests.count
    await refresh(hass, coordinator)
    assert requests.count - before == RECORDS_PER_REFRESH  # and a few more after each refresh
    refreshes = await settle_history(hass, coordinator)
    history = coordinator.history.pack(1)
    assert history is not None
    assert history.complete
    assert [r.time for r in history.records] == [r.time for r in sim.pack(1).bms.history]
    assert [r.index for r in history.records] == list(range(21))
    assert refreshes >= 2
    assert events == []
    state = hass.states.get(SENSOR)
    newest = sim.pack(1).bms.history[0].time
    assert dt_util.parse_datetime(state.state) == newest.replace(
        tzinfo=dt_util.get_default_time_zone()
    )
    assert state.attributes["kind"] == "record"


async def test_new_records_are_events_logbook_lines_and_the_sensor(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """A protection logs a record in the BMS: the cache learns it at once and tells."""
    coordinator: StackCoordinator = loaded_entry.runtime_data
    await settle_history(hass, coordinator)
    events = async_capture_events(hass, EVENT_HISTORY)
    sim.raise_protection(1, "cell_under_voltage")
    sim.advance(2)
    await refresh(hass, coordinator)  # the protection is seen: its record is looked for
    await refresh(hass, coordinator)
    (event,) = events
    assert event.data["pack"] == 1
    assert event.data["protections"] == ["cell_under_voltage"]
    assert event.data["kind"] == "protection"
    assert "cell_under_voltage_protection" in event.data["keys"]
    assert event.data["index"] == 0
    assert event.data["config_entry_id"] == loaded_entry.entry_id
    device = dr.async_get(hass).async_get(event.data[ATTR_DEVICE_ID])
    assert device is not None
    assert device.name == "RESS battery pack 1"

    state = hass.states.get(SENSOR)
    assert state.attributes["kind"] == "protection"
    assert state.attributes["protections"] == ["cell_under_voltage"]
    assert dt_util.parse_datetime(state.state) == sim.pack(1).bms.history[0].time.replace(
        tzinfo=dt_util.get_default_time_zone()
    )

    # The logbook line, in Home Assistant's language.
    described: dict[str, Callable[[Event], dict[str, str]]] = {}
    logbook.async_describe_events(
        hass, lambda domain, event_type, describe: described.setdefault(event_type, describe)
    )
    line = described[EVENT_HISTORY](event)
    assert line["name"] == "RESS battery pack 1"
    assert line["message"].startswith("Protection: Cell under-voltage protection")
    assert line["entity_id"] == SENSOR


async def test_records_logged_while_home_assistant_was_down_are_events(
    hass: HomeAssistant,
    sim: Simulator,
    loaded_entry: MockConfigEntry,
    hass_storage: dict[str, Any],
) -> None:
    """The cache is stored; after a restart only the records it does not hold are new."""
    coordinator: StackCoordinator = loaded_entry.runtime_data
    _log(sim, 1, 5)
    await settle_history(hass, coordinator)
    assert await hass.config_entries.async_unload(loaded_entry.entry_id)
    stored = hass_storage[storage_key(loaded_entry.entry_id)]["data"]["packs"]["1"]
    assert len(stored["records"]) == 6
    assert stored["complete"] is True

    _log(sim, 1, 2)  # while Home Assistant is down
    events = async_capture_events(hass, EVENT_HISTORY)
    assert await hass.config_entries.async_setup(loaded_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    coordinator = loaded_entry.runtime_data
    history = coordinator.history.pack(1)
    assert history is not None
    assert len(history.records) >= 6  # restored at once
    assert (
        await settle_history(hass, coordinator) <= 2
    )  # the new ones found within a refresh or two
    assert len(history.records) == 8
    assert [e.data["time"] for e in events] == [
        r.time.isoformat() for r in reversed(list(sim.pack(1).bms.history)[:2])
    ]  # oldest first


async def test_diagnostics_and_the_action_answer_from_the_cache(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    sim: Simulator,
    loaded_entry: MockConfigEntry,
) -> None:
    """Nothing is read from the bus, and both say how fresh the log is."""
    assert await async_setup_component(hass, "diagnostics", {})
    coordinator: StackCoordinator = loaded_entry.runtime_data
    _log(sim, 2, 3)
    await settle_history(hass, coordinator)
    requests = sim.line.traffic.requests
    result = await get_diagnostics_for_config_entry(hass, hass_client, loaded_entry)
    serial = sim.pack(1).bms_serial
    device = dr.async_get(hass).async_get_device_by_identifier(
        (DOMAIN, f"{serial}_pack2"), loaded_entry.entry_id
    )
    assert device is not None
    response = await hass.services.async_call(
        DOMAIN,
        "read_history",
        {ATTR_DEVICE_ID: device.id, "count": 2},
        blocking=True,
        return_response=True,
    )
    assert sim.line.traffic.requests == requests  # no bus traffic for either
    pack2 = result["history"]["2"]
    assert pack2["cached"] == len(sim.pack(2).bms.history) >= 4
    assert pack2["complete"] is True
    assert pack2["error"] is None
    assert dt_util.parse_datetime(pack2["checked_at"]) is not None
    assert [r["index"] for r in pack2["records"]] == list(range(pack2["cached"]))
    assert response["pack"] == 2
    assert response["cached"] == pack2["cached"]
    assert response["complete"] is True
    assert response["checked_at"] == pack2["checked_at"]
    assert response["records"] == pack2["records"][:2]


async def test_still_filling_says_so(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """Halfway through a first fill: what is cached, and complete false."""
    _log(sim, 1, 30)
    coordinator: StackCoordinator = loaded_entry.runtime_data
    await refresh(hass, coordinator)
    history = coordinator.history.pack(1)
    assert history is not None
    assert 0 < len(history.records) < 31
    assert history.freshness()["complete"] is False


async def test_never_while_a_refresh_runs_nor_just_before_one(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry, monkeypatch: Any
) -> None:
    """The reader keeps off the bus during a refresh and when the next is due too soon."""
    coordinator: StackCoordinator = loaded_entry.runtime_data
    await hass.async_block_till_done(wait_background_tasks=True)  # the first step is over
    _log(sim, 1, 30)
    requests = Requests(sim, monkeypatch)
    monkeypatch.setattr(coordinator, "refreshing", True)
    coordinator.history._refreshed()
    await hass.async_block_till_done(wait_background_tasks=True)
    assert requests.count == 0
    monkeypatch.setattr(coordinator, "refreshing", False)
    # The next refresh is due before a silent exchange (2 x 0.3 s + 0.5 s) could end.
    coordinator.update_interval = timedelta(seconds=1)
    coordinator.history._refreshed()
    await hass.async_block_till_done(wait_background_tasks=True)
    assert requests.count == 0
    coordinator.update_interval = timedelta(seconds=30)
    coordinator.history._refreshed()
    await hass.async_block_till_done(wait_background_tasks=True)
    assert requests.count == RECORDS_PER_REFRESH


async def test_records_logged_during_the_first_fill(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """New records push the old ones down while the log fills: none twice, the new as events."""
    coordinator: StackCoordinator = loaded_entry.runtime_data
    _log(sim, 1, 12)
    events = async_capture_events(hass, EVENT_HISTORY)
    for _ in range(2):
        await refresh(hass, coordinator)
        _log(sim, 1, 1)
    await settle_history(hass, coordinator)
    history = coordinator.history.pack(1)
    assert history is not None
    assert [r.time for r in history.records] == [r.time for r in sim.pack(1).bms.history]
    assert len(events) >= 1  # those logged after the fill had started are new
    cached = {r.time for r in history.records}
    assert len(cached) == len(history.records)


async def test_a_log_the_cache_does_not_know(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """Another log on the pack (replaced, or cleared by the PC tool): read again, no events."""
    coordinator: StackCoordinator = loaded_entry.runtime_data
    _log(sim, 1, 3)
    await settle_history(hass, coordinator)
    sim.pack(1).bms.history.clear()
    _log(sim, 1, 2)
    events = async_capture_events(hass, EVENT_HISTORY)
    history = coordinator.history.pack(1)
    assert history is not None
    history.check_wanted = True
    await settle_history(hass, coordinator)
    assert [r.time for r in history.records] == [r.time for r in sim.pack(1).bms.history]
    assert events == []


async def test_a_pack_that_fails_is_asked_again_later(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry, monkeypatch: Any
) -> None:
    """A history read that fails is reported in the freshness, and retried after a while."""
    coordinator: StackCoordinator = loaded_entry.runtime_data
    await settle_history(hass, coordinator)
    history = coordinator.history.pack(1)
    assert history is not None
    history.check_wanted = True
    sim.faults.once("drop", 2)  # the request and its retry
    coordinator.history._refreshed()  # a step, as after a refresh
    await hass.async_block_till_done(wait_background_tasks=True)
    assert "no reply" in history.freshness()["error"]
    await refresh(hass, coordinator)
    assert history.freshness()["error"] is not None  # not asked again so soon
    monkeypatch.setattr(history_cache, "RETRY_AFTER", 0.0)
    await refresh(hass, coordinator)
    assert history.freshness()["error"] is None


async def test_a_settled_cache_asks_nothing_until_a_check_is_due(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry, monkeypatch: Any
) -> None:
    """Once every log is cached, refreshes read no record; every 5 minutes, one per pack."""
    coordinator: StackCoordinator = loaded_entry.runtime_data
    await settle_history(hass, coordinator)
    requests = Requests(sim, monkeypatch)
    for _ in range(5):
        sim.advance(30)
        await refresh(hass, coordinator)
    assert requests.count == 0
    cached = [coordinator.history.pack(address) for address in coordinator.data.packs]
    for history in cached:
        assert history is not None
        assert history.checked_at is not None
        history.checked_at -= CHECK_INTERVAL  # as if five minutes had passed
    await refresh(hass, coordinator)
    assert requests.count == len(cached)  # index 0 of each: still the newest cached record
    await refresh(hass, coordinator)
    assert requests.count == len(cached)


async def test_only_packs_that_answer_for_themselves_have_a_history(
    hass: HomeAssistant, sim: Simulator, config_entry: MockConfigEntry, monkeypatch: Any
) -> None:
    """In a master/slave chain the slaves' logs are out of reach: no cache, no sensor."""
    chained(monkeypatch)
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    coordinator: StackCoordinator = config_entry.runtime_data
    assert coordinator.history.pack(2) is None
    assert hass.states.get(SENSOR) is not None
    registry = er.async_get(hass)
    assert not [
        e
        for e in er.async_entries_for_config_entry(registry, config_entry.entry_id)
        if e.unique_id.endswith("_pack2_last_history_record")
    ]


async def test_the_sensor_stays_while_its_pack_is_silent(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """The log is the pack's past: its newest record is shown while the pack does not answer."""
    coordinator: StackCoordinator = loaded_entry.runtime_data
    await settle_history(hass, coordinator)
    sim.set_offline(1)
    for _ in range(3):
        await refresh(hass, coordinator)
    assert hass.states.get("sensor.ress_battery_pack_1_voltage").state == STATE_UNAVAILABLE
    assert hass.states.get(SENSOR).state != STATE_UNAVAILABLE


@pytest.mark.parametrize("every", [1, 2, 3, 5])
async def test_records_logged_between_any_two_reads(
    hass: HomeAssistant,
    sim: Simulator,
    config_entry: MockConfigEntry,
    monkeypatch: Any,
    every: int,
) -> None:
    """Whenever the BMS logs while the cache reads: the cache ends as the log, in order, and
    each record logged after the first read is an event, once."""
    from custom_components.syscom_ress.ress_bms.simulator import protocol

    _log(sim, 1, 15)
    original = protocol.HANDLERS[Command.HISTORY]
    reads = {"count": 0, "logged": 0}

    def logging_meanwhile(stack, pack, info):  # type: ignore[no-untyped-def]
        answer = original(stack, pack, info)
        if pack.address == 1:
            reads["count"] += 1
            if reads["count"] % every == 0 and reads["logged"] < 6:
                reads["logged"] += 1
                sim.advance(1)
                pack.bms.log()  # right after this reply, before the next request
        return answer

    monkeypatch.setitem(protocol.HANDLERS, Command.HISTORY, logging_meanwhile)
    events = async_capture_events(hass, EVENT_HISTORY)
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    coordinator: StackCoordinator = config_entry.runtime_data
    await settle_history(hass, coordinator)
    while reads["logged"] < 6:  # the hook logs only while reads go on
        coordinator.history.pack(1).check_wanted = True  # type: ignore[union-attr]
        await settle_history(hass, coordinator)
    coordinator.history.pack(1).check_wanted = True  # type: ignore[union-attr]
    await settle_history(hass, coordinator)
    history = coordinator.history.pack(1)
    assert history is not None
    assert [r.time for r in history.records] == [r.time for r in sim.pack(1).bms.history]
    logged = list(sim.pack(1).bms.history)[: reads["logged"]]
    assert sorted(e.data["time"] for e in events) == sorted(r.time.isoformat() for r in logged)


async def test_the_logbook_line_is_in_home_assistants_language(
    hass: HomeAssistant, sim: Simulator, config_entry: MockConfigEntry
) -> None:
    """German: the kind and the names from de.json; every kind has its translation."""
    await hass.config.async_update(language="de")
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    coordinator: StackCoordinator = config_entry.runtime_data
    await settle_history(hass, coordinator)
    events = async_capture_events(hass, EVENT_HISTORY)
    sim.raise_protection(1, "cell_under_voltage")
    sim.advance(2)
    await settle_history(hass, coordinator)
    (event,) = events
    assert logbook.describe_record(hass, event.data).startswith("Schutz: Zellunterspannungsschutz")
    assert logbook.describe_record(hass, {"kind": "power_on", "keys": []}) == "Einschalten"


def test_every_kind_is_translated() -> None:
    import json

    from custom_components.syscom_ress.history_cache import KIND_ORDER, LAST_RECORD

    folder = Path(__file__).resolve().parents[2] / "custom_components" / DOMAIN
    for name in ("strings.json", "translations/de.json", "translations/nl.json"):
        strings = json.loads((folder / name).read_text(encoding="utf-8"))
        sensor = strings["entity"]["sensor"][LAST_RECORD.key]
        assert set(sensor["state_attributes"]["kind"]["state"]) == set(KIND_ORDER), name
