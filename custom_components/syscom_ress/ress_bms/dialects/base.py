"""The shared base of every dialect: what a dialect can do, and layouts as field tables.

A dialect module (one per protocol a rack battery may speak: ``pace``, ``seplos``,
``pylontech``, ``eg4``, ``pace_modbus``, ``seplos_v3``) describes itself with a
:class:`DialectInfo` and decodes its replies into the typed values the rest of the library
already uses (:class:`~..analog.PackAnalog`, :class:`~..status.PackStatus`). Its frame layouts
are tables of :class:`Field` (byte layouts read in order, with counted repeats: the ASCII
dialects) or :class:`Register` (register maps: the Modbus dialects), read by
:func:`read_fields` and :func:`read_registers`; no decoder walks offsets by hand.

Code above the dialects never asks for a dialect by name: it asks :attr:`DialectInfo.can`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Final, Literal, Protocol

from ..analog import PackAnalog
from ..errors import DecodeError
from ..framing import Framing, ModbusFrame
from ..modbus import ReadReply, ReadRequest, decode_reply
from ..status import PackStatus

type Kind = Literal["u8", "u16", "i16", "u32", "i32", "text", "raw"]
type Value = int | float | str | bytes | tuple[int | float, ...]

SIZES: Final[dict[str, int]] = {"u8": 1, "u16": 2, "i16": 2, "u32": 4, "i32": 4}


class Capability(StrEnum):
    """What a dialect's documents define precisely enough to use."""

    TELEMETRY = "telemetry"
    """Cell and pack voltages, current, temperatures, capacities, SOC."""
    ALARMS = "alarms"
    """Protection, alarm and fault bits, MOS states."""
    PARAMETERS_READ = "parameters_read"
    PARAMETERS_WRITE = "parameters_write"
    """Only where the document defines the write frame byte for byte, and its read-back."""
    CONTROLS = "controls"
    """MOS switching, forced shutdown, buzzer and the like."""
    HISTORY = "history"
    CLOCK = "clock"


class MultiPack(StrEnum):
    """How a dialect reaches every pack of a stack."""

    MASTER_RELAY = "master_relay"
    """The master answers for every pack, all at once (COMMAND FF) or one by one (PACE)."""
    PER_ADDRESS = "per_address"
    """Each pack answers at its own address on a multi-drop bus."""
    GROUP_MASTER = "group_master"
    """A group master answers for its group, each slave at its own address (Pylontech)."""
    SYSTEM_UNIT = "system_unit"
    """A system unit holds the bank summary, each pack its own unit (Seplos V3)."""
    SINGLE = "single"
    """One pack per link as far as the documents tell."""


@dataclass(frozen=True, slots=True)
class DialectInfo:
    """What one dialect is, speaks and can do."""

    name: str
    """The key used in config entries, the CLI's ``--dialect`` and the simulator."""
    title: str
    framing: Framing[Any]
    baudrates: tuple[int, ...]
    """Tried in this order; the first is the document's default."""
    capabilities: frozenset[Capability]
    multipack: MultiPack
    brands: tuple[str, ...] = ()
    """Batteries known to speak it (docs' supported-batteries table)."""
    reasons: Mapping[Capability, str] = field(default_factory=dict)
    """Why a capability is missing (read-only where no document defines the write)."""
    version: int | None = None
    """The VER byte of its ASCII frames (0x25, 0x20); ``None`` for Modbus RTU."""
    reads: frozenset[int] = frozenset()
    """The ASCII commands (CID2) it reads with: the only ones detection may send it."""

    def can(self, capability: Capability) -> bool:
        """Whether this dialect does ``capability``."""
        return capability in self.capabilities


