"""What the VER 0x20 dialects (Seplos V2, Pylontech, EG4) share beyond the frame codec.

The three speak the PACE ``~...CR`` frame unchanged (:mod:`..frame`, with VER 0x20 and their own
CID1; dialects.md 1). Here: request encoding that only ever emits a dialect's read commands, the
checks every reply passes before its layout is read (VER, CID1, RTN), an exact-fit reader for
field tables, the reordering of temperatures into the shared roles of
:class:`~..analog.PackAnalog`, and bit tables (of :class:`~.base.Flag`) that map a dialect's
alarm bits to the shared :data:`~..status.STATUS_BITS` keys where the meaning is the same and
keep the rest by the dialect's own names (:class:`Ver20Status`, a
:class:`~.base.DialectStatus` with per-cell flags).

"User-defined" counts: in every 0x20 layout the byte P counts the items that follow it (Seplos
42H: 10 words, Pylontech 42H: 2 or 4 items, EG4 42H: 15 items, Seplos 44H: 20 bytes, EG4 44H:
9 items). Each dialect reads its item table by P where the items' sizes are known and refuses a
P it cannot size.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from ..errors import DecodeError, ForbiddenCommandError
from ..frame import VER_PYLON, Frame, decode_frame, encode_frame
from ..status import (
    BITS_BY_KEY,
    EXTRA_BYTES,
    PackStatus,
    StatusByte,
    balance_bytes,
    status_bytes,
)
from .base import DialectStatus, Field, Flag, Kind, Value, active_flags, read_fields

VER: Final = VER_PYLON
"""0x20: the VER every dialect of this family sends and answers with."""

WRITES_IN_SOME_DIALECT: Final = frozenset(
    {0x45, 0x49, 0x4E, 0x91, 0x94, 0x95, 0x99, 0x9A, 0x9B, 0x9C, 0xA0, 0xA1, 0xA2}
)
"""CID2s that write in at least one dialect a battery on the bus may speak (dialects.md 7.1):
Seplos 45H/49H/4EH/A0H-A2H, EG4 45H/49H/4EH, Pylontech RS232 91H/99H and RS485 94H/95H, PACE
99H-9CH. No 0x20 module ever encodes one of them."""

type Reply = Frame | bytes | str
"""A reply as the link hands it over (:class:`~..frame.Frame`) or as received (``~...``)."""


def check_reads(commands: frozenset[int]) -> frozenset[int]:
    """A module's ``READ_COMMANDS``, refused at import if it holds a write of any dialect."""
    writes = commands & WRITES_IN_SOME_DIALECT
    if writes:
        raise ValueError(f"write commands in a read set: {sorted(writes)}")
    return commands


def encode_read(
    reads: frozenset[int], cid1: int, cid2: int, address: int, info: bytes = b""
) -> bytes:
    """A VER 0x20 request for one of ``reads``; anything else is refused before a frame exists."""
    if cid2 not in reads or cid2 in WRITES_IN_SOME_DIALECT:
        raise ForbiddenCommandError(f"command {cid2:02X}H is not a read of this dialect")
    if not 0 <= address < 0xFF:
        raise ValueError(f"address {address} out of range (0xFF is a broadcast, never sent)")
    return encode_frame(VER, address, cid1, cid2, info)


def reply_frame(
    reply: Reply, cid1: Collection[int], command: int, *, any_ver: bool = False
) -> Frame:
    """The frame of a reply to ``command``, checked: VER 0x20, a CID1 of the dialect, RTN 00.

    Raises :class:`~..errors.FrameError` for bytes that are no frame,
    :class:`~..errors.DecodeError` for another VER or CID1 (not this dialect's reply) and
    :class:`~..errors.ResponseError` for a non-zero RTN (also one no document lists, such as
    the 5AH a Seplos slave keeps in that slot). ``any_ver`` skips the VER check (4FH: the
    reply's VER is the answer).
    """
    if isinstance(reply, Frame):
        frame = reply
    else:
        frame = decode_frame(reply.encode("ascii", "replace") if isinstance(reply, str) else reply)
    if not any_ver and frame.ver != VER:
        raise DecodeError(f"reply VER {frame.ver:02X}H, this dialect answers with {VER:02X}H")
    if frame.cid1 not in cid1:
        raise DecodeError(f"reply CID1 {frame.cid1:02X}H is not this dialect's")
    frame.raise_for_rtn(command)
    return frame


