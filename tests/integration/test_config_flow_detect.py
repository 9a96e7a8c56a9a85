"""The config flow's "Detect automatically": detection behind the progress step, on the simulator.

The simulator answers over TCP at whatever baud rate a link asks for; a real serial line answers
only at the battery's own. Each test's link factory (passed to ``ress_bms.detect.detect`` in
place of its own) therefore sends the links of the battery's baud rate to the simulator and every
other one to a TCP peer that never answers, so detection starts from cold and has to find the
baud rate as well as the dialect. The documented waits are scaled down (``SCALE``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
import contextlib
import json
import logging
from pathlib import Path
from typing import Any
from unittest.mock import patch

from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.syscom_ress import config_flow
from custom_components.syscom_ress.config_flow import (
    DETECT_BUDGET,
    DETECT_LISTEN,
    detected_data,
    entry_data,
    needs_detection,
)
from custom_components.syscom_ress.const import (
    CONF_ADVANCED,
    CONF_BAUDRATE,
    CONF_DEVICE,
    CONF_DIALECT,
    CONF_MASTER_ADDRESS,
    CONF_POLL_MODE,
    CONF_TIMEOUT,
    DETECT,
    DOMAIN,
)
from custom_components.syscom_ress.ress_bms.client import PackInfo, StackInfo
from custom_components.syscom_ress.ress_bms.detect import BusMasteredError, Detection
from custom_components.syscom_ress.ress_bms.dialects import DIALECTS
from custom_components.syscom_ress.ress_bms.framing import Framing
from custom_components.syscom_ress.ress_bms.link import Link
from custom_components.syscom_ress.ress_bms.simulator import Simulator
from tests.ress_bms.fakepeer import silent_gateway

from .conftest import TEST_TIMEOUT

ROOT = Path(__file__).resolve().parents[2] / "custom_components" / DOMAIN
STRINGS: dict[str, Any] = json.loads((ROOT / "strings.json").read_text(encoding="utf-8"))

DOMAIN_MODULE = f"custom_components.{DOMAIN}"
SCALE = 0.05
"""The documented probe waits times this: 1 s -> 50 ms."""


def _form(url: str, dialect: str = DETECT, baudrate: str = DETECT, **advanced: Any) -> dict:
    """The connection form as an owner leaves it: protocol and baud rate "Detect automatically"."""
    return {
        CONF_DEVICE: url,
        CONF_ADVANCED: {
            CONF_DIALECT: dialect,
            CONF_BAUDRATE: baudrate,
            CONF_POLL_MODE: "auto",
            CONF_MASTER_ADDRESS: 1,
            CONF_TIMEOUT: TEST_TIMEOUT,
            **advanced,
        },
    }


async def _network(hass: HomeAssistant) -> dict[str, Any]:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    return await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "network"}
    )


async def _after_progress(hass: HomeAssistant, result: dict[str, Any]) -> dict[str, Any]:
    """The progress step is shown; once its task is done, what the flow shows next."""
    assert result["type"] is FlowResultType.SHOW_PROGRESS, result
    assert result["step_id"] == "detect"
    assert result["progress_action"] == "detect"
    await hass.async_block_till_done()
    return await hass.config_entries.flow.async_configure(result["flow_id"])


class Calls:
    """What the flow asked detection for, and how each call was routed."""

    def __init__(self) -> None:
        self.kwargs: list[dict[str, Any]] = []
        self.opened: list[tuple[int, str]] = []


@contextlib.contextmanager
def _routed(
    battery: str | None, baudrate: int, silent: str, *, scale: float = SCALE
) -> Iterator[Calls]:
    """Detection in the flow with links at ``baudrate`` to ``battery``, the others to ``silent``."""
    calls = Calls()
    real = config_flow.detect

    def factory(url: str, rate: int, framing: Framing[Any]) -> Link[Any]:
        calls.opened.append((rate, framing.name))
        target = battery if battery is not None and rate == baudrate else silent
        return Link(target, baudrate=rate, framing=framing, retries=0, drain=0.01, late_window=0.01)

    async def detect(url: str, **kwargs: Any) -> Detection:
        calls.kwargs.append(kwargs)
        return await real(url, link_factory=factory, wait_scale=scale, **kwargs)

    with patch.object(config_flow, "detect", detect):
        yield calls


def _assert_no_auto(data: Any) -> None:
    """The entry holds a dialect and a baud rate, never the form's "Detect automatically"."""
    assert data[CONF_DIALECT] in DIALECTS, data
    assert isinstance(data[CONF_BAUDRATE], int), data
    assert DETECT not in {k: v for k, v in data.items() if k != CONF_ADVANCED}.values(), data
    assert DETECT not in {
        data[CONF_ADVANCED].get(CONF_DIALECT),
        data[CONF_ADVANCED].get(CONF_BAUDRATE),
    }


