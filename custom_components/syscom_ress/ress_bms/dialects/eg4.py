"""EG4 LifePower4 (Qualtech BMS, QT-YS00-16SV100A and relatives): VER 0x20, CID1 0x4A.

Source: *LifePower4 Battery Communication Protocol*, [EG4] in the team's dialects reference
(dialects.md 4); only 42H and 44H are specified there. Decoded here:

* 42H analog values ([EG4] 2.1) into :class:`~..analog.PackAnalog` (SOC and SOH as the BMS
  reports them, in 1 %), plus the cell extremes and the lifetime counters in :class:`Eg4Analog`;
* 44H alarm info ([EG4] 2.2) into :class:`~.ver20.Ver20Status`;
* 4DH date and time (7 bytes, full year; [EG4] 1.3.5 as exercised by nkinnan, dialects.md 4.5);
* 51H manufacturer info, which no document lays out: kept as sent, with its readable text.

The requests carry **no INFO** (LENID 0), unlike Seplos and Pylontech (dialects.md 8.6). Read
only: 45H (reboot), 49H (set parameters) and 4EH (set time) are writes, 47H is listed without a
layout, 93H got no reply on the one pack tried (dialects.md 4.2, 4.5). The BMS is slow: nkinnan
waits up to 2 s for a reply and 200 ms between requests.

Temperatures: the count byte says N (4) and N + 2 values follow: the N cell sensors, the
environment, the MOSFET (dialects.md 4.3). PackAnalog's roles are cells, MOS, environment, so
the MOSFET value comes before the environment in ``PackAnalog.temperatures`` and in
``PackStatus.temperature_codes``. There is no design capacity: ``design_capacity`` is 0 (SOH is
the BMS's own). Capacities are unsigned, though the PDF's table types them signed.

The user-defined counts are checked against the document: 15 items after the cycle count in 42H,
9 after the voltage code in 44H (whose sizes differ item by item).

Alarm bits map to a :data:`~..status.STATUS_BITS` key only where the meaning is the same
(:data:`STATUS_TABLE`); the others are :data:`OWN_BITS`. The one current code (both directions)
fills both current codes of the PackStatus. Balance status: 32 bits, bit 0 = cell 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from ..analog import PackAnalog
from ..errors import DecodeError
from ..framing import ASCII
from .base import Ask, Capability, DialectInfo, Field, Identity, MultiPack, Reading, reading
from .ver20 import (
    VER,
    Own,
    Reply,
    Ver20Status,
    bit_table,
    build_status,
    check_reads,
    deci_kelvin,
    encode_read,
    read_exact,
    read_part,
    reply_frame,
    shared_roles,
)

CID1: Final = 0x4A
REPLY_CID1: Final = frozenset({0x4A, 0x4E, 0x4F})
"""CID1 values accepted in a reply: 4AH, and the other EG4 chemistry codes nkinnan names."""
ANALOG: Final = 0x42
STATUS: Final = 0x44
CLOCK_READ: Final = 0x4D
MANUFACTURER_INFO: Final = 0x51

READ_COMMANDS: Final = check_reads(frozenset({ANALOG, STATUS, CLOCK_READ, MANUFACTURER_INFO}))
"""Every CID2 this module encodes ([EG4] 1.4.2): reads only, never 45H, 49H or 4EH."""

INFO: Final = DialectInfo(
    name="eg4",
    title="EG4 LifePower4 (VER 0x20, CID1 0x4A)",
    framing=ASCII,
    baudrates=(9600,),
    capabilities=frozenset({Capability.TELEMETRY, Capability.ALARMS}),
    multipack=MultiPack.PER_ADDRESS,
    brands=("EG4 LifePower4 (Qualtech BMS QT-YS00-16SV100A)",),
    reasons={
        Capability.PARAMETERS_READ: "47H is listed in [EG4] without a layout",
        Capability.PARAMETERS_WRITE: "49H is listed in [EG4] without a layout",
        Capability.CONTROLS: "the only control seen is the 45H reboot, whose INFO no document"
        " explains",
        Capability.HISTORY: "no history command",
        Capability.CLOCK: "4DH reads the clock (decode_clock), but setting it (4EH) is a write,"
        " and this module sends none",
    },
    version=VER,
    reads=READ_COMMANDS,
)
"""9600 8N1 ([EG4] 1.1); ADR 1..15 from the DIP switch, each pack at its own address."""

ANALOG_HEAD: Final = (
    Field("data_flag", "u8"),
    Field("pack_group", "u8"),
    Field("cell_count", "u8"),
    Field("cell_voltages", "u16", scale=0.001, count="cell_count", digits=3),
    Field("temperature_count", "u8"),
    deci_kelvin("cell_temperatures", count="temperature_count"),
    deci_kelvin("environment_temperature"),
    deci_kelvin("mos_temperature"),
    Field("current", "i16", scale=0.01, digits=2),
    Field("voltage", "u16", scale=0.01, digits=2),
    Field("remaining_capacity", "u16", scale=0.01, digits=2),
    Field("full_capacity", "u16", scale=0.01, digits=2),
    Field("cycles", "u16"),
    Field("user_defined_count", "u8"),
)
"""42H up to the user-defined count ([EG4] 2.1): mV, 0.1 K/2731, 10 mA (+ = charge), 10 mV,
10 mAh."""

ANALOG_ITEMS: Final = (
    Field("soc", "u16"),
    Field("soh", "u16"),
    Field("max_cell_voltage", "u16", scale=0.001, digits=3),
    Field("min_cell_voltage", "u16", scale=0.001, digits=3),
    Field("cell_voltage_difference", "u16", scale=0.001, digits=3),
    deci_kelvin("max_cell_temperature"),
    deci_kelvin("min_cell_temperature"),
    Field("cumulative_charge", "u32", scale=0.01, digits=2),
    Field("cumulative_discharge", "u32", scale=0.01, digits=2),
    Field("cumulative_charge_energy", "u32", scale=0.001, digits=3),
    Field("cumulative_discharge_energy", "u32", scale=0.001, digits=3),
    Field("cumulative_charge_time", "u32"),
    Field("cumulative_discharge_time", "u32"),
    Field("charge_count", "u16"),
    Field("discharge_count", "u16"),
)
"""The 15 items after the user-defined count: %, %, mV, 0.1 K/2731, 0.01 Ah, 0.001 kWh, h."""

STATUS_HEAD: Final = (
    Field("data_flag", "u8"),
    Field("pack_group", "u8"),
    Field("cell_count", "u8"),
    Field("cell_codes", "u8", count="cell_count"),
    Field("temperature_count", "u8"),
    Field("cell_temperature_codes", "u8", count="temperature_count"),
    Field("environment_code", "u8"),
    Field("mos_code", "u8"),
    Field("current_code", "u8"),
    Field("voltage_code", "u8"),
    Field("user_defined_count", "u8"),
)
"""44H up to the user-defined count ([EG4] 2.2); codes 00 none, 01 lower, 02 upper limit."""

STATUS_ITEMS: Final = (
    Field("balance_event", "u8"),
    Field("voltage_event", "u8"),
    Field("temperature_event", "u16"),
    Field("current_event", "u8"),
    Field("remaining_capacity_alarm", "u8"),
    Field("fet_status", "u8"),
    Field("system_status", "u8"),
    Field("balance_status", "u32"),
    Field("reserved", "u8"),
)
"""The 9 items after the user-defined count."""

STATUS_TABLE: Final = bit_table(
    {
        "balance_event": (
            Own("balance_module_on"), None, None, None, Own("cell_voltage_difference_alarm"),
            "charge_mos_fault", "discharge_mos_fault", None,
        ),
        "voltage_event": (
            "cell_over_voltage_alarm", "cell_over_voltage_protection",
            "cell_under_voltage_alarm", "cell_under_voltage_protection",
            "pack_over_voltage_alarm", "pack_over_voltage_protection",
            "pack_under_voltage_alarm", "pack_under_voltage_protection",
        ),
        "temperature_event": (
            "charge_high_temperature_alarm", "charge_high_temperature_protection",
            "charge_low_temperature_alarm", "charge_low_temperature_protection",
            "discharge_high_temperature_alarm", "discharge_high_temperature_protection",
            "discharge_low_temperature_alarm", "discharge_low_temperature_protection",
            "environment_high_temperature_alarm", "environment_high_temperature_protection",
            "environment_low_temperature_alarm", "environment_low_temperature_protection",
            "mos_high_temperature_protection", Own("fire_alarm"),
        ),
        "current_event": (
            "charge_over_current_alarm", "charge_over_current_protection",
            "discharge_over_current_alarm", "discharge_over_current_protection",
            Own("discharge_over_current_2_protection"), "short_circuit_protection",
            Own("discharge_over_current_2_lockout"), Own("short_circuit_lockout"),
        ),
        "remaining_capacity_alarm": ("low_soc_alarm",),
        "fet_status": ("discharge_mos", "charge_mos", "current_limit", "heating"),
        "system_status": (Own("discharging"), "charging", None, Own("standby")),
    },
    cell_fields={"balancing": ("balance_status",)},
    widths={"temperature_event": 16, "balance_status": 32},
)  # fmt: skip
"""[EG4] 2.2, bit 0 first; ``None``: reserved. The FET status bits are the shared MOS, limiter
and heater states; "SOC low alarm" is the shared low-SOC alarm."""

OWN_BITS: Final = STATUS_TABLE.own_names
"""EG4 bits with no shared key, reported in :attr:`~.base.DialectStatus.extra`."""

CLOCK_LAYOUT: Final = (
    Field("year", "u16"),
    Field("month", "u8"),
    Field("day", "u8"),
    Field("hour", "u8"),
    Field("minute", "u8"),
    Field("second", "u8"),
)
"""4DH reply: the full year, then one byte each (7 bytes)."""


@dataclass(frozen=True, slots=True)
class Eg4Analog:
    """A 42H reply: the pack's shared values and what EG4 adds."""

    pack: PackAnalog
    max_cell_voltage: float
    min_cell_voltage: float
    cell_voltage_difference: float
    """V, as the BMS computes them."""
    max_cell_temperature: float
    min_cell_temperature: float
    cumulative_charge: float
    """Ah charged over the pack's life."""
    cumulative_discharge: float
    cumulative_charge_energy: float
    """kWh charged over the pack's life."""
    cumulative_discharge_energy: float
    cumulative_charge_time: int
    """Hours."""
    cumulative_discharge_time: int
    charge_count: int
    discharge_count: int
    pack_group: int
    data_flag: int


