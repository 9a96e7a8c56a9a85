"""The simulator: a stack behind a TCP gateway and/or a pseudo-terminal, with faults and timing.

    async with Simulator(packs=3, seed=1) as sim:
        client = connect(sim.url)          # "socket://127.0.0.1:PORT"
        sim.advance(60)                    # one simulated minute, deterministically
        sim.stack.packs[0].physics.soc     # state of pack 1
        sim.faults.once("drop")            # the next reply is lost

Simulated time moves only through :meth:`Simulator.advance` unless ``speed`` is positive, in
which case a background task advances it by ``speed`` x the wall-clock time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
import contextlib
from datetime import datetime
from typing import Any, Final, Self

from ..frame import EOI
from .control import ControlServer, finish
from .dialects import DEFAULT_DIALECT, Responder, responder
from .faults import Faults, FaultSettings
from .firmware import DEFAULT_PROFILE, FirmwareProfile
from .line import Line, Port, PtyPort, TcpPort, sleep_until
from .pack import Pack
from .stack import DEFAULT_START, Stack

TICK: Final = 0.25
"""Wall-clock seconds between physics updates when ``speed`` is positive."""


class Simulator:
    """A simulated Syscom RESS stack on a TCP port (and optionally a pseudo-terminal)."""

    def __init__(
        self,
        packs: int = 1,
        *,
        cells: int = 16,
        firmware: str | FirmwareProfile = DEFAULT_PROFILE,
        profile: str = "idle",
        seed: int = 0,
        soc: float = 50.0,
        ambient: float = 25.0,
        start: datetime = DEFAULT_START,
        step: float = 0.1,
        speed: float = 0.0,
        baud: int = 0,
        turnaround_ms: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        tcp: bool = True,
        pty: bool = False,
        control_port: int | None = None,
        faults: FaultSettings | None = None,
        dialect: str = DEFAULT_DIALECT,
    ) -> None:
        self.responder: Responder = responder(dialect)
        """What the stack speaks: ``dialect`` (a :data:`.dialects.RESPONDERS` name)."""
        if packs > self.responder.max_packs:
            raise ValueError(
                f"{dialect} addresses at most {self.responder.max_packs} packs, not {packs}"
            )
        self.stack = Stack(
            packs, cells=cells, firmware=firmware, profile=profile, seed=seed, soc=soc,
            ambient=ambient, start=start, step=step,
        )  # fmt: skip
        self.faults = Faults(seed, faults)
        self.line = Line(baud, turnaround_ms / 1000)
        self.speed = speed
        self.host = host
        self.port = port
        """The TCP port (the real one once started, when 0 was asked for)."""
        self._tcp = tcp
        self._want_pty = pty
        self._control_port = control_port
        self.control: ControlServer | None = None
        self.pty: PtyPort | None = None
        self._server: asyncio.Server | None = None
        self._ports: set[Port] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._handlers: set[asyncio.Task[Any]] = set()
        """Tasks of the TCP connections (asyncio's own): they end when their port is aborted."""

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> Self:
        """Open the TCP port, the pseudo-terminal and the control socket as configured."""
        if self._tcp:
            self._server = await asyncio.start_server(self._on_client, self.host, self.port)
            self.port = self._server.sockets[0].getsockname()[1]
        if self._want_pty:
            self.pty = PtyPort()
            self._spawn(self._serve(self.pty))
        if self._control_port is not None:
            self.control = ControlServer(self)
            await self.control.start(self.host, self._control_port)
        if self.speed > 0:
            self._spawn(self._tick())
        return self

    async def stop(self) -> None:
        """Close every port and task; the simulator leaves nothing running."""
        if self._server is not None:
            self._server.close()
        for port in list(self._ports):
            port.abort()
        if self.pty is not None:
            self.pty.close()
        if self.control is not None:
            await self.control.stop()
        for task in list(self._tasks):
            task.cancel()  # ticker, pseudo-terminal and late replies: nothing to wait for
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await finish(self._handlers)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        """Where a client connects: ``socket://127.0.0.1:PORT``."""
        return f"socket://{self.host}:{self.port}"

    @property
    def pty_path(self) -> str | None:
        """The pseudo-terminal's device path (``pty=True``), e.g. ``/dev/pts/3``."""
        return self.pty.path if self.pty is not None else None

    @property
    def control_url(self) -> str | None:
        """``tcp://127.0.0.1:PORT`` of the JSON-lines control socket, when enabled."""
        if self.control is None:
            return None
        return f"tcp://{self.host}:{self.control.port}"

    # ------------------------------------------------------------------ test controls

    def advance(self, seconds: float) -> None:
        """Step physics and the BMS of every pack by ``seconds`` of simulated time."""
        self.stack.advance(seconds)

    @property
    def dialect(self) -> str:
        """The dialect the stack speaks."""
        return self.responder.name

    def bus_address(self, address: int) -> int:
        """The ADR or Modbus unit pack ``address`` (1..N) answers at in :attr:`dialect`."""
        return self.responder.bus_address(address)

    def pack(self, address: int) -> Pack:
        """The pack at a DIP address (1 = master)."""
        return self.stack.pack(address)

    def raise_protection(
        self, address: int, name: str, *, cell: int | None = None, sensor: int | None = None
    ) -> str:
        """Hold a protection (or alarm/fault bit) on a pack until cleared; returns its key.

        A cell or temperature bit also flags its cell or sensor in the 44H codes: ``cell`` /
        ``sensor`` (1-based) choose which, else the one that fits (:meth:`.bms.Bms.raise_bit`).
        """
        return self.pack(address).bms.raise_bit(name, cell=cell, sensor=sensor)

    def clear_protection(self, address: int, name: str | None = None) -> None:
        """Release a held or latched protection (every one when ``name`` is None)."""
        self.pack(address).bms.clear_bit(name)

    def speak(self, dialect: str) -> None:
        """Answer in ``dialect`` from now on, as after a firmware update or a protocol switch.

        Connections opened before keep cutting frames as before; a new one cuts the new way.
        """
        self.responder = responder(dialect)

    def set_offline(self, address: int, offline: bool = True) -> None:
        """Make a pack unreachable: silent when addressed, zero-filled in the master's replies."""
        self.pack(address).online = not offline

    def wake(self, address: int) -> None:
        """Wake a pack from forced shutdown (9CH), as its key or a charger would."""
        self.pack(address).wake()

    def disconnect_clients(self) -> int:
        """Drop every TCP client now; returns how many were connected."""
        ports = [p for p in self._ports if isinstance(p, TcpPort) and not p.closed]
        for port in ports:
            port.abort()
        return len(ports)

    # ------------------------------------------------------------------ serving

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        port = TcpPort(reader, writer)
        try:
            await self._serve(port)
        finally:
            port.abort()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, port: Port) -> None:
        """Answer frames from one port until it closes."""
        self._ports.add(port)
        extractor = self.responder.extractor()
        ascii_line = self.responder.framing == "ascii"
        loop = asyncio.get_running_loop()
        try:
            while True:
                data = await port.read()
                if not data or not port.is_open():
                    return
                received = loop.time()
                for segment in _segments(data) if ascii_line else [data]:
                    arrived = self.line.arrival(len(segment), received)
                    for raw in extractor.feed(segment):
                        await self._exchange(port, raw, arrived)
                        if not port.is_open():
                            return
        finally:
            self._ports.discard(port)

    async def _exchange(self, port: Port, raw: bytes, arrived: float) -> None:
        await sleep_until(arrived)
        self.line.traffic.requests += 1
        reply = self.responder.respond(self.stack, raw)
        if reply is None:
            return
        delivery = self.faults.apply(reply, modbus=self.responder.framing == "modbus")
        await sleep_until(arrived + self.line.turnaround)
        if delivery.disconnect:
            port.abort()
            return
        if delivery.data:
            self.line.traffic.replies += 1
            await self.line.transmit(port, delivery.data)
        if delivery.late:
            self._spawn(self._late(port, delivery.late, delivery.delay))

    async def _late(self, port: Port, data: bytes, delay: float) -> None:
        await asyncio.sleep(delay)
        if port.is_open():
            await self.line.transmit(port, data)

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(TICK)
            now = loop.time()
            self.stack.advance((now - last) * self.speed)
            last = now


def _segments(data: bytes) -> list[bytes]:
    """Split received bytes after each CR, so each frame gets its own arrival time."""
    parts = data.split(bytes((EOI,)))
    segments = [part + b"\r" for part in parts[:-1]]
    if parts[-1]:
        segments.append(parts[-1])
    return segments
