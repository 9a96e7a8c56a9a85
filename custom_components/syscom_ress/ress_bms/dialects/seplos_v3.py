"""Seplos V3, the XZH BMS Modbus RTU protocol ([XZH] V0.1, 2023-02-09): fc 04 and fc 01 only.

What this module decodes (the team's dialects reference, section 6):

* per pack, at its own unit (0x00-0x7F): PIA (0x1000, 17 registers) and PIB (0x1100, 26) into
  :class:`~..analog.PackAnalog` plus :class:`PackInfo` (averages, extremes, current limits);
  PIC (coils 0x1200, 144) into a :class:`~.base.DialectStatus`;
* the bank at the system unit 0: EIA (0x2000, 32-bit values **low word first**, as the
  SG16S200A capture shows and syssi and aiobmsble decode; the document does not say), EIB
  (0x2100) and EIC (coils 0x2200) into :class:`BankSummary`;
* SPA (0x1300-0x1367, read at the LCD/Bluetooth unit 0xE0 as syssi does) into
  :class:`Parameters` and the pack's :class:`PackShape` (cell and NTC counts, 0x1301 and
  0x1300); VIA (0x1700) into :class:`DeviceInfo`; PCT (0x1800) into :class:`PcsSettings`;
  SFA (coils 0x1400) into :class:`FunctionSwitches`. All read-only.

Every bit of the TB tables whose meaning is a shared :data:`~..status.STATUS_BITS` key sets
that key; the others are listed below with ``key=None`` and come back by name in ``extra``.
Reserved bits are never named (TB07 bit 6 is set in the SG16S200A capture: it is in ``raw``).

Choices where the document and the frames disagree (dialects.md 6.3 and 8):

* currents of SPA are decoded as signed although several are typed UINT16: the discharge-side
  ones arrive negative (-203 A) and are reported so;
* temperatures in 0.1 K use 2731 = 0.0 °C (SPA thresholds are whole degrees only so);
* EIB cell temperatures are typed "1 °C", but the one EIB capture (229, 221, 225) is only
  plausible as 0.1 °C: decoded as 0.1 °C. Its words 0x210D-0x2115 contradict the document's
  order (the capture reads max/min pack SOC, cycles and SOH before the power temperatures), so
  they are kept as read in :attr:`BankExtremes.unconfirmed`, not named;
* strings read in natural byte order although VIA says "fill in the small end first" (the
  factory name reads "XZH-ElecTech Co.,Ltd").
* 0x1314 ("secondary charge current protection" typed INT16 in mV, a duplicate of 0x1319's
  name) is not decoded.

Never written: SPA and SFA are RW (fc 0x10 / 0x0F) and SCA holds the controls (FET switching,
power off, reset, parameter reset, calibration); dialects.md 6.6 finds none of them safe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Final

from ..analog import PackAnalog
from ..errors import DecodeError
from ..framing import MODBUS
from ..modbus import READ_COILS, READ_INPUT, ReadReply, ReadRequest
from ..status import (
    CODE_ABOVE,
    CODE_BELOW,
    PackStatus,
    StatusByte,
    balance_bytes,
    status_bytes,
)
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

SYSTEM_UNIT: Final = 0x00
"""EIA/EIB/EIC, VIA and PCT in the SG16S200A capture; also pack 0 of a single-pack bank."""
DISPLAY_UNIT: Final = 0xE0
"""The 2.4/5/7-inch TFT/LCD and Bluetooth unit: SPA is read here."""
UNITS: Final = frozenset({*range(0x80), 0xC0, DISPLAY_UNIT})
"""BMS 0x00-0x7F, ECU 0xC0, TFT/LCD/Bluetooth 0xE0 ([XZH] 2.1.2)."""
CELL_REGISTERS: Final = 16
CELL_SENSOR_REGISTERS: Final = 4
"""PIB holds 16 cell voltages and 4 cell temperatures (0x1114-0x1117 are reserved)."""
FACTORY_NAME: Final = "XZH-ElecTech Co.,Ltd"
"""What VIA 0x1700 holds on a Seplos V3 (dbus-serialbattery's identity check)."""

INFO: Final = DialectInfo(
    name="seplos_v3",
    title="Seplos V3 (XZH BMS Modbus RTU)",
    framing=MODBUS,
    baudrates=(19200,),
    capabilities=frozenset({Capability.TELEMETRY, Capability.ALARMS, Capability.PARAMETERS_READ}),
    multipack=MultiPack.SYSTEM_UNIT,
    brands=("Seplos V3 BMS16S200A-SP05B", "Seplos SG16S200A-SP57B", "XZH BMS48100 / BMS48200"),
    reasons={
        Capability.PARAMETERS_WRITE: (
            "SPA (fc 0x10) and SFA (fc 0x0F) are RW, but no write has been verified on a pack and "
            "several SPA types contradict the frames (UINT16 values that arrive negative)"
        ),
        Capability.CONTROLS: (
            "the SCA controls (FETs off/on, power off, reset, parameter reset, calibration) are "
            "writes none of which is safe for an integration (dialects.md 6.6)"
        ),
        Capability.HISTORY: (
            "HIA is read with a non-standard request (start 0x7000, count 0x55AA/0xAA55) that "
            "the Modbus framing refuses; not implemented"
        ),
        Capability.CLOCK: "the SCA date (0x1500) is a write to set; reading it is not implemented",
    },
)


def _kelvin(name: str, address: int) -> Register:
    """0.1 K with 2731 = 0.0 °C, to °C."""
    return Register(name, address, scale=0.1, offset=-273.1, digits=1)


def _mv(name: str, address: int) -> Register:
    return Register(name, address, scale=0.001, digits=3)


def _ten_mv(name: str, address: int) -> Register:
    return Register(name, address, scale=0.01, digits=2)


def _ampere(name: str, address: int) -> Register:
    """Whole amperes, signed whatever the document's type (dialects.md 8.14)."""
    return Register(name, address, "i16")


def _tenth(name: str, address: int, *, maximum: float | None = None) -> Register:
    """0.1 units: 0.1 % or 0.1 s."""
    return Register(name, address, scale=0.1, digits=1, maximum=maximum)


def _capacity(name: str, address: int) -> Register:
    return Register(name, address, scale=0.01, digits=2)


# --- PIA / PIB, one pack -----------------------------------------------------------------------

PIA: Final = (
    _ten_mv("voltage", 0x1000),
    Register("current", 0x1001, "i16", scale=0.01, digits=2),
    _capacity("remaining_capacity", 0x1002),
    _capacity("total_capacity", 0x1003),
    Register("total_discharge_capacity", 0x1004, scale=10),
    _tenth("soc", 0x1005, maximum=100),
    _tenth("soh", 0x1006, maximum=100),
    Register("cycles", 0x1007),
    _mv("average_cell_voltage", 0x1008),
    _kelvin("average_cell_temperature", 0x1009),
    _mv("max_cell_voltage", 0x100A),
    _mv("min_cell_voltage", 0x100B),
    _kelvin("max_cell_temperature", 0x100C),
    _kelvin("min_cell_temperature", 0x100D),
    Register("max_discharge_current", 0x100F),
    Register("max_charge_current", 0x1010),
)
"""Pack info A: V, A (+ = charging), Ah, Ah, Ah (10 Ah steps), %, %, cycles, V, °C, A."""

PIB: Final = (
    Register("cell_voltages", 0x1100, count=CELL_REGISTERS, scale=0.001, digits=3),
    Register("cell_temperatures", 0x1110, count=CELL_SENSOR_REGISTERS, scale=0.1, offset=-273.1,
             digits=1),
    _kelvin("environment_temperature", 0x1118),
    _kelvin("power_temperature", 0x1119),
)  # fmt: skip
"""Pack info B: 16 cells (V), cell temperatures 1-4, environment, power (MOSFET), °C."""

# --- EIA / EIB, the bank at unit 0 -------------------------------------------------------------


def _long(name: str, address: int, scale: float = 1.0, digits: int | None = None) -> Register:
    return Register(name, address, "u32", scale=scale, word_order="low_first", digits=digits)


EIA: Final = (
    _long("voltage", 0x2000, 0.01, 2),
    Register("current", 0x2002, "i32", scale=0.1, word_order="low_first", digits=1),
    _long("remaining_capacity", 0x2004, 0.01, 2),
    _long("total_capacity", 0x2006, 0.01, 2),
    _long("total_discharge_capacity", 0x2008, 10),
    _long("rated_capacity", 0x200A, 0.01, 2),
    _long("online_pack_flags", 0x200C),
    _long("protected_pack_flags", 0x200E),
    _long("max_discharge_current", 0x2010, 0.1, 1),
    _long("max_charge_current", 0x2012, 0.1, 1),
    _tenth("suggested_pack_over_voltage", 0x2014),
    _tenth("suggested_pack_under_voltage", 0x2015),
    Register("pack_count", 0x2016),
    Register("cycles", 0x2017),
    _tenth("soc", 0x2018, maximum=100),
    _tenth("soh", 0x2019, maximum=100),
)
"""EMS info A: V, A (100 mA steps), Ah, Ah, Ah (10 Ah steps), Ah, bits, bits, A, A, V, V, %."""

EIB: Final = (
    _mv("max_cell_voltage", 0x2100),
    _mv("min_cell_voltage", 0x2101),
    Register("max_cell_voltage_id", 0x2102),
    Register("min_cell_voltage_id", 0x2103),
    _ten_mv("max_pack_voltage", 0x2104),
    _ten_mv("min_pack_voltage", 0x2105),
    Register("max_pack_voltage_id", 0x2106),
    Register("min_pack_voltage_id", 0x2107),
    Register("max_cell_temperature", 0x2108, "i16", scale=0.1, digits=1),
    Register("min_cell_temperature", 0x2109, "i16", scale=0.1, digits=1),
    Register("average_cell_temperature", 0x210A, "i16", scale=0.1, digits=1),
    Register("max_cell_temperature_id", 0x210B),
    Register("min_cell_temperature_id", 0x210C),
    Register("unconfirmed", 0x210D, count=9),
)
"""EMS info B. Documented from 0x210D: max/min/average pack power temperature, their two ids,
max/min pack SOC (0.1 %), max pack cycles, max pack SOH (0.1 %); the capture disagrees."""

# --- SPA parameters ([XZH] TA01), VIA, PCT -----------------------------------------------------

_LIMIT = ("alarm_release", "alarm", "protection_release", "protection")
"""The XZH order of one limit: high/low recover, alarm, over/under recover, protection."""


def _limit(name: str, first: int, make: Callable[[str, int], Register]) -> tuple[Register, ...]:
    return tuple(make(f"{name}.{part}", first + i) for i, part in enumerate(_LIMIT))


SPA_SHAPE: Final = (Register("ntc_count", 0x1300), Register("cell_count", 0x1301))

SPA: Final = (
    *SPA_SHAPE,
    *_limit("pack_over_voltage", 0x1302, _ten_mv),
    *_limit("pack_under_voltage", 0x1306, _ten_mv),
    *_limit("cell_over_voltage", 0x130A, _mv),
    *_limit("cell_under_voltage", 0x130E, _mv),
    _mv("cell_under_voltage_fault", 0x1312),
    _mv("cell_difference.protection", 0x1313),
    _ampere("charge_over_current.alarm_release", 0x1315),
    _ampere("charge_over_current.alarm", 0x1316),
    _ampere("charge_over_current.protection", 0x1317),
    _tenth("charge_over_current.delay", 0x1318),
    _ampere("charge_over_current_2.protection", 0x1319),
    Register("charge_over_current_2.delay", 0x131A, scale=0.001, digits=3),
    _ampere("discharge_over_current.alarm_release", 0x131B),
    _ampere("discharge_over_current.alarm", 0x131C),
    _ampere("discharge_over_current.protection", 0x131D),
    _tenth("discharge_over_current.delay", 0x131E),
    _ampere("discharge_over_current_2.protection", 0x131F),
    Register("discharge_over_current_2.delay", 0x1320, scale=0.001, digits=3),
    _ampere("short_circuit.protection", 0x1321),
    Register("short_circuit.delay", 0x1322, scale=1e-6, digits=6),
    _tenth("over_current_release_delay", 0x1323),
    Register("over_current_lock_times", 0x1324, "i16"),
    _tenth("charge_high_switch_limited_time", 0x1325),
    _ampere("pulse_current", 0x1326),
    _tenth("pulse_time", 0x1327),
    _tenth("precharge_short_percent", 0x132B),
    _tenth("precharge_stop_percent", 0x132C),
    _tenth("precharge_fault_percent", 0x132D),
    Register("precharge_over_time", 0x132E),
    *_limit("charge_high_temperature", 0x132F, _kelvin),
    *_limit("charge_low_temperature", 0x1333, _kelvin),
    *_limit("discharge_high_temperature", 0x1337, _kelvin),
    *_limit("discharge_low_temperature", 0x133B, _kelvin),
    *_limit("environment_high_temperature", 0x133F, _kelvin),
    *_limit("environment_low_temperature", 0x1343, _kelvin),
    *_limit("mos_high_temperature", 0x1347, _kelvin),
    _kelvin("heating_stop_temperature", 0x134B),
    _kelvin("heating_start_temperature", 0x134C),
    _kelvin("balance_high_temperature_limit", 0x134D),
    _kelvin("balance_low_temperature_limit", 0x134E),
    Register("static_balance_time", 0x134F),
    _mv("balance_start_voltage", 0x1350),
    _mv("balance_start_difference", 0x1351),
    _mv("balance_stop_difference", 0x1352),
    _tenth("soc_full_release", 0x1353, maximum=100),
    _tenth("low_soc.alarm_release", 0x1354, maximum=100),
    _tenth("low_soc.alarm", 0x1355, maximum=100),
    _tenth("low_soc.protection_release", 0x1356, maximum=100),
    _tenth("low_soc.protection", 0x1357, maximum=100),
    _capacity("rated_capacity", 0x1358),
    _capacity("total_capacity", 0x1359),
    _capacity("residual_capacity", 0x135A),
    Register("standby_to_sleep_time", 0x135B),
    _tenth("focs_output_delay", 0x135C),
    Register("focs_output_split", 0x135D),
    Register("pcs_output_timers", 0x135E),
    Register("compensation_position_1", 0x135F),
    Register("compensation_resistance_1", 0x1360),
    Register("compensation_position_2", 0x1361),
    Register("compensation_resistance_2", 0x1362),
    _mv("cell_difference.alarm", 0x1363),
    _mv("cell_difference.alarm_release", 0x1364),
    _ten_mv("pcs_charge_voltage", 0x1365),
    _ampere("pcs_charge_current", 0x1366),
    _ampere("pcs_discharge_current", 0x1367),
)
"""System parameters; 0x1314 and the reserved 0x1328-0x132A are not decoded."""

VIA: Final = (
    Register("factory_name", 0x1700, "text", count=10),
    Register("device_name", 0x170A, "text", count=10),
    Register("firmware_version", 0x1714, "text", count=1),
    Register("bms_serial", 0x1715, "text", count=15),
    Register("pack_serial", 0x1724, "text", count=15),
)
VIA_PROBE: Final = VIA[:1]
"""0x1700, 10 registers: the factory name (dialects.md 7.2 step 3)."""

PCT: Final = (
    Register("protocol_type", 0x1800),
    Register("baud_rate", 0x1801),
    Register("pcs_name", 0x1802, "text", count=16),
    Register("protocol_name", 0x1812, "text", count=16),
    Register("protocol_version", 0x1822, "text", count=1),
    Register("protocol_pre_switch", 0x1823),
)
"""PCS control: the inverter protocol the BMS speaks on its CAN/RS485 PCS port."""

# --- coils: PIC, EIC, SFA ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CoilByte:
    """Eight coils from ``address``: coil ``address + n`` is bit n."""

    name: str
    address: int
    flags: tuple[Flag, ...] = ()


def _flags(*entries: tuple[str, str | None] | None) -> tuple[Flag, ...]:
    """Bits from bit 0 up: (document name, shared key or None); None for a reserved bit."""
    return tuple(Flag(bit, e[0], e[1]) for bit, e in enumerate(entries) if e is not None)


TB09_SYSTEM_STATE: Final = _flags(
    ("discharging", None), ("charging", "charging"), ("floating_charge", None),
    ("full_charge", "fully_charged"), ("standby", None), ("turn_off", None),
)  # fmt: skip
TB02_VOLTAGE: Final = _flags(
    ("cell_high_voltage_alarm", "cell_over_voltage_alarm"),
    ("cell_over_voltage_protection", "cell_over_voltage_protection"),
    ("cell_low_voltage_alarm", "cell_under_voltage_alarm"),
    ("cell_under_voltage_protection", "cell_under_voltage_protection"),
    ("pack_high_voltage_alarm", "pack_over_voltage_alarm"),
    ("pack_over_voltage_protection", "pack_over_voltage_protection"),
    ("pack_low_voltage_alarm", "pack_under_voltage_alarm"),
    ("pack_under_voltage_protection", "pack_under_voltage_protection"),
)
TB03_CELL_TEMPERATURE: Final = _flags(
    ("charge_high_temperature_alarm", "charge_high_temperature_alarm"),
    ("charge_over_temperature_protection", "charge_high_temperature_protection"),
    ("charge_low_temperature_alarm", "charge_low_temperature_alarm"),
    ("charge_under_temperature_protection", "charge_low_temperature_protection"),
    ("discharge_high_temperature_alarm", "discharge_high_temperature_alarm"),
    ("discharge_over_temperature_protection", "discharge_high_temperature_protection"),
    ("discharge_low_temperature_alarm", "discharge_low_temperature_alarm"),
    ("discharge_under_temperature_protection", "discharge_low_temperature_protection"),
)
TB04_ENVIRONMENT_POWER: Final = _flags(
    ("environment_high_temperature_alarm", "environment_high_temperature_alarm"),
    ("environment_over_temperature_protection", "environment_high_temperature_protection"),
    ("environment_low_temperature_alarm", "environment_low_temperature_alarm"),
    ("environment_under_temperature_protection", "environment_low_temperature_protection"),
    ("power_high_temperature_alarm", "mos_high_temperature_alarm"),
    ("power_over_temperature_protection", "mos_high_temperature_protection"),
    ("cell_low_temperature_heating", None),
)
TB05_CURRENT_1: Final = _flags(
    ("charge_current_alarm", "charge_over_current_alarm"),
    ("charge_over_current_protection", "charge_over_current_protection"),
    ("charge_second_level_current_protection", None),
    ("discharge_current_alarm", "discharge_over_current_alarm"),
    ("discharge_over_current_protection", "discharge_over_current_protection"),
    ("discharge_second_level_over_current_protection", None),
    ("output_short_circuit_protection", "short_circuit_protection"),
)
TB16_CURRENT_2: Final = _flags(
    ("output_short_latch_up", None), None, ("second_charge_latch_up", None),
    ("second_discharge_latch_up", None),
)  # fmt: skip
TB06_RESIDUAL_CAPACITY: Final = _flags(
    None, None, ("soc_alarm", "low_soc_alarm"), ("soc_protection", None),
    ("cell_difference_alarm", None),
)  # fmt: skip
TB07_FET: Final = _flags(
    ("discharge_fet_on", "discharge_mos"), ("charge_fet_on", "charge_mos"),
    ("current_limiting_fet_on", "current_limit"), ("heating_on", "heating"),
)  # fmt: skip
TB08_EQUALIZATION_STATE: Final = _flags(
    ("low_soc_alarm", "low_soc_alarm"), ("intermittent_charge", None),
    ("external_switch_control", None), ("static_standby_and_sleep_mode", None),
    ("history_data_recording", None), ("under_soc_protection", None),
    ("active_limited_current", None), ("passive_limited_current", None),
)  # fmt: skip
TB15_HARD_FAULT: Final = _flags(
    ("ntc_fault", "ntc_fault"), ("afe_fault", "sampling_fault"),
    ("charge_mosfets_fault", "charge_mos_fault"),
    ("discharge_mosfets_fault", "discharge_mos_fault"),
    ("cell_fault", "cell_fault"), ("break_line_fault", None), ("key_fault", None),
    ("aerosol_alarm", None),
)  # fmt: skip
"""Hard faults: the AFE (analog front end, "AFE Comm. Error") is PACE's sampling fault; the
cell fault is "large voltage different"."""

EVENTS: Final = (
    ("system_state", TB09_SYSTEM_STATE),
    ("voltage_event", TB02_VOLTAGE),
    ("cell_temperature_event", TB03_CELL_TEMPERATURE),
    ("environment_power_temperature_event", TB04_ENVIRONMENT_POWER),
    ("current_event_1", TB05_CURRENT_1),
    ("current_event_2", TB16_CURRENT_2),
    ("residual_capacity", TB06_RESIDUAL_CAPACITY),
    ("fet_event", TB07_FET),
    ("equalization_state", TB08_EQUALIZATION_STATE),
    ("hard_fault", TB15_HARD_FAULT),
)
"""The event bytes in the order of PIC from 0x1240 and of EIC from 0x2200."""

PIC: Final = (
    CoilByte("cell_low_voltage_1_8", 0x1200),
    CoilByte("cell_low_voltage_9_16", 0x1208),
    CoilByte("cell_high_voltage_1_8", 0x1210),
    CoilByte("cell_high_voltage_9_16", 0x1218),
    CoilByte("cell_low_temperature_1_8", 0x1220),
    CoilByte("cell_high_temperature_1_8", 0x1228),
    CoilByte("balancing_1_8", 0x1230),
    CoilByte("balancing_9_16", 0x1238),
    *(CoilByte(name, 0x1240 + 8 * i, flags) for i, (name, flags) in enumerate(EVENTS)),
)
"""Pack info C (coils 0x1200-0x128F): per-cell alarm and balancing bits, then the events."""

EIC: Final = tuple(CoilByte(name, 0x2200 + 8 * i, flags) for i, (name, flags) in enumerate(EVENTS))
"""EMS info C (coils 0x2200-0x224F): the bank's event bytes."""

SFA: Final = (
    CoilByte("voltage_functions", 0x1400, TB02_VOLTAGE),
    CoilByte("cell_temperature_functions", 0x1408, TB03_CELL_TEMPERATURE),
    CoilByte("environment_power_temperature_functions", 0x1410, (
        *TB04_ENVIRONMENT_POWER, Flag(7, "cell_voltage_fault"))),
    CoilByte("function_switch", 0x1418, _flags(("focs_output", None))),
    CoilByte("current_functions_1", 0x1420, TB05_CURRENT_1),
    CoilByte("current_functions_2", 0x1428, _flags(
        ("output_short_latch_up", None), None,
        ("charge_second_level_over_current_latch_up", None),
        ("discharge_second_level_over_current_latch_up", None))),
    CoilByte("capacity_and_other_functions", 0x1430, TB08_EQUALIZATION_STATE),
    CoilByte("equalization_functions", 0x1438, _flags(
        ("equalization_module_on", None), ("static_equalization_indicate", None),
        ("static_equalization_overtime", None), ("equalization_temperature_limit", None))),
    CoilByte("indicator_functions", 0x1440, _flags(
        ("buzzer_indicator", None), ("lcd_display", None), ("manual_focs_output", None),
        ("auto_focs_output", None), ("under_voltage_recover", None),
        ("aerosol_test_function", None), ("aerosol_normally_disconnected_mode", None),
        ("temperature_current_adjust", None))),
    CoilByte("hard_fault_functions", 0x1448, TB15_HARD_FAULT),
)  # fmt: skip
"""System function switches (coils 0x1400-0x144F, TB02/03/10/17/05/11/08/12/18/15): RW in the
document, read here only; a set bit is a function switched on."""


def read_coil_bytes(table: Sequence[CoilByte], replies: Iterable[ReadReply]) -> dict[str, int]:
    """Every byte of ``table`` that a coil reply of ``replies`` holds whole."""
    values: dict[str, int] = {}
    for reply in replies:
        if reply.request.function != READ_COILS:
            continue
        start, stop = reply.request.start, reply.request.start + reply.request.count
        for item in table:
            if start <= item.address and item.address + 8 <= stop:
                values[item.name] = sum(reply.coil(item.address + n) << n for n in range(8))
    return values


# --- typed values ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PackShape:
    """What a pack's PIB holds: cells in series (SPA 0x1301), cell NTCs (0x1300), rated Ah."""

    cells: int
    cell_sensors: int
    rated_capacity: float = 0.0
    """SPA 0x1358 when read, used as the design capacity; 0 when not known."""

    def __post_init__(self) -> None:
        if not 1 <= self.cells <= CELL_REGISTERS:
            raise DecodeError(f"{self.cells} cells: PIB holds 1..{CELL_REGISTERS}")
        if self.cell_sensors < 0:
            raise DecodeError(f"{self.cell_sensors} cell temperature sensors")


@dataclass(frozen=True, slots=True)
class PackInfo:
    """The PIA values :class:`PackAnalog` has no place for: V, °C, A, Ah."""

    total_discharge_capacity: float
    average_cell_voltage: float
    max_cell_voltage: float
    min_cell_voltage: float
    average_cell_temperature: float
    max_cell_temperature: float
    min_cell_temperature: float
    max_discharge_current: float
    max_charge_current: float


@dataclass(frozen=True, slots=True)
class BankValues:
    """EIA: the bank as the system unit sums it up (V, A + = charging, Ah, %, raw pack bits)."""

    voltage: float
    current: float
    remaining_capacity: float
    total_capacity: float
    total_discharge_capacity: float
    rated_capacity: float
    online_pack_flags: int
    """Bit mask; bit 0 was pack 1 in the one capture (the document gives no order)."""
    protected_pack_flags: int
    max_discharge_current: float
    max_charge_current: float
    suggested_pack_over_voltage: float
    suggested_pack_under_voltage: float
    pack_count: int
    cycles: int
    soc: float
    soh: float


@dataclass(frozen=True, slots=True)
class BankExtremes:
    """EIB: the bank's cell and pack extremes (V, °C) and which cell/pack holds them."""

    max_cell_voltage: float
    min_cell_voltage: float
    max_cell_voltage_id: int
    min_cell_voltage_id: int
    max_pack_voltage: float
    min_pack_voltage: float
    max_pack_voltage_id: int
    min_pack_voltage_id: int
    max_cell_temperature: float
    min_cell_temperature: float
    average_cell_temperature: float
    max_cell_temperature_id: int
    min_cell_temperature_id: int
    unconfirmed: tuple[int, ...]
    """Words 0x210D-0x2115 as read: their order is not established (module docstring)."""


@dataclass(frozen=True, slots=True)
class BankSummary:
    """The bank at the system unit: EIA, and EIB and EIC when they were read.

    EIB is optional: the SG16S200A answers it with exception 02.
    """

    values: BankValues
    extremes: BankExtremes | None = None
    status: DialectStatus | None = None


@dataclass(frozen=True, slots=True)
class Parameters:
    """SPA, read-only: V, A (discharge side negative, as sent), °C, s, %, Ah.

    Times are in seconds except ``static_balance_time`` and ``standby_to_sleep_time`` (hours)
    and ``focs_output_split`` (minutes).
    """

    ntc_count: int
    cell_count: int
    pack_over_voltage: Threshold
    pack_under_voltage: Threshold
    cell_over_voltage: Threshold
    cell_under_voltage: Threshold
    cell_under_voltage_fault: float
    cell_difference: Threshold
    charge_over_current: Threshold
    charge_over_current_2: Threshold
    discharge_over_current: Threshold
    discharge_over_current_2: Threshold
    short_circuit: Threshold
    over_current_release_delay: float
    over_current_lock_times: int
    charge_high_switch_limited_time: float
    pulse_current: int
    pulse_time: float
    precharge_short_percent: float
    precharge_stop_percent: float
    precharge_fault_percent: float
    precharge_over_time: int
    charge_high_temperature: Threshold
    charge_low_temperature: Threshold
    discharge_high_temperature: Threshold
    discharge_low_temperature: Threshold
    environment_high_temperature: Threshold
    environment_low_temperature: Threshold
    mos_high_temperature: Threshold
    """The document's "power temperature"."""
    heating_stop_temperature: float
    heating_start_temperature: float
    balance_high_temperature_limit: float
    balance_low_temperature_limit: float
    static_balance_time: int
    balance_start_voltage: float
    balance_start_difference: float
    balance_stop_difference: float
    soc_full_release: float
    low_soc: Threshold
    rated_capacity: float
    total_capacity: float
    residual_capacity: float
    standby_to_sleep_time: int
    focs_output_delay: float
    focs_output_split: int
    pcs_output_timers: int
    compensation_position_1: int
    compensation_resistance_1: int
    """mOhm."""
    compensation_position_2: int
    compensation_resistance_2: int
    pcs_charge_voltage: float
    pcs_charge_current: int
    pcs_discharge_current: int


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """VIA: names, firmware version (the two characters as sent) and serials; blank is None."""

    factory_name: str | None
    device_name: str | None
    firmware_version: str | None
    bms_serial: str | None
    pack_serial: str | None


@dataclass(frozen=True, slots=True)
class PcsSettings:
    """PCT: which inverter protocol the BMS speaks to the PCS (raw switch values as sent)."""

    protocol_type: int
    baud_rate: int
    """The document's unit is "Kbps/bps" (500 is seen for a CAN protocol)."""
    pcs_name: str
    protocol_name: str
    protocol_version: str
    protocol_pre_switch: int


@dataclass(frozen=True, slots=True)
class FunctionSwitches:
    """SFA: the names of the functions switched on, and every switch byte as read."""

    enabled: tuple[str, ...]
    raw: Mapping[str, int] = field(default_factory=dict)


# --- requests ----------------------------------------------------------------------------------


def _check_unit(unit: int) -> int:
    if unit not in UNITS:
        raise ValueError(f"unit {unit} is none of the XZH device ids (0x00-0x7F, 0xC0, 0xE0)")
    return unit


def _registers(unit: int, table: Sequence[Register]) -> ReadRequest:
    return ReadRequest(_check_unit(unit), READ_INPUT, *span(table))


def _coils(unit: int, table: Sequence[CoilByte]) -> ReadRequest:
    first = min(item.address for item in table)
    count = max(item.address for item in table) + 8 - first
    return ReadRequest(_check_unit(unit), READ_COILS, first, count)


def probe_request(unit: int = SYSTEM_UNIT) -> ReadRequest:
    """VIA 0x1700, 10 registers: the factory name (dialects.md 7.2 step 3)."""
    return _registers(unit, VIA_PROBE)


def pack_requests(unit: int) -> tuple[ReadRequest, ...]:
    """PIA (fc 04, 17 registers), PIB (fc 04, 26) and PIC (fc 01, 144 coils) of one pack."""
    return _registers(unit, PIA), _registers(unit, PIB), _coils(unit, PIC)


def bank_requests(unit: int = SYSTEM_UNIT) -> tuple[ReadRequest, ...]:
    """EIA (26 registers), EIB (22) and EIC (80 coils); EIB may be refused (exception 02)."""
    return _registers(unit, EIA), _registers(unit, EIB), _coils(unit, EIC)


def parameter_requests(unit: int = DISPLAY_UNIT) -> tuple[ReadRequest, ...]:
    """SPA 0x1300-0x1367 in one read (104 registers; dbus-serialbattery reads 0x6A at once)."""
    return (_registers(unit, SPA),)


def device_info_requests(unit: int = SYSTEM_UNIT) -> tuple[ReadRequest, ...]:
    """VIA 0x1700-0x1732 (51 registers)."""
    return (_registers(unit, VIA),)


def pcs_requests(unit: int = SYSTEM_UNIT) -> tuple[ReadRequest, ...]:
    """PCT 0x1800-0x1823 (36 registers)."""
    return (_registers(unit, PCT),)


def function_switch_requests(unit: int = SYSTEM_UNIT) -> tuple[ReadRequest, ...]:
    """SFA coils 0x1400-0x144F (80 coils)."""
    return (_coils(unit, SFA),)


# --- decoding ----------------------------------------------------------------------------------


def _replies(unit: int, replies: Iterable[ReadReply]) -> list[ReadReply]:
    found = list(replies)
    for reply in found:
        if reply.request.unit != unit:
            raise DecodeError(f"reply of unit {reply.request.unit} given for unit {unit}")
    return found


def _input(found: Iterable[ReadReply], table: Sequence[Register]) -> dict[str, Value]:
    """The values of ``table`` from the fc 04 replies, every one of them required."""
    values = read_replies(table, (r for r in found if r.request.function == READ_INPUT))
    missing = [item.name for item in table if item.name not in values]
    if missing:
        raise DecodeError(f"the replies lack registers for {', '.join(missing)}")
    return values


def _coil_bytes(found: Iterable[ReadReply], table: Sequence[CoilByte]) -> dict[str, int]:
    values = read_coil_bytes(table, found)
    missing = [item.name for item in table if item.name not in values]
    if missing:
        raise DecodeError(f"the replies lack coils for {', '.join(missing)}")
    return values


def decode_shape(replies: Iterable[ReadReply]) -> PackShape:
    """Cell and NTC counts (SPA 0x1301, 0x1300) and the rated capacity (0x1358) when read.

    An NTC count above the four cell temperature registers of PIB shows those four.
    """
    found = list(replies)
    values = _input(found, SPA_SHAPE)
    rated = read_replies((_capacity("rated_capacity", 0x1358),), found)
    return PackShape(
        int(as_number(values["cell_count"])),
        min(int(as_number(values["ntc_count"])), CELL_SENSOR_REGISTERS),
        as_number(rated.get("rated_capacity", 0.0)),
    )


def decode_analog(unit: int, replies: Iterable[ReadReply], shape: PackShape) -> PackAnalog:
    """PIA and PIB of ``unit`` as a :class:`PackAnalog` of ``shape``'s cells and sensors.

    Temperatures in the shared roles: the four cell slots (``None`` past the NTC count), then
    the power (MOSFET) temperature, then the environment.
    """
    found = _replies(unit, replies)
    values = _input(found, (*PIA, *PIB))
    sensors = min(shape.cell_sensors, CELL_SENSOR_REGISTERS)
    cell_temperatures = as_numbers(values["cell_temperatures"])
    temperatures: tuple[float | None, ...] = (
        *cell_temperatures[:sensors],
        *(None,) * (CELL_SENSOR_REGISTERS - sensors),
        as_number(values["power_temperature"]),
        as_number(values["environment_temperature"]),
    )
    return PackAnalog(
        unit,
        True,
        as_numbers(values["cell_voltages"])[: shape.cells],
        temperatures,
        as_number(values["current"]),
        as_number(values["voltage"]),
        as_number(values["remaining_capacity"]),
        as_number(values["total_capacity"]),
        shape.rated_capacity,
        int(as_number(values["cycles"])),
        reported_soc=as_number(values["soc"]),
        reported_soh=as_number(values["soh"]),
    )


def decode_pack_info(unit: int, replies: Iterable[ReadReply]) -> PackInfo:
    """The PIA values beside :func:`decode_analog`'s."""
    values = _input(_replies(unit, replies), PIA)
    return PackInfo(**{f.name: values[f.name] for f in fields(PackInfo)})  # type: ignore[arg-type]


def _events(raw: Mapping[str, int]) -> tuple[list[str], list[str]]:
    keys: list[str] = []
    extra: list[str] = []
    for name, flags in EVENTS:
        shared, own = active_flags(raw[name], flags)
        keys += shared
        extra += own
    return keys, extra


def decode_status(unit: int, replies: Iterable[ReadReply], shape: PackShape) -> DialectStatus:
    """PIC of ``unit`` (coils 0x1200-0x128F) as a :class:`~.base.DialectStatus`.

    The per-cell low/high voltage alarm bits become the cell codes (01 below, 02 above), the
    per-sensor temperature bits the codes of the cell temperature slots; the power and
    environment sensors have no per-sensor bit (code 00).
    """
    raw = _coil_bytes(_replies(unit, replies), PIC)
    keys, extra = _events(raw)

    def bits(low: str, high: str) -> int:
        return raw[low] | raw[high] << 8

    low_v = bits("cell_low_voltage_1_8", "cell_low_voltage_9_16")
    high_v = bits("cell_high_voltage_1_8", "cell_high_voltage_9_16")
    cell_codes = tuple(
        CODE_ABOVE if high_v >> n & 1 else CODE_BELOW if low_v >> n & 1 else 0
        for n in range(shape.cells)
    )
    low_t, high_t = raw["cell_low_temperature_1_8"], raw["cell_high_temperature_1_8"]
    sensors = min(shape.cell_sensors, CELL_SENSOR_REGISTERS)
    temperature_codes = (
        *(
            CODE_ABOVE if high_t >> n & 1 else CODE_BELOW if low_t >> n & 1 else 0
            for n in range(sensors)
        ),
        *(0,) * (CELL_SENSOR_REGISTERS - sensors + 2),
    )
    balance = bits("balancing_1_8", "balancing_9_16")
    bytes_ = status_bytes(keys)
    bytes_[StatusByte.BALANCE_1], bytes_[StatusByte.BALANCE_2] = balance_bytes(
        n + 1 for n in range(shape.cells) if balance >> n & 1
    )
    status = PackStatus(unit, cell_codes, temperature_codes, 0, 0, 0, bytes_)
    return DialectStatus(status, tuple(extra), raw)


def decode_bank(replies: Iterable[ReadReply], unit: int = SYSTEM_UNIT) -> BankSummary:
    """EIA (required), EIB and EIC (each when a reply holds it) of the system unit."""
    found = _replies(unit, replies)
    values = BankValues(**_input(found, EIA))  # type: ignore[arg-type]
    extremes = None
    eib = read_replies(EIB, (r for r in found if r.request.function == READ_INPUT))
    if eib:
        eib = _input(found, EIB)
        extremes = BankExtremes(**eib)  # type: ignore[arg-type]
    status = None
    raw = read_coil_bytes(EIC, found)
    if raw:
        raw = _coil_bytes(found, EIC)
        keys, extra = _events(raw)
        bank = PackStatus(unit, (), (), 0, 0, 0, status_bytes(keys))
        status = DialectStatus(bank, tuple(extra), raw)
    return BankSummary(values, extremes, status)


def decode_parameters(replies: Iterable[ReadReply], unit: int = DISPLAY_UNIT) -> Parameters:
    """SPA 0x1300-0x1367 from one or more replies of ``unit`` (syssi reads it in two halves)."""
    return Parameters(**thresholds(_input(_replies(unit, replies), SPA)))


def _texts(values: Mapping[str, Value]) -> dict[str, str | None]:
    return {name: str(value) or None for name, value in values.items()}


def decode_device_info(replies: Iterable[ReadReply], unit: int = SYSTEM_UNIT) -> DeviceInfo:
    """VIA; the probe read (the factory name alone) gives the other names as None."""
    found = _replies(unit, replies)
    values = read_replies(VIA, (r for r in found if r.request.function == READ_INPUT))
    if "factory_name" not in values:
        raise DecodeError("the replies lack VIA 0x1700 (the factory name)")
    texts = _texts(values)
    return DeviceInfo(**{item.name: texts.get(item.name) for item in VIA})


def decode_pcs(replies: Iterable[ReadReply], unit: int = SYSTEM_UNIT) -> PcsSettings:
    """PCT 0x1800-0x1823."""
    return PcsSettings(**_input(_replies(unit, replies), PCT))  # type: ignore[arg-type]


def decode_function_switches(
    replies: Iterable[ReadReply], unit: int = SYSTEM_UNIT
) -> FunctionSwitches:
    """SFA coils 0x1400-0x144F: the names of the functions switched on."""
    raw = _coil_bytes(_replies(unit, replies), SFA)
    enabled = [flag.name for item in SFA for flag in item.flags if raw[item.name] >> flag.bit & 1]
    return FunctionSwitches(tuple(enabled), raw)


class SeplosV3Reader:
    """Pack ``n`` at unit ``n``; the cell and NTC counts first, from SPA at the display unit."""

    info = INFO
    status_keys = frozenset({*shared_keys(*(flags for _, flags in EVENTS)), "balancing"})

    def __init__(self) -> None:
        self.shape: PackShape | None = None
        """Learned at the first read (SPA 0x1300-0x1367, unit 0xE0)."""

    def bus_address(self, number: int) -> int:
        """Unit ``number``."""
        return number

    async def identify(self, ask: Ask, number: int) -> Identity:
        """VIA of the pack: names, firmware version and serials."""
        found = decode_device_info(await read_modbus(ask, device_info_requests(number)), number)
        return Identity(
            model=found.device_name or found.factory_name,
            version=found.firmware_version,
            serial=found.bms_serial,
            pack_serial=found.pack_serial,
        )

    async def read(self, ask: Ask, number: int) -> Reading:
        """PIA, PIB and PIC of the pack."""
        if self.shape is None:
            self.shape = decode_shape(await read_modbus(ask, parameter_requests()))
        replies = await read_modbus(ask, pack_requests(number))
        return reading(
            number,
            decode_analog(number, replies, self.shape),
            decode_status(number, replies, self.shape),
        )
