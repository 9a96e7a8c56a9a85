"""44H, alarm and status: per-value alarm codes, then protection, alarm, fault and state bits.

Layout per pack ([PACE-2018] A.18-A.25, [PACE-V3.1] A.16-A.28)::

    n, n x cell code, t, t x temperature code, charge-current code, voltage code,
    discharge-current code, protection 1, protection 2, indication, control, fault,
    balance 1, balance 2, alarm 1, alarm 2, [fault 8, indication 9, active balance 1,
    active balance 2, fault 10]   <- V3.1 extras, each optional, same count in every block

Every named bit lives in :data:`STATUS_BITS`; code walks that table, nothing else names a bit.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from .analog import temperature_names
from .buffer import Reader, Writer, solve_trailer
from .errors import DecodeError


class StatusByte(StrEnum):
    """The bit-field bytes of a 44H block, in wire order."""

    PROTECTION_1 = "protection_1"
    PROTECTION_2 = "protection_2"
    INDICATION = "indication"
    CONTROL = "control"
    FAULT = "fault"
    BALANCE_1 = "balance_1"
    BALANCE_2 = "balance_2"
    ALARM_1 = "alarm_1"
    ALARM_2 = "alarm_2"
    FAULT_8 = "fault_8"
    INDICATION_9 = "indication_9"
    ACTIVE_BALANCE_1 = "active_balance_1"
    ACTIVE_BALANCE_2 = "active_balance_2"
    FAULT_10 = "fault_10"


BASE_BYTES: Final = tuple(StatusByte)[:9]
EXTRA_BYTES: Final = tuple(StatusByte)[9:]
"""The V3.1 trailing bytes; firmware sends the first 0..5 of them."""


class Kind(StrEnum):
    """What a status bit means for the owner."""

    PROTECTION = "protection"
    ALARM = "alarm"
    FAULT = "fault"
    STATE = "state"
    SETTING = "setting"


@dataclass(frozen=True, slots=True)
class StatusBit:
    """One named bit of a status byte."""

    name: str
    kind: Kind
    byte: StatusByte
    bit: int
    rare: bool = False
    """Seldom seen or only on V3.1 firmware: its entity is disabled by default."""
    key: str = field(init=False, repr=False, compare=False)
    """Unique name across kinds, e.g. ``cell_over_voltage_protection`` (made once: every
    refresh asks it of every bit)."""

    def __post_init__(self) -> None:
        plain = self.kind in (Kind.STATE, Kind.SETTING)
        object.__setattr__(self, "key", self.name if plain else f"{self.name}_{self.kind}")


def _bits(byte: StatusByte, kind: Kind, *names: str | tuple[str, Kind] | None) -> list[StatusBit]:
    """Bits of one byte from bit 0 upwards; ``None`` skips an undefined bit."""
    table = []
    for bit, entry in enumerate(names):
        if entry is None:
            continue
        name, bit_kind = entry if isinstance(entry, tuple) else (entry, kind)
        rare = name.startswith("~")
        table.append(StatusBit(name.lstrip("~"), bit_kind, byte, bit, rare))
    return table


P, A, F, S, C = Kind.PROTECTION, Kind.ALARM, Kind.FAULT, Kind.STATE, Kind.SETTING
SB = StatusByte

STATUS_BITS: Final[tuple[StatusBit, ...]] = tuple(
    _bits(SB.PROTECTION_1, P, "cell_over_voltage", "cell_under_voltage", "pack_over_voltage",
          "pack_under_voltage", "charge_over_current", "discharge_over_current", "short_circuit",
          "~charger_over_voltage")
    + _bits(SB.PROTECTION_2, P, "charge_high_temperature", "discharge_high_temperature",
            "charge_low_temperature", "discharge_low_temperature", "mos_high_temperature",
            "~environment_high_temperature", "~environment_low_temperature",
            ("fully_charged", S))
    + _bits(SB.INDICATION, S, "current_limit", "charge_mos", "discharge_mos",
            "pack_power_supply", ("~reverse_connection", F), "charging", "shutdown", "heating")
    + _bits(SB.CONTROL, C, "buzzer_enabled", "charge_mos_control", "discharge_mos_control",
            "limiter_low_gear", "current_limit_disabled", "led_alarm_disabled", "system_lock",
            "test_mode")
    + _bits(SB.FAULT, F, "charge_mos", "discharge_mos", "ntc", "~communication", "cell",
            "sampling", "~current_limit", "~heating")
    + _bits(SB.ALARM_1, A, "cell_over_voltage", "cell_under_voltage", "pack_over_voltage",
            "pack_under_voltage", "charge_over_current", "discharge_over_current")
    + _bits(SB.ALARM_2, A, "charge_high_temperature", "discharge_high_temperature",
            "charge_low_temperature", "discharge_low_temperature",
            "~environment_high_temperature", "~environment_low_temperature",
            "mos_high_temperature", "low_soc")
    + _bits(SB.FAULT_8, F, "~total_voltage", "~temperature_difference", "~shunt",
            ("~trip_unit_tripped", S), "~trip_unit", ("~master_slave_offline", A),
            ("~pack_locked", S), "~mcu_over_voltage")
    + _bits(SB.INDICATION_9, S, "~bluetooth_connected", "~wifi_connected",
            "~hardware_current_limit_off")
    + _bits(SB.FAULT_10, F, "~supply_12v")
)  # fmt: skip
"""Bit tables of [PACE-2018] with the [PACE-V3.1] additions (docs/protocol.md)."""

BITS_BY_KEY: Final = {bit.key: bit for bit in STATUS_BITS}

CODE_NORMAL: Final = 0x00
CODE_BELOW: Final = 0x01
"""Per-value code: below the lower limit (the alarm threshold on the firmware seen)."""
CODE_ABOVE: Final = 0x02
"""Per-value code: above the upper limit."""
CODE_FAULT: Final = 0xF0
"""Per-value code: the measurement itself failed (an open or shorted sensor, a cell channel)."""


class Where(StrEnum):
    """Which per-value codes of a 44H block say where a condition is."""

    CELL = "cell"
    """The cell codes."""
    CELL_SENSOR = "cell_sensor"
    """The codes of the cell temperature sensors (T1-T4 on a six-sensor pack)."""
    ANY_SENSOR = "any_sensor"
    """The codes of every temperature sensor, the MOS and environment sensors included."""


PLACES: Final[Mapping[str, tuple[Where, int]]] = {
    "cell_over_voltage": (Where.CELL, CODE_ABOVE),
    "cell_under_voltage": (Where.CELL, CODE_BELOW),
    "cell": (Where.CELL, CODE_FAULT),
    "charge_high_temperature": (Where.CELL_SENSOR, CODE_ABOVE),
    "discharge_high_temperature": (Where.CELL_SENSOR, CODE_ABOVE),
    "charge_low_temperature": (Where.CELL_SENSOR, CODE_BELOW),
    "discharge_low_temperature": (Where.CELL_SENSOR, CODE_BELOW),
    "ntc": (Where.ANY_SENSOR, CODE_FAULT),
}
"""Bit name (protection and alarm alike) -> the codes that name its cell or sensor, and the code.