@dataclass(frozen=True, slots=True)
class Eg4ManufacturerInfo:
    """51H as sent (46 bytes on the pack seen: no document lays it out)."""

    raw: bytes

    @property
    def text(self) -> str:
        """The printable ASCII of the reply, runs of anything else as one space (``QTHN 0d``)."""
        chars = "".join(chr(b) if 0x21 <= b <= 0x7E else " " for b in self.raw)
        return " ".join(chars.split())


def analog_request(address: int) -> bytes:
    """42H for the pack at ``address``, no INFO."""
    return encode_read(READ_COMMANDS, CID1, ANALOG, address)


def status_request(address: int) -> bytes:
    """44H for the pack at ``address``, no INFO."""
    return encode_read(READ_COMMANDS, CID1, STATUS, address)


def clock_request(address: int) -> bytes:
    """4DH, no INFO: the pack's date and time."""
    return encode_read(READ_COMMANDS, CID1, CLOCK_READ, address)


def manufacturer_info_request(address: int) -> bytes:
    """51H, no INFO."""
    return encode_read(READ_COMMANDS, CID1, MANUFACTURER_INFO, address)


def _user_defined(head_count: int, items: int, what: str) -> None:
    if head_count != items:
        raise DecodeError(f"{what}: user-defined count {head_count}, the document has {items}")


