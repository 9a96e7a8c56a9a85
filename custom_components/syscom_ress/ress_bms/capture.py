"""Recorded traffic: frames cut out of a capture, paired into requests and replies, redacted.

Three kinds of file hold traffic, and :func:`load_frames` reads each of them:

* a **capture** (``ress-bms capture``): JSON lines ``{"time", "dir": "tx"|"rx", "hex", "text"}``,
  one per chunk of bytes as it crossed the link (a chunk may hold part of a frame, or several);
* a **report** (``ress-bms report``) or a Home Assistant **diagnostics** download: one JSON
  object whose ``frames`` (under ``report`` in a diagnostics file) list whole frames as
  ``{"time", "dir", "text"}``;
* **plain text**: one frame (``~...``) per line, pasted from anywhere; text before the ``~`` is
  ignored, except that a line starting with ``tx``, ``sent`` or ``>`` is a frame we sent, and
  lines starting with ``#`` are comments.

Which frame is a request and which a reply is decided by the content, not only by the direction:
a passive capture hears both sides as ``rx``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
import json
from pathlib import Path
import time
from typing import Any, Final, Literal, cast

from .commands import Command
from .device import MIN_TEXT_BYTES, encode_text
from .errors import RETURN_CODES, FrameError
from .frame import Frame, FrameExtractor, decode_frame

type Direction = Literal["tx", "rx"]
"""The same as :data:`.link.Direction` (kept here: reading files needs no serial library)."""
type Role = Literal["request", "reply", "echo", "invalid"]
type Format = Literal["capture", "report", "diagnostics", "text"]

REDACTED: Final = "**REDACTED**"
"""What a redacted serial reads as (the same text as Home Assistant's diagnostics)."""
_DIRECTIONS: Final = ("tx", "rx")


@dataclass(frozen=True, slots=True)
class CapturedFrame:
    """One frame as it crossed the link (``raw`` from ``~`` to the checksum, CR stripped)."""

    direction: Direction
    raw: bytes
    time: float | None = None
    """Seconds since the first frame of the recording (``None`` where nobody noted it)."""

    @property
    def text(self) -> str:
        """The frame as printable text."""
        return self.raw.decode("ascii", "backslashreplace")

    def json(self) -> dict[str, Any]:
        """The ``frames`` entry of a report."""
        data: dict[str, Any] = {"dir": self.direction, "text": self.text}
        if self.time is not None:
            data = {"time": round(self.time, 3), **data}
        return data


class FrameRecorder:
    """A :class:`~.link.Link` recorder that keeps whole frames, cut per direction."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.frames: list[CapturedFrame] = []
        self.noise_bytes = 0
        """Bytes received outside any frame (line noise, another protocol)."""
        self._clock = clock
        self._start: float | None = None
        self._extractors = {d: FrameExtractor() for d in _DIRECTIONS}

    def __call__(self, direction: Direction, data: bytes, /) -> None:
        """Record one chunk, as :class:`~.link.Recorder` does."""
        now = self._clock()
        if self._start is None:
            self._start = now
        self.feed(direction, data, now - self._start)

    def feed(self, direction: Direction, data: bytes, moment: float | None) -> None:
        """Add one chunk received (or sent) ``moment`` seconds after the first."""
        extractor = self._extractors[direction]
        before = extractor.discarded
        for raw in extractor.feed(data):
            self.frames.append(CapturedFrame(direction, raw.rstrip(b"\r"), moment))
        self.noise_bytes += extractor.discarded - before


def frames_from_chunks(
    chunks: Iterable[tuple[Direction, bytes, float | None]],
) -> tuple[list[CapturedFrame], int]:
    """Cut frames out of recorded chunks; returns the frames and the count of noise bytes."""
    recorder = FrameRecorder()
    start: float | None = None
    for direction, data, moment in chunks:
        if moment is not None and start is None:
            start = moment
        recorder.feed(direction, data, None if moment is None or start is None else moment - start)
    return recorder.frames, recorder.noise_bytes


def frames_from_exchanges(last_frames: Mapping[int, tuple[bytes, bytes]]) -> list[CapturedFrame]:
    """The last request and reply of each command (``LinkStats.last_frames``), by command code."""
    frames = []
    for _command, (request, reply) in sorted(last_frames.items()):
        frames.append(CapturedFrame("tx", request.rstrip(b"\r")))
        frames.append(CapturedFrame("rx", reply.rstrip(b"\r")))
    return frames


# -- reading files -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoadedFrames:
    """What a file held: its frames, and the whole document for a report or diagnostics."""

    format: Format
    frames: list[CapturedFrame]
    noise_bytes: int = 0
    document: dict[str, Any] | None = None
    """The report itself (the ``report`` part of a diagnostics file)."""


def load_frames(path: str | Path) -> LoadedFrames:
    """Read a capture, report, diagnostics or plain-text file; raise ``ValueError`` if none."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    return parse_frames(text)


def parse_frames(text: str) -> LoadedFrames:
    """:func:`load_frames` on the text of a file."""
    try:
        whole = json.loads(text)
    except ValueError:
        whole = None
    if isinstance(whole, dict) and not _is_chunk(whole):
        return _from_document(whole)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines and all(line.startswith("{") for line in lines):
        chunks = [_chunk(line, number) for number, line in enumerate(lines, 1)]
        frames, noise = frames_from_chunks(chunks)
        return LoadedFrames("capture", frames, noise)
    framed = [line for line in lines if "~" in line and not line.startswith("#")]
    if framed:
        frames, noise = frames_from_chunks(_text_chunk(line) for line in framed)
        return LoadedFrames("text", frames, noise)
    raise ValueError("no frames: not a capture, a report, a diagnostics file or frame text")


_SENT_MARKS: Final = ("tx", "sent", "send", ">")


def _text_chunk(line: str) -> tuple[Direction, bytes, float | None]:
    """A pasted line: the frame from ``~``; ours (tx) when the text before says tx/sent/>."""
    start = line.index("~")
    said = line[:start].strip().lower()
    direction: Direction = "tx" if said.startswith(_SENT_MARKS) else "rx"
    return direction, line[start:].encode("ascii", "replace") + b"\r", None


def _is_chunk(data: Mapping[str, Any]) -> bool:
    return "dir" in data and ("hex" in data or "text" in data)


def _chunk(line: str, number: int) -> tuple[Direction, bytes, float | None]:
    try:
        data = json.loads(line)
        direction = data["dir"]
        if direction not in _DIRECTIONS:
            raise ValueError(f"direction {direction!r}")
        raw = bytes.fromhex(data["hex"]) if "hex" in data else data["text"].encode()
        moment = data.get("time")
        return cast("Direction", direction), raw, float(moment) if moment is not None else None
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"line {number} is not a capture line: {err}") from None