Bits of one place need no code: the MOS and environment temperatures have one sensor each, and
pack voltage and current are one value."""


@dataclass(frozen=True, slots=True)
class Place:
    """Where a protection, alarm or fault is, as the block's per-value codes tell."""

    cells: tuple[int, ...] = ()
    """Numbers (1-based) of the cells whose code flags it."""
    sensors: tuple[str, ...] = ()
    """The temperature sensors whose code flags it, by value name (``cell_temperature_2``,
    ``mos_temperature``, ``environment_temperature``; see :func:`.analog.temperature_names`)."""

    def __bool__(self) -> bool:
        return bool(self.cells or self.sensors)


# Balance bit order. [PACE-2018] and [PACE-V3.1] agree: balance byte 1 bit 0 is cell 1 and byte
# 2 bit 0 is cell 9. nkinnan/esphome-pace-bms reads the two bytes as one big-endian word, which
# makes the second byte cells 1-8. We follow the two specifications until a balancing pack
# shows otherwise; this is the one place to change.
BALANCE_FIRST_BYTE_IS_CELLS_1_TO_8: Final = True


@dataclass(frozen=True, slots=True)
class PackStatus:
    """Alarm and status of one pack."""

    address: int
    cell_codes: tuple[int, ...]
    """Per cell: 00 normal, 01 below lower limit, 02 above upper limit, 80-EF user, F0 fault."""
    temperature_codes: tuple[int, ...]
    charge_current_code: int
    voltage_code: int
    discharge_current_code: int
    bytes_: Mapping[StatusByte, int]
    """Every status byte the block carried (the V3.1 extras only when present)."""

    def is_set(self, bit: StatusBit) -> bool:
        """Whether a bit is set; a byte the firmware did not send reads as clear."""
        return bool(self.bytes_.get(bit.byte, 0) >> bit.bit & 1)

    def active(self, kind: Kind) -> tuple[str, ...]:
        """Names of the set bits of one kind, in table order."""
        return tuple(b.name for b in STATUS_BITS if b.kind is kind and self.is_set(b))

    def flag(self, key: str) -> bool:
        """Whether the bit with this key is set."""
        return self.is_set(BITS_BY_KEY[key])

    def place(self, bit: StatusBit) -> Place:
        """The cells or temperature sensors whose codes flag ``bit``'s condition (maybe none).

        Read from the codes whatever the bit's state: a cell whose code still says "above"
        while its protection is released is named all the same.
        """
        found = PLACES.get(bit.name)
        if found is None:
            return Place()
        where, code = found
        if where is Where.CELL:
            return Place(cells=tuple(n + 1 for n, c in enumerate(self.cell_codes) if c == code))
        names = temperature_names(len(self.temperature_codes))
        sensors = tuple(
            name
            for name, c in zip(names, self.temperature_codes, strict=True)
            if c == code and (where is Where.ANY_SENSOR or name.startswith("cell_"))
        )
        return Place(sensors=sensors)

    @property
    def protections(self) -> tuple[str, ...]:
        """Active protections."""
        return self.active(Kind.PROTECTION)

    @property
    def alarms(self) -> tuple[str, ...]:
        """Active alarms (warnings)."""
        return self.active(Kind.ALARM)

    @property
    def faults(self) -> tuple[str, ...]:
        """Active faults."""
        return self.active(Kind.FAULT)

    @property
    def charge_mos(self) -> bool:
        """Charge MOSFET on."""
        return self.flag("charge_mos")

    @property
    def discharge_mos(self) -> bool:
        """Discharge MOSFET on."""
        return self.flag("discharge_mos")

    @property
    def current_limit(self) -> bool:
        """Current limiter active."""
        return self.flag("current_limit")

    @property
    def heating(self) -> bool:
        """Heating film on (V3.1)."""
        return self.flag("heating")

    @property
    def balancing(self) -> tuple[int, ...]:
        """Numbers (1-based) of the cells being balanced."""
        return balancing_cells(
            self.bytes_.get(StatusByte.BALANCE_1, 0),
            self.bytes_.get(StatusByte.BALANCE_2, 0),
            len(self.cell_codes),
        )