# -- from cold, against the simulator ------------------------------------------------------------


async def test_pace_at_19200_is_detected_and_added(
    hass: HomeAssistant, socket_enabled: None
) -> None:
    """A PACE stack set to 19200 baud: found by detection, shown, stored as pace / 19200."""
    async with Simulator(packs=2, seed=5) as sim, silent_gateway() as silent:
        with _routed(sim.url, 19200, silent) as calls:
            result = await _network(hass)
            schema = result["data_schema"].schema
            advanced = next(key for key in schema if str(key) == CONF_ADVANCED)
            inner = {str(k): k.default() for k in schema[advanced].schema.schema}
            assert inner[CONF_DIALECT] == inner[CONF_BAUDRATE] == DETECT  # the default
            result = await hass.config_entries.flow.async_configure(
                result["flow_id"], _form(sim.url)
            )
            assert result["description_placeholders"] == {"device": sim.url}
            result = await _after_progress(hass, result)
        assert calls.kwargs == [
            {"baudrates": None, "dialects": None, "budget": DETECT_BUDGET, "listen": DETECT_LISTEN}
        ]
        assert (DETECT_BUDGET, DETECT_LISTEN) == (20.0, 1.0)
        # Every step of the documented order up to the one that answered, none after it.
        # Listening at each baud rate first (nothing heard), then every step of the documented
        # order up to the one that answered, none after it.
        assert calls.opened == [
            (9600, "ascii"),
            (19200, "ascii"),
            (115200, "ascii"),
            (9600, "ascii"),
            (9600, "modbus"),
            (19200, "modbus"),
            (19200, "ascii"),
        ]
        assert result["type"] is FlowResultType.FORM, result
        assert result["step_id"] == "confirm"
        serial = sim.pack(1).bms_serial
        assert result["description_placeholders"] == {
            "packs": "2",
            "model": "P16S100A",
            "firmware": "P16S100A-1812-1.00",
            "serial": serial,
            "device": sim.url,
            "protocol": "PACE VER 0x25",
            "baudrate": "19200",
        }
        result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
        assert result["type"] is FlowResultType.CREATE_ENTRY
        assert result["result"].unique_id == serial
        assert result["data"] == {
            CONF_DEVICE: sim.url,
            CONF_DIALECT: "pace",
            CONF_BAUDRATE: 19200,
            CONF_ADVANCED: {
                CONF_POLL_MODE: "auto",
                CONF_MASTER_ADDRESS: 1,
                CONF_TIMEOUT: TEST_TIMEOUT,
            },
        }
        _assert_no_auto(result["data"])
        await hass.async_block_till_done()
        entry = result["result"]
        assert entry.state is ConfigEntryState.LOADED
        assert await hass.config_entries.async_unload(entry.entry_id)


def _stack_of(sim: Simulator) -> StackInfo:
    """What the dialect client's discover() returns for ``sim`` (its master's serial)."""
    pack = sim.pack(1)
    return StackInfo(1, (PackInfo(1, "", pack.bms_serial, pack.pack_serial),))


