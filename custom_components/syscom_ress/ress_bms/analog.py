"""42H, analog values: cells, temperatures, current, voltage, capacities, cycles, SOC and SOH.

Layout per pack ([PACE-2018] A.12-A.14, [PACE-V3.1] A.10-A.12), after INFOFLAG and the pack count
(COMMAND FF) or the echoed COMMAND (one pack)::

    n, n x cell mV, t, t x temperature 0.1 K, current 10 mA (int16, + = charging), voltage mV,
    remaining 10 mAh, P, full 10 mAh, cycles, design 10 mAh, extension (0..22 bytes)

P ("number of user-defined items") is not trusted to size a block: the extension length is
solved from LENID, one length for every block of an FF reply.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Final, Literal

from .buffer import TEMPERATURE_ABSENT, Reader, Writer, celsius, deci_kelvin, solve_trailer
from .errors import DecodeError

type Source = Literal["bms", "computed"]

BLOCK_FIXED_BYTES: Final = 15
"""n, t, current, voltage, remaining, P, full, cycles, design: 1+1+2+2+2+1+2+2+2."""
EXTENSION_LENGTHS_SEEN: Final = (0, 1, 10, 14, 22)
"""Tried first when solving an FF reply: 0 (spec), 1, 10, 14 (field), 22 (full V3.1 layout)."""
MAX_CELLS: Final = 32
MAX_TEMPERATURES: Final = 16
OFFLINE_TEMPERATURE: Final = deci_kelvin(0)
"""An offline slave's block is zero-filled, temperatures 0x0AAA (bmspace 10-pack sample)."""


@dataclass(frozen=True, slots=True)
class PackAnalog:
    """Analog values of one pack, in SI units (V, A, Ah, °C, %)."""

    address: int
    online: bool
    cell_voltages: tuple[float, ...]
    temperatures: tuple[float | None, ...]
    """Every temperature word in order; ``None`` where the sensor is absent (0x8000)."""
    current: float
    voltage: float
    remaining_capacity: float
    full_capacity: float
    design_capacity: float
    cycles: int
    user_defined_count: int = 3
    extension: bytes = b""
    reported_soc: float | None = field(default=None, kw_only=True)
    """SOC as a dialect's own field carries it (Seplos, Pylontech, Modbus): used as is."""
    reported_soh: float | None = field(default=None, kw_only=True)
    soc: float = field(init=False)
    soh: float = field(init=False)
    soc_source: Source = field(init=False)
    soh_source: Source = field(init=False)

    def __post_init__(self) -> None:
        ext = self.extension
        if self.reported_soc is not None:
            soc, soc_source = float(self.reported_soc), "bms"
        elif ext and ext[0] <= 100:
            soc, soc_source = float(ext[0]), "bms"
        else:
            soc = 100 * self.remaining_capacity / self.full_capacity if self.full_capacity else 0
            soc, soc_source = round(min(soc, 100.0), 1), "computed"
        if self.reported_soh is not None:
            soh, soh_source = float(self.reported_soh), "bms"
        elif len(ext) >= 10 and ext[9] <= 100:
            soh, soh_source = float(ext[9]), "bms"
        else:
            soh = 100 * self.full_capacity / self.design_capacity if self.design_capacity else 0
            soh, soh_source = round(min(soh, 100.0), 1), "computed"
        object.__setattr__(self, "soc", soc)
        object.__setattr__(self, "soc_source", soc_source)
        object.__setattr__(self, "soh", soh)
        object.__setattr__(self, "soh_source", soh_source)

    @property
    def power(self) -> float:
        """Power in W, positive while charging (the BMS's current convention)."""
        return round(self.voltage * self.current, 2)

    @property
    def cell_temperatures(self) -> tuple[float | None, ...]:
        """The cell sensors: T1-T4 when there are up to six words, all but the last two beyond."""
        return self.temperatures[: cell_sensor_count(len(self.temperatures))]

    @property
    def mos_temperature(self) -> float | None:
        """T5 (the word before the last when there are more than six)."""
        return self._temperature_at(4 if len(self.temperatures) <= 6 else -2)

    @property
    def environment_temperature(self) -> float | None:
        """T6 (the last word when there are more than six)."""
        return self._temperature_at(5 if len(self.temperatures) <= 6 else -1)

    def _temperature_at(self, index: int) -> float | None:
        try:
            return self.temperatures[index]
        except IndexError:
            return None

    @classmethod
    def offline(cls, address: int, cells: int = 16, temperatures: int = 6) -> PackAnalog:
        """The zero-filled block the master sends for a slave it cannot reach."""
        return cls(address, False, (0.0,) * cells, (0.0,) * temperatures, 0, 0, 0, 0, 0, 0, 0)


def cell_sensor_count(words: int) -> int:
    """How many of ``words`` temperature words are cell sensors (T1-T4 up to six words)."""
    return 4 if words <= 6 else words - 2


def temperature_names(words: int) -> tuple[str, ...]:
    """What each of ``words`` temperature words measures, in order, by its value's name.

    ``cell_temperature_1`` ... for the cell sensors, then ``mos_temperature`` and
    ``environment_temperature`` (the names of :class:`PackAnalog`'s properties). The 44H
    temperature codes come in the same order.
    """
    cells = min(cell_sensor_count(words), words)
    names = [f"cell_temperature_{n + 1}" for n in range(cells)]
    names += ["mos_temperature", "environment_temperature"][: words - cells]
    return tuple(names)


@dataclass(frozen=True, slots=True)
class AnalogReply:
    """A decoded 42H reply: one pack, or every pack of the stack for COMMAND FF."""

    info_flag: int
    packs: tuple[PackAnalog, ...]