def balancing_cells(first: int, second: int, cells: int) -> tuple[int, ...]:
    """Cell numbers whose balance bit is set, by :data:`BALANCE_FIRST_BYTE_IS_CELLS_1_TO_8`."""
    low, high = (first, second) if BALANCE_FIRST_BYTE_IS_CELLS_1_TO_8 else (second, first)
    word = high << 8 | low
    return tuple(i + 1 for i in range(min(cells, 16)) if word >> i & 1)


def balance_bytes(cells: Iterable[int]) -> tuple[int, int]:
    """The two balance bytes for a set of 1-based cell numbers (inverse of balancing_cells)."""
    word = sum(1 << (cell - 1) for cell in cells)
    low, high = word & 0xFF, word >> 8
    return (low, high) if BALANCE_FIRST_BYTE_IS_CELLS_1_TO_8 else (high, low)


@dataclass(frozen=True, slots=True)
class StatusReply:
    """A decoded 44H reply: one pack, or every pack for COMMAND FF."""

    info_flag: int
    packs: tuple[PackStatus, ...]


def _block_size(data: bytes, pos: int, extras: int) -> int | None:
    if pos >= len(data):
        return None
    t_pos = pos + 1 + data[pos]
    if t_pos >= len(data):
        return None
    return 1 + data[pos] + 1 + data[t_pos] + 3 + len(BASE_BYTES) + extras