@dataclass(frozen=True, slots=True)
class Field:
    """One item of a byte layout, read in order.

    ``count`` repeats the item: a number, or the name of an earlier field that holds it.
    ``scale`` multiplies numbers (0.001 for mV -> V); ``offset`` is added after scaling
    (-273.1 for 0.1 K words). ``text`` and ``raw`` take ``size`` bytes.
    """

    name: str
    kind: Kind = "u16"
    scale: float = 1.0
    offset: float = 0.0
    count: int | str | None = None
    size: int = 0
    digits: int | None = None
    """Round a scaled value to this many digits (None: keep ints as ints)."""

    def _size(self) -> int:
        return self.size if self.kind in ("text", "raw") else SIZES[self.kind]


def _number(raw: bytes, kind: Kind) -> int:
    return int.from_bytes(raw, signed=kind in ("i16", "i32"))


def _scaled(item: Field | Register, raw: int) -> int | float:
    if item.scale == 1.0 and item.offset == 0.0:
        return raw
    value = raw * item.scale + item.offset
    return round(value, item.digits) if item.digits is not None else value


def read_fields(layout: Sequence[Field], data: bytes, pos: int = 0) -> tuple[dict[str, Value], int]:
    """Read ``layout`` from ``data`` at ``pos``; return the values by name and the end position.

    Raises :class:`~..errors.DecodeError` when the data runs out or a count is not known.
    """
    values: dict[str, Value] = {}
    for item in layout:
        count = item.count
        if isinstance(count, str):
            known = values.get(count)
            if not isinstance(known, int):
                raise DecodeError(f"{item.name}: count field {count!r} not read before")
            count = known
        size = item._size()
        repeats = 1 if count is None else count
        end = pos + size * repeats
        if repeats < 0 or end > len(data):
            raise DecodeError(f"{item.name}: {size * repeats} bytes at offset {pos} of {len(data)}")
        if item.kind == "text":
            values[item.name] = (
                data[pos:end].replace(b"\x00", b" ").decode("ascii", "replace").strip()
            )
        elif item.kind == "raw":
            values[item.name] = data[pos:end]
        else:
            numbers = tuple(
                _scaled(item, _number(data[p : p + size], item.kind)) for p in range(pos, end, size)
            )
            values[item.name] = numbers if count is not None else numbers[0]
        pos = end
    return values, pos


def _unscaled(item: Field | Register, value: object) -> int:
    if not isinstance(value, int | float):
        raise TypeError(f"{item.name}: {value!r} is not a number")
    if item.scale == 1.0 and item.offset == 0.0 and isinstance(value, int):
        return value
    return round((value - item.offset) / item.scale)


def _word(raw: int, kind: Kind, bits: int, name: str) -> int:
    """``raw`` as an unsigned ``bits``-bit number (two's complement for signed kinds)."""
    low, high = (-(1 << (bits - 1)), 1 << (bits - 1)) if kind in ("i16", "i32") else (0, 1 << bits)
    if not low <= raw < high:
        raise ValueError(f"{name}: {raw} does not fit {kind}")
    return raw & ((1 << bits) - 1)


def write_fields(layout: Sequence[Field], values: Mapping[str, Value]) -> bytes:
    """The bytes ``read_fields(layout, ...)`` reads back as ``values`` (the inverse).

    A field counted by an earlier field is a tuple; a count field missing from ``values`` is
    taken from the length of the tuple it counts. ``text`` is padded with NULs, ``raw`` must
    have its size. Raises :class:`ValueError` for a value that does not fit its kind.
    """
    counts = {item.count: item.name for item in layout if isinstance(item.count, str)}
    out = bytearray()
    for item in layout:
        if item.name in values:
            value: Value = values[item.name]
        elif item.name in counts:
            counted = values[counts[item.name]]
            if not isinstance(counted, tuple | bytes | str):
                raise TypeError(f"{counts[item.name]}: not a counted run")
            value = len(counted)
        else:
            raise KeyError(item.name)
        size = item._size()
        if item.kind in ("text", "raw"):
            data = value.encode("ascii") if isinstance(value, str) else value
            if not isinstance(data, bytes) or len(data) > size:
                raise ValueError(f"{item.name}: {value!r} does not fit {size} bytes")
            if item.kind == "raw" and len(data) != size:
                raise ValueError(f"{item.name}: {len(data)} bytes, the layout has {size}")
            out += data.ljust(size, b"\x00")
            continue
        run = value if item.count is not None else (value,)
        if not isinstance(run, tuple):
            raise TypeError(f"{item.name}: a counted field takes a tuple")
        if isinstance(item.count, int) and len(run) != item.count:
            raise ValueError(f"{item.name}: {len(run)} values, the layout has {item.count}")
        for number in run:
            raw = _word(_unscaled(item, number), item.kind, 8 * size, item.name)
            out += raw.to_bytes(size)
    return bytes(out)


