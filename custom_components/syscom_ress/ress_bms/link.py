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

A reply is delivered only when it can be nobody else's (docs/protocol.md, "Which reply belongs
to which request"):

* its ADR is the one the caller expects (``expect_adr``), when the caller knows it;
* the caller's ``decode`` accepts it (the client checks the echoed pack number and the pack's
  own cell and sensor counts there);
* no request that timed out in the last :data:`LATE_WINDOW` seconds would accept it too: such a
  reply is that request's late answer (the BMS answers in order), dropped and counted;
* no other master's request crossed ours on the bus: the exchange is then tried again.

After a timeout, or another master's request, the line must be quiet for :data:`DEFAULT_DRAIN`
seconds (at most :data:`DRAIN_MAX` in all) before the next request, so most late replies arrive
while nothing is asked and are dropped there.

A long reply is let to gather: a 9600-baud line hands over a few characters at a time (a USB
adapter's latency timer, a gateway's packing, the simulator's 16-character pieces), and waking
for each costs the host far more than reading them. Once a reply's header says how much is still
to come, reading pauses for half the time that takes at the line's rate (at most
:data:`GATHER_MAX`), and the rest is read in one go: a 1,500-character reply wakes the link about
ten times instead of about ninety, and is delivered as soon as before (docs/performance.md).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
import logging
import time
from typing import Any, Final, Literal, Protocol

from serialx import create_serial_connection

from .errors import (
    BmsError,
    BmsTimeoutError,
    BusContentionError,
    ChecksumError,
    ConnectionLostError,
    DecodeError,
    FrameError,
    LinkError,
    LinkUnavailableError,
    ResponseError,
)
from .frame import Frame
from .framing import ASCII, ASCII_FRAME_GAP, Extractor, Framing, Reply

_LOGGER = logging.getLogger(__name__)

DEFAULT_BAUDRATE: Final = 9600
BAUDRATES: Final = (9600, 19200)
DEFAULT_TIMEOUT: Final = 1.0
DEFAULT_RETRIES: Final = 1
DEFAULT_FRAME_GAP: Final = ASCII_FRAME_GAP
"""The ASCII framing's; a Modbus RTU link waits its 3.5 character times instead."""
DEFAULT_DRAIN: Final = 0.5
"""Quiet line needed after a timeout before the next request: the spec's 500 ms reply time."""
DRAIN_MAX: Final = 3.0
"""A drain never waits longer than this, even on a line that keeps talking."""
LATE_WINDOW: Final = 5.0
"""How long a request that timed out may still be answered (late replies seen up to 4.4 s)."""
CONNECT_TIMEOUT: Final = 10.0
BACKOFF_FIRST: Final = 1.0
BACKOFF_MAX: Final = 60.0
GATHER_MIN: Final = 0.03
"""Reading pauses only when the reply in progress needs at least twice this long to arrive."""
GATHER_MAX: Final = 0.5
"""The longest pause: 480 characters at 9600 baud wait in the OS, far below its buffers."""

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
    """Replies whose ADR differs from the request's (accepted only when no ADR is expected)."""
    late_replies: int = 0
    """Replies to a request that had timed out, dropped instead of delivered to a later one."""
    contended: int = 0
    """Exchanges tried again because another master's request crossed ours on the bus."""
    drains: int = 0
    """Waits for a quiet line after a timeout or another master's request."""
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

    def __init__(self, link: Link[Any]) -> None:
        self._link = link

    def data_received(self, data: bytes) -> None:
        self._link._on_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._link._on_lost(exc)