def decode_analog(reply: Reply) -> Eg4Analog:
    """A 42H reply, walking M and N (N cell temperatures, then environment and MOSFET)."""
    frame = reply_frame(reply, REPLY_CID1, ANALOG)
    head, pos = read_part(ANALOG_HEAD, frame.info, 0)
    _user_defined(head.integer("user_defined_count"), len(ANALOG_ITEMS), "42H")
    items = read_exact(ANALOG_ITEMS, frame.info, "42H", pos)
    cells = head.numbers("cell_voltages")
    sensors: tuple[float | None, ...] = head.numbers("cell_temperatures")
    temperatures = shared_roles(
        sensors, head.number("mos_temperature"), head.number("environment_temperature"), None
    )
    voltage = head.number("voltage")
    pack = PackAnalog(
        frame.adr,
        voltage > 0 or any(cells),
        cells,
        temperatures,
        head.number("current"),
        voltage,
        head.number("remaining_capacity"),
        head.number("full_capacity"),
        0.0,
        head.integer("cycles"),
        head.integer("user_defined_count"),
        reported_soc=items.number("soc"),
        reported_soh=items.number("soh"),
    )
    return Eg4Analog(
        pack,
        max_cell_voltage=items.number("max_cell_voltage"),
        min_cell_voltage=items.number("min_cell_voltage"),
        cell_voltage_difference=items.number("cell_voltage_difference"),
        max_cell_temperature=items.number("max_cell_temperature"),
        min_cell_temperature=items.number("min_cell_temperature"),
        cumulative_charge=items.number("cumulative_charge"),
        cumulative_discharge=items.number("cumulative_discharge"),
        cumulative_charge_energy=items.number("cumulative_charge_energy"),
        cumulative_discharge_energy=items.number("cumulative_discharge_energy"),
        cumulative_charge_time=items.integer("cumulative_charge_time"),
        cumulative_discharge_time=items.integer("cumulative_discharge_time"),
        charge_count=items.integer("charge_count"),
        discharge_count=items.integer("discharge_count"),
        pack_group=head.integer("pack_group"),
        data_flag=head.integer("data_flag"),
    )


