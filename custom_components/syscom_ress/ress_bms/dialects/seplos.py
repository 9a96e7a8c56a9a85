"""Seplos V2.0 (EMU10xx / 11xx, "1101-..." boards): VER 0x20, CID1 0x46, one pack per address.

Source: *Seplos BMS Communication Protocol V2.0* (2019-10-15), [SEPLOS-V2] in the team's
dialects reference (dialects.md 2). Decoded here:

* 42H telemetry ([SEPLOS-V2] Tables 8, 9) into :class:`~..analog.PackAnalog` (SOC and SOH as the
  BMS reports them, in 0.1 %), plus the port voltage in :class:`SeplosAnalog`;
* 44H alarms ([SEPLOS-V2] Tables 11-13) into :class:`~.ver20.Ver20Status`;
* 4FH protocol version (the reply's VER; empty INFO) and 51H vendor info (not in the PDF: the
  10 + 2 + 20 byte split of syssi's fixture, the same as Pylontech's, dialects.md 2.5 and 8.11).

Read only. 47H (parameters) has no published layout, 45H (telecontrol), 49H (write
parameters), 4BH (history), 4DH/4EH (time) neither, and A0H-A2H are production commands: none
is encoded (dialects.md 2.2, 2.5). The request's COMMAND GROUP defaults to the address; clients
in the field send 00 or 01 to address 00 and the reply's group is not checked (dialects.md 2.1).
A Seplos at address 00 is the master of its chain and polls its slaves with the undocumented
5AH: a bus with that traffic belongs to it (dialects.md 2.1, 7.1).

Temperatures: the wire sends T1-T4 (cells), T5 environment, T6 power (MOSFET). PackAnalog's
roles are cells, MOS, environment, so T6 comes before T5 in ``PackAnalog.temperatures`` and in
``PackStatus.temperature_codes``. With more than six words the last two are environment and
power, the others cells; with five the fifth is the environment (no power value; its slot is
empty).

The user-defined count P (10 in the document) counts the 16-bit words after it: full capacity,
SOC, rated capacity, cycles, SOH, port voltage, then reserved words. P below 6 does not fit.

Alarm bits map to a :data:`~..status.STATUS_BITS` key only where the meaning is the same
(:data:`STATUS_TABLE`); the others are :data:`OWN_BITS`. The one current code (both directions)
fills both current codes of the PackStatus. Balance: equilibrium state 1 is cells 1-8, state 2
cells 9-16, as [SEPLOS-V2] says (dialects.md 8.10).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ..analog import PackAnalog
from ..errors import DecodeError
from ..framing import ASCII
from .base import Ask, Capability, DialectInfo, Field, Identity, MultiPack, Reading, reading
from .ver20 import (
    VER,
    ManufacturerInfo,
    Own,
    Reply,
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
)

CID1: Final = 0x46
ANALOG: Final = 0x42
STATUS: Final = 0x44
PROTOCOL_VERSION: Final = 0x4F
VENDOR_INFO: Final = 0x51

READ_COMMANDS: Final = check_reads(frozenset({ANALOG, STATUS, PROTOCOL_VERSION, VENDOR_INFO}))
"""Every CID2 this module encodes; all are reads ([SEPLOS-V2] Table 4, dialects.md 2.2)."""

INFO: Final = DialectInfo(
    name="seplos",
    title="Seplos V2.0 (VER 0x20)",
    framing=ASCII,
    baudrates=(9600, 19200),
    capabilities=frozenset({Capability.TELEMETRY, Capability.ALARMS}),
    multipack=MultiPack.PER_ADDRESS,
    brands=("Seplos 1101-series BMS (EMU10xx / EMU11xx boards)",),
    reasons={
        Capability.PARAMETERS_READ: "47H has no published layout (dialects.md 2.5)",
        Capability.PARAMETERS_WRITE: "49H has no published layout, and writes are not sent",
        Capability.CONTROLS: "45H telecontrol has no published layout",
        Capability.HISTORY: "4BH has no published layout",
        Capability.CLOCK: "4DH/4EH have no published layout",
    },
    version=VER,
    reads=READ_COMMANDS,
)
"""9600 8N1 by default, sometimes 19200 ([SEPLOS-V2] 1.1; dialects.md 0, 7.2 step 3)."""

ANALOG_HEAD: Final = (
    Field("data_flag", "u8"),
    Field("command_group", "u8"),
    Field("cell_count", "u8"),
    Field("cell_voltages", "u16", scale=0.001, count="cell_count", digits=3),
    Field("temperature_count", "u8"),
    deci_kelvin("temperatures", count="temperature_count"),
    Field("current", "i16", scale=0.01, digits=2),
    Field("voltage", "u16", scale=0.01, digits=2),
    Field("remaining_capacity", "u16", scale=0.01, digits=2),
    Field("user_defined_count", "u8"),
)
"""42H up to P ([SEPLOS-V2] Table 9): mV cells, 0.1 K/2731, 10 mA (+ = charge), 10 mV, 10 mAh."""

ANALOG_ITEMS: Final = (
    Field("full_capacity", "u16", scale=0.01, digits=2),
    Field("soc", "u16", scale=0.1, digits=1),
    Field("design_capacity", "u16", scale=0.01, digits=2),
    Field("cycles", "u16"),
    Field("soh", "u16", scale=0.1, digits=1),
    Field("port_voltage", "u16", scale=0.01, digits=2),
)
"""The P words after P that have a meaning; the rest (4 in the document) are reserved."""

STATUS_HEAD: Final = (
    Field("data_flag", "u8"),
    Field("command_group", "u8"),
    Field("cell_count", "u8"),
    Field("cell_codes", "u8", count="cell_count"),
    Field("temperature_count", "u8"),
    Field("temperature_codes", "u8", count="temperature_count"),
    Field("current_code", "u8"),
    Field("voltage_code", "u8"),
    Field("user_defined_count", "u8"),
)
"""44H up to P ([SEPLOS-V2] Table 11); codes 00 normal, 01 below, 02 above, F0 other."""

STATUS_ITEMS: Final = tuple(
    Field(name, "u8")
    for name in (
        "alarm_event_1",
        "alarm_event_2",
        "alarm_event_3",
        "alarm_event_4",
        "alarm_event_5",
        "alarm_event_6",
        "on_off_state",
        "equilibrium_1",
        "equilibrium_2",
        "system_state",
        "disconnection_1",
        "disconnection_2",
        "alarm_event_7",
        "alarm_event_8",
    )
)
"""The P bytes after P that have a meaning; the rest (6 in the document) are reserved."""

STATUS_TABLE: Final = bit_table(
    {
        "alarm_event_1": (
            Own("voltage_sensor_fault"), "ntc_fault", Own("current_sensor_fault"),
            Own("key_switch_fault"), Own("cell_voltage_dropout_fault"), "charge_mos_fault",
            "discharge_mos_fault", "current_limit_fault",
        ),
        "alarm_event_2": (
            "cell_over_voltage_alarm", "cell_over_voltage_protection",
            "cell_under_voltage_alarm", "cell_under_voltage_protection",
            "pack_over_voltage_alarm", "pack_over_voltage_protection",
            "pack_under_voltage_alarm", "pack_under_voltage_protection",
        ),
        "alarm_event_3": (
            "charge_high_temperature_alarm", "charge_high_temperature_protection",
            "charge_low_temperature_alarm", "charge_low_temperature_protection",
            "discharge_high_temperature_alarm", "discharge_high_temperature_protection",
            "discharge_low_temperature_alarm", "discharge_low_temperature_protection",
        ),
        "alarm_event_4": (
            "environment_high_temperature_alarm", "environment_high_temperature_protection",
            "environment_low_temperature_alarm", "environment_low_temperature_protection",
            "mos_high_temperature_protection", "mos_high_temperature_alarm",
            Own("cell_low_temperature_heating"), None,
        ),
        "alarm_event_5": (
            "charge_over_current_alarm", "charge_over_current_protection",
            "discharge_over_current_alarm", "discharge_over_current_protection",
            Own("transient_over_current_protection"), "short_circuit_protection",
            Own("transient_over_current_lockout"), Own("short_circuit_lockout"),
        ),
        "alarm_event_6": (
            Own("charge_high_voltage_protection"), Own("intermittent_recharge_waiting"),
            "low_soc_alarm", Own("residual_capacity_protection"),
            Own("cell_low_voltage_charging_prohibited"), "reverse_connection_fault",
            Own("output_connection_fault"), None,
        ),
        "on_off_state": ("discharge_mos", "charge_mos", "current_limit", "heating"),
        "system_state": (
            Own("discharging"), "charging", Own("floating_charge"), None, Own("standby"),
            "shutdown",
        ),
        "alarm_event_7": (
            None, None, None, None, Own("automatic_charging_waiting"),
            Own("manual_charging_waiting"),
        ),
        "alarm_event_8": (
            Own("eeprom_fault"), Own("rtc_fault"), Own("voltage_calibration_missing"),
            Own("current_calibration_missing"), Own("zero_calibration_missing"),
        ),
    },
    cell_fields={
        "balancing": ("equilibrium_1", "equilibrium_2"),
        "cell_wire_disconnected": ("disconnection_1", "disconnection_2"),
    },
)  # fmt: skip
"""[SEPLOS-V2] Table 13, bit 0 first; ``None``: reserved or "internal". "Residual capacity
alarm" is the shared low-SOC alarm, "output reverse-polarity protection" the shared reverse
connection, the on-off switches the shared MOS, limiter and heating states. [SEPLOS-48] swaps
the wording of alarm event 4 bits 4/5; this follows [SEPLOS-V2]."""

OWN_BITS: Final = STATUS_TABLE.own_names
"""Seplos bits with no shared key, reported in :attr:`~.base.DialectStatus.extra`."""


@dataclass(frozen=True, slots=True)
class SeplosAnalog:
    """A 42H reply: the pack's shared values and what Seplos adds."""

    pack: PackAnalog
    port_voltage: float
    """Voltage at the output terminals, V."""
    command_group: int
    data_flag: int
    reserved: bytes = b""