@pytest.mark.parametrize(
    ("dialect", "baudrate"), [("seplos", 9600), ("seplos_v3", 19200), ("pace_modbus", 9600)]
)
async def test_other_dialects_are_detected_and_stored(
    hass: HomeAssistant, socket_enabled: None, dialect: str, baudrate: int
) -> None:
    """A Seplos V2 (VER 0x20), Seplos V3 and PACE Modbus stack: the dialect and baud rate found
    are what the probe after detection gets and what the entry stores; confirm shows them."""
    async with Simulator(packs=2, seed=6, dialect=dialect) as sim, silent_gateway() as silent:
        probed: list[dict[str, Any]] = []

        async def probe(data: dict[str, Any]) -> StackInfo:
            probed.append(dict(data))
            return _stack_of(sim)

        with _routed(sim.url, baudrate, silent), patch.object(config_flow, "probe_stack", probe):
            result = await _network(hass)
            result = await hass.config_entries.flow.async_configure(
                result["flow_id"], _form(sim.url)
            )
            result = await _after_progress(hass, result)
        assert [(d[CONF_DIALECT], d[CONF_BAUDRATE]) for d in probed] == [(dialect, baudrate)]
        assert result["step_id"] == "confirm"
        placeholders = result["description_placeholders"]
        assert placeholders["protocol"] == DIALECTS[dialect].title
        assert placeholders["baudrate"] == str(baudrate)
        assert placeholders["model"] != "?"  # detection read the model where the stack has none
        with patch(f"{DOMAIN_MODULE}.async_setup_entry", return_value=True):
            result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
            await hass.async_block_till_done()
        assert result["type"] is FlowResultType.CREATE_ENTRY
        assert (result["data"][CONF_DIALECT], result["data"][CONF_BAUDRATE]) == (dialect, baudrate)
        _assert_no_auto(result["data"])


# -- nothing, something else, another master ---------------------------------------------------


async def test_a_silent_bus_ends_in_nothing_answers(
    hass: HomeAssistant, socket_enabled: None, caplog: pytest.LogCaptureFixture
) -> None:
    """No answer anywhere: the form again, with its own error and the owner's input; the debug
    log lists every probe tried."""
    caplog.set_level(logging.DEBUG, logger=DOMAIN_MODULE)
    async with silent_gateway() as silent:
        with _routed(None, 0, silent):
            result = await _network(hass)
            form = _form(silent, poll_mode="relay")
            result = await hass.config_entries.flow.async_configure(result["flow_id"], form)
            result = await _after_progress(hass, result)
        assert result["type"] is FlowResultType.FORM
        assert result["step_id"] == "network"
        assert result["errors"] == {"base": "nothing_answers"}
        schema = result["data_schema"].schema
        device = next(key for key in schema if str(key) == CONF_DEVICE)
        assert device.default() == silent  # the address typed is kept
        advanced = next(key for key in schema if str(key) == CONF_ADVANCED)
        inner = {str(k): k.default() for k in schema[advanced].schema.schema}
        assert inner[CONF_POLL_MODE] == "relay"
        log = caplog.text
        assert "Detection on" in log
        assert "PACE 0x25 C1H to ADR 1: no answer" in log
        assert "Seplos V3 fc 04 0x1700 unit 1: no answer" in log
        # The same form, now filled right, goes on.
        async with Simulator(packs=1, seed=4) as sim:
            with _routed(sim.url, 9600, silent):
                result = await hass.config_entries.flow.async_configure(
                    result["flow_id"], _form(sim.url)
                )
                result = await _after_progress(hass, result)
        assert result["step_id"] == "confirm"
        assert result["errors"] is None


async def test_the_budget_bounds_a_silent_bus(hass: HomeAssistant, socket_enabled: None) -> None:
    """With the documented (unscaled) waits, the budget ends the search: the error comes when it
    is spent, not after every step's probes (here a 0.5 s budget for the flow's 20 s)."""
    async with silent_gateway() as silent:
        with (
            _routed(None, 0, silent, scale=1.0) as calls_,
            patch.object(config_flow, "DETECT_BUDGET", 0.5),
        ):
            result = await _network(hass)
            result = await hass.config_entries.flow.async_configure(
                result["flow_id"], _form(silent)
            )
            result = await _after_progress(hass, result)
    assert result["errors"] == {"base": "nothing_answers"}
    # Spent while listening at the first baud rate: no other rate or framing was ever tried.
    assert calls_.opened == [(9600, "ascii")]


