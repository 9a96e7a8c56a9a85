"""Pack count (90H), version (C1H), serials (C2H), capacities (A6H) and clock (B1H/B2H)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from .buffer import Reader, Writer
from .errors import DecodeError


def decode_pack_count(info: bytes) -> int:
    """90H: one byte, the number of packs the master sees (always 1 on a slave)."""
    if len(info) != 1:
        raise DecodeError(f"pack count reply has {len(info)} bytes, expected 1")
    return info[0]


def _text(raw: bytes) -> str:
    """ASCII padded with spaces or NULs; padding stripped."""
    return raw.replace(b"\x00", b" ").decode("ascii", "replace").strip()


MIN_TEXT_BYTES: Final = 10
"""C1H/C2H carry 20 or 40 characters; a shorter reply is another command's late answer."""


def decode_version(info: bytes) -> str:
    """C1H: 20 ASCII characters of software/hardware version (40 with a Bluetooth name)."""
    if len(info) < MIN_TEXT_BYTES:
        raise DecodeError(f"version reply has {len(info)} bytes, expected 20 or 40")
    return _text(info[:20])


@dataclass(frozen=True, slots=True)
class Serials:
    """C2H: the BMS serial and, when sent, the pack serial."""

    bms: str
    pack: str | None


def decode_serials(info: bytes) -> Serials:
    """C2H: 20 characters of BMS serial, then optionally 20 of pack serial."""
    if len(info) < MIN_TEXT_BYTES:
        raise DecodeError(f"serial reply has {len(info)} bytes, expected 20 or 40")
    pack = _text(info[20:40]) if len(info) > 20 else ""
    return Serials(_text(info[:20]), pack or None)


def encode_text(value: str, size: int = 20) -> bytes:
    """Pad ASCII text with spaces to ``size`` bytes (C1H/C2H replies)."""
    return value.encode("ascii")[:size].ljust(size, b" ")


@dataclass(frozen=True, slots=True)
class Capacities:
    """A6H: remaining, full and design capacity in Ah."""

    remaining: float
    full: float
    design: float


def decode_capacities(info: bytes) -> Capacities:
    """A6H: three words in 10 mAh."""
    if len(info) != 6:
        raise DecodeError(f"capacity reply has {len(info)} bytes, expected 6")
    reader = Reader(info)
    return Capacities(reader.u16() / 100, reader.u16() / 100, reader.u16() / 100)


def encode_capacities(value: Capacities) -> bytes:
    """A6H reply payload."""
    writer = Writer()
    for ah in (value.remaining, value.full, value.design):
        writer.u16(round(ah * 100))
    return bytes(writer.data)


def decode_clock(info: bytes) -> datetime:
    """B1H: YY MM DD hh mm ss, binary, year = 2000 + YY. Naive: the BMS keeps local time."""
    if len(info) != 6:
        raise DecodeError(f"clock reply has {len(info)} bytes, expected 6")
    year, month, day, hour, minute, second = info
    try:
        return datetime(2000 + year, month, day, hour, minute, second)
    except ValueError as err:
        raise DecodeError(f"invalid clock value {info.hex()}") from err


def encode_clock(value: datetime) -> bytes:
    """B2H request payload (and B1H reply)."""
    if not 2000 <= value.year <= 2255:
        raise ValueError("the BMS clock holds years 2000 to 2255")
    return bytes(
        (value.year - 2000, value.month, value.day, value.hour, value.minute, value.second)
    )
