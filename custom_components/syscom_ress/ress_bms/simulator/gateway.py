"""A hostile RS485-to-TCP gateway: sits between a client and a PACE TCP port and breaks things.

    async with Simulator(packs=3) as sim, Gateway(sim.host, sim.port, packs=3) as gateway:
        link = Link(gateway.url)               # the client talks to the gateway
        gateway.set(corrupt=0.1, late=0.2)     # probabilities per reply
        gateway.set(foreign=0.3)               # per 42H/44H request: another master's exchange
        gateway.once("late")                   # the next reply, whatever the probabilities
        gateway.half_open = True               # swallow every byte, both ways; keep connections
        gateway.reset()                        # close every connection now
        gateway.injected                       # Counter of what was really done

Each client connection gets its own upstream connection. Replies are streamed through as they
arrive (a long broadcast reply keeps trickling in at the line rate, as from a real gateway)
unless a fault needs the whole frame. Each reply gets at most one fault, from the queue of
:meth:`Gateway.once` first, else rolled in the order of :data:`REPLY_FAULTS` from a generator
seeded by ``seed``:

* ``corrupt``: the reply's CHKSUM is wrong;
* ``truncate``: the reply loses its tail, the CR is kept;
* ``glue``: the previous reply again, in front of this one, in the same write;
* ``late``: the reply is held back ``late_min``-``late_max`` seconds (1.5-4.5 by default);

``foreign`` acts on a 42H or 44H request of the client: before it is forwarded, the same
command for another pack (``packs`` tells which exist) is sent to the upstream port on a
connection of the gateway's own, as another master on the bus would, and the client receives
that request frame followed by the BMS's valid reply to it: an answer nobody asked the client's
request for. ``half_open`` swallows everything (the client's bytes are never forwarded, replies
and late replies are dropped) and keeps the TCP connections open; :meth:`Gateway.reset` closes
every connection. :attr:`Gateway.injected` counts what was actually done (a fault rolled for a
reply that never came is not counted), :attr:`Gateway.traffic` what was forwarded.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Callable, Coroutine
import contextlib
from dataclasses import dataclass, fields
import random
import time
from typing import Any, Final, Self

from ..errors import FrameError
from ..frame import EOI, MAX_FRAME_CHARS, SOI, decode_frame, encode_frame

REPLY_FAULTS: Final = ("corrupt", "truncate", "glue", "late")
"""Faults of one reply, in the order their probabilities are rolled."""
REQUEST_FAULTS: Final = ("foreign",)
"""Faults of one request of the client."""
GATEWAY_FAULTS: Final = (*REPLY_FAULTS, *REQUEST_FAULTS)
FOREIGN_COMMANDS: Final = frozenset({0x42, 0x44})
"""Requests a foreign exchange is injected before: those that name a pack (COMMAND n or FF)."""
CONNECT_TIMEOUT: Final = 5.0
WRITE_WAIT: Final = 5.0
"""Longest wait for a streamed reply to finish before a whole frame is written anyway."""
_CR: Final = bytes((EOI,))
_SOI: Final = bytes((SOI,))


@dataclass(slots=True)
class GatewaySettings:
    """Probabilities (0..1) of each fault, and how late a late reply comes."""

    corrupt: float = 0.0
    """Per reply: a wrong CHKSUM."""
    truncate: float = 0.0
    """Per reply: the tail cut off, the CR kept."""
    glue: float = 0.0
    """Per reply: the previous reply glued in front of it."""
    late: float = 0.0
    """Per reply: held back ``late_min``..``late_max`` seconds."""
    foreign: float = 0.0
    """Per 42H/44H request: another master's exchange for another pack delivered first."""
    late_min: float = 1.5
    late_max: float = 4.5

    def update(self, **values: float) -> None:
        """Change some settings; unknown names raise ``KeyError``, bad values ``ValueError``."""
        names = {f.name for f in fields(self)}
        for name, given in values.items():
            if name not in names:
                raise KeyError(f"unknown setting {name!r}; known: {', '.join(sorted(names))}")
            value = float(given)
            if name in GATEWAY_FAULTS and not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}: probability {value} outside 0..1")
            if name not in GATEWAY_FAULTS and value < 0:
                raise ValueError(f"{name}: {value} s is negative")
            setattr(self, name, value)
        if self.late_min > self.late_max:
            raise ValueError(f"late_min {self.late_min} s is above late_max {self.late_max} s")


