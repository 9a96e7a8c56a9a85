"""The config flow, the reconfigure flow and the options flow, against the simulator."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
import socket
from typing import Any
from unittest.mock import patch

from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.util import slugify
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.syscom_ress import config_flow
from custom_components.syscom_ress.config_flow import normalize_url, serial_by_id, stack_unique_id
from custom_components.syscom_ress.const import (
    CONF_ADVANCED,
    CONF_BAUDRATE,
    CONF_DEVICE,
    CONF_DIALECT,
    CONF_MASTER_ADDRESS,
    CONF_POLL_MODE,
    CONF_SCAN_INTERVAL,
    CONF_TIMEOUT,
    DOMAIN,
)
from custom_components.syscom_ress.ress_bms.client import PackInfo, StackInfo
from custom_components.syscom_ress.ress_bms.frame import VER_PACE, Frame
from custom_components.syscom_ress.ress_bms.simulator import Simulator
from tests.ress_bms.fakepeer import FakePeer, reply

from .conftest import TEST_TIMEOUT


def _form(url: str, **advanced: Any) -> dict[str, Any]:
    """The connection form with PACE at 9600 chosen: no detection runs (test_config_flow_detect)."""
    return {
        CONF_DEVICE: url,
        CONF_ADVANCED: {
            CONF_DIALECT: "pace",
            CONF_BAUDRATE: "9600",
            CONF_POLL_MODE: "auto",
            CONF_MASTER_ADDRESS: 1,
            CONF_TIMEOUT: TEST_TIMEOUT,
            **advanced,
        },
    }


async def _start(hass: HomeAssistant, step: str, source: str = SOURCE_USER) -> dict[str, Any]:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": source})
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == ["serial", "network"]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": step}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == step
    return result


def _host_port(url: str) -> str:
    return url.removeprefix("socket://")


async def test_network_gateway_creates_entry(hass: HomeAssistant, sim: Simulator) -> None:
    """host:port is probed, the confirm step shows the stack, the entry holds a socket URL."""
    result = await _start(hass, "network")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _form(_host_port(sim.url))
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "confirm"
    serial = sim.pack(1).bms_serial
    assert result["description_placeholders"] == {
        "packs": "3",
        "model": "P16S100A",
        "firmware": "P16S100A-1812-1.00",
        "serial": serial,
        "device": sim.url,
        "protocol": "PACE VER 0x25",
        "baudrate": "9600",
    }
    schema = result["data_schema"].schema
    assert {str(key): key.default() for key in schema} == {"name": "RESS battery"}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "RESS battery"  # the default name
    assert result["result"].unique_id == serial
    assert result["data"] == {
        CONF_DEVICE: sim.url,
        CONF_DIALECT: "pace",
        CONF_BAUDRATE: 9600,
        CONF_ADVANCED: {CONF_POLL_MODE: "auto", CONF_MASTER_ADDRESS: 1, CONF_TIMEOUT: TEST_TIMEOUT},
    }
    await hass.async_block_till_done()
    entry = result["result"]
    assert entry.state is ConfigEntryState.LOADED
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_serial_port(hass: HomeAssistant, socket_enabled: None) -> None:
    """A serial device path (a pseudo-terminal here) works through the serial step."""
    async with Simulator(packs=1, seed=2, tcp=False, pty=True) as simulator:
        assert simulator.pty_path is not None
        result = await _start(hass, "serial")
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], _form(simulator.pty_path)
        )
        assert result["step_id"] == "confirm"
        assert result["description_placeholders"]["packs"] == "1"
        result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
        assert result["type"] is FlowResultType.CREATE_ENTRY
        assert result["data"][CONF_DEVICE] == simulator.pty_path
        await hass.async_block_till_done()
        assert await hass.config_entries.async_unload(result["result"].entry_id)


async def test_direct_poll_mode_scans(hass: HomeAssistant, sim: Simulator) -> None:
    """The direct mode finds packs by scanning addresses (every pack answers for itself)."""
    result = await _start(hass, "network")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _form(sim.url, poll_mode="direct", timeout=0.3)
    )
    assert result["step_id"] == "confirm"
    assert result["description_placeholders"]["packs"] == "3"


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_cannot_connect_then_recover(hass: HomeAssistant, sim: Simulator) -> None:
    """Nothing listens: cannot_connect; the same form then succeeds with the right address."""
    result = await _start(hass, "network")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _form(f"127.0.0.1:{_unused_port()}")
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], _form(sim.url))
    assert result["step_id"] == "confirm"


async def test_no_reply(hass: HomeAssistant, sim: Simulator) -> None:
    """The gateway accepts the connection but no pack answers."""
    sim.set_offline(1)
    result = await _start(hass, "network")
    result = await hass.config_entries.flow.async_configure(result["flow_id"], _form(sim.url))
    assert result["errors"] == {"base": "no_reply"}


async def _ver20(frame: Frame, writer: asyncio.StreamWriter) -> None:
    """A VER 0x20 battery: it rejects VER 0x25 with RTN 01."""
    writer.write(reply(frame, rtn=0x01 if frame.ver == VER_PACE else 0x00))


async def _garbage(frame: Frame, writer: asyncio.StreamWriter) -> None:
    """Answers every request with a payload no PACE command has."""
    writer.write(reply(frame, b"\x01\x02\x03"))


@pytest.mark.parametrize(
    ("script", "error"), [(_ver20, "ver20_unsupported"), (_garbage, "not_pace")]
)
async def test_foreign_devices(
    hass: HomeAssistant, socket_enabled: None, script: Any, error: str
) -> None:
    """A VER 0x20 battery and a device that is no PACE BMS get their own errors."""
    async with FakePeer(script) as peer:
        result = await _start(hass, "network")
        result = await hass.config_entries.flow.async_configure(result["flow_id"], _form(peer.url))
    assert result["errors"] == {"base": error}


async def test_unexpected_error(hass: HomeAssistant, sim: Simulator) -> None:
    """Whatever else goes wrong is shown as unknown (and logged), never a crash."""
    result = await _start(hass, "network")
    with patch(
        "custom_components.syscom_ress.config_flow.probe_stack", side_effect=RuntimeError("boom")
    ):
        result = await hass.config_entries.flow.async_configure(result["flow_id"], _form(sim.url))
    assert result["errors"] == {"base": "unknown"}


@pytest.mark.parametrize("value", ["", "gateway", "host:99999", "http://host:80", "socket://"])
async def test_invalid_url(hass: HomeAssistant, value: str) -> None:
    """An address that is neither host:port nor a supported URL never reaches the bus."""
    result = await _start(hass, "network")
    result = await hass.config_entries.flow.async_configure(result["flow_id"], _form(value))
    assert result["errors"] == {CONF_DEVICE: "invalid_url"}


def test_normalize_url() -> None:
    """host:port gains socket://; URLs keep their scheme (lower-cased); IPv6 works."""
    assert normalize_url(" 10.0.0.5:8899 ") == "socket://10.0.0.5:8899"
    assert normalize_url("[fe80::1]:23") == "socket://[fe80::1]:23"
    assert normalize_url("RFC2217://gw.lan:4001") == "rfc2217://gw.lan:4001"
    assert normalize_url("socket://gw.lan:4001") == "socket://gw.lan:4001"
    assert normalize_url("gw.lan:0") is None


