"""PACE BMS Modbus RTU V1.3 ([PACE-MODBUS], 2017-06-27): holding registers read with fc 03.

What this module decodes (the team's dialects reference, section 5):

* registers 0-7 (current, voltage, SOC, SOH, capacities, cycles), 15-36 (16 cells, four cell
  temperatures, MOSFET, environment) into :class:`~..analog.PackAnalog`;
* the warning, protection and status/fault flags and the balance word (9-12) into a
  :class:`~.base.DialectStatus`: every documented bit whose meaning is a shared
  :data:`~..status.STATUS_BITS` key sets that key; the rest are listed in :data:`STATUS_FLAGS`
  with ``key=None`` and come back by name in ``extra``;
* the parameters 60-114 into :class:`Parameters`, read-only;
* the version string and the two serials (150-179) into :class:`DeviceInfo`.

Register numbers in the document are **decimal** (cells 0015-0030 are 16 registers). Reads
cover documented registers only: the reserved 8, 13-14, 37-59 and 115-149 are never asked for,
so telemetry takes three reads (0-7, 9-12, 15-36). The document gives no cell count (always 16
cell registers) and no marker for an absent sensor (the MOSFET and environment temperatures
are "or invalid", on the BMS-4820 for one): values are reported as read.

Registers 107-112 came with V1.2, 113-114 and the pack serial 170-179 with V1.3 (the
document's revision history): :func:`parameter_requests` and :func:`device_info_requests`
take the revision to read for, and the decoders leave what a reply lacks as ``None``.

Never written: fc 0x10 to 60-114 and 160-179 is documented, but dialects.md 5.5 holds every
write back until a read-modify-write round trip has been verified on a pack, and the serials
are never to be written. There are no control registers in V1.3.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from ..analog import PackAnalog
from ..errors import DecodeError
from ..framing import MODBUS
from ..modbus import READ_HOLDING, ReadReply, ReadRequest
from ..status import PackStatus, StatusByte, balance_bytes, status_bytes
from .base import (
    Ask,
    Capability,
    DialectInfo,
    DialectStatus,
    Flag,
    Identity,
    MultiPack,
    Reading,
    Register,
    Threshold,
    Value,
    active_flags,
    as_number,
    as_numbers,
    read_modbus,
    read_replies,
    reading,
    shared_keys,
    span,
    thresholds,
)

type Revision = Literal["1.0", "1.2", "1.3"]

FUNCTION: Final = READ_HOLDING
UNITS: Final = range(0x01, 0x11)
"""Unit ids of the function tables (0x01-0x10); 0 is the Modbus broadcast address."""
CELLS: Final = 16
CELL_SENSORS: Final = 4

INFO: Final = DialectInfo(
    name="pace_modbus",
    title="PACE BMS Modbus RTU V1.3",
    framing=MODBUS,
    baudrates=(9600,),
    capabilities=frozenset({Capability.TELEMETRY, Capability.ALARMS, Capability.PARAMETERS_READ}),
    multipack=MultiPack.PER_ADDRESS,
    brands=("PACE BMS packs with the RS485 protocol set to PACE_MODBUS (PbmsTools)",),
    reasons={
        Capability.PARAMETERS_WRITE: (
            "fc 0x10 to registers 60-114 is documented, but no read-modify-write round trip "
            "has been verified on a pack (dialects.md 5.5)"
        ),
        Capability.CONTROLS: "V1.3 has no control registers (no MOSFET, buzzer or shutdown)",
        Capability.HISTORY: "V1.3 has no history registers",
        Capability.CLOCK: "V1.3 has no date or time register",
    },
)

# --- register tables ([PACE-MODBUS] 4.1) -------------------------------------------------------

PACK: Final = (
    Register("current", 0, "i16", scale=0.01, digits=2),
    Register("voltage", 1, scale=0.01, digits=2),
    Register("soc", 2, "u8", maximum=100),
    Register("soh", 3, "u8", maximum=100),
    Register("remaining_capacity", 4, scale=0.01, digits=2),
    Register("full_capacity", 5, scale=0.01, digits=2),
    Register("design_capacity", 6, scale=0.01, digits=2),
    Register("cycles", 7),
)
"""Registers 0-7: A (+ = charging), V, %, %, Ah, Ah, Ah, cycles."""

FLAGS: Final = (
    Register("warning", 9),
    Register("protection", 10),
    Register("status", 11),
    Register("balance", 12),
)
"""Registers 9-12: the flag words of :data:`STATUS_FLAGS` and the balance word (bit 0 = cell 1)."""

CELL_BLOCK: Final = (
    Register("cell_voltages", 15, count=CELLS, scale=0.001, digits=3),
    Register("cell_temperatures", 31, "i16", count=CELL_SENSORS, scale=0.1, digits=1),
    Register("mos_temperature", 35, "i16", scale=0.1, digits=1),
    Register("environment_temperature", 36, "i16", scale=0.1, digits=1),
)
"""Registers 15-36: cells in V, temperatures in °C (0.1 °C signed, no Kelvin offset)."""


def _v(name: str, address: int) -> Register:
    return Register(name, address, scale=0.001, digits=3)


def _a(name: str, address: int) -> Register:
    return Register(name, address)


def _c(name: str, address: int) -> Register:
    return Register(name, address, "i16", scale=0.1, digits=1)


def _delay(name: str, address: int, seconds: float = 0.1) -> Register:
    """A UINT8 delay "1~255" in steps of ``seconds``."""
    return Register(
        name, address, "u8", scale=seconds, digits=3, minimum=seconds, maximum=255 * seconds
    )


def _limits(name: str, first: int, parts: Sequence[str], kind: str) -> tuple[Register, ...]:
    make = {"v": _v, "a": _a, "c": _c}[kind]
    return tuple(
        _delay(f"{name}.{part}", first + i)
        if part == "delay"
        else make(f"{name}.{part}", first + i)
        for i, part in enumerate(parts)
    )


_VOLTAGE = ("alarm", "protection", "protection_release", "delay")
_CURRENT = ("alarm", "protection", "delay")
_TEMPERATURE = ("alarm", "protection", "protection_release")

PARAMETERS_1_0: Final = (
    *_limits("pack_over_voltage", 60, _VOLTAGE, "v"),
    *_limits("cell_over_voltage", 64, _VOLTAGE, "v"),
    *_limits("pack_under_voltage", 68, _VOLTAGE, "v"),
    *_limits("cell_under_voltage", 72, _VOLTAGE, "v"),
    *_limits("charge_over_current", 76, _CURRENT, "a"),
    *_limits("discharge_over_current", 79, _CURRENT, "a"),
    _a("discharge_over_current_2.protection", 82),
    _delay("discharge_over_current_2.delay", 83, 0.025),
    *_limits("charge_high_temperature", 84, _TEMPERATURE, "c"),
    *_limits("discharge_high_temperature", 87, _TEMPERATURE, "c"),
    *_limits("charge_low_temperature", 90, _TEMPERATURE, "c"),
    *_limits("discharge_low_temperature", 93, _TEMPERATURE, "c"),
    *_limits("mos_high_temperature", 96, _TEMPERATURE, "c"),
    *_limits("environment_high_temperature", 99, _TEMPERATURE, "c"),
    *_limits("environment_low_temperature", 102, _TEMPERATURE, "c"),
    _v("balance_start_voltage", 105),
    _v("balance_start_delta", 106),
)
"""Registers 60-106 (V1.0): V, A, °C; delays in s (UINT8 1-255 of 0.1 s, OC-2 of 0.025 s)."""

PARAMETERS_1_2: Final = (
    _v("full_charge_voltage", 107),
    Register("full_charge_current", 108, scale=0.001, digits=3),
    _v("sleep_voltage", 109),
    Register("sleep_delay", 110),
    Register("short_circuit_delay", 111, "u8", scale=25e-6, digits=6, maximum=500e-6),
    Register("soc_alarm", 112, "u8", maximum=100),
)
"""Registers 107-112 (added in V1.2): V, A (doc: mA), V, minutes, s (25 µs steps, max 500 µs), %."""

PARAMETERS_1_3: Final = (
    _a("charge_over_current_2.protection", 113),
    _delay("charge_over_current_2.delay", 114, 0.025),
)
"""Registers 113-114 (added in V1.3): charging OC-2 protection, A and s."""

PARAMETERS: Final = (*PARAMETERS_1_0, *PARAMETERS_1_2, *PARAMETERS_1_3)

VERSION: Final = (Register("version", 150, "text", count=10),)
SERIALS_1_0: Final = (Register("model_serial", 160, "text", count=10),)
"""The BMS manufacturer's serial (RW in the document: never written)."""
SERIALS_1_3: Final = (Register("pack_serial", 170, "text", count=10),)
"""The pack manufacturer's serial (added in V1.3; RW in the document: never written)."""
DEVICE: Final = (*VERSION, *SERIALS_1_0, *SERIALS_1_3)

