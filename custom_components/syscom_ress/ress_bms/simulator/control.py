"""The JSON-lines control socket: change faults and battery state of a running simulator.

One JSON object per line in, one per line out (``{"ok": true, ...}`` or
``{"ok": false, "error": "..."}``). The commands are the table :data:`COMMANDS`; docs/simulator.md
lists them with examples. Every command is a thin call into the Python API of
:class:`~.server.Simulator`, so tests in-process and tools over the socket do the same thing.

:func:`request_from_words` and :func:`send` are the client side (``ress-bms control``):
``raise pack=2 protection=cell_over_voltage`` is ``{"cmd": "raise", "pack": 2, ...}``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import contextlib
from dataclasses import asdict
import json
from typing import TYPE_CHECKING, Any, Final

from ..params import PARAMETERS_BY_KEY
from .physics import LOAD_PROFILES

if TYPE_CHECKING:
    from .pack import Pack
    from .server import Simulator

type Request = dict[str, Any]
type Result = dict[str, Any]


def _pack(sim: Simulator, request: Request) -> Pack:
    return sim.pack(int(request.get("pack", 1)))


def pack_state(pack: Pack) -> Result:
    """A JSON-friendly summary of one pack."""
    p, bms = pack.physics, pack.bms
    return {
        "pack": pack.address,
        "online": pack.online,
        "shutdown": bms.shutdown,
        "soc": round(p.soc, 2),
        "current": round(p.current, 2),
        "voltage": round(p.voltage, 3),
        "cells": [round(v, 3) for v in p.cell_voltages],
        "temperatures": [round(t, 1) for t in p.temperatures],
        "charge_mos": bms.charge_mos,
        "discharge_mos": bms.discharge_mos,
        "protections": list(bms.protections),
        "alarms": list(bms.alarms),
        "balancing": list(bms.balancing),
        "history": len(bms.history),
    }


def _state(sim: Simulator, request: Request) -> Result:
    packs = [_pack(sim, request)] if "pack" in request else sim.stack.packs
    return {"time": sim.stack.now().isoformat(), "elapsed": round(sim.stack.elapsed, 3),
            "profile": sim.stack.profile_name, "packs": [pack_state(p) for p in packs]}  # fmt: skip


def _faults(sim: Simulator, request: Request) -> Result:
    sim.faults.set(**{k: v for k, v in request.items() if k != "cmd"})
    return {"faults": asdict(sim.faults.settings)}


def _once(sim: Simulator, request: Request) -> Result:
    sim.faults.once(str(request["fault"]), int(request.get("count", 1)))
    return {"queued": list(sim.faults.queue)}


def _clear_faults(sim: Simulator, _request: Request) -> Result:
    sim.faults.clear()
    return {}


def _offline(sim: Simulator, request: Request) -> Result:
    sim.set_offline(int(request["pack"]), bool(request.get("offline", True)))
    return {}


def _raise(sim: Simulator, request: Request) -> Result:
    cell, sensor = request.get("cell"), request.get("sensor")
    key = sim.raise_protection(
        int(request["pack"]),
        str(request["protection"]),
        cell=None if cell is None else int(cell),
        sensor=None if sensor is None else int(sensor),
    )
    return {"raised": key}


def _clear(sim: Simulator, request: Request) -> Result:
    name = request.get("protection")
    sim.clear_protection(int(request["pack"]), None if name is None else str(name))
    return {}


def _wake(sim: Simulator, request: Request) -> Result:
    sim.wake(int(request["pack"]))
    return {}


def _disconnect(sim: Simulator, _request: Request) -> Result:
    return {"disconnected": sim.disconnect_clients()}


def _set(sim: Simulator, request: Request) -> Result:
    pack = _pack(sim, request)
    if "current" in request:
        pack.demand = None if request["current"] is None else float(request["current"])
    if "soc" in request:
        pack.physics.soc = float(request["soc"])
    if "ambient" in request:
        pack.physics.ambient = float(request["ambient"])
    if "temperatures" in request:
        pack.physics.forced_temperatures = {
            int(i): float(t) for i, t in dict(request["temperatures"] or {}).items()
        }
    return pack_state(pack)


def _parameter(sim: Simulator, request: Request) -> Result:
    key = str(request["key"])
    if key not in PARAMETERS_BY_KEY:
        raise KeyError(f"unknown parameter {key!r}")
    settings = _pack(sim, request).bms.settings
    if "value" in request:
        settings.set(key, float(request["value"]))
    return {"key": key, "value": settings.values[key]}


def _advance(sim: Simulator, request: Request) -> Result:
    sim.advance(float(request["seconds"]))
    return {"elapsed": round(sim.stack.elapsed, 3)}


def _profile(sim: Simulator, request: Request) -> Result:
    name = str(request["name"])
    if name not in LOAD_PROFILES:
        raise KeyError(f"unknown profile {name!r}; known: {', '.join(LOAD_PROFILES)}")
    sim.stack.set_profile(name)
    return {"profile": name}


COMMANDS: Final[dict[str, Callable[[Simulator, Request], Result]]] = {
    "state": _state,
    "faults": _faults,
    "once": _once,
    "clear_faults": _clear_faults,
    "offline": _offline,
    "raise": _raise,
    "clear": _clear,
    "wake": _wake,
    "disconnect": _disconnect,
    "set": _set,
    "parameter": _parameter,
    "advance": _advance,
    "profile": _profile,
}


def execute(sim: Simulator, request: Request) -> Result:
    """Run one control command; errors come back as ``{"ok": false, "error": ...}``."""
    try:
        command = COMMANDS[str(request.get("cmd"))]
    except KeyError:
        return {"ok": False, "error": f"unknown cmd {request.get('cmd')!r}; known: "
                + ", ".join(COMMANDS)}  # fmt: skip
    try:
        return {"ok": True, **command(sim, request)}
    except KeyError as err:  # str() of a KeyError is its argument's repr: quoted
        return {"ok": False, "error": str(err.args[0]) if err.args else "unknown key"}
    except (ValueError, TypeError) as err:
        return {"ok": False, "error": str(err)}


def request_from_words(words: list[str]) -> Request:
    """A request from the command line: ``CMD [KEY=VALUE ...]``, or one JSON object.

    Values are JSON where they parse as JSON (``2``, ``true``, ``null``, ``{"4": 95}``), text
    otherwise (``protection=cell_over_voltage``).
    """
    if len(words) == 1 and words[0].lstrip().startswith("{"):
        given: object = json.loads(words[0])
        if not isinstance(given, dict):
            raise ValueError("send one JSON object")
        return {str(key): value for key, value in given.items()}
    if not words or "=" in words[0]:
        raise ValueError(f"name a command first: {', '.join(COMMANDS)}")
    request: Request = {"cmd": words[0]}
    for word in words[1:]:
        key, sep, text = word.partition("=")
        if not sep or not key:
            raise ValueError(f"{word!r} is not KEY=VALUE")
        try:
            request[key] = json.loads(text)
        except json.JSONDecodeError:
            request[key] = text
    return request


async def send(host: str, port: int, request: Request, timeout: float = 5.0) -> Result:
    """Send one request to a simulator's control socket and return its answer."""
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(json.dumps(request).encode() + b"\n")
            await writer.drain()
            line = await reader.readline()
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    if not line:
        raise ConnectionError(f"{host}:{port} closed the connection without an answer")
    answer: object = json.loads(line)
    if not isinstance(answer, dict):
        raise ValueError(f"{host}:{port} answered {answer!r}, not a JSON object")
    return {str(key): value for key, value in answer.items()}


async def finish(tasks: set[asyncio.Task[Any]], grace: float = 0.5) -> None:
    """Let tasks whose connections were aborted end by themselves, then cancel the rest."""
    pending = list(tasks)
    if pending:
        _done, late = await asyncio.wait(pending, timeout=grace)
        for task in late:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


class ControlServer:
    """A TCP listener on the loopback speaking JSON lines."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self, host: str, port: int) -> None:
        """Listen on ``host:port`` (0 picks a free port, read it from :attr:`port`)."""
        self._server = await asyncio.start_server(self._on_client, host, port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close the listener and every connection."""
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await finish(self._tasks)
        await self._server.wait_closed()
        self._server = None

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._writers.add(writer)
        try:
            while line := await reader.readline():
                try:
                    request = json.loads(line)
                except json.JSONDecodeError as err:
                    result: Result = {"ok": False, "error": f"not JSON: {err}"}
                else:
                    if isinstance(request, dict):
                        result = execute(self.sim, request)
                    else:
                        result = {"ok": False, "error": "send one JSON object per line"}
                writer.write(json.dumps(result).encode() + b"\n")
                await writer.drain()
        except OSError:
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