def _group(address: int, group: int | None) -> bytes:
    value = address if group is None else group
    if not 0 <= value < 0xFF:
        raise ValueError(f"COMMAND GROUP {value} out of range (FF is RS232 only)")
    return bytes((value,))


def analog_request(address: int, group: int | None = None) -> bytes:
    """42H for the pack at ``address``; COMMAND GROUP ``group`` (default: the address)."""
    return encode_read(READ_COMMANDS, CID1, ANALOG, address, _group(address, group))


def status_request(address: int, group: int | None = None) -> bytes:
    """44H for the pack at ``address``; COMMAND GROUP as in :func:`analog_request`."""
    return encode_read(READ_COMMANDS, CID1, STATUS, address, _group(address, group))


def protocol_version_request(address: int) -> bytes:
    """4FH, no INFO: the reply's VER is the protocol version."""
    return encode_read(READ_COMMANDS, CID1, PROTOCOL_VERSION, address)


def vendor_info_request(address: int) -> bytes:
    """51H, no INFO."""
    return encode_read(READ_COMMANDS, CID1, VENDOR_INFO, address)


def _temperature_roles[T](words: tuple[T, ...], absent: T) -> tuple[T, ...]:
    if len(words) >= 6:
        return shared_roles(words[:-2], words[-1], words[-2], absent)
    return shared_roles(words[:4], None, words[4] if len(words) == 5 else None, absent)