# --- flag words ([PACE-MODBUS] 4.1 descriptions 1-3; 1 = occurring) ---------------------------

WARNING_FLAGS: Final = (
    Flag(0, "cell_over_voltage_alarm", "cell_over_voltage_alarm"),
    Flag(1, "cell_low_voltage_alarm", "cell_under_voltage_alarm"),
    Flag(2, "pack_over_voltage_alarm", "pack_over_voltage_alarm"),
    Flag(3, "pack_low_voltage_alarm", "pack_under_voltage_alarm"),
    Flag(4, "charge_over_current_alarm", "charge_over_current_alarm"),
    Flag(5, "discharge_over_current_alarm", "discharge_over_current_alarm"),
    Flag(8, "charge_high_temperature_alarm", "charge_high_temperature_alarm"),
    Flag(9, "discharge_high_temperature_alarm", "discharge_high_temperature_alarm"),
    Flag(10, "charge_low_temperature_alarm", "charge_low_temperature_alarm"),
    Flag(11, "discharge_low_temperature_alarm", "discharge_low_temperature_alarm"),
    Flag(12, "environment_high_temperature_alarm", "environment_high_temperature_alarm"),
    Flag(13, "environment_low_temperature_alarm", "environment_low_temperature_alarm"),
    Flag(14, "mos_high_temperature_alarm", "mos_high_temperature_alarm"),
    Flag(15, "soc_low_alarm", "low_soc_alarm"),
)
"""Register 9; b6-b7 reserved."""

