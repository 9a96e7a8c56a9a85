"""What the simulated Modbus RTU dialects (PACE Modbus, Seplos V3) share.

A request is cut out of the byte stream by its fixed 8-byte read form (unit, function, start,
count, CRC) with :class:`RequestCutter`; bytes that do not start such a frame are skipped one
at a time, so a write (fc 0x10, longer) or noise is never answered. A cut frame for a unit
that is not on the bus is ignored (silence, as Modbus requires). The addressed unit answers:

* a read of its register or coil image: ``unit, function, byte count, data, CRC``;
* exception 01 (illegal function) for a function it does not read (fc 06, an 8-byte write,
  included: no write is ever answered with success), 03 (illegal data value) for a count
  outside 1..0x7D (registers) or 1..0x7D0 (coils), 02 (illegal data address) when a
  requested register is not in the image.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from ...modbus import EXCEPTION_FLAG, MAX_COILS, MAX_REGISTERS, READ_COILS, crc16, with_crc
from ..pack import Pack
from ..stack import Stack

REQUEST_BYTES: Final = 8
ILLEGAL_FUNCTION: Final = 0x01
ILLEGAL_ADDRESS: Final = 0x02
ILLEGAL_VALUE: Final = 0x03

type Image = Callable[[Stack, Pack], Mapping[int, int]]
"""The registers (address -> word) or coils (address -> 0/1) one function reads from a pack."""


class RequestCutter:
    """Cut 8-byte Modbus read requests (CRC checked) out of received bytes."""

    __slots__ = ("_buffer", "discarded")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.discarded = 0

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the complete request frames found."""
        buf = self._buffer
        buf += data
        frames: list[bytes] = []
        while len(buf) >= REQUEST_BYTES:
            candidate = bytes(buf[:REQUEST_BYTES])
            if crc16(candidate[:-2]) == int.from_bytes(candidate[-2:], "little"):
                frames.append(candidate)
                del buf[:REQUEST_BYTES]
            else:
                del buf[0]
                self.discarded += 1
        return frames

    def clear(self) -> int:
        """Drop what is held."""
        dropped = len(self._buffer)
        self._buffer.clear()
        return dropped

    @property
    def awaited(self) -> int:
        """Bytes the request begun in the buffer still needs (every read is 8 bytes)."""
        return (REQUEST_BYTES - len(self._buffer)) if self._buffer else 0


def exception(unit: int, function: int, code: int) -> bytes:
    """An exception reply: ``unit, function | 0x80, code, CRC``."""
    return with_crc(bytes((unit, (function | EXCEPTION_FLAG) & 0xFF, code)))


@dataclass(frozen=True, slots=True)
class ModbusDialect:
    """One Modbus RTU dialect as the simulator speaks it."""

    images: Mapping[int, Image]
    """Function code -> what it reads."""
    unit_of: Callable[[Stack, int], Pack | None]
    """The pack behind a unit id (any that answers), or ``None``: silence."""

    def respond(self, stack: Stack, raw: bytes) -> bytes | None:
        """The reply to one 8-byte request frame, or ``None`` for silence."""
        if len(raw) != REQUEST_BYTES or crc16(raw[:-2]) != int.from_bytes(raw[-2:], "little"):
            return None
        unit, function = raw[0], raw[1]
        pack = self.unit_of(stack, unit)
        if pack is None or not pack.answers:
            return None
        image_of = self.images.get(function)
        if image_of is None:
            return exception(unit, function, ILLEGAL_FUNCTION)
        start, count = int.from_bytes(raw[2:4]), int.from_bytes(raw[4:6])
        limit = MAX_COILS if function == READ_COILS else MAX_REGISTERS
        if not 1 <= count <= limit:
            return exception(unit, function, ILLEGAL_VALUE)
        image = image_of(stack, pack)
        wanted = range(start, start + count)
        if any(address not in image for address in wanted):
            return exception(unit, function, ILLEGAL_ADDRESS)
        if function == READ_COILS:
            bits = sum(bool(image[a]) << i for i, a in enumerate(wanted))
            data = bits.to_bytes((count + 7) // 8, "little")
        else:
            data = b"".join(image[a].to_bytes(2) for a in wanted)
        return with_crc(bytes((unit, function, len(data))) + data)
