"""Pylontech RS485 V3.3 as the simulator speaks it ([PYLON-3.3], dialects.md 3).

One group (group 0, the single-group DIP setting): pack n is at ADR 0x02 + (n - 1), the group
master at 0x02, slaves at 0x03..0x0D (up to 12 packs; addresses 0 and FF are reserved). The
COMMAND byte of 42H, 44H, 92H, 93H and 96H must match the ADR ("command should be matched
with ADR", [PYLON-3.3] 2.5.3); COMMAND FF at the master's ADR reads the whole group for 42H and
44H: the pack count, then one block per pack in ADR order (an unreachable pack is zero-filled).
Any other COMMAND gets RTN 90 (ADR error). 47H and 4FH/51H carry no INFO.

Blocks are the US3000 form: M = 16 cells, N = 5 temperatures (T1 BMS board, then the four
cell-group averages; the board is the simulator's MOSFET/board sensor T5), current in 100 mA,
mV, and, the packs being above 65 Ah, user-defined number 4: the 16-bit capacities read FFFF
and the 24-bit mAh fields carry them. 44H: 5 temperature codes in the same order, charge and
discharge current codes, status 1-5. Writes (94H, 95H) and anything else get RTN 04.
"""

from __future__ import annotations

from typing import Final

from ...dialects import pylontech as doc
from ...dialects.base import Value, write_fields
from ...dialects.ver20 import MANUFACTURER
from ..pack import Pack
from ..stack import Stack
from .ver20 import RTN_FORMAT, RTN_OK, Answer, Ver20Dialect, set_own, status_fields, temperatures

RTN_ADR: Final = 0x90
"""[PYLON-3.3] 2.5.2: ADR error."""
MASTER_ADR: Final = 0x02
MAX_PACKS: Final = 12
"""Master 2 and slaves 3..13 of one group."""
INFO_FLAG: Final = 0x11
"""The DATA FLAG of both PDF examples."""
ITEMS: Final = 4
"""User-defined number above 65 Ah."""
UNKNOWN_16: Final = 0xFFFF
"""remain / total capacity 1 of a module above 65 Ah."""


def bus_address(address: int) -> int:
    """Pack n at ADR 2 + n - 1."""
    return MASTER_ADR + address - 1


def _mah(ah: float) -> bytes:
    return round(ah * 1000).to_bytes(3)


def analog_block(pack: Pack) -> bytes:
    """One pack's 42H block (zero-filled for a pack the master cannot reach)."""
    if pack.answers:
        a = pack.analog()
        t = temperatures(pack)
        sensors = (t[4], *t[:4])
        values: dict[str, Value] = {
            "cell_voltages": a.cell_voltages,
            "temperatures": sensors,
            "current": round(a.current, 1),
            "voltage": a.voltage,
            "remaining_capacity_2": _mah(pack.physics.remaining),
            "total_capacity_2": _mah(a.full_capacity),
            "cycles": a.cycles,
        }
    else:
        values = {
            "cell_voltages": (0.0,) * pack.cells,
            "temperatures": (0.0,) * 5,
            "current": 0.0,
            "voltage": 0.0,
            "remaining_capacity_2": bytes(3),
            "total_capacity_2": bytes(3),
            "cycles": 0,
        }
    raw_16 = UNKNOWN_16 / 1000
    values |= {
        "remaining_capacity_1": raw_16,
        "user_defined_count": ITEMS,
        "total_capacity_1": raw_16,
    }
    return write_fields((*doc.ANALOG_BLOCK, *doc.ANALOG_ITEMS), values)


OWN_FROM_SHARED: Final = {
    "module_over_voltage": ("pack_over_voltage_protection",),
    "cell_under_voltage": ("cell_under_voltage_protection",),
    "charge_over_current": ("charge_over_current_protection",),
    "discharge_over_current": ("discharge_over_current_protection", "short_circuit_protection"),
    "discharge_over_temperature": ("discharge_high_temperature_protection",),
    "charge_over_temperature": ("charge_high_temperature_protection",),
    "module_under_voltage": ("pack_under_voltage_protection",),
}
"""Status 1 names conditions, not alarm or protection: set by the simulated protections."""


def status_block(pack: Pack) -> bytes:
    """One pack's 44H block (zero-filled for a pack the master cannot reach)."""
    cells = pack.cells
    values: dict[str, Value]
    if not pack.answers:
        values = dict.fromkeys(doc.STATUS_TABLE.field_names, 0)
        values |= {"cell_codes": (0,) * cells, "temperature_codes": (0,) * 5}
        values |= {"charge_current_code": 0, "voltage_code": 0, "discharge_current_code": 0}
        return write_fields(doc.STATUS_BLOCK, values)
    s = pack.status()
    fields = status_fields(doc.STATUS_TABLE, s)
    for own, keys in OWN_FROM_SHARED.items():
        set_own(doc.STATUS_TABLE, fields, own, any(s.flag(key) for key in keys))
    current = pack.physics.current
    set_own(doc.STATUS_TABLE, fields, "discharging", current < -0.1)
    set_own(doc.STATUS_TABLE, fields, "using_battery_power", current < -0.1)
    codes = s.temperature_codes
    values = {
        "cell_codes": s.cell_codes,
        "temperature_codes": (codes[4], *codes[:4]),
        "charge_current_code": s.charge_current_code,
        "voltage_code": s.voltage_code,
        "discharge_current_code": s.discharge_current_code,
        **fields,
    }
    return write_fields(doc.STATUS_BLOCK, values)


