"""Scripted TCP peers on 127.0.0.1 for link tests: they answer each request as told.

:class:`FakePeer` reads PACE ``~...CR`` frames (decoded); :class:`BusPeer` reads the raw
requests of any dialect, ASCII ``~...CR`` or 8-byte Modbus RTU, for the tests that speak more
than one framing (detection) or Modbus (:func:`rtu` hands its script decoded reads).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Self

from ress_bms.frame import Frame, FrameExtractor, decode_frame
from ress_bms.modbus import ReadRequest, decode_request

type Script = Callable[[Frame, asyncio.StreamWriter], Awaitable[None]]
type RawScript = Callable[[bytes, asyncio.StreamWriter], Awaitable[None]]
type ModbusScript = Callable[[ReadRequest, asyncio.StreamWriter], Awaitable[None]]
type Answer = Callable[[bytes], bytes | None]

MODBUS_REQUEST_BYTES = 8


class _Peer:
    """A TCP server on 127.0.0.1: each connection is served by :meth:`_requests` until it ends."""

    def __init__(self) -> None:
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"socket://{host}:{port}"

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        self.drop()
        for task in list(self._tasks):
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        await self._server.wait_closed()

    def drop(self) -> None:
        """Close every client connection (a gateway that vanished)."""
        for writer in self._writers:
            writer.close()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        self._writers.append(writer)
        try:
            await self._requests(reader, writer)
        except ConnectionError, asyncio.CancelledError:
            pass
        finally:
            writer.close()
            self._tasks.discard(task)

    async def _requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError


class FakePeer(_Peer):
    """A gateway stand-in: reads frames, runs ``script`` for each, records what it saw."""

    def __init__(self, script: Script) -> None:
        super().__init__()
        self.script = script
        self.requests: list[Frame] = []

    async def _requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        extractor = FrameExtractor()
        while data := await reader.read(4096):
            for raw in extractor.feed(data):
                frame = decode_frame(raw)
                self.requests.append(frame)
                await self.script(frame, writer)


@asynccontextmanager
async def silent_gateway() -> AsyncIterator[str]:
    """A gateway whose serial side is quiet: it takes the bytes and never answers; its URL."""

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with suppress(ConnectionError):
            while await reader.read(4096):
                pass
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    try:
        yield f"socket://{host}:{port}"
    finally:
        server.close()
        await server.wait_closed()


def reply(frame: Frame, info: bytes = b"", rtn: int = 0, adr: int | None = None) -> bytes:
    """The reply a BMS would send to ``frame``."""
    return Frame(frame.ver, frame.adr if adr is None else adr, frame.cid1, rtn, info).encode()


class BusPeer(_Peer):
    """A gateway with one device behind it: raw requests in, ``script`` run for each.

    A request is ``~`` to CR (ASCII framing) or, starting with anything else, 8 bytes (a
    Modbus RTU read). ``requests`` holds them in order; pass ``log`` to share one list
    between peers (the requests a whole test sent, whichever peer got them).
    """

    def __init__(self, script: RawScript, log: list[bytes] | None = None) -> None:
        super().__init__()
        self.script = script
        self.requests: list[bytes] = [] if log is None else log

    async def _requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buffer = bytearray()
        while data := await reader.read(4096):
            buffer += data
            while raw := _next_request(buffer):
                self.requests.append(raw)
                await self.script(raw, writer)


def _next_request(buffer: bytearray) -> bytes | None:
    """Cut the first complete request out of ``buffer`` (``None``: none yet)."""
    if buffer[:1] == b"~":
        end = buffer.find(b"\r")
        if end < 0:
            return None
        size = end + 1
    elif len(buffer) >= MODBUS_REQUEST_BYTES:
        size = MODBUS_REQUEST_BYTES
    else:
        return None
    raw = bytes(buffer[:size])
    del buffer[:size]
    return raw


def answering(answer: Answer) -> RawScript:
    """A script that writes what ``answer`` returns for each request (nothing for ``None``)."""

    async def script(raw: bytes, writer: asyncio.StreamWriter) -> None:
        out = answer(raw)
        if out:
            writer.write(out)
            await writer.drain()

    return script


def rtu(script: ModbusScript) -> RawScript:
    """A script of Modbus reads: ``script`` gets each request decoded."""

    async def run(raw: bytes, writer: asyncio.StreamWriter) -> None:
        await script(decode_request(raw), writer)

    return run