def _from_document(data: dict[str, Any]) -> LoadedFrames:
    fmt: Format = "report"
    if "frames" not in data:
        inner = data.get("data", data)
        if not isinstance(inner, dict) or not isinstance(inner.get("report"), dict):
            raise ValueError("a JSON file without frames (not a report or diagnostics download)")
        data, fmt = inner["report"], "diagnostics"
    frames = []
    for number, entry in enumerate(data.get("frames") or [], 1):
        try:
            direction = entry["dir"]
            if direction not in _DIRECTIONS:
                raise ValueError(f"direction {direction!r}")
            raw = str(entry["text"]).strip().encode("ascii", "replace")
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"frame {number} is not a frame entry: {err}") from None
        moment = entry.get("time")
        frames.append(CapturedFrame(direction, raw, float(moment) if moment is not None else None))
    return LoadedFrames(fmt, frames, 0, data)


# -- requests and replies ----------------------------------------------------------------------

_RESPONSE_CODES: Final = frozenset(RETURN_CODES)
"""Return codes a reply carries in CID2. 90H and E1H-E4H are command codes too."""
_COMMAND_CODES: Final = frozenset(int(c) for c in Command)


@dataclass(frozen=True, slots=True)
class Exchanged:
    """A frame with its role: a request, the reply to ``request``, an echo, or not a frame."""

    frame: CapturedFrame
    role: Role
    decoded: Frame | None = None
    request: Frame | None = None
    """For a reply (or an invalid frame in its place): the request it answers."""
    error: FrameError | None = None


def pair(frames: Iterable[CapturedFrame]) -> Iterator[Exchanged]:
    """Tell requests from replies, and give every reply the request it answers.

    What we sent is a request. A received frame is a request when its CID2 is not a return code,
    or when it is one of the codes both can be (90H, E1H-E4H) and no request is waiting: a
    passive capture hears the other master's requests. A received copy of the request in flight
    is the echo of a half-duplex adapter.
    """
    pending: Frame | None = None
    pending_raw: bytes | None = None
    for captured in frames:
        try:
            frame = decode_frame(captured.raw)
        except FrameError as err:
            yield Exchanged(captured, "invalid", request=pending, error=err)
            continue
        if captured.direction == "rx" and captured.raw == pending_raw:
            yield Exchanged(captured, "echo", frame)
            continue
        is_request = (
            captured.direction == "tx"
            or frame.cid2 not in _RESPONSE_CODES
            or (frame.cid2 in _COMMAND_CODES and pending is None)
        )
        if is_request:
            pending, pending_raw = frame, captured.raw
            yield Exchanged(captured, "request", frame)
        else:
            yield Exchanged(captured, "reply", frame, request=pending)
            pending = pending_raw = None


def redact_frames(
    frames: Sequence[CapturedFrame], placeholder: str = REDACTED
) -> list[CapturedFrame]:
    """Replace the serials in C2H replies with ``placeholder``; the frames stay valid.

    A C2H reply that is not a valid frame is replaced whole: it may still carry the serial.
    """
    out = []
    for item in pair(frames):
        captured = item.frame
        answers_serial = item.request is not None and item.request.cid2 == Command.SERIAL
        if answers_serial and item.role == "invalid":
            captured = replace(captured, raw=placeholder.encode())
        elif answers_serial and item.decoded is not None and item.role == "reply":
            info = _redacted_serials(item.decoded.info, placeholder)
            if info != item.decoded.info:
                raw = replace(item.decoded, info=info).encode().rstrip(b"\r")
                captured = replace(captured, raw=raw)
        out.append(captured)
    return out


def _redacted_serials(info: bytes, placeholder: str) -> bytes:
    if len(info) < MIN_TEXT_BYTES:
        return info
    fields = [info[i : i + 20] for i in range(0, len(info), 20)]
    hidden = [
        encode_text(placeholder, len(f)) if i < 2 and f.strip(b" \x00") else f
        for i, f in enumerate(fields)
    ]
    return b"".join(hidden)