type WordOrder = Literal["high_first", "low_first"]


@dataclass(frozen=True, slots=True)
class Register:
    """One value of a register map: ``words`` registers from ``address``.

    32-bit values are two registers; ``word_order`` says which comes first (Seplos V3 sends the
    low word first). ``count`` repeats the value over consecutive registers. ``u8`` is the low
    byte of one register (a UINT8 stored in a 16-bit register, high byte documented as 00).
    ``text`` and ``raw`` take ``count`` registers, two bytes each, high byte first: one string
    (NULs dropped) or the bytes. ``minimum`` / ``maximum`` are the documented range of the
    scaled value: :func:`read_registers` refuses a value outside it.
    """

    name: str
    address: int
    kind: Kind = "u16"
    scale: float = 1.0
    offset: float = 0.0
    count: int | None = None
    word_order: WordOrder = "high_first"
    digits: int | None = None
    minimum: float | None = None
    maximum: float | None = None

    @property
    def words(self) -> int:
        """Registers one value takes."""
        return 2 if self.kind in ("u32", "i32") else 1

    @property
    def last(self) -> int:
        """The last register address this value uses."""
        return self.address + self.words * (self.count or 1) - 1


def read_registers(table: Sequence[Register], reply: ReadReply) -> dict[str, Value]:
    """Read every value of ``table`` that ``reply`` holds (values outside it are left out).

    Raises :class:`~..errors.DecodeError` for a value outside its documented range.
    """
    start, stop = reply.request.start, reply.request.start + reply.request.count
    values: dict[str, Value] = {}
    for item in table:
        if item.address < start or item.last >= stop:
            continue
        if item.kind in ("text", "raw"):
            data = b"".join(
                reply.register(item.address + i).to_bytes(2) for i in range(item.count or 1)
            )
            values[item.name] = (
                data.replace(b"\x00", b" ").decode("ascii", "replace").strip()
                if item.kind == "text"
                else data
            )
            continue
        numbers = []
        for index in range(item.count or 1):
            first = item.address + index * item.words
            words = [reply.register(first + w) for w in range(item.words)]
            if item.word_order == "low_first":
                words.reverse()
            raw = 0
            for word in words:
                raw = raw << 16 | word
            if item.kind == "u8":
                raw &= 0xFF
            elif item.kind in ("i16", "i32"):
                bits = 16 * item.words
                raw = raw - (1 << bits) if raw >> (bits - 1) else raw
            value = _scaled(item, raw)
            if (item.minimum is not None and value < item.minimum) or (
                item.maximum is not None and value > item.maximum
            ):
                raise DecodeError(
                    f"{item.name} (register {item.address}): {value} outside "
                    f"{item.minimum}..{item.maximum}"
                )
            numbers.append(value)
        values[item.name] = tuple(numbers) if item.count is not None else numbers[0]
    return values


