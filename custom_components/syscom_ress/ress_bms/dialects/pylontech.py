"""Pylontech RS485 (protocol V2.8 and V3.3; US2000 / US3000 / US5000): VER 0x20, CID1 0x46.

Sources: *PYLON LFP Battery communication protocol - RS485 V2.8* and *PYLON low voltage Protocol
RS485 V3.3*, [PYLON-2.8] and [PYLON-3.3] in the team's dialects reference (dialects.md 3).
Decoded here, every read the RS485 documents define:

* 42H analog values ([PYLON-3.3] 3.3) into :class:`~..analog.PackAnalog`, one pack or a whole
  group (COMMAND FF: a block per pack, the master's first);
* 44H alarm info ([PYLON-3.3] 3.5) into :class:`~.ver20.Ver20Status`, one or a group;
* 47H system parameters into :class:`SystemParameters`, 92H charge/discharge management into
  :class:`ChargeManagement`, 93H module serial number, 96H software version, 51H manufacturer
  info, 4FH protocol version (the reply's VER).

Read only: the RS485 documents define two writes, 94H (set charge/discharge management, to be
re-sent every 10 s, "contact PYLONTECH first") and 95H (turn the module off), both unsafe, and
no parameter, MOSFET, buzzer, history or clock command (dialects.md 3.2, 3.9). 90H and 91H are
RTN codes on RS485 (ADR error, communication error), not commands.

Addressing ([PYLON-3.3] 2.5.3): the group master is ADR ``2 + 0x10 * group``, slaves 3..13; the
COMMAND byte of a request is the pack's ADR, or FF at the master's ADR for the whole group
(42H and 44H only). Pack *i* of a group reply is at the master's ADR + *i*.

Units: cell and module voltages mV, current 100 mA (+ = charge), capacities mAh, temperatures
0.1 K/2731 (dialects.md 8.1-8.4). The user-defined number P counts the items after it: 2 (module
total capacity 1, cycles) up to 65 Ah, 4 above (the 24-bit remaining capacity 2 and total
capacity 2 follow, and the 16-bit fields read FFFF): the 24-bit values are used when present.
There is no SOC, SOH or design capacity: ``PackAnalog.soc`` is computed from remaining / total
and ``design_capacity`` is 0 (so ``soh`` reads 0, "computed": not a value to show).

Temperatures: the wire sends T1 BMS board, then the cell-group averages (cells 1-4, 5-8, 9-12,
13-15/16). The board temperature takes PackAnalog's MOS/board slot after the cell groups. 44H
documents a sixth value, the MOSFET (US3000B only); when a block carries more than five, the
last is the MOSFET and takes the MOS slot, and the board temperature takes the environment slot
(the closest shared role for the inside of the module). The 44H codes follow the same order.

Alarm bits: status 2 and 3 name MOSFET, charging, heater and full-charge states that are shared
keys; status 1 names conditions ("module under voltage") without saying alarm or protection, so
they keep their own names (:data:`OWN_BITS`); status 4/5 flag cells above 4.2 V or below 1 V
(``cell_error`` in :attr:`~.ver20.Ver20Status.extra_cells`). 44H has no count after the codes:
undocumented bytes after status 5 (one on a US3000C) are solved from the length, the same number
in every block, and kept.

The Pylontech-like Itel Energy clone sends capacities in 10 mAh with P = 2 (dialects.md 8.4);
this module decodes the documents, so such a pack's capacities read ten times too low.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ..analog import AnalogReply, PackAnalog
from ..buffer import solve_trailer
from ..errors import DecodeError
from ..framing import ASCII
from .base import Ask, Capability, DialectInfo, Field, Identity, MultiPack, Reading, reading
from .ver20 import (
    VER,
    ManufacturerInfo,
    Own,
    Reply,
    Values,
    Ver20Status,
    bit_table,
    build_status,
    check_reads,
    deci_kelvin,
    encode_read,
    read_exact,
    read_manufacturer_info,
    read_part,
    reply_frame,
    shared_roles,
    text,
)

CID1: Final = 0x46
PROTOCOL_VERSION: Final = 0x4F
MANUFACTURER_INFO: Final = 0x51
ANALOG: Final = 0x42
STATUS: Final = 0x44
SYSTEM_PARAMETERS: Final = 0x47
MANAGEMENT: Final = 0x92
SERIAL_NUMBER: Final = 0x93
SOFTWARE_VERSION: Final = 0x96
ALL_PACKS: Final = 0xFF
"""COMMAND of 42H/44H at the group master's ADR: every pack of the group."""