def decode_analog(reply: Reply) -> SeplosAnalog:
    """A 42H reply, walking M, N and P."""
    frame = reply_frame(reply, (CID1,), ANALOG)
    head, pos = read_part(ANALOG_HEAD, frame.info, 0)
    words = head.integer("user_defined_count")
    if words < len(ANALOG_ITEMS):
        raise DecodeError(f"42H: P = {words}, the layout needs at least {len(ANALOG_ITEMS)}")
    reserved = Field("reserved", "raw", size=2 * (words - len(ANALOG_ITEMS)))
    items = read_exact((*ANALOG_ITEMS, reserved), frame.info, "42H", pos)
    cells = head.numbers("cell_voltages")
    temperatures: tuple[float | None, ...] = head.numbers("temperatures")
    voltage = head.number("voltage")
    pack = PackAnalog(
        frame.adr,
        voltage > 0 or any(cells),
        cells,
        _temperature_roles(temperatures, None),
        head.number("current"),
        voltage,
        head.number("remaining_capacity"),
        items.number("full_capacity"),
        items.number("design_capacity"),
        items.integer("cycles"),
        words,
        reported_soc=items.number("soc"),
        reported_soh=items.number("soh"),
    )
    return SeplosAnalog(
        pack,
        items.number("port_voltage"),
        head.integer("command_group"),
        head.integer("data_flag"),
        items.raw("reserved"),
    )