def encode_registers(table: Sequence[Register], values: Mapping[str, Value]) -> dict[int, int]:
    """The register words ``read_registers(table, ...)`` reads back as ``values`` (the inverse).

    Only the values named in ``values`` are encoded; the result maps register address to its
    16-bit word. A ``u8`` sits in the low byte, 32-bit values follow ``word_order``, ``text``
    and ``raw`` are padded with NULs to ``count`` registers.
    """
    words: dict[int, int] = {}
    for item in table:
        if item.name not in values:
            continue
        value = values[item.name]
        if item.kind in ("text", "raw"):
            data = value.encode("ascii") if isinstance(value, str) else value
            size = 2 * (item.count or 1)
            if not isinstance(data, bytes) or len(data) > size:
                raise ValueError(f"{item.name}: {value!r} does not fit {size} bytes")
            data = data.ljust(size, b"\x00")
            for i in range(item.count or 1):
                words[item.address + i] = int.from_bytes(data[2 * i : 2 * i + 2])
            continue
        run = value if item.count is not None else (value,)
        if not isinstance(run, tuple) or len(run) != (item.count or 1):
            raise ValueError(f"{item.name}: {value!r} is not {item.count or 1} values")
        bits = 8 if item.kind == "u8" else 16 * item.words
        for index, number in enumerate(run):
            raw = _word(_unscaled(item, number), item.kind, bits, item.name)
            parts = [raw >> (16 * w) & 0xFFFF for w in reversed(range(item.words))]
            if item.word_order == "low_first":
                parts.reverse()
            first = item.address + index * item.words
            for w, part in enumerate(parts):
                words[first + w] = part
    return words


def read_replies(table: Sequence[Register], replies: Iterable[ReadReply]) -> dict[str, Value]:
    """Every value of ``table`` that any of ``replies`` holds (a later reply wins)."""
    values: dict[str, Value] = {}
    for reply in replies:
        values.update(read_registers(table, reply))
    return values


def span(table: Sequence[Register]) -> tuple[int, int]:
    """The first register and the register count of the one read that holds all of ``table``."""
    first = min(item.address for item in table)
    return first, max(item.last for item in table) - first + 1


@dataclass(frozen=True, slots=True)
class Flag:
    """One documented bit of a dialect's flag word or status byte (bit 0 = least significant).

    ``name`` says what the document says; ``key`` is the :data:`~..status.STATUS_BITS` key of
    the same meaning, or ``None`` where no shared bit means the same (then ``name`` is listed in
    :attr:`DialectStatus.extra` while the bit is set).
    """

    bit: int
    name: str
    key: str | None = None


def active_flags(value: int, flags: Iterable[Flag]) -> tuple[list[str], list[str]]:
    """The shared keys and the dialect-only names of the ``flags`` set in ``value``."""
    keys: list[str] = []
    extra: list[str] = []
    for flag in flags:
        if value >> flag.bit & 1:
            (keys if flag.key is not None else extra).append(flag.key or flag.name)
    return keys, extra


@dataclass(frozen=True, slots=True)
class DialectStatus:
    """A pack's status in the shared bits, plus the dialect's set bits that have no shared key."""

    status: PackStatus
    extra: tuple[str, ...] = ()
    """Names of the set dialect-only bits, in the dialect's table order."""
    raw: Mapping[str, int] = field(default_factory=dict)
    """Every flag word or byte as read, by the dialect's name for it (reserved bits included)."""


@dataclass(frozen=True, slots=True)
class Threshold:
    """One protected limit as a dialect's parameters give it; ``None`` where it has no such value.

    ``alarm`` warns and ``protection`` trips; each ``*_release`` is where it clears again;
    ``delay`` is in seconds. Values are in the unit of the quantity (V, A, °C, %).
    """

    protection: float | None = None
    protection_release: float | None = None
    alarm: float | None = None
    alarm_release: float | None = None
    delay: float | None = None


