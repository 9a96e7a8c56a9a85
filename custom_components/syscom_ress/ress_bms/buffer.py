"""Big-endian readers and writers over INFO bytes, and the unit conversions they share."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Final

from .errors import DecodeError

KELVIN_OFFSET: Final = 2730
"""PACE temperatures are 0.1 K with 0 °C = 2730 ([PACE-2018] Table A.4: 25.5 °C = 2985)."""
TEMPERATURE_ABSENT: Final = 0x8000
"""A temperature word meaning "sensor absent, hide it" ([PACE-V3.1] A.12)."""


def celsius(raw: int) -> float:
    """Convert a 0.1 K temperature word to °C."""
    return round((raw - KELVIN_OFFSET) / 10, 1)


def deci_kelvin(value: float) -> int:
    """Convert °C to a 0.1 K temperature word."""
    return round(value * 10) + KELVIN_OFFSET


class Reader:
    """A cursor over INFO bytes that raises :class:`DecodeError` when the data runs out."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    @property
    def remaining(self) -> int:
        """Bytes not read yet."""
        return len(self.data) - self.pos

    def take(self, size: int) -> bytes:
        """Read ``size`` raw bytes."""
        if size < 0 or self.pos + size > len(self.data):
            raise DecodeError(
                f"payload too short: wanted {size} bytes at offset {self.pos} of {len(self.data)}"
            )
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def u8(self) -> int:
        """Read an unsigned byte."""
        return self.take(1)[0]

    def u16(self) -> int:
        """Read an unsigned big-endian word."""
        return int.from_bytes(self.take(2))

    def i16(self) -> int:
        """Read a signed big-endian word."""
        return int.from_bytes(self.take(2), signed=True)


class Writer:
    """Build INFO bytes field by field."""

    __slots__ = ("data",)

    def __init__(self) -> None:
        self.data = bytearray()

    def u8(self, value: int) -> Writer:
        """Append an unsigned byte."""
        self.data += value.to_bytes(1)
        return self

    def u16(self, value: int) -> Writer:
        """Append an unsigned big-endian word."""
        self.data += value.to_bytes(2)
        return self

    def i16(self, value: int) -> Writer:
        """Append a signed big-endian word."""
        self.data += value.to_bytes(2, signed=True)
        return self

    def raw(self, value: bytes) -> Writer:
        """Append raw bytes."""
        self.data += value
        return self


def solve_trailer(
    data: bytes,
    count: int,
    candidates: Iterable[int],
    block_size: Callable[[bytes, int, int], int | None],
) -> int | None:
    """The first trailer length for which ``count`` blocks after the 2-byte header fill ``data``.

    42H and 44H replies carry a firmware-dependent number of bytes after each pack's block, the
    same for every block; nothing in the frame says how many. ``block_size(data, pos, trailer)``
    gives a block's size at ``pos`` (``None`` when no block can start there).
    """
    for trailer in candidates:
        pos = 2
        for _ in range(count):
            size = block_size(data, pos, trailer)
            if size is None:
                break
            pos += size
        else:
            if pos == len(data):
                return trailer
    return None
