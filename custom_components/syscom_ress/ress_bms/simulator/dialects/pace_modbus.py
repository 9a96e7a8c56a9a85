"""PACE BMS Modbus RTU V1.3 as the simulator speaks it ([PACE-MODBUS], dialects.md 5).

Pack n is unit n (0x01-0x10, the function tables' unit ids; 0 is the broadcast and is never
answered, nor is a unit that is not on the bus). Function 03 reads the holding registers the
document defines, **decimal** numbers: 0-7 (pack), 9-12 (flags), 15-36 (cells, temperatures),
60-114 (parameters, V1.3), 150-179 (version, BMS serial, pack serial). The reserved registers
(8, 13-14, 37-59, 115-149) are not in the image, so a read that touches one gets exception 02;
fc 10 (the documented write) is never cut as a request and so never answered, fc 06 and any
other function get exception 01. Values are encoded from the dialect module's own register
tables (:func:`~...dialects.base.encode_registers`).
"""

from __future__ import annotations

from typing import Final

from ...dialects import pace_modbus as doc
from ...dialects.base import Value, encode_registers
from ..pack import Pack
from ..stack import Stack
from .modbus import ModbusDialect

CHARGE_OC2: Final = (150.0, 0.1)
"""Charging OC-2 protection (A) and delay (s): the simulated BMS has none of its own."""


def unit_of(stack: Stack, unit: int) -> Pack | None:
    """Pack n at unit n."""
    if unit not in doc.UNITS:
        return None
    return next((p for p in stack.packs if p.address == unit), None)


def _flags(pack: Pack) -> dict[str, Value]:
    status = pack.status()
    words: dict[str, Value] = {}
    for name, flags in doc.FLAG_TABLES.items():
        word = sum(1 << f.bit for f in flags if f.key is not None and status.flag(f.key))
        if name == "status" and pack.physics.current < -1:
            word |= 1 << next(f.bit for f in flags if f.name == "discharging")
        words[name] = word
    words["balance"] = sum(1 << (cell - 1) for cell in status.balancing)
    return words


def _parameters(pack: Pack) -> dict[str, Value]:
    v = pack.bms.settings.values
    values: dict[str, Value] = {}
    for item in doc.PARAMETERS_1_0:
        limit, _, part = item.name.partition(".")
        key = f"{limit}_{'release' if part == 'protection_release' else part}"
        if key in v:
            values[item.name] = v[key]
    values |= {
        "balance_start_voltage": v["balance_start_voltage"],
        "balance_start_delta": v["balance_delta"] / 1000,
        "full_charge_voltage": v["full_charge_voltage"],
        "full_charge_current": v["full_charge_current"],
        "sleep_voltage": v["sleep_voltage"],
        "sleep_delay": round(v["sleep_delay"]),
        "short_circuit_delay": v["short_circuit_delay"] / 1e6,
        "soc_alarm": round(v["low_soc_alarm"]),
        "charge_over_current_2.protection": CHARGE_OC2[0],
        "charge_over_current_2.delay": CHARGE_OC2[1],
    }
    return values


def registers(_stack: Stack, pack: Pack) -> dict[int, int]:
    """Every documented holding register of ``pack``."""
    a = pack.analog()
    p = pack.physics
    t = tuple(round(x, 1) for x in p.temperatures)
    values: dict[str, Value] = {
        "current": a.current,
        "voltage": round(a.voltage, 2),
        "soc": round(p.soc),
        "soh": round(p.soh),
        "remaining_capacity": a.remaining_capacity,
        "full_capacity": a.full_capacity,
        "design_capacity": a.design_capacity,
        "cycles": a.cycles,
        "cell_voltages": a.cell_voltages,
        "cell_temperatures": t[:4],
        "mos_temperature": t[4],
        "environment_temperature": t[5],
        "version": pack.version,
        "model_serial": pack.bms_serial,
        "pack_serial": pack.pack_serial,
        **_flags(pack),
        **_parameters(pack),
    }
    tables = (*doc.PACK, *doc.FLAGS, *doc.CELL_BLOCK, *doc.PARAMETERS, *doc.DEVICE)
    return encode_registers(tables, values)


DIALECT: Final = ModbusDialect(images={doc.FUNCTION: registers}, unit_of=unit_of)
MAX_PACKS: Final = 16
