"""Seplos V3 (XZH BMS Modbus RTU) as the simulator speaks it ([XZH], dialects.md 6).

Units ("RS485: BMS response which is self address only"):

* pack n is unit n (1..15): PIA (fc 04, 0x1000-0x1010), PIB (fc 04, 0x1100-0x1119) and PIC
  (fc 01, coils 0x1200-0x128F), and its VIA;
* unit **0** is the system unit, answered although it is the Modbus broadcast address: EIA
  (0x2000-0x2019, every 32-bit value **low word first**), EIB (0x2100-0x2115), EIC (coils
  0x2200-0x224F), VIA (0x1700-0x1732), PCT (0x1800-0x1823), SFA (coils 0x1400-0x144F); a
  one-pack bank also answers its pack's PIA/PIB/PIC there (the SG16S200A capture);
* unit **0xE0** (the display) holds the SPA parameter block (0x1300-0x1367) of the master, and
  VIA and PCT again (the SP05B capture reads PCT there).

Reserved registers inside a block (0x100E, 0x1114-0x1117 as 2731 = 0 °C, 0x1314, 0x1328-0x132A)
read as the capture shows; any register outside the blocks gets exception 02, a function other
than 04/01 exception 01 (fc 06 included; fc 10 / 0F writes are not 8-byte reads and are never
answered). Values are encoded from the dialect module's register tables and coil bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from statistics import fmean
from typing import Final

from ...dialects import seplos_v3 as doc
from ...dialects.base import Flag, Register, Value, encode_registers, span
from ...modbus import READ_COILS, READ_INPUT
from ...status import CODE_ABOVE, CODE_BELOW, PackStatus
from ..pack import Pack
from ..stack import Stack
from .modbus import ModbusDialect

MAX_PACKS: Final = 15
"""Units 1..15 beside the system unit 0."""
KELVIN_ZERO: Final = 2731
DEVICE_NAME: Final = "SP05B-16S200A"
FIRMWARE: Final = "16"


def bus_address(address: int) -> int:
    """Pack n at unit n."""
    return address


def _block(table: Sequence[Register], values: Mapping[str, Value], fill: int = 0) -> dict[int, int]:
    """Every register of ``table``'s span: the encoded values, ``fill`` in the gaps."""
    first, count = span(table)
    words = dict.fromkeys(range(first, first + count), fill)
    words.update(encode_registers(table, values))
    return words


def _bits(byte_address: int, value: int) -> dict[int, int]:
    return {byte_address + n: value >> n & 1 for n in range(8)}


def _event_byte(flags: Iterable[Flag], status: PackStatus, own: Mapping[str, bool]) -> int:
    value = 0
    for flag in flags:
        on = status.flag(flag.key) if flag.key is not None else own.get(flag.name, False)
        value |= on << flag.bit
    return value


def _events(pack: Pack) -> dict[str, int]:
    status = pack.status()
    current = pack.physics.current
    own = {"discharging": current < -1, "standby": abs(current) <= 1}
    return {name: _event_byte(flags, status, own) for name, flags in doc.EVENTS}


# --- one pack ---------------------------------------------------------------------------------


def pia(pack: Pack) -> dict[int, int]:
    """PIA of one pack."""
    a = pack.analog()
    p = pack.physics
    cells = a.cell_voltages
    sensors = [round(t, 1) for t in p.temperatures[:4]]
    v = pack.bms.settings.values
    values: dict[str, Value] = {
        "voltage": round(a.voltage, 2),
        "current": a.current,
        "remaining_capacity": a.remaining_capacity,
        "total_capacity": a.full_capacity,
        "total_discharge_capacity": round(p.discharged, -1),
        "soc": round(p.soc, 1),
        "soh": round(p.soh, 1),
        "cycles": a.cycles,
        "average_cell_voltage": round(fmean(cells), 3),
        "average_cell_temperature": round(fmean(sensors), 1),
        "max_cell_voltage": max(cells),
        "min_cell_voltage": min(cells),
        "max_cell_temperature": max(sensors),
        "min_cell_temperature": min(sensors),
        "max_discharge_current": round(v["discharge_over_current_protection"]),
        "max_charge_current": round(v["charge_over_current_protection"]),
    }
    return _block(doc.PIA, values)


def pib(pack: Pack) -> dict[int, int]:
    """PIB of one pack; the unused temperature slots read 2731 (0 °C), as captured."""
    t = [round(x, 1) for x in pack.physics.temperatures]
    values: dict[str, Value] = {
        "cell_voltages": pack.analog().cell_voltages,
        "cell_temperatures": tuple(t[:4]),
        "environment_temperature": t[5],
        "power_temperature": t[4],
    }
    return _block(doc.PIB, values, KELVIN_ZERO)