READ_COMMANDS: Final = check_reads(
    frozenset(
        {
            PROTOCOL_VERSION,
            MANUFACTURER_INFO,
            ANALOG,
            STATUS,
            SYSTEM_PARAMETERS,
            MANAGEMENT,
            SERIAL_NUMBER,
            SOFTWARE_VERSION,
        }
    )
)
"""Every CID2 this module encodes ([PYLON-3.3] 2.5.2): all reads; 94H and 95H never."""

INFO: Final = DialectInfo(
    name="pylontech",
    title="Pylontech RS485 V2.8 / V3.3",
    framing=ASCII,
    baudrates=(9600, 115200),
    capabilities=frozenset({Capability.TELEMETRY, Capability.ALARMS, Capability.PARAMETERS_READ}),
    multipack=MultiPack.GROUP_MASTER,
    brands=(
        "Pylontech US2000 / US2000B / US2000B-Plus / US2000C",
        "Pylontech US3000 / US3000B",
        "Pylontech US5000 / US5000C",
    ),
    reasons={
        Capability.PARAMETERS_WRITE: "RS485 defines no parameter write; 94H (charge management)"
        " must be re-sent every 10 s and needs Pylontech's consent",
        Capability.CONTROLS: "the only control is 95H, turn the module off: unsafe",
        Capability.HISTORY: "no history command",
        Capability.CLOCK: "no time command",
    },
    version=VER,
    reads=READ_COMMANDS,
)
"""115200 8N1 is the document's default, 9600 with DIP 1 up ([PYLON-3.3] 2.4); the probe
sequence tries 9600 first, with the other 9600 dialects (dialects.md 7.2 steps 1 and 4)."""

HEADER: Final = (Field("info_flag", "u8"), Field("command_value", "u8"))
"""INFOFLAG, then the COMMAND echoed (one pack) or the pack count (COMMAND FF)."""

ANALOG_BLOCK: Final = (
    Field("cell_count", "u8"),
    Field("cell_voltages", "i16", scale=0.001, count="cell_count", digits=3),
    Field("temperature_count", "u8"),
    deci_kelvin("temperatures", "i16", count="temperature_count"),
    Field("current", "i16", scale=0.1, digits=1),
    Field("voltage", "u16", scale=0.001, digits=3),
    Field("remaining_capacity_1", "u16", scale=0.001, digits=3),
    Field("user_defined_count", "u8"),
)
"""One pack of 42H up to P ([PYLON-3.3] 3.3; units [PYLON-2.8] 4)."""

ANALOG_ITEMS: Final = (
    Field("total_capacity_1", "u16", scale=0.001, digits=3),
    Field("cycles", "u16"),
    Field("remaining_capacity_2", "raw", size=3),
    Field("total_capacity_2", "raw", size=3),
)
"""The P items after P: 2 up to 65 Ah, 4 above (24-bit mAh)."""

MIN_ANALOG_ITEMS: Final = 2

STATUS_BLOCK: Final = (
    Field("cell_count", "u8"),
    Field("cell_codes", "u8", count="cell_count"),
    Field("temperature_count", "u8"),
    Field("temperature_codes", "u8", count="temperature_count"),
    Field("charge_current_code", "u8"),
    Field("voltage_code", "u8"),
    Field("discharge_current_code", "u8"),
    Field("status_1", "u8"),
    Field("status_2", "u8"),
    Field("status_3", "u8"),
    Field("status_4", "u8"),
    Field("status_5", "u8"),
)
"""One pack of 44H ([PYLON-3.3] 3.5): codes 00 normal, 01 below, 02 above, F0 other."""