async def _http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A web server on the gateway's port: text to every request, the connection kept."""
    with contextlib.suppress(ConnectionError):
        while await reader.read(256):
            writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
    writer.close()


async def test_something_that_is_no_battery(hass: HomeAssistant, socket_enabled: None) -> None:
    """Bytes come back, but no dialect's reply: unrecognised_device, not nothing_answers."""
    server = await asyncio.start_server(_http, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    url = f"socket://{host}:{port}"
    try:
        with _routed(url, 9600, url):
            result = await _network(hass)
            result = await hass.config_entries.flow.async_configure(result["flow_id"], _form(url))
            result = await _after_progress(hass, result)
    finally:
        server.close()
        await server.wait_closed()
    assert result["errors"] == {"base": "unrecognised_device"}


@contextlib.asynccontextmanager
async def _inverter() -> AsyncIterator[tuple[str, list[bytes]]]:
    """A bus an inverter masters: its 42H request to ADR 1 every 10 ms; what it gets is kept."""
    heard: list[bytes] = []
    tasks: set[asyncio.Task[Any]] = set()

    async def listen(reader: asyncio.StreamReader) -> None:
        while data := await reader.read(4096):
            heard.append(data)

    async def poll(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        listener = asyncio.create_task(listen(reader))
        tasks.add(listener)
        try:
            while not writer.is_closing():
                writer.write(b"~20014642E00201FD35\r")
                await writer.drain()
                await asyncio.sleep(0.01)
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(poll, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    try:
        yield f"socket://{host}:{port}", heard
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


async def test_another_master_on_the_bus(
    hass: HomeAssistant, socket_enabled: None, caplog: pytest.LogCaptureFixture
) -> None:
    """An inverter polls the bus: detection hears it while listening, sends nothing, and the
    form says bus_mastered."""
    caplog.set_level(logging.DEBUG, logger=DOMAIN_MODULE)
    async with _inverter() as (url, heard), silent_gateway() as silent:
        with _routed(url, 9600, silent) as calls:
            result = await _network(hass)
            result = await hass.config_entries.flow.async_configure(
                result["flow_id"], _form(url.removeprefix("socket://"))
            )
            # With the address as it is used.
            assert result["description_placeholders"] == {"device": url}
            result = await _after_progress(hass, result)
    assert result["errors"] == {"base": "bus_mastered"}
    assert calls.opened == [(9600, "ascii")]  # it stopped at the first listening window
    assert heard == []  # not one byte sent
    assert "frames nobody here asked for" in caplog.text


async def test_a_search_that_ends_at_once(hass: HomeAssistant, socket_enabled: None) -> None:
    """Detection that fails before it awaits anything: the progress step is still shown first."""

    async def mastered(url: str, **kwargs: Any) -> Detection:
        raise BusMasteredError("another master polls", ["9600 ascii: listening: 3 frames"])

    with patch.object(config_flow, "detect", mastered):
        result = await _network(hass)
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], _form("10.0.0.9:8899")
        )
        assert result["description_placeholders"] == {"device": "socket://10.0.0.9:8899"}
        result = await _after_progress(hass, result)
    assert result["errors"] == {"base": "bus_mastered"}


async def test_a_failed_probe_after_detection(hass: HomeAssistant, socket_enabled: None) -> None:
    """Detection found a dialect, the probe then failed: the probe's error on the form."""

    async def found(url: str, **kwargs: Any) -> Detection:
        return Detection("pace", 9600, 1)

    async def probe(data: dict[str, Any]) -> StackInfo:
        raise RuntimeError("boom")

    with (
        patch.object(config_flow, "detect", found),
        patch.object(config_flow, "probe_stack", probe),
    ):
        result = await _network(hass)
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], _form("10.0.0.9:8899")
        )
        result = await _after_progress(hass, result)
    assert result["errors"] == {"base": "unknown"}


