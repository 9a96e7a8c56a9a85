"""The simulator's control socket (``ress-bms control``): requests from the command line,
commands that refuse what does not exist, and a socket that answers every line, even one that
is not a request.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from ress_bms.simulator import Simulator
from ress_bms.simulator.control import execute, request_from_words, send
from ress_bms.simulator.physics import LOAD_PROFILES

pytestmark = pytest.mark.usefixtures("socket_enabled")


def test_words_become_a_request_with_json_values() -> None:
    assert request_from_words(["set", "pack=2", "current=null", "soc=55.5", "note=hot"]) == {
        "cmd": "set",
        "pack": 2,
        "current": None,
        "soc": 55.5,
        "note": "hot",
    }
    assert request_from_words(['{"cmd": "wake", "pack": 3}']) == {"cmd": "wake", "pack": 3}


@pytest.mark.parametrize(
    ("words", "message"),
    [
        ([], "name a command first: state, "),
        (["pack=2"], "name a command first"),
        (["raise", "pack"], "'pack' is not KEY=VALUE"),
        (["raise", "=2"], "'=2' is not KEY=VALUE"),
    ],
)
def test_words_that_are_no_request_are_refused(words: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        request_from_words(words)


async def test_set_parameter_and_profile_change_the_pack_or_say_why_not() -> None:
    async with Simulator(2) as sim:
        state = execute(sim, {"cmd": "set", "pack": 2, "current": -20, "ambient": 35.0,
                              "temperatures": {"1": 60}})  # fmt: skip
        assert state["ok"] and state["pack"] == 2
        pack = sim.pack(2)
        assert (pack.demand, pack.physics.ambient) == (-20.0, 35.0)
        assert pack.physics.forced_temperatures == {1: 60.0}
        execute(sim, {"cmd": "set", "pack": 2, "current": None, "temperatures": None})
        assert pack.demand is None and pack.physics.forced_temperatures == {}

        written = execute(sim, {"cmd": "parameter", "pack": 1, "key": "cell_over_voltage_alarm",
                                "value": 3.55})  # fmt: skip
        assert written == {"ok": True, "key": "cell_over_voltage_alarm", "value": 3.55}
        read = execute(sim, {"cmd": "parameter", "key": "cell_over_voltage_alarm"})
        assert read["value"] == 3.55
        unknown = execute(sim, {"cmd": "parameter", "key": "turbo"})
        assert not unknown["ok"] and unknown["error"].startswith("unknown parameter 'turbo")

        name = next(iter(LOAD_PROFILES))
        assert execute(sim, {"cmd": "profile", "name": name}) == {"ok": True, "profile": name}
        refused = execute(sim, {"cmd": "profile", "name": "eclipse"})
        assert not refused["ok"]
        assert refused["error"].startswith("unknown profile 'eclipse'; known: ")
        assert name in refused["error"]


async def test_an_unknown_parameter_is_named_whole() -> None:
    async with Simulator(1) as sim:
        unknown = execute(sim, {"cmd": "parameter", "key": "turbo"})
    assert unknown == {"ok": False, "error": "unknown parameter 'turbo'"}


async def test_the_socket_answers_a_line_that_is_no_request() -> None:
    async with Simulator(1, control_port=0) as sim:
        assert sim.control is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.control.port)
        try:
            answers = []
            for line in (b"state please\n", b"[1, 2]\n", b'{"cmd": "advance", "seconds": 2}\n'):
                writer.write(line)
                await writer.drain()
                answers.append(json.loads(await reader.readline()))
        finally:
            writer.close()
            await writer.wait_closed()
    assert answers[0]["ok"] is False and answers[0]["error"].startswith("not JSON: ")
    assert answers[1] == {"ok": False, "error": "send one JSON object per line"}
    assert answers[2] == {"ok": True, "elapsed": 2.0}


@pytest.mark.parametrize(
    ("reply", "error", "message"),
    [
        (b"", ConnectionError, "closed the connection without an answer"),
        (b"[true]\n", ValueError, r"answered \[True\], not a JSON object"),
    ],
)
async def test_send_refuses_a_peer_that_is_no_simulator(
    reply: bytes, error: type[Exception], message: str
) -> None:
    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.write(reply)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(peer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(error, match=message):
            await send("127.0.0.1", port, {"cmd": "state"}, timeout=5.0)
    finally:
        server.close()
        await server.wait_closed()