class Link[R: Reply = Frame]:
    """An async request/response link to one bus of BMSes, in one framing (ASCII by default)."""

    def __init__(
        self,
        url: str,
        *,
        baudrate: int = DEFAULT_BAUDRATE,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        frame_gap: float | None = None,
        drain: float = DEFAULT_DRAIN,
        late_window: float = LATE_WINDOW,
        backoff_max: float = BACKOFF_MAX,
        recorder: Recorder | None = None,
        framing: Framing[R] | None = None,
    ) -> None:
        self.url = url
        self.framing: Framing[R] = framing or ASCII  # type: ignore[assignment]
        """How frames are cut and read: :data:`~.framing.ASCII` or :data:`~.framing.MODBUS`."""
        self.baudrate = baudrate
        self.timeout = timeout
        self.retries = retries
        self.frame_gap = self.framing.frame_gap(baudrate) if frame_gap is None else frame_gap
        """Quiet line before each request (default: the framing's at ``baudrate``)."""
        self.drain = drain
        self.drain_max = DRAIN_MAX
        self.late_window = late_window
        self.backoff_max = backoff_max
        """Longest wait between reconnection attempts (the coordinator: its refresh interval)."""
        self.recorder = recorder
        self.stats = LinkStats()
        self._transport: asyncio.BaseTransport | None = None
        self._extractor: Extractor = self.framing.extractor(None)
        self._queue: asyncio.Queue[tuple[bytes, R] | FrameError | BusContentionError] = (
            asyncio.Queue()
        )
        self._in_flight: bytes | None = None
        self._lock = asyncio.Lock()
        self._last_rx = 0.0
        self._quiet_since = 0.0
        self._backoff = 0.0
        self._next_attempt = 0.0
        self._owed: deque[_Owed] = deque()
        """Requests that timed out and may still be answered, oldest first."""
        self._drain_pending = False
        self._character_time = 10 / baudrate if baudrate > 0 else 0.0
        """Seconds per 8N1 character at ``baudrate``."""
        self._gathering: asyncio.TimerHandle | None = None
        self._can_pause = True
        """False once the transport has shown it cannot pause reading (ESPHome's proxy)."""

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
            self._back_off()
            raise LinkError(f"cannot open {self.url}: {err or type(err).__name__}") from err
        except Exception as err:  # serialx raises its own SerialException family too
            self._back_off()
            raise LinkError(f"cannot open {self.url}: {err}") from err
        self._transport = transport
        self._backoff = 0.0
        self._quiet_since = time.monotonic()
        self.stats.connects += 1
        _LOGGER.debug("Opened %s at %s baud", self.url, self.baudrate)

    def _back_off(self) -> None:
        self._backoff = min(self.backoff_max, max(BACKOFF_FIRST, self._backoff * 2))
        self._next_attempt = time.monotonic() + self._backoff

    async def close(self) -> None:
        """Close the transport."""
        self._stop_gathering()
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()
            await asyncio.sleep(0)  # let the transport run its connection_lost callback

    async def __aenter__(self) -> Link[R]:
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
        if self._in_flight is not None and self._can_pause:
            self._gather(now)

    def _gather(self, now: float) -> None:
        """Pause reading while the first half of the rest of the reply crosses the line."""
        pause = min(self._extractor.awaited * self._character_time / 2, GATHER_MAX)
        if pause < GATHER_MIN or self._gathering is not None or self._transport is None:
            return
        try:
            self._transport.pause_reading()  # type: ignore[attr-defined]
        except NotImplementedError, AttributeError:
            self._can_pause = False
            return
        self._last_rx = now + pause  # silence is counted from when reading resumes
        self._gathering = asyncio.get_running_loop().call_later(pause, self._resume_reading)

    def _resume_reading(self) -> None:
        self._gathering = None
        if self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()  # type: ignore[attr-defined]

    def _stop_gathering(self) -> None:
        """Read again at once (the exchange ended, or the link closes)."""
        if self._gathering is not None:
            self._gathering.cancel()
            self._resume_reading()

    def _on_frame(self, raw: bytes) -> None:
        if self._in_flight is not None and raw == self._in_flight:
            return  # our own request echoed by a half-duplex adapter
        try:
            frame = self.framing.parse(raw)
        except ChecksumError as err:
            self.stats.checksum_errors += 1
            self._queue.put_nowait(err)
            return
        except FrameError as err:
            self.stats.frame_errors += 1
            self._queue.put_nowait(err)
            return
        if self.framing.tolerated(frame) == "lchksum":
            self.stats.lchksum_errors += 1
            if self.stats.lchksum_errors == 1:
                _LOGGER.warning("%s: a reply with a wrong LCHKSUM was accepted", self.url)
        if self.framing.is_request(frame):
            # Another master asks: its answer will follow, and must not be taken for ours.
            self.stats.foreign_requests += 1
            self._drain_pending = True
            if self._in_flight is not None:
                self._queue.put_nowait(BusContentionError("another master's request crossed ours"))
            return
        if self._in_flight is None:
            if self._expire_owed():
                self._owed.popleft()
                self.stats.late_replies += 1
            else:
                self.stats.unsolicited_frames += 1
            return
        self._queue.put_nowait((raw, frame))

    def _on_lost(self, exc: Exception | None) -> None:
        if self._gathering is not None:
            self._gathering.cancel()
            self._gathering = None
        if self._transport is not None:
            self.stats.disconnects += 1
            _LOGGER.debug("Lost %s: %s", self.url, exc)
        self._transport = None
        self._queue.put_nowait(FrameError("connection lost"))

    def _discard_stale(self) -> None:
        self._extractor.clear()
        while not self._queue.empty():
            if isinstance(self._queue.get_nowait(), tuple):
                self.stats.stale_frames += 1

    def _expire_owed(self) -> bool:
        """Forget requests too old to be answered; True when some may still be."""
        now = time.monotonic()
        while self._owed and self._owed[0].expires <= now:
            self._owed.popleft()
        return bool(self._owed)

    def _owed_answer(self, request: bytes, frame: R) -> bool:
        """Whether ``frame`` may be the late answer of another request that timed out.

        If so it is taken as that answer (the BMS answers in order), and that request is no
        longer owed. A request equal to ours is not asked: its answer carries the same values.
        """
        if not self._expire_owed():
            return False
        for owed in self._owed:
            if owed.request == request or frame.adr != owed.adr:
                continue
            try:
                owed.decode(frame)
            except BmsError:
                continue
            self._owed.remove(owed)
            self.stats.late_replies += 1
            return True
        return False

    async def _wait_for_quiet(self) -> None:
        """Wait until the line has been quiet for the frame gap, or the drain after trouble."""
        if not self._drain_pending:
            gap = self._quiet_since + self.frame_gap - time.monotonic()
            if gap > 0:
                await asyncio.sleep(gap)
            return
        self.stats.drains += 1
        deadline = time.monotonic() + self.drain_max
        while (now := time.monotonic()) < deadline:
            quiet = self._quiet_since + max(self.drain, self.frame_gap) - now
            if quiet <= 0:
                break
            await asyncio.sleep(min(quiet, deadline - now))
        self._drain_pending = False

    async def exchange[T](
        self,
        request: bytes,
        decode: Callable[[R], T],
        *,
        timeout: float | None = None,
        retries: int | None = None,
        expect_adr: int | None = None,
    ) -> T:
        """Send ``request`` and return ``decode(reply)``.

        A valid frame that ``decode`` rejects with :class:`DecodeError`, that comes from
        another ADR than ``expect_adr`` (when given), or that a request which timed out would
        accept too, is another exchange's reply and skipped. Corrupt replies, silence and
        another master's request on the bus are retried; a non-zero RTN is raised as
        :class:`ResponseError` (RTN 02/03, the BMS saw our frame corrupted, is retried).
        """
        retries = self.retries if retries is None else retries
        command = self.framing.command(request)
        async with self._lock:
            self.stats.requests += 1
            for attempt in range(retries + 1):
                if attempt:
                    self.stats.retries += 1
                try:
                    return await self._attempt(
                        request, command, decode, timeout or self.timeout, expect_adr
                    )
                except ResponseError as err:
                    if not err.retryable or attempt == retries:
                        raise
                except (
                    BmsTimeoutError,
                    ConnectionLostError,
                    FrameError,
                    DecodeError,
                    BusContentionError,
                ):
                    if attempt == retries:
                        raise
            raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt[T](
        self,
        request: bytes,
        command: int,
        decode: Callable[[R], T],
        timeout: float,
        expect_adr: int | None,
    ) -> T:
        await self.open()
        await self._wait_for_quiet()
        self._discard_stale()
        self._extractor = self.framing.extractor(request)
        transport = self._transport
        if transport is None:
            raise ConnectionLostError(f"{self.url}: connection lost")
        self._in_flight = request
        sent = time.monotonic()
        self._last_rx = sent
        try:
            if self.recorder:
                self.recorder("tx", request)
            transport.write(request)  # type: ignore[attr-defined]
            return await self._receive(request, command, decode, timeout, sent, expect_adr)
        except (BmsTimeoutError, DecodeError) as err:
            # Nothing acceptable in time: the line drains before the next request. With no
            # answer at all, the answer may still come: owed. (A refused one came.)
            if isinstance(err, BmsTimeoutError):
                adr = self.framing.address(request) if expect_adr is None else expect_adr
                self._owed.append(_Owed(request, adr, decode, sent + self.late_window))
            self._drain_pending = True
            raise
        finally:
            self._stop_gathering()
            self._in_flight = None
            self._quiet_since = time.monotonic()
            self._extractor = self.framing.extractor(None)

    async def _receive[T](
        self,
        request: bytes,
        command: int,
        decode: Callable[[R], T],
        timeout: float,
        sent: float,
        expect_adr: int | None,
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
            if isinstance(item, BusContentionError):
                self.stats.contended += 1
                raise item
            if isinstance(item, FrameError):
                if self._transport is None:
                    raise ConnectionLostError(f"{self.url}: connection lost") from item
                raise item
            raw, frame = item
            if frame.adr != self.framing.address(request):
                self.stats.address_mismatches += 1
            if expect_adr is not None and frame.adr != expect_adr:
                self.stats.stale_frames += 1
                continue  # another BMS on the bus, or another master's exchange
            try:
                self.framing.raise_for_error(frame, request)
                result = decode(frame)
            except ResponseError:
                self.stats.response_errors += 1
                raise
            except DecodeError as err:
                self.stats.stale_frames += 1
                rejected = err
                continue
            if self._owed_answer(request, frame):
                continue
            rtt = time.monotonic() - sent
            self.stats.replies += 1
            self.stats.last_rtt = rtt
            self.stats.rtt_by_command[command] = rtt
            self.stats.last_frames[command] = (request, raw)
            return result


@dataclass(frozen=True, slots=True)
class _Owed:
    """A request that timed out, and how to recognise its late answer."""

    request: bytes
    adr: int
    """The ADR its answer carries."""
    decode: Callable[[Any], object]
    expires: float
