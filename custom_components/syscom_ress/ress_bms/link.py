"""The byte link to the BMS: one serialx connection, one request in flight.

serialx opens ``/dev/tty...``, ``socket://host:port``, ``rfc2217://host:port`` and the ESPHome
serial proxy URLs Home Assistant registers. Defaults, from docs/protocol.md:

* 9600 baud 8N1 ([PACE-2018] §1.1); 19200 exists on some packs.
* Timeout 1.0 s of silence: the spec's 500 ms plus the ~180 ms a master needs to assemble a
  broadcast reply (nkinnan issue #57), with margin; it is measured from the last byte received,
  so a 2.5 s broadcast reply that keeps arriving never times out.
* One retry: the reference's "retry once".
* 10 ms gap between a reply and the next request: ten character times at 9600 baud, far above
  an RS485 driver's turnaround. The 50-200 ms throttles of other tools are not a protocol
  requirement (nkinnan: "50 ms is fine for v25") and would cost a 16-pack poll seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
import logging
import time
from typing import Final, Literal, Protocol

from serialx import create_serial_connection

from .errors import (
    BmsTimeoutError,
    ChecksumError,
    DecodeError,
    FrameError,
    LinkError,
    LinkUnavailableError,
    ResponseError,
)
from .frame import Frame, FrameExtractor, decode_frame

_LOGGER = logging.getLogger(__name__)

DEFAULT_BAUDRATE: Final = 9600
BAUDRATES: Final = (9600, 19200)
DEFAULT_TIMEOUT: Final = 1.0
DEFAULT_RETRIES: Final = 1
DEFAULT_FRAME_GAP: Final = 0.010
CONNECT_TIMEOUT: Final = 10.0
BACKOFF_FIRST: Final = 1.0
BACKOFF_MAX: Final = 60.0
_RETRY_RTN: Final = frozenset({0x02, 0x03})
"""The BMS saw our request corrupted (CHKSUM / LCHKSUM error): worth sending again."""
_RESPONSE_CODES: Final = frozenset({*range(0x0A), 0x90, 0x91, 0xE1, 0xE2, 0xE3, 0xE4})

type Direction = Literal["tx", "rx"]


class Recorder(Protocol):
    """Receives every byte that crosses the link, both ways."""

    def __call__(self, direction: Direction, data: bytes, /) -> None:
        """Record one chunk."""


@dataclass(slots=True)
class LinkStats:
    """Counters of one link, for diagnostics and link-quality sensors."""

    requests: int = 0
    replies: int = 0
    timeouts: int = 0
    retries: int = 0
    checksum_errors: int = 0
    frame_errors: int = 0
    lchksum_errors: int = 0
    decode_errors: int = 0
    response_errors: int = 0
    stale_frames: int = 0
    """Valid frames that were not the answer to the request in flight (late replies)."""
    unsolicited_frames: int = 0
    """Frames that arrived with no request in flight."""
    foreign_requests: int = 0
    """Request frames from another master on the bus (an inverter or PC tool polling too)."""
    address_mismatches: int = 0
    """Replies whose ADR differs from the request's (accepted: the BMS answers with its own)."""
    noise_bytes: int = 0
    connects: int = 0
    disconnects: int = 0
    last_rtt: float | None = None
    rtt_by_command: dict[int, float] = field(default_factory=dict)
    last_frames: dict[int, tuple[bytes, bytes]] = field(default_factory=dict)
    """Per command code, the last request and its reply as sent on the wire."""

    @property
    def exchanges(self) -> int:
        """Attempts made (first tries and retries)."""
        return self.requests + self.retries

    @property
    def success_rate(self) -> float | None:
        """Share of attempts that got their valid reply, in %."""
        attempts = self.exchanges
        return round(100 * self.replies / attempts, 1) if attempts else None


class _LinkProtocol(asyncio.Protocol):
    """Cuts frames out of the received bytes and hands them to the link."""

    def __init__(self, link: Link) -> None:
        self._link = link

    def data_received(self, data: bytes) -> None:
        self._link._on_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._link._on_lost(exc)