def decode_status(reply: Reply) -> Ver20Status:
    """A 44H reply, walking M, N and P."""
    frame = reply_frame(reply, (CID1,), STATUS)
    head, pos = read_part(STATUS_HEAD, frame.info, 0)
    count = head.integer("user_defined_count")
    if count < len(STATUS_ITEMS):
        raise DecodeError(f"44H: P = {count}, the layout needs at least {len(STATUS_ITEMS)}")
    reserved = Field("reserved", "raw", size=count - len(STATUS_ITEMS))
    items = read_exact((*STATUS_ITEMS, reserved), frame.info, "44H", pos)
    current = head.integer("current_code")
    return build_status(
        STATUS_TABLE,
        head.merged(items),
        address=frame.adr,
        temperature_codes=_temperature_roles(head.integers("temperature_codes"), 0),
        codes=(current, head.integer("voltage_code"), current),
        data_flag=head.integer("data_flag"),
    )


def decode_protocol_version(reply: Reply) -> int:
    """A 4FH reply: the protocol version is its VER byte (0x20 for V2.0)."""
    frame = reply_frame(reply, (CID1,), PROTOCOL_VERSION, any_ver=True)
    if frame.info:
        raise DecodeError(f"4FH: {len(frame.info)} INFO bytes, none expected")
    return frame.ver


def decode_vendor_info(reply: Reply) -> ManufacturerInfo:
    """A 51H reply: 10 ASCII model name, 2 version bytes, 20 ASCII (32 bytes)."""
    return read_manufacturer_info(reply_frame(reply, (CID1,), VENDOR_INFO).info)


class SeplosReader:
    """Pack ``n`` of a Seplos V2 bus answers at ADR ``n - 1`` (the master's DIP address is 0)."""

    info = INFO
    status_keys = frozenset({*STATUS_TABLE.shared_keys, "balancing"})

    def bus_address(self, number: int) -> int:
        """ADR ``number - 1``."""
        return number - 1

    async def identify(self, ask: Ask, number: int) -> Identity:
        """51H: the model and the firmware version (Seplos V2 sends no serial)."""
        vendor = await ask(vendor_info_request(self.bus_address(number)), decode_vendor_info)
        return Identity(model=vendor.device_name or None, version=vendor.version)

    async def read(self, ask: Ask, number: int) -> Reading:
        """42H and 44H of the pack, COMMAND GROUP its own address."""
        adr = self.bus_address(number)
        values = await ask(analog_request(adr), decode_analog)
        alarms = await ask(status_request(adr), decode_status)
        return reading(number, values.pack, alarms)