PROTECTION_FLAGS: Final = (
    Flag(0, "cell_over_voltage_protection", "cell_over_voltage_protection"),
    Flag(1, "cell_low_voltage_protection", "cell_under_voltage_protection"),
    Flag(2, "pack_over_voltage_protection", "pack_over_voltage_protection"),
    Flag(3, "pack_low_voltage_protection", "pack_under_voltage_protection"),
    Flag(4, "charge_over_current_protection", "charge_over_current_protection"),
    Flag(5, "discharge_over_current_protection", "discharge_over_current_protection"),
    Flag(6, "short_circuit_protection", "short_circuit_protection"),
    Flag(7, "charger_over_voltage_protection", "charger_over_voltage_protection"),
    Flag(8, "charge_high_temperature_protection", "charge_high_temperature_protection"),
    Flag(9, "discharge_high_temperature_protection", "discharge_high_temperature_protection"),
    Flag(10, "charge_low_temperature_protection", "charge_low_temperature_protection"),
    Flag(11, "discharge_low_temperature_protection", "discharge_low_temperature_protection"),
    Flag(12, "mos_high_temperature_protection", "mos_high_temperature_protection"),
    Flag(13, "environment_high_temperature_protection", "environment_high_temperature_protection"),
    Flag(14, "environment_low_temperature_protection", "environment_low_temperature_protection"),
)
"""Register 10; b15 reserved."""

STATUS_FLAGS: Final = (
    Flag(0, "charge_mos_fault", "charge_mos_fault"),
    Flag(1, "discharge_mos_fault", "discharge_mos_fault"),
    Flag(2, "temperature_sensor_fault", "ntc_fault"),
    Flag(4, "cell_fault", "cell_fault"),
    Flag(5, "front_end_sampling_communication_fault", "sampling_fault"),
    Flag(8, "charging", "charging"),
    Flag(9, "discharging"),
    Flag(10, "charge_mos_on", "charge_mos"),
    Flag(11, "discharge_mos_on", "discharge_mos"),
    Flag(12, "charge_limiter_on", "current_limit"),
    Flag(14, "charger_reversed"),
    Flag(15, "heater_on", "heating"),
)
"""Register 11: faults b0-b7 (b3, b6, b7 reserved), states b8-b15 (b13 reserved).

The document's "state of charge" (b8) is "charging", beside b9 "state of discharge".
"Charger inversed" (b14) keeps its own name: the shared ``reverse_connection`` bit of PACE
0x25 does not say what is reversed."""