def test_unique_id_fallbacks() -> None:
    """BMS serial first, then the pack serial, then the connection and master address."""
    data = {CONF_DEVICE: "socket://gw:1", CONF_ADVANCED: {CONF_MASTER_ADDRESS: 1}}
    assert stack_unique_id(StackInfo(1, (PackInfo(1, "v", "B1", "P1"),)), data) == "B1"
    assert stack_unique_id(StackInfo(1, (PackInfo(1, "v", "", "P1"),)), data) == "P1"
    assert stack_unique_id(StackInfo(1, (PackInfo(1),)), data) == "socket://gw:1#1"


async def test_already_configured_updates_connection(
    hass: HomeAssistant, sim: Simulator, config_entry: MockConfigEntry
) -> None:
    """The same stack found again aborts, and the entry takes the connection just tested."""
    config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        config_entry, data={**config_entry.data, CONF_DEVICE: "socket://old:1"}
    )
    result = await _start(hass, "network")
    result = await hass.config_entries.flow.async_configure(result["flow_id"], _form(sim.url))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert config_entry.data[CONF_DEVICE] == sim.url


async def test_reconfigure(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """The stack moves to another address: same entry, new connection, reloaded."""
    result = await loaded_entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.MENU
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "network"}
    )
    # The form is filled with the entry's current settings.
    schema = result["data_schema"].schema
    defaults = {str(key): key.default() for key in schema if callable(key.default)}
    assert defaults[CONF_DEVICE] == sim.url
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _form(_host_port(sim.url), timeout=0.5)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert loaded_entry.data[CONF_ADVANCED][CONF_TIMEOUT] == 0.5
    await hass.async_block_till_done()
    assert loaded_entry.state is ConfigEntryState.LOADED


