"""A scripted TCP peer on 127.0.0.1 for link tests: it answers each request as told."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import suppress

from ress_bms.frame import Frame, FrameExtractor, decode_frame

type Script = Callable[[Frame, asyncio.StreamWriter], Awaitable[None]]


class FakePeer:
    """A gateway stand-in: reads frames, runs ``script`` for each, records what it saw."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[Frame] = []
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"socket://{host}:{port}"

    async def __aenter__(self) -> FakePeer:
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
        extractor = FrameExtractor()
        try:
            while data := await reader.read(4096):
                for raw in extractor.feed(data):
                    frame = decode_frame(raw)
                    self.requests.append(frame)
                    await self.script(frame, writer)
        except ConnectionError, asyncio.CancelledError:
            pass
        finally:
            writer.close()
            self._tasks.discard(task)


def reply(frame: Frame, info: bytes = b"", rtn: int = 0, adr: int | None = None) -> bytes:
    """The reply a BMS would send to ``frame``."""
    return Frame(frame.ver, frame.adr if adr is None else adr, frame.cid1, rtn, info).encode()
