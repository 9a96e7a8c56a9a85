"""A1H, one history record: the BMS logs an entry for each alarm or protection event.

Request INFO is the record index (0 = newest). Record layout ([PACE-V3.1] A.56, 72 bytes for
16 cells and 6 temperatures)::

    YY MM DD hh mm ss, n, n x cell mV, t, t x temperature, current 10 mA, voltage mV,
    remaining 10 mAh, full 10 mAh, protection 1, protection 2, fault, alarm 1, alarm 2,
    indication, cycles (2), fault 8, fault 10, status record (2, bit 0 = power-on)

nkinnan's real record (`18021D020038 … 0000000000 06 0043 FFFF FFFF`) fits this order: indication
06 (both MOS on), 67 cycles, FF where the firmware has no fault 8/10 byte. "No more records" is an
empty OK reply on some firmware and RTN 07 on others.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from .buffer import TEMPERATURE_ABSENT, Reader, Writer, celsius, deci_kelvin
from .device import decode_clock, encode_clock
from .errors import DecodeError
from .status import Kind, PackStatus, StatusByte

MAX_RECORDS: Final = 500
"""The user guide: "The BMS can restore 500 logs about historical alarm / protection data"."""
_NOT_SUPPORTED: Final = 0xFF

_LOGGED_BYTES: Final = (
    StatusByte.PROTECTION_1,
    StatusByte.PROTECTION_2,
    StatusByte.FAULT,
    StatusByte.ALARM_1,
    StatusByte.ALARM_2,
    StatusByte.INDICATION,
)


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    """One decoded history record."""

    index: int
    time: datetime | None
    """``None`` when the stored date is invalid (unset BMS clock)."""
    cell_voltages: tuple[float, ...]
    temperatures: tuple[float | None, ...]
    current: float
    voltage: float
    remaining_capacity: float
    full_capacity: float
    cycles: int
    status: PackStatus
    """The status bytes logged with the record (for the named bits)."""
    status_record: int
    """The 2-byte status word; bit 0 marks a power-on record."""

    @property
    def protections(self) -> tuple[str, ...]:
        """Protections active in this record."""
        return self.status.active(Kind.PROTECTION)

    @property
    def alarms(self) -> tuple[str, ...]:
        """Alarms active in this record."""
        return self.status.active(Kind.ALARM)

    @property
    def faults(self) -> tuple[str, ...]:
        """Faults active in this record."""
        return self.status.active(Kind.FAULT)

    @property
    def power_on(self) -> bool:
        """Whether this record was logged at power-on."""
        return self.status_record != 0xFFFF and bool(self.status_record & 1)


def decode_history(info: bytes, index: int) -> HistoryRecord | None:
    """Decode an A1H reply; ``None`` for the empty "no more records" answer."""
    if not info:
        return None
    reader = Reader(info)
    try:
        time: datetime | None = decode_clock(reader.take(6))
    except DecodeError:
        time = None
    cells = tuple(reader.u16() / 1000 for _ in range(reader.u8()))
    raw_temps = [reader.u16() for _ in range(reader.u8())]
    temps = tuple(None if t == TEMPERATURE_ABSENT else celsius(t) for t in raw_temps)
    current = reader.i16() / 100
    voltage = reader.u16() / 1000
    remaining = reader.u16() / 100
    full = reader.u16() / 100
    logged = dict(zip(_LOGGED_BYTES, reader.take(len(_LOGGED_BYTES)), strict=True))
    cycles = reader.u16()
    fault_8, fault_10 = reader.take(2)
    status_record = reader.u16()
    if reader.remaining:
        raise DecodeError(f"history record has {reader.remaining} unexpected trailing bytes")
    if fault_8 != _NOT_SUPPORTED:
        logged[StatusByte.FAULT_8] = fault_8
    if fault_10 != _NOT_SUPPORTED:
        logged[StatusByte.FAULT_10] = fault_10
    status = PackStatus(0, (0,) * len(cells), (0,) * len(temps), 0, 0, 0, logged)
    return HistoryRecord(
        index, time, cells, temps, current, voltage, remaining, full, cycles, status,
        status_record,
    )  # fmt: skip


def encode_history(record: HistoryRecord) -> bytes:
    """Encode a record as the A1H reply payload (the inverse of :func:`decode_history`)."""
    writer = Writer().raw(encode_clock(record.time or datetime(2000, 1, 1)))
    writer.u8(len(record.cell_voltages))
    for volts in record.cell_voltages:
        writer.u16(round(volts * 1000))
    writer.u8(len(record.temperatures))
    for temp in record.temperatures:
        writer.u16(TEMPERATURE_ABSENT if temp is None else deci_kelvin(temp))
    writer.i16(round(record.current * 100)).u16(round(record.voltage * 1000))
    writer.u16(round(record.remaining_capacity * 100)).u16(round(record.full_capacity * 100))
    writer.raw(bytes(record.status.bytes_.get(b, 0) for b in _LOGGED_BYTES))
    writer.u16(record.cycles)
    for byte in (StatusByte.FAULT_8, StatusByte.FAULT_10):
        writer.u8(record.status.bytes_.get(byte, _NOT_SUPPORTED))
    writer.u16(record.status_record)
    return bytes(writer.data)


def encode_history_request(index: int) -> bytes:
    """A1H request payload: the 2-byte record index, 0 = newest."""
    if not 0 <= index < MAX_RECORDS:
        raise ValueError(f"history index {index} outside 0..{MAX_RECORDS - 1}")
    return index.to_bytes(2)