MAX_STATUS_TRAILER: Final = 8
"""Undocumented bytes accepted after status 5 of each 44H block (a US3000C sends one)."""

STATUS_TABLE: Final = bit_table(
    {
        "status_1": (
            Own("module_over_voltage"), Own("cell_under_voltage"), Own("charge_over_current"),
            None, Own("discharge_over_current"), Own("discharge_over_temperature"),
            Own("charge_over_temperature"), Own("module_under_voltage"),
        ),
        "status_2": (
            Own("precharge_mos"), "charge_mos", "discharge_mos", Own("using_battery_power"),
        ),
        "status_3": (
            Own("buzzer_on"), None, None, "fully_charged", None, "heating", Own("discharging"),
            "charging",
        ),
    },
    cell_fields={"cell_error": ("status_4", "status_5")},
)  # fmt: skip
"""[PYLON-3.3] 3.5, bit 0 first. Status 3 bit 7 "effective charge current" is the shared
charging state; bit 0 is the buzzer sounding, not the buzzer setting of the shared table."""

OWN_BITS: Final = STATUS_TABLE.own_names
"""Pylontech bits with no shared key, reported in :attr:`~.base.DialectStatus.extra`."""

SYSTEM_PARAMETER_LAYOUT: Final = (
    Field("info_flag", "u8"),
    Field("cell_high_voltage_limit", "u16", scale=0.001, digits=3),
    Field("cell_low_voltage_limit", "u16", scale=0.001, digits=3),
    Field("cell_under_voltage_limit", "u16", scale=0.001, digits=3),
    deci_kelvin("charge_high_temperature_limit", "i16"),
    deci_kelvin("charge_low_temperature_limit", "i16"),
    Field("charge_current_limit", "i16", scale=0.1, digits=1),
    Field("module_high_voltage_limit", "u16", scale=0.001, digits=3),
    Field("module_low_voltage_limit", "u16", scale=0.001, digits=3),
    Field("module_under_voltage_limit", "u16", scale=0.001, digits=3),
    deci_kelvin("discharge_high_temperature_limit", "i16"),
    deci_kelvin("discharge_low_temperature_limit", "i16"),
    Field("discharge_current_limit", "i16", scale=0.1, digits=1),
)
"""47H ([PYLON-3.3] 3.4, units [PYLON-2.8] 4): INFOFLAG and twelve words, 25 bytes."""

MANAGEMENT_LAYOUT: Final = (
    Field("command_value", "u8"),
    Field("charge_voltage_limit", "u16", scale=0.001, digits=3),
    Field("discharge_voltage_limit", "u16", scale=0.001, digits=3),
    Field("charge_current_limit", "i16", scale=0.1, digits=1),
    Field("discharge_current_limit", "i16", scale=0.1, digits=1),
    Field("status", "u8"),
)
"""92H ([PYLON-3.3] 3.6): COMMAND, mV, mV, 100 mA, 100 mA, status (10 bytes)."""

MANAGEMENT_BITS: Final = {
    7: "charge_enabled",
    6: "discharge_enabled",
    5: "charge_immediately_1",
    4: "charge_immediately_2",
    3: "full_charge_request",
}
"""92H status byte; bits 2-0 unused."""

SERIAL_LAYOUT: Final = (Field("command_value", "u8"), text("serial", 16))
"""93H ([PYLON-3.3] 3.7): COMMAND and 16 ASCII."""

SOFTWARE_VERSION_LAYOUT: Final = (
    Field("command_value", "u8"),
    Field("manufacturer_version", "u8", count=2),
    Field("main_line_version", "u8", count=3),
)
"""96H ([PYLON-3.3] 3.10): COMMAND, 2 bytes manufacturer version, 3 bytes main-line version."""


@dataclass(frozen=True, slots=True)
class SystemParameters:
    """47H: the module's limits, in V, °C and A (discharge current negative)."""

    cell_high_voltage_limit: float
    cell_low_voltage_limit: float
    cell_under_voltage_limit: float
    charge_high_temperature_limit: float
    charge_low_temperature_limit: float
    charge_current_limit: float
    module_high_voltage_limit: float
    module_low_voltage_limit: float
    module_under_voltage_limit: float
    discharge_high_temperature_limit: float
    discharge_low_temperature_limit: float
    discharge_current_limit: float