class Gateway:
    """A fault-injecting TCP proxy in front of a PACE TCP port (the simulator's, usually)."""

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        *,
        packs: int = 1,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        settings: GatewaySettings | None = None,
        foreign_timeout: float = 3.0,
    ) -> None:
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.packs = packs
        """Pack addresses 1..packs exist (a foreign request names one of them)."""
        self.host = host
        self.port = port
        """The listening port (the real one once started, when 0 was asked for)."""
        self.settings = settings or GatewaySettings()
        self.foreign_timeout = foreign_timeout
        self.rng = random.Random(f"{seed}:gateway")
        self.injected: Counter[str] = Counter()
        """What was really done: every fault kind, ``foreign_replies``, ``foreign_unanswered``,
        ``half_open_requests`` / ``half_open_replies`` / ``half_open_bytes`` (swallowed),
        ``reset`` and ``reset_connections``."""
        self.traffic: Counter[str] = Counter()
        """``connections``, ``requests`` forwarded, ``replies`` seen, ``upstream_errors``."""
        self.late_delays: list[float] = []
        """Seconds each late reply was held back."""
        self.events: deque[tuple[float, str]] = deque(maxlen=100_000)
        """(wall-clock time, kind) of every count in :attr:`injected`, oldest first."""
        self._half_open = False
        self._reply_queue: deque[str] = deque()
        self._request_queue: deque[str] = deque()
        self._server: asyncio.Server | None = None
        self._sessions: set[_Session] = set()
        self._handlers: set[asyncio.Task[Any]] = set()
        self._side: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._side_lock = asyncio.Lock()
        self._changed = asyncio.Event()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> Self:
        """Listen (0 picks a free port: read it from :attr:`port`)."""
        self._server = await asyncio.start_server(self._on_client, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Close the listener, every connection and every task; nothing is left running."""
        if self._server is not None:
            self._server.close()
        for session in list(self._sessions):
            session.abort()
        handlers = list(self._handlers)
        if handlers:
            _done, pending = await asyncio.wait(handlers, timeout=1.0)
            for task in pending:
                task.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)
        self._close_side()
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
    def connections(self) -> int:
        """Client connections open now."""
        return len(self._sessions)

    # ------------------------------------------------------------------ controls

    def set(self, **values: float) -> None:
        """Set fault probabilities or delays, e.g. ``gateway.set(late=0.2, late_max=3)``."""
        self.settings.update(**values)

    def once(self, kind: str, count: int = 1) -> None:
        """Hit the next ``count`` replies (``foreign``: 42H/44H requests) with ``kind``."""
        if kind not in GATEWAY_FAULTS:
            raise KeyError(f"unknown fault {kind!r}; known: {', '.join(GATEWAY_FAULTS)}")
        queue = self._request_queue if kind in REQUEST_FAULTS else self._reply_queue
        queue.extend([kind] * count)

    def clear(self) -> None:
        """No more faults: zero probabilities, empty queues, not half-open (delays are kept)."""
        self.settings = GatewaySettings(
            late_min=self.settings.late_min, late_max=self.settings.late_max
        )
        self._reply_queue.clear()
        self._request_queue.clear()
        self._half_open = False

    @property
    def half_open(self) -> bool:
        """While true, nothing is forwarded either way and the connections stay open."""
        return self._half_open

    @half_open.setter
    def half_open(self, value: bool) -> None:
        self._half_open = bool(value)

    def swallowing(self) -> bool:
        """Whether the gateway is half-open now (a method: it changes while awaiting)."""
        return self._half_open

    def reset(self) -> int:
        """Close every client connection (and its upstream one) now; returns how many."""
        sessions = list(self._sessions)
        for session in sessions:
            session.abort()
        self._count("reset")
        self._count("reset_connections", len(sessions))
        return len(sessions)

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds; it is checked again whenever a counter changes."""
        while not predicate():
            await self._changed.wait()

    # ------------------------------------------------------------------ internals

    def _count(self, kind: str, amount: int = 1, *, traffic: bool = False) -> None:
        (self.traffic if traffic else self.injected)[kind] += amount
        if not traffic:
            self.events.append((time.time(), kind))
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _pick_reply_fault(self) -> str | None:
        if self._reply_queue:
            return self._reply_queue.popleft()
        for kind in REPLY_FAULTS:
            probability = getattr(self.settings, kind)
            if probability and self.rng.random() < probability:
                return kind
        return None

    def _pick_foreign(self, request: bytes) -> bytes | None:
        """The foreign request to inject before ``request``, or None."""
        try:
            frame = decode_frame(request)
        except FrameError:
            return None
        if frame.cid2 not in FOREIGN_COMMANDS or not frame.info:
            return None
        others = [p for p in range(1, self.packs + 1) if p != frame.info[0]]
        if not others:
            return None
        if self._request_queue:
            self._request_queue.popleft()
        elif not (self.settings.foreign and self.rng.random() < self.settings.foreign):
            return None
        other = self.rng.choice(others)
        return encode_frame(frame.ver, frame.adr, frame.cid1, frame.cid2, bytes([other]))

    def _late_delay(self) -> float:
        return self.rng.uniform(self.settings.late_min, self.settings.late_max)

    def _corrupt(self, reply: bytes) -> bytes:
        try:
            right = int(reply[-5:-1], 16)
        except ValueError:
            return reply[:-2] + b"X\r"
        wrong = (right + 1 + self.rng.randrange(0xFFFE)) & 0xFFFF
        return reply[:-5] + b"%04X" % wrong + _CR

    def _truncate(self, reply: bytes) -> bytes:
        cut = self.rng.randrange(2, max(3, len(reply) - 1))
        return reply[:cut] + _CR

    async def _ask_upstream(self, request: bytes) -> bytes | None:
        """Send ``request`` on the gateway's own upstream connection; the reply or None."""
        async with self._side_lock:
            for _attempt in range(2):
                try:
                    if self._side is None:
                        async with asyncio.timeout(CONNECT_TIMEOUT):
                            self._side = await asyncio.open_connection(
                                self.upstream_host, self.upstream_port
                            )
                    reader, writer = self._side
                    writer.write(request)
                    async with asyncio.timeout(self.foreign_timeout):
                        raw = await reader.readuntil(_CR)
                except TimeoutError:
                    self._close_side()  # a reply may still come: never read it as the next one
                    return None
                except OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError:
                    self._close_side()
                    continue
                start = raw.find(_SOI)
                return raw[start:] if start >= 0 else None
            return None

    def _close_side(self) -> None:
        side, self._side = self._side, None
        if side is not None:
            side[1].transport.abort()

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        self._count("connections", traffic=True)
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                upstream = await asyncio.open_connection(self.upstream_host, self.upstream_port)
        except OSError, TimeoutError:
            self._count("upstream_errors", traffic=True)
            writer.transport.abort()
            return
        session = _Session(self, (reader, writer), upstream)
        self._sessions.add(session)
        try:
            await session.run()
        finally:
            self._sessions.discard(session)
            session.abort()
            await session.finish()


class _Session:
    """One client connection and its upstream connection."""

    def __init__(
        self,
        gateway: Gateway,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> None:
        self.gateway = gateway
        self.client_reader, self.client_writer = client
        self.up_reader, self.up_writer = upstream
        self.closed = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        """Set while no reply is half-way through being streamed to the client."""
        self._idle.set()
        self._previous: bytes | None = None

    async def run(self) -> None:
        """Pump both ways until either side closes."""
        pumps = [self._spawn(self._from_client()), self._spawn(self._from_upstream())]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.abort()

    def gone(self) -> bool:
        """Whether the session was closed (a method: it changes while awaiting)."""
        return self.closed

    def abort(self) -> None:
        """Drop both connections (a reset)."""
        self.closed = True
        self.client_writer.transport.abort()
        self.up_writer.transport.abort()

    async def finish(self) -> None:
        """Cancel what is left (pumps, late replies) and wait for it."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _write(self, data: bytes) -> None:
        if data and not self.closed and not self.client_writer.is_closing():
            self.client_writer.write(data)

    async def _write_whole(self, data: bytes) -> None:
        """Write a whole frame between two streamed replies, never inside one."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(WRITE_WAIT):
                await self._idle.wait()
        self._write(data)

    # -- client -> upstream

    async def _from_client(self) -> None:
        gateway = self.gateway
        buffer = bytearray()
        while True:
            try:
                data = await self.client_reader.read(4096)
            except OSError:
                return
            if not data or self.closed:
                return
            if gateway.half_open:
                buffer.clear()
                gateway._count("half_open_bytes", len(data))
                if frames := data.count(_CR):
                    gateway._count("half_open_requests", frames)
                continue
            buffer += data
            while (end := buffer.find(_CR)) >= 0:
                chunk = bytes(buffer[: end + 1])
                del buffer[: end + 1]
                start = chunk.rfind(_SOI)
                if start >= 0:
                    foreign = gateway._pick_foreign(chunk[start:])
                    if foreign is not None:
                        await self._inject_foreign(foreign)
                    if self.gone():
                        return
                    if gateway.swallowing():  # it went half-open while the other master talked
                        gateway._count("half_open_bytes", len(chunk))
                        gateway._count("half_open_requests")
                        continue
                    gateway._count("requests", traffic=True)
                self.up_writer.write(chunk)
            if len(buffer) > MAX_FRAME_CHARS:  # not a frame: pass it on as it is
                self.up_writer.write(bytes(buffer))
                buffer.clear()

    async def _inject_foreign(self, request: bytes) -> None:
        """Another master's request and the BMS's reply to it reach the client first."""
        gateway = self.gateway
        await self._write_whole(request)
        gateway._count("foreign")
        reply = await gateway._ask_upstream(request)
        if reply is None:
            gateway._count("foreign_unanswered")
            return
        if self.gone() or gateway.swallowing():
            return
        await self._write_whole(reply)
        gateway._count("foreign_replies")

    # -- upstream -> client

    async def _from_upstream(self) -> None:
        gateway = self.gateway
        frame = bytearray()
        in_frame = False
        fault: str | None = None
        while True:
            try:
                data = await self.up_reader.read(4096)
            except OSError:
                return
            if not data or self.closed:
                return
            if gateway.half_open:
                gateway._count("half_open_bytes", len(data))
                if replies := data.count(_CR):
                    gateway._count("half_open_replies", replies)
                frame.clear()
                in_frame, fault = False, None
                self._idle.set()
                continue
            out = bytearray()
            position = 0
            while position < len(data):
                if not in_frame:
                    start = data.find(_SOI, position)
                    if start < 0:
                        out += data[position:]  # noise between frames passes as it is
                        break
                    out += data[position:start]
                    position = start
                    in_frame, fault = True, gateway._pick_reply_fault()
                    frame.clear()
                    if fault == "glue":
                        if self._previous is None:
                            fault = None  # nothing to glue yet: not injected
                        else:
                            out += self._previous
                    if fault in (None, "glue"):
                        self._idle.clear()
                end = data.find(_CR, position)
                piece = data[position : end + 1] if end >= 0 else data[position:]
                position += len(piece)
                frame += piece
                if fault in (None, "glue"):
                    out += piece
                if end < 0:
                    if len(frame) > MAX_FRAME_CHARS:  # never ends: give up on it
                        in_frame, fault = False, None
                        frame.clear()
                        self._idle.set()
                    break
                reply = bytes(frame)
                in_frame = False
                self._previous = reply
                gateway._count("replies", traffic=True)
                if fault is not None:
                    gateway._count(fault)
                match fault:
                    case "corrupt":
                        out += gateway._corrupt(reply)
                    case "truncate":
                        out += gateway._truncate(reply)
                    case "late":
                        delay = gateway._late_delay()
                        gateway.late_delays.append(delay)
                        self._spawn(self._late(reply, delay))
                    case _:
                        pass
                fault = None
            self._write(bytes(out))
            if not in_frame:
                self._idle.set()

    async def _late(self, reply: bytes, delay: float) -> None:
        await asyncio.sleep(delay)
        if self.closed:
            return
        if self.gateway.half_open:
            self.gateway._count("half_open_replies")
            return
        await self._write_whole(reply)


__all__ = ["GATEWAY_FAULTS", "REPLY_FAULTS", "REQUEST_FAULTS", "Gateway", "GatewaySettings"]
