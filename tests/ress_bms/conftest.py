"""The ``simulator`` fixture: a simulated stack on 127.0.0.1, for every test that needs a battery.

    async def test_something(simulator: Simulator) -> None:           # 3 packs, defaults
        async with Link(simulator.url) as link: ...

    @pytest.mark.simulator(packs=1, firmware="easun-p9")              # per-test options
    async def test_other(simulator: Simulator) -> None: ...

A module can also override the ``simulator_options`` fixture. Time stands still unless the test
calls ``simulator.advance(seconds)``; the line runs at full speed (``baud=0``).
``simulator_bus`` is a bare TCP client for wire-level assertions.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import contextlib
from typing import Any

import pytest

from ress_bms.commands import encode_request
from ress_bms.frame import Frame, decode_frame
from ress_bms.simulator import Simulator

DEFAULT_OPTIONS: dict[str, Any] = {"packs": 3, "seed": 1}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "simulator(**options): options of the simulator fixture")


def allow_loopback(request: pytest.FixtureRequest) -> None:
    """Under the Home Assistant plugin sockets are off until a test asks for them."""
    with contextlib.suppress(pytest.FixtureLookupError):
        request.getfixturevalue("socket_enabled")


@pytest.fixture
def simulator_options() -> dict[str, Any]:
    """Keyword arguments of :class:`Simulator`; override in a module to change every test."""
    return {}


@pytest.fixture
async def simulator(
    request: pytest.FixtureRequest, simulator_options: dict[str, Any]
) -> AsyncIterator[Simulator]:
    """A started simulator (3 packs, seed 1, stepped time, full-speed line) on 127.0.0.1."""
    allow_loopback(request)
    marker = request.node.get_closest_marker("simulator")
    options = {**DEFAULT_OPTIONS, **simulator_options, **(marker.kwargs if marker else {})}
    async with Simulator(**options) as sim:
        yield sim


class Bus:
    """A bare TCP client: raw bytes in and out, for assertions about the wire itself."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, sim: Simulator) -> Bus:
        reader, writer = await asyncio.open_connection(sim.host, sim.port)
        return cls(reader, writer)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()

    async def send(self, raw: bytes) -> None:
        self.writer.write(raw)
        await self.writer.drain()

    async def read_frame(self, timeout: float = 0.5) -> bytes | None:
        """Bytes up to and including the next CR, or None when nothing complete arrives."""
        try:
            async with asyncio.timeout(timeout):
                return await self.reader.readuntil(b"\r")
        except TimeoutError:
            return None
        except asyncio.IncompleteReadError as err:
            return err.partial or None

    async def read(self, timeout: float = 0.2) -> bytes:
        """Everything that arrives within ``timeout`` (b"" on EOF)."""
        data = b""
        try:
            async with asyncio.timeout(timeout):
                while chunk := await self.reader.read(4096):
                    data += chunk
        except TimeoutError:
            pass
        return data

    async def ask_raw(self, raw: bytes, timeout: float = 0.5) -> bytes | None:
        await self.send(raw)
        return await self.read_frame(timeout)

    async def ask(
        self, command: int, adr: int = 1, info: bytes = b"", timeout: float = 0.5
    ) -> Frame | None:
        """Send an allowed command, decode the reply with the library's frame codec."""
        raw = await self.ask_raw(encode_request(command, adr, info), timeout)
        return None if raw is None else decode_frame(raw)


@pytest.fixture
async def simulator_bus(simulator: Simulator) -> AsyncIterator[Bus]:
    """A raw TCP connection to ``simulator``."""
    bus = await Bus.connect(simulator)
    yield bus
    await bus.close()