@dataclass(frozen=True, slots=True)
class ChargeManagement:
    """92H: the charge and discharge limits the module asks for, and its requests."""

    address: int
    """The COMMAND value of the reply: the module's ADR."""
    charge_voltage_limit: float
    discharge_voltage_limit: float
    charge_current_limit: float
    discharge_current_limit: float
    charge_enabled: bool
    """0 on the wire: the module asks to stop charging."""
    discharge_enabled: bool
    charge_immediately_1: bool
    """SOC 15-19 % on US2000B, 5-9 % on US2000B-Plus / US3000B."""
    charge_immediately_2: bool
    """SOC 9-13 %."""
    full_charge_request: bool
    """SOC has not exceeded 97 % for 30 days."""


@dataclass(frozen=True, slots=True)
class ModuleSerial:
    """93H: the module's serial number."""

    address: int
    serial: str


@dataclass(frozen=True, slots=True)
class SoftwareVersion:
    """96H: the manufacturer's and the main-line software versions."""

    address: int
    manufacturer_version: tuple[int, ...]
    main_line_version: tuple[int, ...]

    @property
    def manufacturer(self) -> str:
        """The manufacturer version as dotted numbers."""
        return ".".join(map(str, self.manufacturer_version))

    @property
    def main_line(self) -> str:
        """The main-line version as dotted numbers."""
        return ".".join(map(str, self.main_line_version))


def _command(address: int, command: int | None) -> bytes:
    value = address if command is None else command
    if not 0 <= value <= 0xFF:
        raise ValueError(f"COMMAND {value} out of range")
    return bytes((value,))


def protocol_version_request(address: int) -> bytes:
    """4FH, no INFO (the battery ignores the request's VER; the reply's VER answers)."""
    return encode_read(READ_COMMANDS, CID1, PROTOCOL_VERSION, address)


def manufacturer_info_request(address: int) -> bytes:
    """51H, no INFO."""
    return encode_read(READ_COMMANDS, CID1, MANUFACTURER_INFO, address)


def analog_request(address: int, command: int | None = None) -> bytes:
    """42H at ``address``; COMMAND the address (one pack) or :data:`ALL_PACKS` (the group)."""
    return encode_read(READ_COMMANDS, CID1, ANALOG, address, _command(address, command))


def status_request(address: int, command: int | None = None) -> bytes:
    """44H, addressed as :func:`analog_request`."""
    return encode_read(READ_COMMANDS, CID1, STATUS, address, _command(address, command))


def system_parameters_request(address: int) -> bytes:
    """47H, no INFO ([PYLON-3.3]; answered so at ADR 2 by a US5000)."""
    return encode_read(READ_COMMANDS, CID1, SYSTEM_PARAMETERS, address)


def management_request(address: int) -> bytes:
    """92H for the module at ``address`` (COMMAND = ADR)."""
    return encode_read(READ_COMMANDS, CID1, MANAGEMENT, address, _command(address, None))


def serial_number_request(address: int) -> bytes:
    """93H for the module at ``address`` (COMMAND = ADR)."""
    return encode_read(READ_COMMANDS, CID1, SERIAL_NUMBER, address, _command(address, None))


def software_version_request(address: int) -> bytes:
    """96H for the module at ``address`` (COMMAND = ADR; protocol V2.9 and later)."""
    return encode_read(READ_COMMANDS, CID1, SOFTWARE_VERSION, address, _command(address, None))


def _blocks(info: bytes, command: int, what: str) -> tuple[Values, int]:
    """The header of a 42H/44H reply and its pack count; the echo is checked."""
    header, _ = read_part(HEADER, info, 0)
    value = header.integer("command_value")
    if command == ALL_PACKS:
        if value == 0:
            raise DecodeError(f"{what}: the group reply lists no pack")
        return header, value
    if value != command:
        raise DecodeError(f"{what}: reply for COMMAND {value:02X}, asked for {command:02X}")
    return header, 1


