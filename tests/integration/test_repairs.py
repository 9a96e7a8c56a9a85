"""Repair issues: a silent bus, a second master, a firmware dialect; each clears itself."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.syscom_ress import coordinator as coordinator_module, repairs
from custom_components.syscom_ress.const import (
    CONF_DIALECT,
    DOMAIN,
    MISSED_REFRESHES_UNAVAILABLE,
)
from custom_components.syscom_ress.repairs import issue_id
from custom_components.syscom_ress.ress_bms.commands import Command, encode_request
from custom_components.syscom_ress.ress_bms.frame import Frame, decode_frame, encode_frame
from custom_components.syscom_ress.ress_bms.simulator import PROFILES, Simulator, respond
from tests.ress_bms.fakepeer import FakePeer

from .conftest import entry_data


def _issue(hass: HomeAssistant, kind: str, entry: MockConfigEntry) -> ir.IssueEntry | None:
    return ir.async_get(hass).async_get_issue(DOMAIN, issue_id(kind, entry.entry_id))


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> list[timedelta]:
    """The watcher's clock runs ahead of the real one by ``clock[0]``."""
    ahead = [timedelta()]
    monkeypatch.setattr(repairs, "utcnow", lambda: dt_util.utcnow() + ahead[0])
    return ahead


async def _later(hass: HomeAssistant, clock: list[timedelta], minutes: float) -> None:
    """Move the watcher's clock to ``minutes`` from the start and let its minute timer run."""
    clock[0] = timedelta(minutes=minutes)
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=1))
    await hass.async_block_till_done()


async def test_silent_link(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry, clock: list[timedelta]
) -> None:
    """Nothing answered for ten minutes: an issue; gone once the bus answers again."""
    coordinator = loaded_entry.runtime_data
    await _later(hass, clock, 5)
    assert _issue(hass, "link_silent", loaded_entry) is None
    for address in (1, 2, 3):
        sim.set_offline(address)
    await _later(hass, clock, 11)
    await _later(hass, clock, 22)
    issue = _issue(hass, "link_silent", loaded_entry)
    assert issue is not None
    assert issue.translation_key == "link_silent"
    assert issue.severity is ir.IssueSeverity.ERROR
    assert not issue.is_fixable
    assert issue.translation_placeholders["url"] == sim.url

    for address in (1, 2, 3):
        sim.set_offline(address, False)
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    # Checked after a refresh whose data changed, and every minute in any case: a refresh that
    # brings back exactly the values of before (simulated time stands still) calls no listener.
    await _later(hass, clock, 23)
    assert _issue(hass, "link_silent", loaded_entry) is None


async def test_issues_go_with_the_entry(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry, clock: list[timedelta]
) -> None:
    """Unloading the stack removes its issues: nothing watches them any more."""
    sim.set_offline(1)
    sim.set_offline(2)
    sim.set_offline(3)
    await _later(hass, clock, 11)
    await _later(hass, clock, 22)
    assert _issue(hass, "link_silent", loaded_entry) is not None
    await hass.config_entries.async_unload(loaded_entry.entry_id)
    assert _issue(hass, "link_silent", loaded_entry) is None


@pytest.fixture
def relay(sim: Simulator) -> dict[str, object]:
    """What the relaying peer does besides answering: inject frames, rewrite VER."""
    return {"foreign": False, "ver": None}


@pytest.fixture
async def relayed_entry(
    hass: HomeAssistant, sim: Simulator, relay: dict[str, object]
) -> AsyncIterator[MockConfigEntry]:
    """The simulated stack behind a gateway that can also carry another master's traffic."""

    async def script(frame: Frame, writer: asyncio.StreamWriter) -> None:
        answer = respond(sim.stack, frame.encode())
        if answer is None:
            return
        if relay["ver"] is not None:
            got = decode_frame(answer.rstrip(b"\r"))
            answer = encode_frame(int(relay["ver"]), got.adr, got.cid1, got.cid2, got.info)  # type: ignore[call-overload]
        if relay["foreign"]:
            # An inverter polling pack 2, and the reply meant for it.
            writer.write(encode_request(Command.ANALOG, 2, b"\x02"))
        writer.write(answer)

    async with FakePeer(script) as peer:
        entry = MockConfigEntry(
            domain=DOMAIN, unique_id=sim.pack(1).bms_serial, data=entry_data(peer.url)
        )
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        yield entry
        await hass.config_entries.async_unload(entry.entry_id)