FLAG_TABLES: Final = {
    "warning": WARNING_FLAGS,
    "protection": PROTECTION_FLAGS,
    "status": STATUS_FLAGS,
}

# --- typed values ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Parameters:
    """Registers 60-114, read-only: V, A, °C, s (``sleep_delay`` in minutes, SOC in %).

    The V1.2 and V1.3 additions are ``None`` when the replies did not cover them.
    """

    pack_over_voltage: Threshold
    cell_over_voltage: Threshold
    pack_under_voltage: Threshold
    cell_under_voltage: Threshold
    charge_over_current: Threshold
    discharge_over_current: Threshold
    discharge_over_current_2: Threshold
    charge_high_temperature: Threshold
    discharge_high_temperature: Threshold
    charge_low_temperature: Threshold
    discharge_low_temperature: Threshold
    mos_high_temperature: Threshold
    environment_high_temperature: Threshold
    """Invalid on the BMS-4820 (document V1.1), as its sensor."""
    environment_low_temperature: Threshold
    balance_start_voltage: float
    balance_start_delta: float
    full_charge_voltage: float | None = None
    full_charge_current: float | None = None
    sleep_voltage: float | None = None
    sleep_delay: int | None = None
    short_circuit_delay: float | None = None
    soc_alarm: int | None = None
    charge_over_current_2: Threshold | None = None


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """Registers 150-179: the version string, the BMS maker's and the pack maker's serials."""

    version: str | None
    model_serial: str | None
    pack_serial: str | None


# --- requests ----------------------------------------------------------------------------------


def _check_unit(unit: int) -> int:
    if unit not in UNITS:
        raise ValueError(f"unit {unit} outside 0x01..0x10 (the document's unit ids)")
    return unit


def _request(unit: int, *tables: Sequence[Register]) -> ReadRequest:
    return ReadRequest(_check_unit(unit), FUNCTION, *span([r for t in tables for r in t]))


def probe_request(unit: int = 1) -> ReadRequest:
    """Registers 0-7 (the read-only probe of dialects.md 7.2 step 2)."""
    return _request(unit, PACK)


def confirm_request(unit: int = 1) -> ReadRequest:
    """Registers 150-159, the version string (the optional confirmation of 7.2 step 2)."""
    return _request(unit, VERSION)


def telemetry_requests(unit: int) -> tuple[ReadRequest, ...]:
    """The reads for :func:`decode_analog` and :func:`decode_status`: 0-7, 9-12, 15-36."""
    return _request(unit, PACK), _request(unit, FLAGS), _request(unit, CELL_BLOCK)


def parameter_requests(unit: int, revision: Revision = "1.3") -> tuple[ReadRequest, ...]:
    """One read of the parameters the document ``revision`` defines (60-106, -112 or -114)."""
    tables = {
        "1.0": (PARAMETERS_1_0,),
        "1.2": (PARAMETERS_1_0, PARAMETERS_1_2),
        "1.3": (PARAMETERS_1_0, PARAMETERS_1_2, PARAMETERS_1_3),
    }[revision]
    return (_request(unit, *tables),)


def device_info_requests(unit: int, revision: Revision = "1.3") -> tuple[ReadRequest, ...]:
    """One read of the version and serials: 150-179 (V1.3) or 150-169 (before)."""
    if revision == "1.3":
        return (_request(unit, VERSION, SERIALS_1_0, SERIALS_1_3),)
    return (_request(unit, VERSION, SERIALS_1_0),)


# --- decoding ----------------------------------------------------------------------------------


def _replies(unit: int, replies: Iterable[ReadReply]) -> list[ReadReply]:
    found = list(replies)
    for reply in found:
        if reply.request.function != FUNCTION or reply.request.unit != unit:
            raise DecodeError(
                f"reply of unit {reply.request.unit} function {reply.request.function:02X}H "
                f"is not a PACE Modbus read of unit {unit}"
            )
    return found


def _required(values: dict[str, Value], table: Sequence[Register]) -> dict[str, Value]:
    missing = [item.name for item in table if item.name not in values]
    if missing:
        raise DecodeError(f"the replies lack registers for {', '.join(missing)}")
    return values