def _temperature_roles[T](words: tuple[T, ...], absent: T) -> tuple[T, ...]:
    if not words:
        return ()
    if len(words) <= 5:
        return shared_roles(words[1:], words[0], None, absent)
    return shared_roles(words[1:-1], words[-1], words[0], absent)


def _analog_block(info: bytes, pos: int, address: int) -> tuple[PackAnalog, int]:
    head, pos = read_part(ANALOG_BLOCK, info, pos)
    count = head.integer("user_defined_count")
    if not MIN_ANALOG_ITEMS <= count <= len(ANALOG_ITEMS):
        raise DecodeError(f"42H: user-defined number {count}, the documents define 2 and 4")
    items, pos = read_part(ANALOG_ITEMS[:count], info, pos)
    remaining = head.number("remaining_capacity_1")
    total = items.number("total_capacity_1")
    if "remaining_capacity_2" in items:
        remaining = items.big_endian("remaining_capacity_2") / 1000
    if "total_capacity_2" in items:
        total = items.big_endian("total_capacity_2") / 1000
    cells = head.numbers("cell_voltages")
    temperatures: tuple[float | None, ...] = head.numbers("temperatures")
    voltage = head.number("voltage")
    pack = PackAnalog(
        address,
        voltage > 0 or any(cells),
        cells,
        _temperature_roles(temperatures, None),
        head.number("current"),
        voltage,
        remaining,
        total,
        0.0,
        items.integer("cycles"),
        count,
    )
    return pack, pos


def decode_analog(reply: Reply, command: int | None = None) -> AnalogReply:
    """A 42H reply to ``command`` (default: the reply's ADR, one pack; :data:`ALL_PACKS`)."""
    frame = reply_frame(reply, (CID1,), ANALOG)
    asked = frame.adr if command is None else command
    header, count = _blocks(frame.info, asked, "42H")
    pos, packs = len(HEADER), []
    for index in range(count):
        pack, pos = _analog_block(frame.info, pos, frame.adr + index)
        packs.append(pack)
    if pos != len(frame.info):
        raise DecodeError(f"42H: {len(frame.info) - pos} bytes left over after {count} packs")
    return AnalogReply(header.integer("info_flag"), tuple(packs))


def _status_size(info: bytes, pos: int, trailer: int) -> int | None:
    """Size of the 44H block at ``pos`` with ``trailer`` undocumented bytes after status 5."""
    temperatures = pos + 1 + info[pos] if pos < len(info) else len(info)
    if temperatures >= len(info):
        return None
    return 1 + info[pos] + 1 + info[temperatures] + 3 + 5 + trailer


def decode_status(reply: Reply, command: int | None = None) -> tuple[Ver20Status, ...]:
    """A 44H reply to ``command`` (as :func:`decode_analog`): one status per pack.

    A US3000C was seen sending one byte more than the documents after status 5: up to
    :data:`MAX_STATUS_TRAILER` such bytes, the same number in every block, are accepted and
    kept in ``raw`` as ``trailing_1`` ...
    """
    frame = reply_frame(reply, (CID1,), STATUS)
    asked = frame.adr if command is None else command
    header, count = _blocks(frame.info, asked, "44H")
    trailer = solve_trailer(frame.info, count, range(MAX_STATUS_TRAILER + 1), _status_size)
    if trailer is None:
        raise DecodeError(f"44H: {count} blocks do not fill {len(frame.info)} bytes")
    layout = (*STATUS_BLOCK, *(Field(f"trailing_{n + 1}", "u8") for n in range(trailer)))
    pos, packs = len(HEADER), []
    for index in range(count):
        values, pos = read_part(layout, frame.info, pos)
        packs.append(
            build_status(
                STATUS_TABLE,
                values,
                address=frame.adr + index,
                temperature_codes=_temperature_roles(values.integers("temperature_codes"), 0),
                codes=(
                    values.integer("charge_current_code"),
                    values.integer("voltage_code"),
                    values.integer("discharge_current_code"),
                ),
                data_flag=header.integer("info_flag"),
            )
        )
    if pos != len(frame.info):
        raise DecodeError(f"44H: {len(frame.info) - pos} bytes left over after {count} packs")
    return tuple(packs)