def _blocks(stack: Stack, pack: Pack, adr: int, info: bytes) -> list[Pack] | int:
    """The packs a 42H/44H asks for, or an RTN."""
    if len(info) != 1:
        return RTN_FORMAT
    command = info[0]
    if command == doc.ALL_PACKS:
        return list(stack.packs) if adr == MASTER_ADR else RTN_ADR
    return [pack] if command == adr else RTN_ADR


def _analog(stack: Stack, pack: Pack, adr: int, info: bytes) -> Answer:
    packs = _blocks(stack, pack, adr, info)
    if isinstance(packs, int):
        return packs, b""
    head = bytes((INFO_FLAG, len(packs) if info[0] == doc.ALL_PACKS else info[0]))
    return RTN_OK, head + b"".join(analog_block(p) for p in packs)


def _status(stack: Stack, pack: Pack, adr: int, info: bytes) -> Answer:
    packs = _blocks(stack, pack, adr, info)
    if isinstance(packs, int):
        return packs, b""
    head = bytes((INFO_FLAG, len(packs) if info[0] == doc.ALL_PACKS else info[0]))
    return RTN_OK, head + b"".join(status_block(p) for p in packs)


def _command_matches(adr: int, info: bytes) -> int | None:
    """RTN for a per-module read whose COMMAND is missing or is not the ADR."""
    if len(info) != 1:
        return RTN_FORMAT
    return None if info[0] == adr else RTN_ADR


def _protocol_version(_stack: Stack, _pack: Pack, _adr: int, _info: bytes) -> Answer:
    return RTN_OK, b""


def _manufacturer(_stack: Stack, pack: Pack, _adr: int, info: bytes) -> Answer:
    if info:
        return RTN_FORMAT, b""
    values: dict[str, Value] = {
        "device_name": "US3000C",
        "software_version": (3, 3),
        "manufacturer": "SYSCOM RESS SIM",
    }
    return RTN_OK, write_fields(MANUFACTURER, values)


def _system_parameters(_stack: Stack, pack: Pack, _adr: int, info: bytes) -> Answer:
    if info:
        return RTN_FORMAT, b""
    v = pack.bms.settings.values
    values: dict[str, Value] = {
        "info_flag": INFO_FLAG,
        "cell_high_voltage_limit": v["cell_over_voltage_protection"],
        "cell_low_voltage_limit": v["cell_under_voltage_alarm"],
        "cell_under_voltage_limit": v["cell_under_voltage_protection"],
        "charge_high_temperature_limit": v["charge_high_temperature_protection"],
        "charge_low_temperature_limit": v["charge_low_temperature_protection"],
        "charge_current_limit": v["charge_over_current_protection"],
        "module_high_voltage_limit": v["pack_over_voltage_protection"],
        "module_low_voltage_limit": v["pack_under_voltage_alarm"],
        "module_under_voltage_limit": v["pack_under_voltage_protection"],
        "discharge_high_temperature_limit": v["discharge_high_temperature_protection"],
        "discharge_low_temperature_limit": v["discharge_low_temperature_protection"],
        "discharge_current_limit": -v["discharge_over_current_protection"],
    }
    return RTN_OK, write_fields(doc.SYSTEM_PARAMETER_LAYOUT, values)


def _management(_stack: Stack, pack: Pack, adr: int, info: bytes) -> Answer:
    refused = _command_matches(adr, info)
    if refused is not None:
        return refused, b""
    v = pack.bms.settings.values
    status = pack.status()
    bits = {7: status.flag("charge_mos"), 6: status.flag("discharge_mos")}
    values: dict[str, Value] = {
        "command_value": adr,
        "charge_voltage_limit": v["full_charge_voltage"],
        "discharge_voltage_limit": v["pack_under_voltage_protection"],
        "charge_current_limit": v["current_limit_start"],
        "discharge_current_limit": -v["discharge_over_current_protection"],
        "status": sum(1 << bit for bit, on in bits.items() if on),
    }
    return RTN_OK, write_fields(doc.MANAGEMENT_LAYOUT, values)


def _serial(_stack: Stack, pack: Pack, adr: int, info: bytes) -> Answer:
    refused = _command_matches(adr, info)
    if refused is not None:
        return refused, b""
    return RTN_OK, write_fields(
        doc.SERIAL_LAYOUT, {"command_value": adr, "serial": pack.pack_serial}
    )


def _software_version(_stack: Stack, _pack: Pack, adr: int, info: bytes) -> Answer:
    refused = _command_matches(adr, info)
    if refused is not None:
        return refused, b""
    values: dict[str, Value] = {
        "command_value": adr,
        "manufacturer_version": (1, 0),
        "main_line_version": (3, 3, 0),
    }
    return RTN_OK, write_fields(doc.SOFTWARE_VERSION_LAYOUT, values)


DIALECT: Final = Ver20Dialect(
    cid1=doc.CID1,
    handlers={
        doc.PROTOCOL_VERSION: _protocol_version,
        doc.MANUFACTURER_INFO: _manufacturer,
        doc.ANALOG: _analog,
        doc.STATUS: _status,
        doc.SYSTEM_PARAMETERS: _system_parameters,
        doc.MANAGEMENT: _management,
        doc.SERIAL_NUMBER: _serial,
        doc.SOFTWARE_VERSION: _software_version,
    },
    bus_address=bus_address,
)