class Values:
    """Values read by a field table, by name, with their types checked."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Value]) -> None:
        self._values = values

    def _get(self, name: str) -> Value:
        return self._values[name]

    def __contains__(self, name: str) -> bool:
        return name in self._values

    def names(self) -> tuple[str, ...]:
        """The names read, in layout order."""
        return tuple(self._values)

    def merged(self, other: Values) -> Values:
        """These values and ``other``'s (read by the next table of the same block)."""
        return Values({**self._values, **other._values})

    def integer(self, name: str) -> int:
        """An unscaled number."""
        value = self._get(name)
        if not isinstance(value, int):
            raise TypeError(f"{name} is not an integer")
        return value

    def number(self, name: str) -> float:
        """A number, scaled or not."""
        value = self._get(name)
        if not isinstance(value, int | float):
            raise TypeError(f"{name} is not a number")
        return float(value)

    def integers(self, name: str) -> tuple[int, ...]:
        """A counted run of unscaled numbers."""
        value = self._get(name)
        if not isinstance(value, tuple) or not all(isinstance(v, int) for v in value):
            raise TypeError(f"{name} is not a run of integers")
        return tuple(int(v) for v in value)

    def numbers(self, name: str) -> tuple[float, ...]:
        """A counted run of numbers."""
        value = self._get(name)
        if not isinstance(value, tuple):
            raise TypeError(f"{name} is not a run of numbers")
        return tuple(float(v) for v in value)

    def text(self, name: str) -> str:
        """An ASCII field, NULs as spaces, stripped."""
        value = self._get(name)
        if not isinstance(value, str):
            raise TypeError(f"{name} is not text")
        return value

    def raw(self, name: str) -> bytes:
        """Bytes as sent."""
        value = self._get(name)
        if not isinstance(value, bytes):
            raise TypeError(f"{name} is not raw bytes")
        return value

    def big_endian(self, name: str) -> int:
        """A ``raw`` field read as one unsigned big-endian number (Pylontech's 24-bit values)."""
        return int.from_bytes(self.raw(name))


def read_exact(layout: Sequence[Field], data: bytes, what: str, pos: int = 0) -> Values:
    """Read ``layout`` from ``data`` at ``pos``; the data must end where the layout does."""
    values, end = read_fields(layout, data, pos)
    if end != len(data):
        raise DecodeError(f"{what}: {len(data) - end} bytes left over after the layout")
    return Values(values)


def read_part(layout: Sequence[Field], data: bytes, pos: int) -> tuple[Values, int]:
    """Read ``layout`` from ``data`` at ``pos``; return the values and the end position."""
    values, end = read_fields(layout, data, pos)
    return Values(values), end


def deci_kelvin(name: str, kind: Kind = "u16", count: int | str | None = None) -> Field:
    """A temperature field in 0.1 K with 0 °C = 2731, read in °C (all three 0x20 documents)."""
    return Field(name, kind, scale=0.1, offset=-273.1, count=count, digits=1)


def text(name: str, size: int) -> Field:
    """An ASCII field of ``size`` bytes."""
    return Field(name, "text", size=size)


def shared_roles[T](cells: Sequence[T], mos: T | None, env: T | None, absent: T) -> tuple[T, ...]:
    """Temperatures (or their 44H codes) in the order :class:`~..analog.PackAnalog` reads roles.

    Up to four cell sensors are followed by the MOS/power value and then the environment value
    (indexes 4 and 5); with more than four cell sensors the last two are MOS and environment.
    A role the pack does not report is ``absent`` where a later word needs the slot.
    """
    cells = tuple(cells)
    if len(cells) > 4:
        return (*cells, absent if mos is None else mos, absent if env is None else env)
    if mos is None and env is None:
        return cells
    padded = cells + (absent,) * (4 - len(cells))
    mos_value = absent if mos is None else mos
    return (*padded, mos_value) if env is None else (*padded, mos_value, env)


def cells_of(bits: int, cells: int) -> tuple[int, ...]:
    """1-based cell numbers whose bit is set, bit 0 = cell 1, up to the pack's cell count."""
    return tuple(n + 1 for n in range(cells) if bits >> n & 1)


@dataclass(frozen=True, slots=True)
class Own:
    """A dialect bit with no shared key: kept under the dialect's own name."""

    name: str


type BitEntry = str | Own | None
"""A bit of a table: a :data:`~..status.STATUS_BITS` key, an :class:`Own` name, or ``None``
(reserved, or "internal" in the document)."""


@dataclass(frozen=True, slots=True)
class BitTable:
    """A dialect's status bits as :class:`~.base.Flag` per field, and its per-cell bit fields."""

    flags: Mapping[str, tuple[Flag, ...]]
    """Field name (in the dialect's layout) -> its documented bits."""
    cell_fields: Mapping[str, tuple[str, ...]]
    """Per-cell flag name -> the fields holding it, cells 1-8 first (or one wide field).
    ``balancing`` goes to the shared balance bytes; any other name is the dialect's own."""
    widths: Mapping[str, int]
    """Bits per field (8 unless a field is wider)."""

    def __len__(self) -> int:
        return sum(len(flags) for flags in self.flags.values())

    @property
    def own_names(self) -> tuple[str, ...]:
        """Every name this dialect reports without a shared key: the bits, then the cell flags."""
        names = [f.name for flags in self.flags.values() for f in flags if f.key is None]
        return (*names, *(name for name in self.cell_fields if name != "balancing"))

    @property
    def shared_keys(self) -> tuple[str, ...]:
        """Every shared key this dialect can set."""
        return tuple(f.key for flags in self.flags.values() for f in flags if f.key is not None)

    @property
    def field_names(self) -> tuple[str, ...]:
        """Every status field the table reads, bit fields first."""
        cells = (n for names in self.cell_fields.values() for n in names)
        return tuple(dict.fromkeys((*self.flags, *cells)))


