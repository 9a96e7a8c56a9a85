"""The two framings a link can speak: ASCII ``~...CR`` (VER 0x25 and 0x20) and Modbus RTU.

The link (:mod:`.link`) owns everything about an exchange that does not depend on the bytes:
one request in flight, timeouts on silence, stale input, late replies owed, draining, retries
and reconnects. A :class:`Framing` tells it the rest: how replies are cut out of the byte
stream, what a cut frame says, which ADR and command a request carries, and which replies are
errors. Nothing of that is written twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol, override

from .errors import FrameError
from .frame import Frame, FrameExtractor, decode_frame
from .modbus import EXCEPTION_FLAG, ModbusExceptionError, ReplyCutter, decode_request, frame_gap

RESPONSE_CODES: Final = frozenset({*range(0x0A), 0x90, 0x91, 0xE1, 0xE2, 0xE3, 0xE4})
"""CID2 values of an ASCII reply (RTN codes): anything else is a request."""
ASCII_FRAME_GAP: Final = 0.010
"""Quiet line before an ASCII request: CR ends the frame, the gap only spaces requests."""


class Reply(Protocol):
    """What the link reads of any parsed frame."""

    @property
    def adr(self) -> int:
        """The address the frame carries (ADR, or the Modbus unit)."""
        ...


class Extractor(Protocol):
    """Cuts frames out of received bytes."""

    discarded: int

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes; return the complete frames found."""
        ...

    def clear(self) -> int:
        """Drop what is held; return how many bytes."""
        ...

    @property
    def awaited(self) -> int:
        """Bytes the frame begun in what is held still needs, as its header says (0: unknown)."""
        ...


class Framing[R: Reply](Protocol):
    """How one framing cuts, reads and judges frames."""

    name: str

    def extractor(self, request: bytes | None) -> Extractor:
        """A fresh extractor for the reply to ``request`` (``None``: nothing in flight)."""
        ...

    def parse(self, raw: bytes) -> R:
        """The frame ``raw`` holds; :class:`~.errors.FrameError` (or its checksum subclass)."""
        ...

    def is_request(self, frame: R) -> bool:
        """Whether ``frame`` is a request (another master's), not a reply."""
        ...

    def tolerated(self, frame: R) -> str | None:
        """A framing flaw that is accepted (and counted), e.g. ``lchksum``; None when clean."""
        ...

    def raise_for_error(self, frame: R, request: bytes) -> None:
        """Raise the typed :class:`~.errors.ResponseError` when ``frame`` is a refusal."""
        ...

    def address(self, request: bytes) -> int:
        """The ADR or unit a request is sent to."""
        ...

    def command(self, request: bytes) -> int:
        """The command (CID2) or function code of a request."""
        ...

    def frame_gap(self, baudrate: int) -> float:
        """The quiet line a request needs before it at ``baudrate``, in seconds."""
        ...


class AsciiFraming(Framing[Frame]):
    """``~ VER ADR CID1 CID2 LENGTH INFO CHKSUM CR``: PACE VER 0x25 and the VER 0x20 family."""

    name = "ascii"
    """The frames carry SOI and EOI: one extractor cuts them whatever is in flight."""

    @override
    def extractor(self, request: bytes | None) -> FrameExtractor:
        return FrameExtractor()

    @override
    def parse(self, raw: bytes) -> Frame:
        return decode_frame(raw)

    @override
    def is_request(self, frame: Frame) -> bool:
        return frame.cid2 not in RESPONSE_CODES

    @override
    def tolerated(self, frame: Frame) -> str | None:
        return None if frame.lchksum_ok else "lchksum"

    @override
    def raise_for_error(self, frame: Frame, request: bytes) -> None:
        frame.raise_for_rtn(self.command(request))

    @override
    def address(self, request: bytes) -> int:
        return int(request[3:5], 16)

    @override
    def command(self, request: bytes) -> int:
        return int(request[7:9], 16)

    @override
    def frame_gap(self, baudrate: int) -> float:
        return ASCII_FRAME_GAP


@dataclass(frozen=True, slots=True)
class ModbusFrame:
    """A Modbus RTU reply frame: unit, function, the bytes between it and the CRC."""

    adr: int
    function: int
    body: bytes
    raw: bytes


class _Discard:
    """Nothing in flight: RTU bytes cannot be framed without knowing what was asked."""

    __slots__ = ("discarded",)

    def __init__(self) -> None:
        self.discarded = 0

    def feed(self, data: bytes) -> list[bytes]:
        self.discarded += len(data)
        return []

    def clear(self) -> int:
        return 0

    @property
    def awaited(self) -> int:
        return 0


class ModbusFraming(Framing["ModbusFrame"]):
    """Modbus RTU: replies cut by unit, function and byte count of the read in flight."""

    name = "modbus"

    @override
    def extractor(self, request: bytes | None) -> Extractor:
        if request is None:
            return _Discard()
        return ReplyCutter(decode_request(request))

    @override
    def parse(self, raw: bytes) -> ModbusFrame:
        if len(raw) < 5:
            raise FrameError(f"{len(raw)} bytes are not a Modbus reply")
        return ModbusFrame(raw[0], raw[1], raw[2:-2], raw)

    @override
    def is_request(self, frame: ModbusFrame) -> bool:
        return False

    @override
    def tolerated(self, frame: ModbusFrame) -> str | None:
        return None

    @override
    def raise_for_error(self, frame: ModbusFrame, request: bytes) -> None:
        if frame.function & EXCEPTION_FLAG:
            raise ModbusExceptionError(frame.adr, frame.function & 0x7F, frame.body[0])

    @override
    def address(self, request: bytes) -> int:
        return request[0]

    @override
    def command(self, request: bytes) -> int:
        return request[1]

    @override
    def frame_gap(self, baudrate: int) -> float:
        """3.5 character times: the silence that ends an RTU frame (MODBUS serial line 2.5.1.1)."""
        return frame_gap(baudrate)


ASCII: Final = AsciiFraming()
MODBUS: Final = ModbusFraming()