async def test_closing_the_dialog_stops_detection(
    hass: HomeAssistant, socket_enabled: None
) -> None:
    """The owner closes the dialog while detection runs: its task is cancelled at once."""
    async with silent_gateway() as silent:
        with _routed(None, 0, silent, scale=1.0):
            result = await _network(hass)
            result = await hass.config_entries.flow.async_configure(
                result["flow_id"], _form(silent)
            )
            assert result["type"] is FlowResultType.SHOW_PROGRESS
            flow = hass.config_entries.flow._progress[result["flow_id"]]
            task = flow.async_get_progress_task()
            assert task is not None
            assert not task.done()
            hass.config_entries.flow.async_abort(result["flow_id"])
            await hass.async_block_till_done()
            assert task.cancelled()  # the search stops with the dialog, not at its budget


# -- chosen, not detected ----------------------------------------------------------------------


async def test_an_explicit_choice_skips_detection(hass: HomeAssistant, sim: Simulator) -> None:
    """Protocol and baud rate both chosen: no detection, the confirm step at once."""

    async def never(url: str, **kwargs: Any) -> Detection:
        raise AssertionError("detection ran")

    with patch.object(config_flow, "detect", never):
        result = await _network(hass)
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], _form(sim.url, "pace", "9600")
        )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "confirm"
    assert result["description_placeholders"]["protocol"] == "PACE VER 0x25"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["data"][CONF_DIALECT] == "pace"
    assert result["data"][CONF_BAUDRATE] == 9600
    await hass.async_block_till_done()
    assert await hass.config_entries.async_unload(result["result"].entry_id)


@pytest.mark.parametrize(
    ("dialect", "baudrate", "asked"),
    [
        ("pace", DETECT, {"baudrates": None, "dialects": ("pace",)}),
        (DETECT, "19200", {"baudrates": (19200,), "dialects": None}),
    ],
)
async def test_one_choice_narrows_detection(
    hass: HomeAssistant, socket_enabled: None, dialect: str, baudrate: str, asked: dict
) -> None:
    """The protocol chosen, the baud rate left open (or the other way): detection tries only
    that protocol (or that baud rate)."""
    async with Simulator(packs=1, seed=3) as sim, silent_gateway() as silent:
        with _routed(sim.url, 19200, silent) as calls:
            result = await _network(hass)
            result = await hass.config_entries.flow.async_configure(
                result["flow_id"], _form(sim.url, dialect, baudrate)
            )
            result = await _after_progress(hass, result)
    assert calls.kwargs == [{**asked, "budget": DETECT_BUDGET, "listen": DETECT_LISTEN}]
    assert {rate for rate, _ in calls.opened} <= ({19200} if baudrate != DETECT else {9600, 19200})
    assert result["step_id"] == "confirm"
    assert result["description_placeholders"]["baudrate"] == "19200"


# -- reconfigure, already configured ------------------------------------------------------------


async def test_reconfigure_keeps_the_protocol_of_an_old_entry(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """An entry made before dialects (no "dialect" key) means PACE: the reconfigure form shows
    PACE and its baud rate, no detection runs, and the entry then says pace."""
    assert CONF_DIALECT not in loaded_entry.data
    result = await loaded_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "network"}
    )
    schema = result["data_schema"].schema
    advanced = next(key for key in schema if str(key) == CONF_ADVANCED)
    inner = {str(k): k.default() for k in schema[advanced].schema.schema}
    assert (inner[CONF_DIALECT], inner[CONF_BAUDRATE]) == ("pace", "9600")

    async def never(url: str, **kwargs: Any) -> Detection:
        raise AssertionError("detection ran")

    with patch.object(config_flow, "detect", never):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], _form(sim.url, "pace", "9600")
        )
    assert result["reason"] == "reconfigure_successful"
    assert loaded_entry.data[CONF_DIALECT] == "pace"
    await hass.async_block_till_done()
    assert loaded_entry.state is ConfigEntryState.LOADED