async def test_reconfigure_serial_form_has_no_network_address(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    """Switching a gateway entry to a serial port does not pre-fill the URL as a port."""
    result = await loaded_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "serial"}
    )
    schema = result["data_schema"].schema
    device_key = next(key for key in schema if str(key) == CONF_DEVICE)
    assert not callable(device_key.default)


async def test_reconfigure_other_stack_aborts(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, socket_enabled: None
) -> None:
    """A connection that reaches another stack is refused; the entry keeps its settings."""
    before = dict(loaded_entry.data)
    async with Simulator(packs=1, seed=99) as other:
        result = await loaded_entry.start_reconfigure_flow(hass)
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {"next_step_id": "network"}
        )
        result = await hass.config_entries.flow.async_configure(result["flow_id"], _form(other.url))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_stack"
    assert dict(loaded_entry.data) == before


async def test_options_flow_reloads(hass: HomeAssistant, loaded_entry: MockConfigEntry) -> None:
    """The scan interval is an option; saving it reloads the entry with the new interval."""
    coordinator = loaded_entry.runtime_data
    assert coordinator.update_interval is not None
    assert coordinator.update_interval.total_seconds() == 30
    result = await hass.config_entries.options.async_init(loaded_entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_SCAN_INTERVAL: 10}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert loaded_entry.options == {CONF_SCAN_INTERVAL: 10}
    await hass.async_block_till_done()
    assert loaded_entry.state is ConfigEntryState.LOADED
    new = loaded_entry.runtime_data
    assert new is not coordinator
    assert new.update_interval is not None
    assert new.update_interval.total_seconds() == 10


# -- the stack's name: entry title, device names, entity ids -----------------------------------


async def _add(hass: HomeAssistant, url: str, name: str | None = None) -> Any:
    """Add the stack at ``url`` through the flow, with ``name`` (None: the default)."""
    result = await _start(hass, "network")
    result = await hass.config_entries.flow.async_configure(result["flow_id"], _form(url))
    assert result["step_id"] == "confirm"
    default = next(iter(result["data_schema"].schema)).default()
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {} if name is None else {"name": name}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    return result["result"], default