def _block_size(data: bytes, pos: int, extension: int) -> int | None:
    """Size of the block at ``pos`` for a given extension length, or None if it cannot be one."""
    if pos >= len(data):
        return None
    cells = data[pos]
    t_pos = pos + 1 + 2 * cells
    if cells > MAX_CELLS or t_pos >= len(data) or data[t_pos] > MAX_TEMPERATURES:
        return None
    return BLOCK_FIXED_BYTES + 2 * cells + 2 * data[t_pos] + extension


def _solve_extension(data: bytes, count: int) -> int:
    """Find the one extension length that makes ``count`` blocks fill the payload exactly."""
    others = (u for u in range(max(EXTENSION_LENGTHS_SEEN) + 20) if u not in EXTENSION_LENGTHS_SEEN)
    extension = solve_trailer(data, count, (*EXTENSION_LENGTHS_SEEN, *others), _block_size)
    if extension is None:
        raise DecodeError(f"no extension length fits {count} analog blocks in {len(data)} bytes")
    return extension


def _decode_block(reader: Reader, address: int, extension: int) -> PackAnalog:
    cells = tuple(reader.u16() / 1000 for _ in range(reader.u8()))
    raw_temps = [reader.u16() for _ in range(reader.u8())]
    current = reader.i16() / 100
    voltage = reader.u16() / 1000
    remaining = reader.u16() / 100
    user_defined = reader.u8()
    full = reader.u16() / 100
    cycles = reader.u16()
    design = reader.u16() / 100
    ext = reader.take(extension)
    online = voltage > 0 or any(cells)
    temps = tuple(None if t == TEMPERATURE_ABSENT else celsius(t) for t in raw_temps)
    return PackAnalog(
        address, online, cells, temps, current, voltage, remaining, full, design, cycles,
        user_defined, ext,
    )  # fmt: skip


def decode_analog(info: bytes, command: int, echoes: Collection[int] = ()) -> AnalogReply:
    """Decode a 42H reply to ``command`` (FF for every pack, else one pack number).

    A one-pack reply echoes the COMMAND; another echo is refused (another exchange's reply)
    unless listed in ``echoes`` (firmware that echoes 01 for every pack).
    """
    if len(info) < 2:
        raise DecodeError("analog reply shorter than its header")
    count = info[1] if command == 0xFF else 1
    if count == 0:
        raise DecodeError("analog reply lists no pack")
    if command != 0xFF and info[1] != command and info[1] not in echoes:
        raise DecodeError(f"analog reply for pack {info[1]}, asked for {command}")
    extension = _solve_extension(info, count)
    reader = Reader(info, 2)
    first = command if command != 0xFF else 1
    packs = tuple(_decode_block(reader, first + i, extension) for i in range(count))
    return AnalogReply(info[0], packs)


def _encode_block(writer: Writer, pack: PackAnalog) -> None:
    writer.u8(len(pack.cell_voltages))
    for volts in pack.cell_voltages:
        writer.u16(round(volts * 1000))
    writer.u8(len(pack.temperatures))
    for temp in pack.temperatures:
        if not pack.online:
            writer.u16(OFFLINE_TEMPERATURE)
        else:
            writer.u16(TEMPERATURE_ABSENT if temp is None else deci_kelvin(temp))
    writer.i16(round(pack.current * 100)).u16(round(pack.voltage * 1000))
    writer.u16(round(pack.remaining_capacity * 100)).u8(pack.user_defined_count)
    writer.u16(round(pack.full_capacity * 100)).u16(pack.cycles)
    writer.u16(round(pack.design_capacity * 100)).raw(pack.extension)


def encode_analog(packs: Iterable[PackAnalog], command: int, info_flag: int = 0) -> bytes:
    """Encode a 42H reply payload: every given pack for FF, else the one pack asked for."""
    packs = tuple(packs)
    lengths = {len(p.extension) for p in packs if p.online}
    if len(lengths) > 1:
        raise ValueError("every block of one reply carries the same extension length")
    extension = lengths.pop() if lengths else 0
    writer = Writer().u8(info_flag).u8(len(packs) if command == 0xFF else command)
    for pack in packs:
        if not pack.online and len(pack.extension) != extension:
            pack = PackAnalog(  # noqa: PLW2901 - an offline block is zero-filled to the same size
                pack.address, False, pack.cell_voltages, pack.temperatures, 0, 0, 0, 0, 0, 0, 0,
                bytes(extension),
            )  # fmt: skip
        _encode_block(writer, pack)
    return bytes(writer.data)


def build_extension(
    length: int,
    *,
    soc: int,
    soh: int,
    voltage: float = 0.0,
    current: float = 0.0,
    cumulative_charge: int = 0,
    cumulative_discharge: int = 0,
    bank_remaining: float = 0.0,
    bank_full: float = 0.0,
) -> bytes:
    """The [PACE-V3.1] A.12 extension truncated to ``length`` bytes, as firmware sends it.

    SOC (1), cumulative charge (4), cumulative discharge (4), SOH (1), output voltage (2, mV),
    output current (2, 10 mA), bank remaining (4, 10 mAh), bank full (4, 10 mAh).
    """
    full = (
        Writer()
        .u8(soc)
        .raw(cumulative_charge.to_bytes(4))
        .raw(cumulative_discharge.to_bytes(4))
        .u8(soh)
        .u16(round(voltage * 1000))
        .i16(round(current * 100))
        .raw(round(bank_remaining * 100).to_bytes(4))
        .raw(round(bank_full * 100).to_bytes(4))
    )
    if not 0 <= length <= len(full.data):
        raise ValueError(f"extension length {length} outside 0..{len(full.data)}")
    return bytes(full.data[:length])