class Link:
    """An async request/response link to one bus of PACE BMSes."""

    def __init__(
        self,
        url: str,
        *,
        baudrate: int = DEFAULT_BAUDRATE,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        frame_gap: float = DEFAULT_FRAME_GAP,
        recorder: Recorder | None = None,
    ) -> None:
        self.url = url
        self.baudrate = baudrate
        self.timeout = timeout
        self.retries = retries
        self.frame_gap = frame_gap
        self.recorder = recorder
        self.stats = LinkStats()
        self._transport: asyncio.BaseTransport | None = None
        self._extractor = FrameExtractor()
        self._queue: asyncio.Queue[tuple[bytes, Frame] | FrameError] = asyncio.Queue()
        self._in_flight: bytes | None = None
        self._lock = asyncio.Lock()
        self._last_rx = 0.0
        self._quiet_since = 0.0
        self._backoff = 0.0
        self._next_attempt = 0.0

    @property
    def connected(self) -> bool:
        """Whether the transport is open."""
        return self._transport is not None

    async def open(self) -> None:
        """Open the transport; raise :class:`LinkError` when it cannot be opened."""
        if self._transport is not None:
            return
        now = time.monotonic()
        if now < self._next_attempt:
            raise LinkUnavailableError(
                f"{self.url}: reconnecting in {self._next_attempt - now:.0f} s"
            )
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                transport, _ = await create_serial_connection(
                    asyncio.get_running_loop(),
                    lambda: _LinkProtocol(self),
                    self.url,
                    baudrate=self.baudrate,
                )
        except (OSError, TimeoutError, ValueError) as err:
            self._backoff = min(BACKOFF_MAX, max(BACKOFF_FIRST, self._backoff * 2))
            self._next_attempt = time.monotonic() + self._backoff
            raise LinkError(f"cannot open {self.url}: {err or type(err).__name__}") from err
        except Exception as err:  # serialx raises its own SerialException family too
            self._backoff = min(BACKOFF_MAX, max(BACKOFF_FIRST, self._backoff * 2))
            self._next_attempt = time.monotonic() + self._backoff
            raise LinkError(f"cannot open {self.url}: {err}") from err
        self._transport = transport
        self._backoff = 0.0
        self._quiet_since = time.monotonic()
        self.stats.connects += 1
        _LOGGER.debug("Opened %s at %s baud", self.url, self.baudrate)

    async def close(self) -> None:
        """Close the transport."""
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()
            await asyncio.sleep(0)  # let the transport run its connection_lost callback

    async def __aenter__(self) -> Link:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _on_data(self, data: bytes) -> None:
        now = time.monotonic()
        self._last_rx = self._quiet_since = now
        if self.recorder:
            self.recorder("rx", data)
        before = self._extractor.discarded
        for raw in self._extractor.feed(data):
            self._on_frame(raw)
        self.stats.noise_bytes += self._extractor.discarded - before

    def _on_frame(self, raw: bytes) -> None:
        if self._in_flight is not None and raw == self._in_flight:
            return  # our own request echoed by a half-duplex adapter
        try:
            frame = decode_frame(raw)
        except ChecksumError as err:
            self.stats.checksum_errors += 1
            self._queue.put_nowait(err)
            return
        except FrameError as err:
            self.stats.frame_errors += 1
            self._queue.put_nowait(err)
            return
        if not frame.lchksum_ok:
            self.stats.lchksum_errors += 1
            if self.stats.lchksum_errors == 1:
                _LOGGER.warning("%s: a reply with a wrong LCHKSUM was accepted", self.url)
        if frame.cid2 not in _RESPONSE_CODES:
            self.stats.foreign_requests += 1
            return
        if self._in_flight is None:
            self.stats.unsolicited_frames += 1
            return
        self._queue.put_nowait((raw, frame))

    def _on_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self.stats.disconnects += 1
            _LOGGER.debug("Lost %s: %s", self.url, exc)
        self._transport = None
        self._queue.put_nowait(FrameError("connection lost"))

    def _discard_stale(self) -> None:
        self._extractor.clear()
        while not self._queue.empty():
            if not isinstance(self._queue.get_nowait(), FrameError):
                self.stats.stale_frames += 1

    async def exchange[T](
        self,
        request: bytes,
        decode: Callable[[Frame], T],
        *,
        timeout: float | None = None,
        retries: int | None = None,
    ) -> T:
        """Send ``request`` and return ``decode(reply)``.

        A valid frame that ``decode`` rejects with :class:`DecodeError` is taken as another
        exchange's late reply and skipped. Corrupt replies and silence are retried; a non-zero
        RTN is raised as :class:`ResponseError` (RTN 02/03, the BMS saw our frame corrupted, is
        retried).
        """
        retries = self.retries if retries is None else retries
        command = int(request[7:9], 16)
        async with self._lock:
            self.stats.requests += 1
            for attempt in range(retries + 1):
                if attempt:
                    self.stats.retries += 1
                try:
                    return await self._attempt(request, command, decode, timeout or self.timeout)
                except ResponseError as err:
                    if err.code not in _RETRY_RTN or attempt == retries:
                        raise
                except BmsTimeoutError, FrameError, DecodeError:
                    if attempt == retries:
                        raise
            raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt[T](
        self, request: bytes, command: int, decode: Callable[[Frame], T], timeout: float
    ) -> T:
        await self.open()
        gap = self._quiet_since + self.frame_gap - time.monotonic()
        if gap > 0:
            await asyncio.sleep(gap)
        self._discard_stale()
        transport = self._transport
        if transport is None:
            raise LinkError(f"{self.url}: connection lost")
        self._in_flight = request
        sent = time.monotonic()
        self._last_rx = sent
        try:
            if self.recorder:
                self.recorder("tx", request)
            transport.write(request)  # type: ignore[attr-defined]
            return await self._receive(request, command, decode, timeout, sent)
        finally:
            self._in_flight = None
            self._quiet_since = time.monotonic()

    async def _receive[T](
        self,
        request: bytes,
        command: int,
        decode: Callable[[Frame], T],
        timeout: float,
        sent: float,
    ) -> T:
        rejected: DecodeError | None = None
        while True:
            remaining = self._last_rx + timeout - time.monotonic()
            try:
                async with asyncio.timeout(max(remaining, 0)):
                    item = await self._queue.get()
            except TimeoutError:
                if self._last_rx + timeout > time.monotonic():
                    continue  # bytes arrived meanwhile: a long reply is still coming in
                if rejected is not None:
                    self.stats.decode_errors += 1
                    raise rejected from None
                self.stats.timeouts += 1
                raise BmsTimeoutError(
                    f"no reply to {command:02X}H from {self.url} within {timeout:g} s"
                ) from None
            if isinstance(item, FrameError):
                if self._transport is None:
                    raise LinkError(f"{self.url}: connection lost") from item
                raise item
            raw, frame = item
            if frame.adr != int(request[3:5], 16):
                self.stats.address_mismatches += 1
            try:
                frame.raise_for_rtn(command)
                result = decode(frame)
            except ResponseError:
                self.stats.response_errors += 1
                raise
            except DecodeError as err:
                self.stats.stale_frames += 1
                rejected = err
                continue
            rtt = time.monotonic() - sent
            self.stats.replies += 1
            self.stats.last_rtt = rtt
            self.stats.rtt_by_command[command] = rtt
            self.stats.last_frames[command] = (request, raw)
            return result
