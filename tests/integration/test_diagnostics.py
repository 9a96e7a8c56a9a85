"""Diagnostics of the entry and of each device: redacted, decoded, with the history log."""

from __future__ import annotations

import json

from homeassistant.components.diagnostics import REDACTED
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
    get_diagnostics_for_device,
)
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion
from syrupy.filters import props

from custom_components.syscom_ress.const import DOMAIN
from custom_components.syscom_ress.diagnostics import _report, redact_connection
from custom_components.syscom_ress.ress_bms.capture import parse_frames
from custom_components.syscom_ress.ress_bms.replay import replay_frames, summary
from custom_components.syscom_ress.ress_bms.simulator import Simulator

from .control_helpers import refresh

# The TCP port of the simulator and round-trip times change from run to run; the versions
# differ between the two Home Assistant versions tested, and the report's creation time too.
VOLATILE = props("url", "device", "last_rtt", "rtt_by_command", "versions", "created", "checked_at")


@pytest.fixture(autouse=True)
async def _diagnostics(hass: HomeAssistant) -> None:
    assert await async_setup_component(hass, "diagnostics", {})


async def test_entry_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    sim: Simulator,
    loaded_entry: MockConfigEntry,
    snapshot: SnapshotAssertion,
) -> None:
    """The whole stack: last sample, link, frames, history; no serial or host anywhere."""
    sim.raise_protection(2, "cell_over_voltage")  # logs a history record on pack 2
    for _ in range(2):  # seen, and its record learned by the history cache
        await refresh(hass, loaded_entry.runtime_data)
    result = await get_diagnostics_for_config_entry(hass, hass_client, loaded_entry)

    text = json.dumps(result)
    for address in (1, 2, 3):
        assert sim.pack(address).bms_serial not in text
        assert sim.pack(address).pack_serial not in text
    assert "127.0.0.1" not in text
    assert result["link"]["url"] == f"socket://{REDACTED}:{sim.port}"
    assert result["entry"]["data"]["device"] == f"socket://{REDACTED}:{sim.port}"
    assert result["link"]["last_frames"]["C2"]["reply"] == REDACTED
    assert set(result["history"]) == {"1", "2", "3"}
    newest = result["history"]["2"]["records"][0]
    assert newest["index"] == 0
    assert newest["protections"] == ["cell_over_voltage"]
    assert result["packs"][1]["status"]["protections"] == ["cell_over_voltage"]
    # The extension is named explicitly: both pinned plugin versions then use snapshots/.
    assert result == snapshot.use_extension(HomeAssistantSnapshotExtension)(exclude=VOLATILE)


async def test_device_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    sim: Simulator,
    loaded_entry: MockConfigEntry,
) -> None:
    """A pack device shows only that pack; the stack device shows them all."""
    registry = dr.async_get(hass)
    serial = sim.pack(1).bms_serial
    pack3 = registry.async_get_device_by_identifier(
        (DOMAIN, f"{serial}_pack3"), loaded_entry.entry_id
    )
    stack = registry.async_get_device_by_identifier((DOMAIN, serial), loaded_entry.entry_id)
    assert pack3 is not None
    assert stack is not None
    result = await get_diagnostics_for_device(hass, hass_client, loaded_entry, pack3)
    assert [p["address"] for p in result["packs"]] == [3]
    assert list(result["history"]) == ["3"]
    result = await get_diagnostics_for_device(hass, hass_client, loaded_entry, stack)
    assert [p["address"] for p in result["packs"]] == [1, 2, 3]


async def test_history_failure_and_silent_pack(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    sim: Simulator,
    loaded_entry: MockConfigEntry,
) -> None:
    """A silent pack keeps its cached history; a history read that failed shows its error."""
    coordinator = loaded_entry.runtime_data
    await refresh(hass, coordinator)  # every log (one record each) is cached
    sim.set_offline(3)
    for _ in range(3):
        await refresh(hass, coordinator)
    history = coordinator.history.pack(1)
    assert history is not None
    history.check_wanted = True
    sim.faults.once("drop", 2)  # the master's next history read is lost, retry included
    coordinator.history._refreshed()  # a step of the background reader, as after a refresh
    await hass.async_block_till_done(wait_background_tasks=True)
    result = await get_diagnostics_for_config_entry(hass, hass_client, loaded_entry)
    assert set(result["history"]) == {"1", "2", "3"}
    assert "no reply" in result["history"]["1"]["error"]
    assert result["history"]["1"]["cached"] == 1  # what was cached before stays
    assert result["history"]["3"]["cached"] == 1
    pack3 = result["packs"][2]
    assert pack3["available"] is False
    assert pack3["missed_refreshes"] == 3
    assert pack3["last_error"] is None  # zero-filled by the master: offline, not an error


async def test_report_in_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    sim: Simulator,
    loaded_entry: MockConfigEntry,
) -> None:
    """The diagnostics carry ress-bms's report: redacted, and it replays to the same values."""
    sim.raise_protection(2, "cell_over_voltage")
    await loaded_entry.runtime_data.async_refresh()
    result = await get_diagnostics_for_config_entry(hass, hass_client, loaded_entry)
    report = result["report"]
    assert report["source"] == "home assistant diagnostics"
    assert report["redacted"] is True
    assert set(report["versions"]) >= {"ress_bms", "python", "serialx", "home_assistant"}
    assert [p["address"] for p in report["scan"]["packs"]] == [1, 2, 3]
    assert {p["bms_serial"] for p in report["scan"]["packs"]} == {REDACTED}
    assert report["status"]["mode"] == "broadcast"
    assert report["status"]["packs"][1]["bits"]["protection"]["cell_over_voltage"] is True
    assert report["link"]["url"] == f"socket://{REDACTED}:{sim.port}"
    text = json.dumps(result)
    for address in (1, 2, 3):
        assert sim.pack(address).bms_serial not in text
    # Replayed offline, the frames give back what the coordinator decoded from them.
    entries = replay_frames(parse_frames(json.dumps(result)).frames)
    replayed = summary(entries)
    serials = [v["bms_serial"] for v in replayed["identity"].values() if "bms_serial" in v]
    assert serials == [REDACTED]  # the last C2H exchange (pack 3's), its serial hidden
    for pack in report["status"]["packs"]:
        assert replayed["packs"][str(pack["address"])] == pack


async def test_report_sends_nothing(sim: Simulator, loaded_entry: MockConfigEntry) -> None:
    """Building the report only reads what the coordinator holds: no frame goes on the bus."""
    coordinator = loaded_entry.runtime_data
    await coordinator.control.async_read_parameters(1)
    requests = coordinator.link.stats.requests
    before = sim.line.traffic.requests
    report = _report(coordinator, list(coordinator.data.packs.values()))
    assert coordinator.link.stats.requests == requests
    assert sim.line.traffic.requests == before
    assert report["parameters"][0]["address"] == 1
    assert report["parameters"][0]["values"] == dict(coordinator.control.parameters(1) or {})
    pack3 = _report(coordinator, [coordinator.data.packs[3]])
    assert [p["address"] for p in pack3["status"]["packs"]] == [3]
    assert pack3["parameters"] == []


def test_redact_connection() -> None:
    """URLs keep scheme and port; device paths are hidden whole."""
    assert redact_connection("socket://10.0.0.5:8899") == f"socket://{REDACTED}:8899"
    assert redact_connection("rfc2217://gw.lan") == f"rfc2217://{REDACTED}"
    assert redact_connection("/dev/serial/by-id/usb-FTDI_A1B2-if00") == REDACTED