async def test_reconfigure_with_detection(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """Reconfigure with "Detect automatically": the same stack found, the entry updated."""
    async with silent_gateway() as silent:
        with _routed(sim.url, 19200, silent):
            result = await loaded_entry.start_reconfigure_flow(hass)
            result = await hass.config_entries.flow.async_configure(
                result["flow_id"], {"next_step_id": "network"}
            )
            result = await hass.config_entries.flow.async_configure(
                result["flow_id"], _form(sim.url)
            )
            result = await _after_progress(hass, result)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert (loaded_entry.data[CONF_DIALECT], loaded_entry.data[CONF_BAUDRATE]) == ("pace", 19200)
    _assert_no_auto(loaded_entry.data)
    await hass.async_block_till_done()
    assert loaded_entry.state is ConfigEntryState.LOADED


async def test_reconfigure_detection_finds_another_stack(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, socket_enabled: None
) -> None:
    """Detection reaches another stack: wrong_stack, the entry keeps its settings."""
    before = dict(loaded_entry.data)
    async with Simulator(packs=1, seed=99) as other, silent_gateway() as silent:
        with _routed(other.url, 9600, silent):
            result = await loaded_entry.start_reconfigure_flow(hass)
            result = await hass.config_entries.flow.async_configure(
                result["flow_id"], {"next_step_id": "network"}
            )
            result = await hass.config_entries.flow.async_configure(
                result["flow_id"], _form(other.url)
            )
            result = await _after_progress(hass, result)
    assert result["reason"] == "wrong_stack"
    assert dict(loaded_entry.data) == before


async def test_detected_stack_already_configured(
    hass: HomeAssistant, sim: Simulator, config_entry: MockConfigEntry
) -> None:
    """The same stack detected again: already_configured, the entry takes what was found."""
    config_entry.add_to_hass(hass)
    async with silent_gateway() as silent:
        with (
            _routed(sim.url, 19200, silent),
            patch(f"{DOMAIN_MODULE}.async_setup_entry", return_value=True),
        ):
            result = await _network(hass)
            result = await hass.config_entries.flow.async_configure(
                result["flow_id"], _form(sim.url)
            )
            result = await _after_progress(hass, result)
            await hass.async_block_till_done()
    assert result["reason"] == "already_configured"
    assert (config_entry.data[CONF_DIALECT], config_entry.data[CONF_BAUDRATE]) == ("pace", 19200)
    _assert_no_auto(config_entry.data)


# -- the pieces ---------------------------------------------------------------------------------


def test_entry_data_of_the_form() -> None:
    """The form's choices in entry data; detection's result replaces the open ones."""
    data = entry_data(_form("socket://gw:1"), "socket://gw:1")
    assert (data[CONF_DIALECT], data[CONF_BAUDRATE]) == (DETECT, DETECT)
    assert needs_detection(data)
    assert needs_detection({**data, CONF_DIALECT: "pace"})
    assert needs_detection({**data, CONF_BAUDRATE: 9600})
    found = detected_data(data, Detection("seplos", 19200, 0))
    assert (found[CONF_DIALECT], found[CONF_BAUDRATE]) == ("seplos", 19200)
    assert not needs_detection(found)
    _assert_no_auto(found)
    chosen = entry_data(_form("socket://gw:1", "pylontech", "115200"), "socket://gw:1")
    assert (chosen[CONF_DIALECT], chosen[CONF_BAUDRATE]) == ("pylontech", 115200)
    assert not needs_detection(chosen)


def test_protocol_and_baud_rate_labels() -> None:
    """Every dialect is offered with its title; "Detect automatically" first; every rate any
    dialect uses is offered; the errors and the progress text exist."""
    selector = STRINGS["selector"]
    assert selector["dialect"]["options"] == {
        DETECT: "Detect automatically",
        **{name: info.title for name, info in DIALECTS.items()},
    }
    rates = {str(rate) for info in DIALECTS.values() for rate in info.baudrates}
    assert set(selector["baudrate"]["options"]) == {DETECT, *rates}
    assert set(config_flow.BAUDRATE_CHOICES) == {int(rate) for rate in rates}
    config = STRINGS["config"]
    for key in ("nothing_answers", "unrecognised_device", "bus_mastered"):
        assert key in config["error"]
    assert "{device}" in config["progress"]["detect"]
    for placeholder in ("{protocol}", "{baudrate}", "{model}", "{serial}", "{packs}"):
        assert placeholder in config["step"]["confirm"]["description"]


# -- end to end, another dialect -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("dialect", "baudrate"),
    [
        ("seplos", 9600),
        ("pylontech", 9600),
        ("eg4", 9600),
        ("pace_modbus", 9600),
        ("seplos_v3", 19200),
    ],
)
async def test_a_non_pace_stack_set_up_end_to_end(
    hass: HomeAssistant, socket_enabled: None, dialect: str, baudrate: int
) -> None:
    """Every dialect with a reader, from cold: detection finds it, the dialect's client
    discovers its packs, the entry is created in that dialect and loads; its packs read the
    simulator's values."""
    async with Simulator(packs=2, seed=8, dialect=dialect) as sim, silent_gateway() as silent:
        with _routed(sim.url, baudrate, silent):
            result = await _network(hass)
            result = await hass.config_entries.flow.async_configure(
                result["flow_id"], _form(sim.url)
            )
            result = await _after_progress(hass, result)
        assert result["type"] is FlowResultType.FORM, result
        assert result["step_id"] == "confirm"
        placeholders = result["description_placeholders"]
        assert placeholders["protocol"] == DIALECTS[dialect].title
        assert placeholders["baudrate"] == str(baudrate)
        assert placeholders["packs"] == "2"
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {"name": "Shed battery"}
        )
        assert result["type"] is FlowResultType.CREATE_ENTRY
        entry = result["result"]
        assert (entry.data[CONF_DIALECT], entry.data[CONF_BAUDRATE]) == (dialect, baudrate)
        _assert_no_auto(entry.data)
        await hass.async_block_till_done()
        assert entry.state is ConfigEntryState.LOADED
        soc = hass.states.get("sensor.shed_battery_pack_2_state_of_charge")
        assert soc is not None, sorted(hass.states.async_entity_ids("sensor"))[:20]
        assert float(soc.state) == pytest.approx(sim.pack(2).analog().soc, abs=1)
        assert await hass.config_entries.async_unload(entry.entry_id)