def decode_analog(unit: int, replies: Iterable[ReadReply]) -> PackAnalog:
    """Registers 0-7 and 15-36 of ``replies`` (fc 03 of ``unit``) as a :class:`PackAnalog`.

    Temperatures are in the shared roles: T1-T4 cells, then MOSFET, then environment.
    """
    found = _replies(unit, replies)
    values = _required(read_replies((*PACK, *CELL_BLOCK), found), (*PACK, *CELL_BLOCK))
    temperatures = (
        *as_numbers(values["cell_temperatures"]),
        as_number(values["mos_temperature"]),
        as_number(values["environment_temperature"]),
    )
    return PackAnalog(
        unit,
        True,
        as_numbers(values["cell_voltages"]),
        temperatures,
        as_number(values["current"]),
        as_number(values["voltage"]),
        as_number(values["remaining_capacity"]),
        as_number(values["full_capacity"]),
        as_number(values["design_capacity"]),
        int(as_number(values["cycles"])),
        reported_soc=as_number(values["soc"]),
        reported_soh=as_number(values["soh"]),
    )


def decode_status(unit: int, replies: Iterable[ReadReply]) -> DialectStatus:
    """Registers 9-12 of ``replies`` as a :class:`~.base.DialectStatus`.

    The document has no per-cell or per-sensor codes: they are 00 throughout, the flags carry
    the state. Balance bit n is cell n + 1.
    """
    values = _required(read_replies(FLAGS, _replies(unit, replies)), FLAGS)
    words = {name: int(as_number(values[name])) for name in ("warning", "protection", "status")}
    keys: list[str] = []
    extra: list[str] = []
    for name, flags in FLAG_TABLES.items():
        shared, own = active_flags(words[name], flags)
        keys += shared
        extra += own
    balance = int(as_number(values["balance"]))
    bytes_ = status_bytes(keys)
    bytes_[StatusByte.BALANCE_1], bytes_[StatusByte.BALANCE_2] = balance_bytes(
        cell + 1 for cell in range(CELLS) if balance >> cell & 1
    )
    status = PackStatus(unit, (0,) * CELLS, (0,) * (CELL_SENSORS + 2), 0, 0, 0, bytes_)
    return DialectStatus(status, tuple(extra), {**words, "balance": balance})


def decode_parameters(unit: int, replies: Iterable[ReadReply]) -> Parameters:
    """Registers 60-114 of ``replies``: 60-106 must be there, 107-114 are read when present."""
    values = _required(read_replies(PARAMETERS, _replies(unit, replies)), PARAMETERS_1_0)
    v13 = [item.name for item in PARAMETERS_1_3]
    if not all(name in values for name in v13):
        for name in v13:
            values.pop(name, None)
    return Parameters(**thresholds(values))


def decode_device_info(unit: int, replies: Iterable[ReadReply]) -> DeviceInfo:
    """Registers 150-179 of ``replies``; a string the replies lack, or that is blank, is None."""
    values = read_replies(DEVICE, _replies(unit, replies))
    texts = {name: str(value) or None for name, value in values.items()}
    if not texts:
        raise DecodeError("the replies hold none of registers 150-179")
    return DeviceInfo(texts.get("version"), texts.get("model_serial"), texts.get("pack_serial"))


class PaceModbusReader:
    """Pack ``n`` at Modbus unit ``n`` (its DIP address)."""

    info = INFO
    status_keys = frozenset({*shared_keys(*FLAG_TABLES.values()), "balancing"})

    def bus_address(self, number: int) -> int:
        """Unit ``number``."""
        return number

    async def identify(self, ask: Ask, number: int) -> Identity:
        """Registers 150-179: version and serials."""
        found = decode_device_info(number, await read_modbus(ask, device_info_requests(number)))
        return Identity(
            version=found.version, serial=found.model_serial, pack_serial=found.pack_serial
        )

    async def read(self, ask: Ask, number: int) -> Reading:
        """Registers 0-7, 9-12 and 15-36: values, flags, balance and cells."""
        replies = await read_modbus(ask, telemetry_requests(number))
        return reading(number, decode_analog(number, replies), decode_status(number, replies))