def decode_status(reply: Reply) -> Ver20Status:
    """A 44H reply, walking M and N (N + 2 temperature codes)."""
    frame = reply_frame(reply, REPLY_CID1, STATUS)
    head, pos = read_part(STATUS_HEAD, frame.info, 0)
    _user_defined(head.integer("user_defined_count"), len(STATUS_ITEMS), "44H")
    items = read_exact(STATUS_ITEMS, frame.info, "44H", pos)
    current = head.integer("current_code")
    cell_codes = head.integers("cell_temperature_codes")
    mos, environment = head.integer("mos_code"), head.integer("environment_code")
    codes = shared_roles(cell_codes, mos, environment, 0)
    return build_status(
        STATUS_TABLE,
        head.merged(items),
        address=frame.adr,
        temperature_codes=codes,
        codes=(current, head.integer("voltage_code"), current),
        data_flag=head.integer("data_flag"),
    )


def decode_clock(reply: Reply) -> datetime:
    """A 4DH reply (naive: the pack's own clock, no time zone)."""
    values = read_exact(CLOCK_LAYOUT, reply_frame(reply, REPLY_CID1, CLOCK_READ).info, "4DH")
    try:
        year, month, day, hour, minute, second = (values.integer(f.name) for f in CLOCK_LAYOUT)
        return datetime(year, month, day, hour, minute, second)
    except ValueError as err:
        raise DecodeError(f"4DH: not a date and time: {err}") from err


def decode_manufacturer_info(reply: Reply) -> Eg4ManufacturerInfo:
    """A 51H reply, kept as sent."""
    return Eg4ManufacturerInfo(reply_frame(reply, REPLY_CID1, MANUFACTURER_INFO).info)


class Eg4Reader:
    """Pack ``n`` of an EG4 bus answers at its DIP address ``n``."""

    info = INFO
    status_keys = frozenset({*STATUS_TABLE.shared_keys, "balancing"})

    def bus_address(self, number: int) -> int:
        """ADR ``number``."""
        return number

    async def identify(self, ask: Ask, number: int) -> Identity:
        """51H: its printable text as the model (no document lays it out)."""
        info = await ask(manufacturer_info_request(number), decode_manufacturer_info)
        return Identity(model=info.text or None)

    async def read(self, ask: Ask, number: int) -> Reading:
        """42H and 44H of the pack."""
        values = await ask(analog_request(number), decode_analog)
        alarms = await ask(status_request(number), decode_status)
        return reading(number, values.pack, alarms)