async def test_serial_port_with_detection(hass: HomeAssistant, socket_enabled: None) -> None:
    """The serial step detects too (a pseudo-terminal here, answering at 9600)."""
    async with (
        Simulator(packs=1, seed=2, tcp=False, pty=True) as sim,
        silent_gateway() as silent,
    ):
        assert sim.pty_path is not None
        with _routed(sim.pty_path, 9600, silent):
            result = await hass.config_entries.flow.async_init(
                DOMAIN, context={"source": SOURCE_USER}
            )
            result = await hass.config_entries.flow.async_configure(
                result["flow_id"], {"next_step_id": "serial"}
            )
            result = await hass.config_entries.flow.async_configure(
                result["flow_id"], _form(sim.pty_path)
            )
            result = await _after_progress(hass, result)
        assert result["step_id"] == "confirm"
        assert result["description_placeholders"]["protocol"] == "PACE VER 0x25"
        assert result["description_placeholders"]["baudrate"] == "9600"
        with patch(f"{DOMAIN_MODULE}.async_setup_entry", return_value=True):
            result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
            await hass.async_block_till_done()
        assert result["data"][CONF_DEVICE] == sim.pty_path
        assert (result["data"][CONF_DIALECT], result["data"][CONF_BAUDRATE]) == ("pace", 9600)
