"""The simulated RS485 line: half duplex at the real character rate, and the ports onto it.

At 9600 baud 8N1 a character takes 10 bit times (1.04 ms). A request counts as arrived only when
its last character would have crossed the line; the reply starts after the turnaround and goes
out piece by piece at the character rate, so a client sees the CR exactly when a real line would
deliver it. Both directions share one line: nothing overlaps.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
import asyncio
import contextlib
from dataclasses import dataclass
import os
from typing import Final

BITS_PER_CHARACTER: Final = 10
"""8N1: start bit, 8 data bits, stop bit."""
PIECE: Final = 16
"""Characters written at a time at a real baud rate (about 17 ms at 9600)."""


async def sleep_until(when: float) -> None:
    """Sleep until the event loop's clock reads ``when``."""
    delay = when - asyncio.get_running_loop().time()
    if delay > 0:
        await asyncio.sleep(delay)


@dataclass(slots=True)
class Traffic:
    """What crossed the line: the benchmark's physical minimum is computed from this."""

    requests: int = 0
    replies: int = 0
    characters_in: int = 0
    characters_out: int = 0

    def minimum_seconds(self, baud: int, turnaround: float) -> float:
        """Time a perfect master needs for exactly this traffic: wire time plus turnarounds."""
        wire = (self.characters_in + self.characters_out) * BITS_PER_CHARACTER / baud
        return wire + self.replies * turnaround


class Port(ABC):
    """One way onto the line: a TCP client of the gateway, or the pseudo-terminal."""

    closed = False

    def is_open(self) -> bool:
        """Whether the port still carries traffic (a method: it changes while awaiting)."""
        return not self.closed

    @abstractmethod
    async def read(self) -> bytes:
        """Bytes from the client; empty when it has gone."""

    @abstractmethod
    def write(self, data: bytes) -> None:
        """Bytes to the client (dropped if it has gone)."""

    @abstractmethod
    def abort(self) -> None:
        """Drop the connection (a TCP disconnect; a serial line cannot be unplugged)."""

    def close(self) -> None:
        """Release the port's resources."""
        self.abort()


class TcpPort(Port):
    """A client connected to the gateway's TCP port."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def read(self) -> bytes:
        """Read what the client sent."""
        try:
            return await self.reader.read(4096)
        except OSError:  # ConnectionResetError included
            return b""

    def write(self, data: bytes) -> None:
        """Send to the client."""
        if not self.closed and not self.writer.is_closing():
            self.writer.write(data)

    def abort(self) -> None:
        """Reset the connection."""
        self.closed = True
        self.writer.transport.abort()


class PtyPort(Port):
    """A pseudo-terminal: clients open :attr:`path` as a serial port."""

    def __init__(self) -> None:
        import tty  # noqa: PLC0415 - POSIX only, imported when a pty is asked for

        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._master, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self._master, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self._queue.put_nowait(data)

    async def read(self) -> bytes:
        """Wait for bytes the client wrote to the device."""
        if self.closed:
            return b""
        return await self._queue.get()

    def write(self, data: bytes) -> None:
        """Write to the device; bytes nobody reads are lost, as on a real line."""
        if self.closed:
            return
        with contextlib.suppress(BlockingIOError):
            os.write(self._master, data)

    def abort(self) -> None:
        """A serial line cannot be disconnected: nothing happens."""

    def close(self) -> None:
        """Remove the reader and close both ends."""
        if self.closed:
            return
        self.closed = True
        self._loop.remove_reader(self._master)
        os.close(self._master)
        os.close(self._slave)
        self._queue.put_nowait(b"")


class Line:
    """Half-duplex timing shared by every port."""

    def __init__(self, baud: int = 0, turnaround: float = 0.0) -> None:
        if baud < 0 or turnaround < 0:
            raise ValueError("baud and turnaround cannot be negative")
        self.baud = baud
        self.turnaround = turnaround
        self.character_time = BITS_PER_CHARACTER / baud if baud else 0.0
        self.busy_until = 0.0
        self.traffic = Traffic()
        self._lock = asyncio.Lock()

    def arrival(self, characters: int, received: float) -> float:
        """When ``characters`` handed over at loop time ``received`` have crossed the line."""
        start = max(received, self.busy_until)
        self.busy_until = start + characters * self.character_time
        self.traffic.characters_in += characters
        return self.busy_until

    async def transmit(self, port: Port, data: bytes) -> None:
        """Send ``data`` at the character rate, after anything already on the line."""
        async with self._lock:
            self.traffic.characters_out += len(data)
            if not self.character_time:
                port.write(data)
                return
            loop = asyncio.get_running_loop()
            start = max(loop.time(), self.busy_until)
            self.busy_until = start + len(data) * self.character_time
            for offset in range(0, len(data), PIECE):
                piece = data[offset : offset + PIECE]
                # A piece is handed over once its last character has crossed the line.
                await sleep_until(start + (offset + len(piece)) * self.character_time)
                port.write(piece)