def pic(pack: Pack) -> dict[int, int]:
    """PIC coils of one pack."""
    status = pack.status()

    def mask(codes: Sequence[int], code: int, first: int) -> int:
        return sum(1 << n for n, c in enumerate(codes[first : first + 8]) if c == code)

    cells, temps = status.cell_codes, status.temperature_codes[:4]
    balance = sum(1 << (cell - 1) for cell in status.balancing)
    values = {
        "cell_low_voltage_1_8": mask(cells, CODE_BELOW, 0),
        "cell_low_voltage_9_16": mask(cells, CODE_BELOW, 8),
        "cell_high_voltage_1_8": mask(cells, CODE_ABOVE, 0),
        "cell_high_voltage_9_16": mask(cells, CODE_ABOVE, 8),
        "cell_low_temperature_1_8": mask(temps, CODE_BELOW, 0),
        "cell_high_temperature_1_8": mask(temps, CODE_ABOVE, 0),
        "balancing_1_8": balance & 0xFF,
        "balancing_9_16": balance >> 8 & 0xFF,
        **_events(pack),
    }
    coils: dict[int, int] = {}
    for item in doc.PIC:
        coils |= _bits(item.address, values[item.name])
    return coils


def via(pack: Pack) -> dict[int, int]:
    """VIA: names, firmware and serials."""
    values: dict[str, Value] = {
        "factory_name": doc.FACTORY_NAME,
        "device_name": DEVICE_NAME,
        "firmware_version": FIRMWARE,
        "bms_serial": pack.bms_serial,
        "pack_serial": pack.pack_serial,
    }
    return _block(doc.VIA, values)


PCT_VALUES: Final[dict[str, Value]] = {
    "protocol_type": 1,
    "baud_rate": 500,
    "pcs_name": "MultiPlus-II 48/3000/35",
    "protocol_name": "Victron Can Protocol",
    "protocol_version": "10",
    "protocol_pre_switch": 0,
}
"""PCT as in the SP05B capture."""


def sfa() -> dict[int, int]:
    """SFA coils: every documented function switched on."""
    coils: dict[int, int] = {}
    for item in doc.SFA:
        coils |= _bits(item.address, sum(1 << flag.bit for flag in item.flags))
    return coils


SPA_PARTS: Final = {
    "protection": "protection",
    "protection_release": "release",
    "alarm": "alarm",
    "alarm_release": "alarm",
    "delay": "delay",
}
"""SPA part -> the settings suffix; an alarm recovers at the alarm value (no hysteresis)."""
SPA_TAIL: Final = range(0x1368, 0x136A)
"""Two words past the table that syssi's second half (0x1335 + 0x35) reads: answered as 0."""
NEGATIVE: Final = ("discharge_over_current", "discharge_over_current_2", "short_circuit")
"""Discharge-side currents: negative on the wire (the SG16S200A capture)."""


def spa(pack: Pack) -> dict[int, int]:
    """SPA parameters of the master, from its settings; what it has no setting for reads 0."""
    v = pack.bms.settings.values
    numbers: dict[str, float] = dict.fromkeys((item.name for item in doc.SPA), 0.0)
    for item in doc.SPA:
        limit, _, part = item.name.partition(".")
        key = f"{limit}_{SPA_PARTS.get(part, '-')}"
        if key in v:
            numbers[item.name] = v[key]
    numbers |= {
        "ntc_count": 4,
        "cell_count": pack.cells,
        "short_circuit.protection": 400,
        "short_circuit.delay": v["short_circuit_delay"] / 1e6,
        "balance_start_voltage": v["balance_start_voltage"],
        "balance_start_difference": v["balance_delta"] / 1000,
        "balance_stop_difference": v["balance_delta"] / 2000,
        "low_soc.alarm": v["low_soc_alarm"],
        "low_soc.alarm_release": v["low_soc_alarm"] + 5,
        "rated_capacity": pack.physics.design_capacity,
        "total_capacity": pack.physics.full_capacity,
        "residual_capacity": round(pack.physics.remaining, 2),
        "pcs_charge_voltage": v["full_charge_voltage"],
        "pcs_charge_current": v["current_limit_start"],
        "pcs_discharge_current": -v["discharge_over_current_protection"],
    }
    values: dict[str, Value] = {}
    for item in doc.SPA:
        number = numbers[item.name]
        if item.name.partition(".")[0] in NEGATIVE and item.kind == "i16":
            number = -abs(number)
        values[item.name] = round(number) if item.kind == "i16" else number
    return _block(doc.SPA, values) | dict.fromkeys(SPA_TAIL, 0)


# --- the bank (unit 0) ------------------------------------------------------------------------