async def test_two_stacks_are_told_apart(
    hass: HomeAssistant, sim: Simulator, socket_enabled: None
) -> None:
    """Named stacks: their own device names, entity ids without _2, distinct friendly names."""
    async with Simulator(packs=2, seed=7) as other:
        house, default = await _add(hass, sim.url, "House battery")
        assert default == "RESS battery"
        garage, default = await _add(hass, other.url, "  Garage   battery ")
        assert default == "RESS battery"  # the first one took another name
        assert (house.title, garage.title) == ("House battery", "Garage battery")

        devices = dr.async_get(hass)
        names = {
            entry.title: sorted(
                d.name for d in dr.async_entries_for_config_entry(devices, entry.entry_id)
            )
            for entry in (house, garage)
        }
        assert names == {
            "House battery": [
                "House battery",
                "House battery pack 1",
                "House battery pack 2",
                "House battery pack 3",
            ],
            "Garage battery": ["Garage battery", "Garage battery pack 1", "Garage battery pack 2"],
        }
        # Pickers, the energy dashboard and the logbook show these ids and friendly names.
        house_voltage = hass.states.get("sensor.house_battery_pack_2_voltage")
        garage_voltage = hass.states.get("sensor.garage_battery_pack_2_voltage")
        assert house_voltage.name == "House battery pack 2 Voltage"
        assert garage_voltage.name == "Garage battery pack 2 Voltage"
        assert hass.states.get("sensor.house_battery_energy_charged") is not None
        assert hass.states.get("sensor.garage_battery_energy_charged").name == (
            "Garage battery Energy charged"
        )
        # No id needed a "_2" to be unique: each is its friendly name, slugified.
        entities = er.async_get(hass)
        for entry in (house, garage):
            for entity in er.async_entries_for_config_entry(entities, entry.entry_id):
                if (state := hass.states.get(entity.entity_id)) is not None:
                    assert entity.entity_id.split(".", 1)[1] == slugify(state.name)
        for entry in (house, garage):
            assert await hass.config_entries.async_unload(entry.entry_id)


async def test_default_names_of_a_second_and_third_stack(
    hass: HomeAssistant, sim: Simulator, socket_enabled: None
) -> None:
    """Unnamed stacks default to RESS battery, then with the model, then numbered."""
    first, default = await _add(hass, sim.url)
    assert first.title == default == "RESS battery"
    assert hass.states.get("sensor.ress_battery_pack_1_voltage") is not None
    async with Simulator(packs=1, seed=7) as second, Simulator(packs=1, seed=8) as third:
        entry, default = await _add(hass, second.url)
        assert entry.title == default == "RESS battery P16S100A"
        assert hass.states.get("sensor.ress_battery_p16s100a_pack_1_voltage") is not None
        entry, default = await _add(hass, third.url)
        assert entry.title == default == "RESS battery 2"
        for entry in hass.config_entries.async_entries(DOMAIN):
            assert await hass.config_entries.async_unload(entry.entry_id)


async def test_renaming_the_entry_renames_the_devices(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    """The entry's title is the stack's name: renamed, the devices follow; entity ids stay."""
    hass.config_entries.async_update_entry(loaded_entry, title="Cellar battery")
    await hass.async_block_till_done()
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), loaded_entry.entry_id)
    assert sorted(d.name for d in devices) == [
        "Cellar battery",
        "Cellar battery pack 1",
        "Cellar battery pack 2",
        "Cellar battery pack 3",
    ]
    state = hass.states.get("sensor.ress_battery_pack_1_voltage")
    assert state.name == "Cellar battery pack 1 Voltage"