def thresholds(values: Mapping[str, Value]) -> dict[str, Any]:
    """Group table values named ``limit.part`` into a :class:`Threshold` per ``limit``.

    ``pack_over_voltage.alarm`` and ``pack_over_voltage.delay`` become
    ``pack_over_voltage=Threshold(alarm=..., delay=...)``; other names are kept as they are.
    """
    grouped: dict[str, Any] = {}
    parts: dict[str, dict[str, Value]] = {}
    for name, value in values.items():
        limit, dot, part = name.partition(".")
        if dot:
            parts.setdefault(limit, {})[part] = value
        else:
            grouped[name] = value
    for limit, known in parts.items():
        grouped[limit] = Threshold(**known)  # type: ignore[arg-type]
    return grouped


def as_number(value: Value) -> float:
    """A decoded value that must be a number (a table's single value)."""
    if not isinstance(value, int | float):
        raise DecodeError(f"{value!r} is not a number")
    return value


def as_numbers(value: Value) -> tuple[float, ...]:
    """A decoded value that must be a list of numbers (a table's counted value)."""
    if not isinstance(value, tuple):
        raise DecodeError(f"{value!r} is not a list of numbers")
    return value


# -- reading a stack: what the stack client asks of a dialect ---------------------------------


class Ask(Protocol):
    """Send one read and decode its reply: the stack client's link, with its timeouts."""

    async def __call__[T](self, request: bytes, decode: Callable[[Any], T], /) -> T:
        """The decoded reply to ``request``; the library's typed errors otherwise."""
        ...


@dataclass(frozen=True, slots=True)
class Identity:
    """What a pack says about itself; ``None`` where the dialect has no such read."""

    model: str | None = None
    version: str | None = None
    serial: str | None = None
    """The BMS's own serial, the stack's unique id when it is the first pack's."""
    pack_serial: str | None = None


@dataclass(frozen=True, slots=True)
class Reading:
    """One pack's values and alarms, numbered as the stack shows the pack."""

    analog: PackAnalog
    status: DialectStatus


class Reader(Protocol):
    """How the stack client reads the packs of one dialect, each at its own address.

    Packs are numbered from 1 as the owner sees them; :meth:`bus_address` says where pack
    ``number`` answers (Seplos V2 counts from ADR 0, Pylontech from ADR 2). A reader may learn
    what later reads need (Seplos V3: the cell count) in :meth:`identify`, so there is one
    reader per stack. Every request a reader sends is one of its dialect's reads.
    """

    info: DialectInfo
    status_keys: frozenset[str]
    """The :data:`~..status.STATUS_BITS` keys a pack of this dialect can set, plus
    ``balancing`` where it reports balancing: the binary sensors worth having."""

    def bus_address(self, number: int) -> int:
        """The ADR or unit of pack ``number`` (1-based)."""
        ...

    async def identify(self, ask: Ask, number: int) -> Identity:
        """The pack's model, version and serials (also: is it there at all)."""
        ...

    async def read(self, ask: Ask, number: int) -> Reading:
        """The pack's values and alarms."""
        ...


def numbered[T: (PackAnalog, PackStatus)](value: T, number: int) -> T:
    """A block renumbered as the pack the stack shows (its bus address may differ)."""
    return value if value.address == number else replace(value, address=number)


def reading(number: int, analog: PackAnalog, status: DialectStatus) -> Reading:
    """A :class:`Reading` of pack ``number``, both blocks numbered as it."""
    return Reading(
        numbered(analog, number), replace(status, status=numbered(status.status, number))
    )


async def read_modbus(ask: Ask, requests: Iterable[ReadRequest]) -> list[ReadReply]:
    """Send each Modbus read in turn; the replies in the same order."""
    replies = []
    for request in requests:

        def decode(frame: ModbusFrame, request: ReadRequest = request) -> ReadReply:
            return decode_reply(frame.raw, request)

        replies.append(await ask(request.encode(), decode))
    return replies


def shared_keys(*tables: Iterable[Flag]) -> frozenset[str]:
    """The shared keys of flag tables."""
    return frozenset(f.key for table in tables for f in table if f.key is not None)