def eia(stack: Stack) -> dict[int, int]:
    """EIA: the bank summary, 32-bit values low word first."""
    packs = [p for p in stack.packs if p.answers]
    physics = [p.physics for p in packs]
    v = stack.master.bms.settings.values
    online = sum(1 << (p.address - 1) for p in packs)
    protected = sum(1 << (p.address - 1) for p in packs if p.bms.protections)
    values: dict[str, Value] = {
        "voltage": round(fmean(p.voltage for p in physics), 2) if physics else 0,
        "current": round(sum(p.current for p in physics), 1),
        "remaining_capacity": round(sum(p.remaining for p in physics), 2),
        "total_capacity": round(sum(p.full_capacity for p in physics), 2),
        "total_discharge_capacity": round(sum(p.discharged for p in physics), -1),
        "rated_capacity": round(sum(p.design_capacity for p in physics), 2),
        "online_pack_flags": online,
        "protected_pack_flags": protected,
        "max_discharge_current": v["discharge_over_current_protection"] * len(packs),
        "max_charge_current": v["charge_over_current_protection"] * len(packs),
        "suggested_pack_over_voltage": round(v["pack_over_voltage_protection"], 1),
        "suggested_pack_under_voltage": round(v["pack_under_voltage_protection"], 1),
        "pack_count": len(stack.packs),
        "cycles": max((p.cycles for p in physics), default=0),
        "soc": round(fmean(p.soc for p in physics), 1) if physics else 0,
        "soh": round(fmean(p.soh for p in physics), 1) if physics else 0,
    }
    return _block(doc.EIA, values)


def eib(stack: Stack) -> dict[int, int]:
    """EIB: the bank's extremes; ids are pack numbers; 0x210D-0x2115 read 0."""
    packs = [p for p in stack.packs if p.answers] or stack.packs[:1]
    cells = {p.address: p.analog().cell_voltages for p in packs}
    temps = {p.address: [round(t, 1) for t in p.physics.temperatures[:4]] for p in packs}
    volts = {p.address: round(p.physics.voltage, 2) for p in packs}
    hi_cell = max(cells, key=lambda a: max(cells[a]))
    lo_cell = min(cells, key=lambda a: min(cells[a]))
    hi_t = max(temps, key=lambda a: max(temps[a]))
    lo_t = min(temps, key=lambda a: min(temps[a]))
    values: dict[str, Value] = {
        "max_cell_voltage": max(cells[hi_cell]),
        "min_cell_voltage": min(cells[lo_cell]),
        "max_cell_voltage_id": hi_cell,
        "min_cell_voltage_id": lo_cell,
        "max_pack_voltage": max(volts.values()),
        "min_pack_voltage": min(volts.values()),
        "max_pack_voltage_id": max(volts, key=volts.__getitem__),
        "min_pack_voltage_id": min(volts, key=volts.__getitem__),
        "max_cell_temperature": max(temps[hi_t]),
        "min_cell_temperature": min(temps[lo_t]),
        "average_cell_temperature": round(fmean(t for ts in temps.values() for t in ts), 1),
        "max_cell_temperature_id": hi_t,
        "min_cell_temperature_id": lo_t,
        "unconfirmed": (0,) * 9,
    }
    return _block(doc.EIB, values)


def eic(stack: Stack) -> dict[int, int]:
    """EIC coils: each event byte of the bank is the OR of its packs'."""
    merged = dict.fromkeys((name for name, _ in doc.EVENTS), 0)
    for pack in stack.packs:
        if pack.answers:
            for name, value in _events(pack).items():
                merged[name] |= value
    coils: dict[int, int] = {}
    for item in doc.EIC:
        coils |= _bits(item.address, merged[item.name])
    return coils


# --- units --------------------------------------------------------------------------------------


def _unit(stack: Stack, unit: int) -> Pack | None:
    """The pack that answers for ``unit``: the master for 0 and 0xE0, pack n for unit n."""
    if unit in (doc.SYSTEM_UNIT, doc.DISPLAY_UNIT):
        return stack.master
    return next((p for p in stack.packs if p.address == unit), None)


def _input_registers(stack: Stack, pack: Pack, unit: int) -> dict[int, int]:
    if unit == doc.DISPLAY_UNIT:
        return {**spa(pack), **via(pack), **_block(doc.PCT, PCT_VALUES)}
    if unit == doc.SYSTEM_UNIT:
        words = {**eia(stack), **eib(stack), **via(pack), **_block(doc.PCT, PCT_VALUES)}
        if len(stack.packs) == 1:
            words |= {**pia(pack), **pib(pack)}
        return words
    return {**pia(pack), **pib(pack), **via(pack)}


def _coils(stack: Stack, pack: Pack, unit: int) -> dict[int, int]:
    if unit == doc.DISPLAY_UNIT:
        return {}
    if unit == doc.SYSTEM_UNIT:
        coils = {**eic(stack), **sfa()}
        return coils | pic(pack) if len(stack.packs) == 1 else coils
    return pic(pack)


def respond(stack: Stack, raw: bytes) -> bytes | None:
    """The reply to one 8-byte request (see the module docstring)."""
    if len(raw) < 1:
        return None
    unit = raw[0]
    dialect = ModbusDialect(
        images={
            READ_INPUT: lambda s, p: _input_registers(s, p, unit),
            READ_COILS: lambda s, p: _coils(s, p, unit),
        },
        unit_of=_unit,
    )
    return dialect.respond(stack, raw)
