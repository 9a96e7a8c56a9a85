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
from custom_components.syscom_ress.diagnostics import redact_connection
from custom_components.syscom_ress.ress_bms.simulator import Simulator

# The TCP port of the simulator and round-trip times change from run to run.
VOLATILE = props("url", "device", "last_rtt", "rtt_by_command")


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
    await loaded_entry.runtime_data.async_refresh()
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
    """A silent pack is listed without history; a history read that fails shows its error."""
    coordinator = loaded_entry.runtime_data
    sim.set_offline(3)
    for _ in range(3):
        await coordinator.async_refresh()
    sim.faults.once("drop", 2)  # the master's first history read is lost, retry included
    result = await get_diagnostics_for_config_entry(hass, hass_client, loaded_entry)
    assert set(result["history"]) == {"1", "2"}
    assert "error" in result["history"]["1"]
    assert result["history"]["2"]["count"] >= 1
    pack3 = result["packs"][2]
    assert pack3["available"] is False
    assert pack3["missed_refreshes"] == 3
    assert pack3["last_error"] is None  # zero-filled by the master: offline, not an error


def test_redact_connection() -> None:
    """URLs keep scheme and port; device paths are hidden whole."""
    assert redact_connection("socket://10.0.0.5:8899") == f"socket://{REDACTED}:8899"
    assert redact_connection("rfc2217://gw.lan") == f"rfc2217://{REDACTED}"
    assert redact_connection("/dev/serial/by-id/usb-FTDI_A1B2-if00") == REDACTED