def bit_table(
    fields: Mapping[str, Sequence[BitEntry]],
    cell_fields: Mapping[str, tuple[str, ...]] = {},
    widths: Mapping[str, int] = {},
) -> BitTable:
    """A :class:`BitTable` from bit lists written bit 0 first; shared keys are checked here."""
    flags: dict[str, tuple[Flag, ...]] = {}
    for name, entries in fields.items():
        if len(entries) > widths.get(name, 8):
            raise ValueError(f"{name}: more bits than the field has")
        row: list[Flag] = []
        for bit, entry in enumerate(entries):
            if isinstance(entry, Own):
                if entry.name in BITS_BY_KEY:
                    raise ValueError(f"{name} bit {bit}: {entry.name!r} is a shared key")
                row.append(Flag(bit, entry.name))
            elif entry is not None:
                if entry not in BITS_BY_KEY:
                    raise ValueError(f"{name} bit {bit}: {entry!r} is not a STATUS_BITS key")
                row.append(Flag(bit, entry, entry))
        flags[name] = tuple(row)
    table = BitTable(flags, dict(cell_fields), dict(widths))
    if len(table.shared_keys) != len(set(table.shared_keys)):
        raise ValueError("a shared key is mapped from two bits")
    return table


@dataclass(frozen=True, slots=True)
class Ver20Status(DialectStatus):
    """A 44H block of a VER 0x20 dialect: a :class:`~.base.DialectStatus`, and its per-cell flags.

    ``status`` has the shared bits set where the dialect's bit means the same, the balance bytes
    from the dialect's balance bits, the per-value codes with temperatures in the shared roles.
    ``extra`` names the set bits with no shared key (the module's ``OWN_BITS`` lists them all).
    ``raw`` holds every status field as sent by its layout name, the reply's ``data_flag``
    (informative only, dialects.md 8.9) and undocumented trailing bytes as ``trailing_1`` ...
    where a dialect accepts them.
    """

    extra_cells: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    """Per-cell flags with no shared key (Seplos wire disconnection, Pylontech cell error):
    name -> the 1-based cells flagged; only flags with a cell set (also named in ``extra``)."""


def build_status(
    table: BitTable,
    values: Values,
    *,
    address: int,
    temperature_codes: tuple[int, ...],
    codes: tuple[int, int, int],
    data_flag: int,
) -> Ver20Status:
    """Map one block's status fields through ``table`` into a :class:`Ver20Status`.

    ``codes`` are the charge-current, pack-voltage and discharge-current codes; a field the
    block did not carry reads as clear.
    """
    cell_codes = values.integers("cell_codes")
    shared: list[str] = []
    extra: list[str] = []
    for name, flags in table.flags.items():
        keys, own = active_flags(values.integer(name) if name in values else 0, flags)
        shared += keys
        extra += own
    extra_cells: dict[str, tuple[int, ...]] = {}
    balancing: tuple[int, ...] = ()
    for name, parts in table.cell_fields.items():
        word, shift = 0, 0
        for field_name in parts:
            if field_name in values:
                word |= values.integer(field_name) << shift
            shift += table.widths.get(field_name, 8)
        flagged = cells_of(word, min(len(cell_codes), shift))
        if name == "balancing":
            balancing = tuple(c for c in flagged if c <= 16)
        elif flagged:
            extra_cells[name] = flagged
            extra.append(name)
    used = {BITS_BY_KEY[key].byte for key in shared}
    extras = max((EXTRA_BYTES.index(b) + 1 for b in used if b in EXTRA_BYTES), default=0)
    bytes_ = status_bytes(shared, extras)
    bytes_[StatusByte.BALANCE_1], bytes_[StatusByte.BALANCE_2] = balance_bytes(balancing)
    status = PackStatus(address, cell_codes, temperature_codes, *codes, bytes_)
    trailing = (name for name in values.names() if name.startswith("trailing_"))
    raw = {name: values.integer(name) for name in (*table.field_names, *trailing) if name in values}
    return Ver20Status(status, tuple(extra), {"data_flag": data_flag, **raw}, extra_cells)


@dataclass(frozen=True, slots=True)
class ManufacturerInfo:
    """51H of Pylontech ([PYLON-3.3] 3.2) and Seplos V2 (syssi's fixture; dialects.md 8.11)."""

    device_name: str
    software_version: tuple[int, int]
    manufacturer: str

    @property
    def version(self) -> str:
        """The two version bytes as ``major.minor``."""
        return ".".join(map(str, self.software_version))


MANUFACTURER: Final = (
    text("device_name", 10),
    Field("software_version", "u8", count=2),
    text("manufacturer", 20),
)
"""51H INFO: 10 ASCII device name, 2 version bytes, 20 ASCII manufacturer (32 bytes)."""


def read_manufacturer_info(info: bytes) -> ManufacturerInfo:
    """The 32-byte 51H INFO of :data:`MANUFACTURER`."""
    values = read_exact(MANUFACTURER, info, "51H")
    major, minor = values.integers("software_version")
    return ManufacturerInfo(values.text("device_name"), (major, minor), values.text("manufacturer"))