def _solve_extras(data: bytes, count: int) -> int:
    extras = solve_trailer(data, count, range(len(EXTRA_BYTES) + 1), _block_size)
    if extras is None:
        raise DecodeError(f"no layout fits {count} status blocks in {len(data)} bytes")
    return extras


def decode_status(info: bytes, command: int, echoes: Collection[int] = ()) -> StatusReply:
    """Decode a 44H reply to ``command`` (FF for every pack, else one pack number).

    The echoed pack number is checked as in :func:`~.analog.decode_analog`.
    """
    if len(info) < 2:
        raise DecodeError("status reply shorter than its header")
    count = info[1] if command == 0xFF else 1
    if count == 0:
        raise DecodeError("status reply lists no pack")
    if command != 0xFF and info[1] != command and info[1] not in echoes:
        raise DecodeError(f"status reply for pack {info[1]}, asked for {command}")
    extras = _solve_extras(info, count)
    layout = BASE_BYTES + EXTRA_BYTES[:extras]
    reader = Reader(info, 2)
    first = command if command != 0xFF else 1
    packs = []
    for i in range(count):
        cell_codes = tuple(reader.take(reader.u8()))
        temperature_codes = tuple(reader.take(reader.u8()))
        charge, voltage, discharge = reader.take(3)
        values = dict(zip(layout, reader.take(len(layout)), strict=True))
        packs.append(
            PackStatus(first + i, cell_codes, temperature_codes, charge, voltage, discharge, values)
        )
    return StatusReply(info[0], tuple(packs))


def encode_status(packs: Iterable[PackStatus], command: int, info_flag: int = 0) -> bytes:
    """Encode a 44H reply payload (the inverse of :func:`decode_status`)."""
    packs = tuple(packs)
    extras = {sum(b in p.bytes_ for b in EXTRA_BYTES) for p in packs}
    if len(extras) > 1:
        raise ValueError("every block of one reply carries the same extra bytes")
    layout = BASE_BYTES + EXTRA_BYTES[: extras.pop()]
    writer = Writer().u8(info_flag).u8(len(packs) if command == 0xFF else command)
    for pack in packs:
        writer.u8(len(pack.cell_codes)).raw(bytes(pack.cell_codes))
        writer.u8(len(pack.temperature_codes)).raw(bytes(pack.temperature_codes))
        writer.raw(
            bytes((pack.charge_current_code, pack.voltage_code, pack.discharge_current_code))
        )
        writer.raw(bytes(pack.bytes_.get(b, 0) for b in layout))
    return bytes(writer.data)


def status_bytes(active: Iterable[str], extras: int = 0) -> dict[StatusByte, int]:
    """Build status bytes from bit keys (for example ``cell_over_voltage_protection``)."""
    values = dict.fromkeys(BASE_BYTES + EXTRA_BYTES[:extras], 0)
    for key in active:
        bit = BITS_BY_KEY[key]
        values[bit.byte] |= 1 << bit.bit
    return values