def decode_system_parameters(reply: Reply) -> SystemParameters:
    """A 47H reply."""
    values = read_exact(
        SYSTEM_PARAMETER_LAYOUT, reply_frame(reply, (CID1,), SYSTEM_PARAMETERS).info, "47H"
    )
    return SystemParameters(**{f.name: values.number(f.name) for f in SYSTEM_PARAMETER_LAYOUT[1:]})


def decode_management(reply: Reply) -> ChargeManagement:
    """A 92H reply."""
    values = read_exact(MANAGEMENT_LAYOUT, reply_frame(reply, (CID1,), MANAGEMENT).info, "92H")
    status = values.integer("status")
    flags = {name: bool(status >> bit & 1) for bit, name in MANAGEMENT_BITS.items()}
    return ChargeManagement(
        address=values.integer("command_value"),
        charge_voltage_limit=values.number("charge_voltage_limit"),
        discharge_voltage_limit=values.number("discharge_voltage_limit"),
        charge_current_limit=values.number("charge_current_limit"),
        discharge_current_limit=values.number("discharge_current_limit"),
        **flags,
    )


def decode_serial_number(reply: Reply) -> ModuleSerial:
    """A 93H reply."""
    values = read_exact(SERIAL_LAYOUT, reply_frame(reply, (CID1,), SERIAL_NUMBER).info, "93H")
    return ModuleSerial(values.integer("command_value"), values.text("serial"))


def decode_software_version(reply: Reply) -> SoftwareVersion:
    """A 96H reply."""
    info = reply_frame(reply, (CID1,), SOFTWARE_VERSION).info
    values = read_exact(SOFTWARE_VERSION_LAYOUT, info, "96H")
    return SoftwareVersion(
        values.integer("command_value"),
        values.integers("manufacturer_version"),
        values.integers("main_line_version"),
    )


def decode_protocol_version(reply: Reply) -> int:
    """A 4FH reply: the protocol version is its VER byte (empty INFO; 0x20 on a US5000C)."""
    frame = reply_frame(reply, (CID1,), PROTOCOL_VERSION, any_ver=True)
    if frame.info:
        raise DecodeError(f"4FH: {len(frame.info)} INFO bytes, none expected")
    return frame.ver


def decode_manufacturer_info(reply: Reply) -> ManufacturerInfo:
    """A 51H reply: 10 ASCII battery name, 2 version bytes, 20 ASCII manufacturer."""
    return read_manufacturer_info(reply_frame(reply, (CID1,), MANUFACTURER_INFO).info)


FIRST_ADDRESS: Final = 2
"""The group master's ADR: pack ``n`` of the group answers at ADR ``n + 1``."""


class PylontechReader:
    """Each module of a Pylontech group at its own ADR, from :data:`FIRST_ADDRESS`."""

    info = INFO
    status_keys = frozenset(STATUS_TABLE.shared_keys)

    def bus_address(self, number: int) -> int:
        """ADR ``number + 1``."""
        return number + FIRST_ADDRESS - 1

    async def identify(self, ask: Ask, number: int) -> Identity:
        """51H (model), 93H (serial) and 96H (software version)."""
        adr = self.bus_address(number)
        maker = await ask(manufacturer_info_request(adr), decode_manufacturer_info)
        serial = await ask(serial_number_request(adr), decode_serial_number)
        software = await ask(software_version_request(adr), decode_software_version)
        return Identity(
            model=maker.device_name or None,
            version=software.main_line,
            serial=serial.serial or None,
        )

    async def read(self, ask: Ask, number: int) -> Reading:
        """42H and 44H of the module, COMMAND its own address."""
        adr = self.bus_address(number)
        values = await ask(analog_request(adr), decode_analog)
        alarms = await ask(status_request(adr), decode_status)
        return reading(number, values.packs[0], alarms[0])