async def test_an_entry_made_before_names_keeps_working(
    hass: HomeAssistant, sim: Simulator
) -> None:
    """Old entries were titled "RESS battery <serial>": that title is their name now."""
    serial = sim.pack(1).bms_serial
    entry = MockConfigEntry(
        domain=DOMAIN, title=f"RESS battery {serial}", unique_id=serial, data=_data(sim.url)
    )
    entry.add_to_hass(hass)
    registry = er.async_get(hass)
    # Its entities were registered under the old device names: their ids do not change.
    registry.async_get_or_create(
        "sensor",
        DOMAIN,
        f"{serial}_pack1_voltage",
        config_entry=entry,
        suggested_object_id="ress_battery_pack_1_voltage",
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    state = hass.states.get("sensor.ress_battery_pack_1_voltage")
    assert state is not None
    assert state.name == f"RESS battery {serial} pack 1 Voltage"


def _data(url: str) -> dict[str, Any]:
    return {
        CONF_DEVICE: url,
        CONF_BAUDRATE: 9600,
        CONF_ADVANCED: {CONF_POLL_MODE: "auto", CONF_MASTER_ADDRESS: 1, CONF_TIMEOUT: TEST_TIMEOUT},
    }


# -- a forgotten flow, a gateway that is no battery --------------------------------------------


async def test_a_forgotten_flow_does_not_lock_out_the_next(
    hass: HomeAssistant, sim: Simulator
) -> None:
    """A flow left open on its confirm step: the owner adds the same stack again at once."""
    forgotten = await _start(hass, "network")
    forgotten = await hass.config_entries.flow.async_configure(forgotten["flow_id"], _form(sim.url))
    assert forgotten["step_id"] == "confirm"  # and the browser tab is closed

    result = await _start(hass, "network")
    result = await hass.config_entries.flow.async_configure(result["flow_id"], _form(sim.url))
    assert result["type"] is FlowResultType.FORM  # not "already being configured"
    assert result["step_id"] == "confirm"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    # The forgotten flow is gone: it cannot create a second entry later.
    in_progress = [f["flow_id"] for f in hass.config_entries.flow.async_progress()]
    assert forgotten["flow_id"] not in in_progress
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1
    assert await hass.config_entries.async_unload(result["result"].entry_id)


async def _web_page(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A gateway's configuration web server: an HTTP error, then the connection closes."""
    await reader.read(64)
    writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    await writer.drain()
    writer.close()


async def _modbus(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A gateway in Modbus RTU mode: binary replies to whatever it gets, connection kept."""
    while await reader.read(256):
        writer.write(b"\x01\x83\x02\xc0\xf1")
        await writer.drain()
    writer.close()


@pytest.mark.parametrize("server", [_web_page, _modbus])
async def test_a_gateway_that_is_no_battery(
    hass: HomeAssistant, socket_enabled: None, server: Any
) -> None:
    """Bytes that are no frame at all: its own message, not "could not connect" or silence."""
    listener = await asyncio.start_server(server, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        result = await _start(hass, "network")
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], _form(f"127.0.0.1:{port}")
        )
    finally:
        listener.close()
        await listener.wait_closed()
    assert result["errors"] == {"base": "not_a_battery"}


# -- the options form tells the truth about poll times -----------------------------------------


def test_poll_times_in_the_options_form_agree_with_the_docs() -> None:
    """The options form, docs/configuration.md and docs/performance.md give the same figures."""
    root = Path(__file__).resolve().parents[2]
    strings = json.loads(
        (root / "custom_components" / DOMAIN / "strings.json").read_text(encoding="utf-8")
    )
    form = strings["options"]["step"]["init"]["data_description"]["scan_interval"]
    docs = " ".join((root / "docs" / "configuration.md").read_text(encoding="utf-8").split())
    measured: dict[tuple[int, str], float] = {}
    for line in (root / "docs" / "performance.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        # | dialect | baud | packs | mode | exchanges | characters | minimum | client | ...
        if len(cells) > 7 and cells[0] == "pace" and cells[7].endswith(" s"):
            measured[int(cells[2]), cells[3]] = float(cells[7].removesuffix(" s"))
    figures = [
        f"{measured[1, 'broadcast']:.1f} s for one pack",
        f"{measured[4, 'broadcast']:.1f} s for 4 packs",
        f"{measured[16, 'broadcast']:.1f} s for 16 packs",
        f"{measured[16, 'relay'] / 16:.1f} s per pack",
    ]
    for figure in figures:
        assert figure in form, figure
        assert figure in docs, figure


def test_a_usb_port_is_stored_by_its_stable_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/dev/ttyUSB0 can be another adapter after a reboot; the by-id name cannot."""
    port, other = tmp_path / "ttyUSB0", tmp_path / "ttyUSB1"
    port.touch()
    other.touch()
    by_id = tmp_path / "by-id"
    monkeypatch.setattr(config_flow, "SERIAL_BY_ID", str(by_id))
    assert serial_by_id(str(port)) == str(port)  # no by-id folder: as given
    by_id.mkdir()
    (by_id / "usb-FTDI_FT232R_A1B2-if00-port0").symlink_to(port)
    assert serial_by_id(str(port)) == str(by_id / "usb-FTDI_FT232R_A1B2-if00-port0")
    assert serial_by_id(str(other)) == str(other)  # no link to it: as given