async def test_second_master(
    hass: HomeAssistant,
    sim: Simulator,
    relay: dict[str, object],
    relayed_entry: MockConfigEntry,
    clock: list[timedelta],
) -> None:
    """Requests from another master on the bus: an issue, cleared ten quiet minutes later."""
    coordinator = relayed_entry.runtime_data
    assert _issue(hass, "second_master", relayed_entry) is None
    relay["foreign"] = True
    sim.advance(1)  # new values: the refresh reaches the listeners
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    issue = _issue(hass, "second_master", relayed_entry)
    assert issue is not None
    assert issue.severity is ir.IssueSeverity.WARNING
    assert int(issue.translation_placeholders["foreign"]) >= 2

    relay["foreign"] = False
    await _later(hass, clock, 5)
    assert _issue(hass, "second_master", relayed_entry) is not None
    await _later(hass, clock, 11)
    assert _issue(hass, "second_master", relayed_entry) is None


async def test_unknown_ver(
    hass: HomeAssistant,
    sim: Simulator,
    relay: dict[str, object],
    relayed_entry: MockConfigEntry,
) -> None:
    """Replies that carry another VER: a dialect issue naming it, gone when they are 25H."""
    relay["ver"] = 0x26
    sim.advance(1)  # new values: the refresh reaches the listeners
    await relayed_entry.runtime_data.async_refresh()
    await hass.async_block_till_done()
    issue = _issue(hass, "firmware_dialect", relayed_entry)
    assert issue is not None
    assert "VER 26H" in issue.translation_placeholders["details"]
    relay["ver"] = None
    sim.advance(1)
    await relayed_entry.runtime_data.async_refresh()
    await hass.async_block_till_done()
    assert _issue(hass, "firmware_dialect", relayed_entry) is None


@pytest.mark.parametrize(
    ("change", "text"),
    [
        (lambda sim: _every_pack(sim, extension=5), "end with 5 bytes"),
        (lambda sim: _stack(sim, lchksum_bug=True), "wrong LCHKSUM"),
    ],
)
async def test_firmware_dialect(
    hass: HomeAssistant,
    sim: Simulator,
    loaded_entry: MockConfigEntry,
    change: Callable[[Simulator], None],
    text: str,
    clock: list[timedelta],
) -> None:
    """An unknown 42H extension or LCHKSUM errors: an issue; cleared when replies are familiar."""
    coordinator = loaded_entry.runtime_data
    assert _issue(hass, "firmware_dialect", loaded_entry) is None
    change(sim)
    sim.advance(1)  # new values: the refresh reaches the listeners
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    issue = _issue(hass, "firmware_dialect", loaded_entry)
    assert issue is not None
    assert text in issue.translation_placeholders["details"]

    _every_pack(sim, extension=0)
    _stack(sim, lchksum_bug=False)
    clock[0] = timedelta(minutes=11)
    sim.advance(1)
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    assert _issue(hass, "firmware_dialect", loaded_entry) is None


def _every_pack(sim: Simulator, **changes: object) -> None:
    for pack in sim.stack.packs:
        pack.firmware = pack.firmware.with_changes(**changes)


def _stack(sim: Simulator, **changes: object) -> None:
    sim.stack.firmware = sim.stack.firmware.with_changes(**changes)


def test_profiles_known() -> None:
    """The default profile sends no extension, the length every dialect check starts from."""
    assert PROFILES["pace-2018"].extension == 0


