"""The PACE "paceic" frame: ``~ VER ADR CID1 CID2 LENGTH INFO CHKSUM CR`` in ASCII hex.

Sources: [PACE-2018] §2.1-2.4, [PACE-V3.1] §2 (see docs/protocol.md). A frame carrying n INFO
bytes is 18 + 2n characters long, plus the CR.
"""

from __future__ import annotations

from dataclasses import dataclass
import re
from typing import Final

from .errors import ChecksumError, FrameError, response_error

SOI: Final = 0x7E  # "~"
EOI: Final = 0x0D  # CR
VER_PACE: Final = 0x25
VER_PYLON: Final = 0x20
CID1_LFP: Final = 0x46
MAX_LENID: Final = 0xFFF
MAX_FRAME_CHARS: Final = 18 + MAX_LENID + 1  # header and checksum, INFO, trailing CR

_HEX: Final = re.compile(rb"[0-9A-Fa-f]*")


def checksum(body: bytes) -> int:
    """CHKSUM: two's complement of the sum of the ASCII codes between SOI and CHKSUM."""
    return -sum(body) & 0xFFFF


def length_field(lenid: int) -> int:
    """LENGTH: LENID (12 bits) with its LCHKSUM nibble on top."""
    if not 0 <= lenid <= MAX_LENID or lenid % 2:
        raise FrameError(f"LENID {lenid} is not an even number of characters up to 4095")
    lchksum = -((lenid >> 8) + ((lenid >> 4) & 0xF) + (lenid & 0xF)) & 0xF
    return lchksum << 12 | lenid


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame. In a response, ``cid2`` holds the return code (RTN)."""

    ver: int
    adr: int
    cid1: int
    cid2: int
    info: bytes
    lchksum_ok: bool = True

    def encode(self) -> bytes:
        """Return the frame as sent on the wire, CR included."""
        info = self.info.hex().upper().encode()
        body = b"%02X%02X%02X%02X%04X" % (
            self.ver,
            self.adr,
            self.cid1,
            self.cid2,
            length_field(len(info)),
        )
        body += info
        return b"~" + body + b"%04X" % checksum(body) + b"\r"

    def raise_for_rtn(self, command: int | None = None) -> None:
        """Raise the typed :class:`~.errors.ResponseError` when RTN is not 00."""
        if self.cid2:
            raise response_error(self.cid2, command)


def encode_frame(ver: int, adr: int, cid1: int, cid2: int, info: bytes = b"") -> bytes:
    """Encode one frame, CR included."""
    return Frame(ver, adr, cid1, cid2, info).encode()


def decode_frame(raw: bytes) -> Frame:
    """Decode one frame from ``~`` to the checksum; a trailing CR is optional.

    Raises :class:`FrameError` for anything that is not a frame and :class:`ChecksumError` for a
    wrong CHKSUM. A wrong LCHKSUM is tolerated (some firmware is reported to get it wrong) and
    reported through ``Frame.lchksum_ok``; CHKSUM and the real character count still hold.
    """
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    if len(raw) < 17 or raw[0] != SOI:
        raise FrameError(f"not a frame: {raw[:40]!r}")
    text = raw[1:]
    if not _HEX.fullmatch(text):
        raise FrameError("frame contains characters that are not hexadecimal")
    if len(text) % 2:
        raise FrameError("frame has an odd number of hexadecimal characters")
    body, chk = text[:-4], int(text[-4:], 16)
    if checksum(body.upper()) != chk:
        raise ChecksumError(f"CHKSUM {chk:04X} does not match {checksum(body.upper()):04X}")
    ver, adr, cid1, cid2 = (int(body[i : i + 2], 16) for i in range(0, 8, 2))
    length = int(body[8:12], 16)
    lenid = length & MAX_LENID
    info = body[12:]
    if lenid != len(info):
        raise FrameError(f"LENID says {lenid} INFO characters, the frame has {len(info)}")
    lchksum_ok = length_field(lenid) == length
    return Frame(ver, adr, cid1, cid2, bytes.fromhex(info.decode()), lchksum_ok)


class FrameExtractor:
    """Cut frames out of a byte stream.

    Skips garbage before ``~``, reads to CR, and copes with frames split across reads or glued
    together in one read. A ``~`` inside an unfinished frame restarts it: the start was garbage.
    """

    __slots__ = ("_buffer", "discarded")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.discarded = 0
        """Bytes thrown away as noise (outside a frame, or an overlong frame)."""

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the complete raw frames (``~`` .. CR) found so far."""
        buf = self._buffer
        buf += data
        frames: list[bytes] = []
        while True:
            start = buf.find(b"~")
            if start < 0:
                self.discarded += len(buf)
                buf.clear()
                break
            if start:
                self.discarded += start
                del buf[:start]
            end = buf.find(b"\r")
            restart = buf.find(b"~", 1, end if end >= 0 else len(buf))
            if restart > 0:
                self.discarded += restart
                del buf[:restart]
                continue
            if end < 0:
                if len(buf) > MAX_FRAME_CHARS:
                    self.discarded += len(buf)
                    buf.clear()
                break
            frames.append(bytes(buf[: end + 1]))
            del buf[: end + 1]
        return frames

    def clear(self) -> int:
        """Drop any partial frame; return how many bytes were dropped."""
        dropped = len(self._buffer)
        self.discarded += dropped
        self._buffer.clear()
        return dropped

    @property
    def pending(self) -> int:
        """Bytes of an unfinished frame held in the buffer."""
        return len(self._buffer)

    @property
    def awaited(self) -> int:
        """Characters the unfinished frame still needs, as its LENGTH announces (0: unknown)."""
        buf = self._buffer
        if len(buf) < 13:
            return 0
        try:
            lenid = int(buf[9:13], 16) & MAX_LENID
        except ValueError:
            return 0  # not a header: the frame is garbage and ends at its CR, or a restart
        return max(0, lenid + 18 - len(buf))