async def test_a_pack_offline_says_the_totals_count_the_others(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """One pack silent, the others not: the stack's capacity shrinks, and an issue says why."""
    coordinator = loaded_entry.runtime_data
    full = float(hass.states.get("sensor.ress_battery_full_capacity").state)
    assert _issue(hass, "pack_offline", loaded_entry) is None
    sim.set_offline(3)
    for _ in range(3):
        await coordinator.async_refresh()
        await hass.async_block_till_done()
    issue = _issue(hass, "pack_offline", loaded_entry)
    assert issue is not None
    assert issue.severity is ir.IssueSeverity.WARNING
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["packs"] == "3"
    assert issue.translation_placeholders["online"] == "2"
    assert issue.translation_placeholders["total"] == "3"
    assert hass.states.get("sensor.ress_battery_packs_online").state == "2"
    assert float(hass.states.get("sensor.ress_battery_full_capacity").state) < full
    sim.set_offline(3, False)
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    assert _issue(hass, "pack_offline", loaded_entry) is None


async def test_no_pack_offline_issue_when_all_are_silent(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """Nothing answers: that is the silent-bus issue's to say, not one per pack."""
    coordinator = loaded_entry.runtime_data
    for address in (1, 2, 3):
        sim.set_offline(address)
    for _ in range(3):
        await coordinator.async_refresh()
        await hass.async_block_till_done()
    assert _issue(hass, "pack_offline", loaded_entry) is None


async def test_a_stack_that_answers_in_another_dialect_is_offered_the_switch(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry, clock: list[timedelta]
) -> None:
    """Silent in its stored dialect, answering in another: a fixable issue that switches it."""
    coordinator = loaded_entry.runtime_data
    sim.speak("seplos")  # a firmware update, or the protocol switched in the vendor's tool
    for _ in range(MISSED_REFRESHES_UNAVAILABLE):
        await coordinator.async_refresh()
        await hass.async_block_till_done()
    await _later(hass, clock, 1)
    issue = _issue(hass, "dialect_changed", loaded_entry)
    assert issue is not None and issue.is_fixable
    placeholders = issue.translation_placeholders or {}
    assert (placeholders["stored"], placeholders["found"]) == (
        "PACE VER 0x25",
        "Seplos V2.0 (VER 0x20)",
    )
    assert placeholders["baud"] == "9600"

    assert await async_setup_component(hass, "repairs", {})
    manager = hass.data["repairs"]["flow_manager"]
    flow = await manager.async_init(DOMAIN, data={"issue_id": issue.issue_id})
    assert flow["step_id"] == "confirm"
    assert flow["description_placeholders"]["found"] == "Seplos V2.0 (VER 0x20)"
    done = await manager.async_configure(flow["flow_id"], {})
    assert done["type"] == "create_entry"
    await hass.async_block_till_done()
    assert loaded_entry.data[CONF_DIALECT] == "seplos"
    assert loaded_entry.runtime_data is not coordinator  # reloaded
    assert loaded_entry.runtime_data.client.dialect.name == "seplos"
    assert _issue(hass, "dialect_changed", loaded_entry) is None
    voltage = hass.states.get("sensor.ress_battery_pack_1_voltage")
    assert voltage is not None and voltage.state != "unavailable"


async def test_a_stack_silent_in_every_dialect_raises_no_dialect_issue(
    hass: HomeAssistant,
    sim: Simulator,
    loaded_entry: MockConfigEntry,
    clock: list[timedelta],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Nothing answers in any dialect either: no dialect issue (link_silent tells of it), and
    the probing is not repeated at every silent refresh."""
    coordinator = loaded_entry.runtime_data
    probes: list[str] = []
    real_detect = coordinator_module.detect

    async def counted(url: str, **kwargs: Any) -> Any:
        probes.append(url)
        return await real_detect(url, **kwargs)

    monkeypatch.setattr(coordinator_module, "detect", counted)
    for address in (1, 2, 3):
        sim.set_offline(address)
    for _ in range(MISSED_REFRESHES_UNAVAILABLE + 2):
        await coordinator.async_refresh()
        await hass.async_block_till_done()
    await _later(hass, clock, 1)
    assert probes == [sim.url]
    assert coordinator.found_dialect is None
    assert _issue(hass, "dialect_changed", loaded_entry) is None
    assert await hass.config_entries.async_unload(loaded_entry.entry_id)
