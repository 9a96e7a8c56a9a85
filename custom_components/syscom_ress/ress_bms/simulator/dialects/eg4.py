"""EG4 LifePower4 as the simulator speaks it ([EG4], dialects.md 4).

Pack n sits at ADR n (1..15 from the DIP switch), each answering at its own address. CID1 is
4AH. The reads 42H, 44H and 4DH carry **no INFO** (LENID 0): a request with INFO gets RTN 05.
51H answers a 46-byte manufacturer block as the one pack seen (no document lays it out).
Writes (45H reboot, 49H parameters, 4EH time) and anything else get RTN 04.

42H: N = 4 cell temperatures counted, then environment and MOSFET (N + 2 values), and the 15
items after the user-defined count; 44H: N + 2 temperature codes the same way, one current
code and the 9 items (a 32-bit balance word, bit 0 = cell 1).
"""

from __future__ import annotations

from typing import Final

from ...dialects import eg4 as doc
from ...dialects.base import Value, write_fields
from ..pack import Pack
from ..stack import Stack
from .ver20 import (
    RTN_FORMAT,
    RTN_OK,
    Answer,
    Ver20Dialect,
    roles,
    set_own,
    status_fields,
    temperatures,
)

DATA_FLAG: Final = 0x10
"""As in nkinnan's capture (the PDF prints 0x01; informative only, dialects.md 1)."""
PACK_GROUP: Final = 0x01
"""As in nkinnan's capture."""
MAX_PACKS: Final = 15
"""ADR 1..15 from the 4-bit DIP switch."""
MANUFACTURER: Final = b"QTHN 0d".ljust(46, b"\x00")


def bus_address(address: int) -> int:
    """Pack n at ADR n."""
    return address


def analog_info(pack: Pack) -> bytes:
    """The 42H INFO of one pack."""
    a = pack.analog()
    p = pack.physics
    cells, mos, environment = roles(temperatures(pack))
    cell_voltages = a.cell_voltages
    head = write_fields(
        doc.ANALOG_HEAD,
        {
            "data_flag": DATA_FLAG,
            "pack_group": PACK_GROUP,
            "cell_voltages": cell_voltages,
            "cell_temperatures": cells,
            "environment_temperature": environment,
            "mos_temperature": mos,
            "current": a.current,
            "voltage": a.voltage,
            "remaining_capacity": a.remaining_capacity,
            "full_capacity": a.full_capacity,
            "cycles": a.cycles,
            "user_defined_count": len(doc.ANALOG_ITEMS),
        },
    )
    items = write_fields(
        doc.ANALOG_ITEMS,
        {
            "soc": round(p.soc),
            "soh": round(p.soh),
            "max_cell_voltage": max(cell_voltages),
            "min_cell_voltage": min(cell_voltages),
            "cell_voltage_difference": round(max(cell_voltages) - min(cell_voltages), 3),
            "max_cell_temperature": max(cells),
            "min_cell_temperature": min(cells),
            "cumulative_charge": round(p.charged, 2),
            "cumulative_discharge": round(p.discharged, 2),
            "cumulative_charge_energy": round(p.charged * 51.2 / 1000, 3),
            "cumulative_discharge_energy": round(p.discharged * 51.2 / 1000, 3),
            "cumulative_charge_time": 0,
            "cumulative_discharge_time": 0,
            "charge_count": a.cycles,
            "discharge_count": a.cycles,
        },
    )
    return head + items


def status_info(pack: Pack) -> bytes:
    """The 44H INFO of one pack."""
    s = pack.status()
    cells, mos, environment = roles(s.temperature_codes)
    fields = status_fields(doc.STATUS_TABLE, s)
    current = pack.physics.current
    set_own(doc.STATUS_TABLE, fields, "discharging", current < -1)
    set_own(doc.STATUS_TABLE, fields, "standby", abs(current) <= 1)
    set_own(doc.STATUS_TABLE, fields, "balance_module_on", bool(s.balancing))
    values: dict[str, Value] = {
        "data_flag": DATA_FLAG,
        "pack_group": PACK_GROUP,
        "cell_codes": s.cell_codes,
        "cell_temperature_codes": cells,
        "environment_code": environment,
        "mos_code": mos,
        "current_code": s.charge_current_code or s.discharge_current_code,
        "voltage_code": s.voltage_code,
        "user_defined_count": len(doc.STATUS_ITEMS),
        "reserved": 0,
        **fields,
    }
    return write_fields((*doc.STATUS_HEAD, *doc.STATUS_ITEMS), values)


def _analog(_stack: Stack, pack: Pack, _adr: int, info: bytes) -> Answer:
    return (RTN_FORMAT, b"") if info else (RTN_OK, analog_info(pack))


def _status(_stack: Stack, pack: Pack, _adr: int, info: bytes) -> Answer:
    return (RTN_FORMAT, b"") if info else (RTN_OK, status_info(pack))


def _clock(_stack: Stack, pack: Pack, _adr: int, info: bytes) -> Answer:
    if info:
        return RTN_FORMAT, b""
    now = pack.now()
    values = {
        "year": now.year,
        "month": now.month,
        "day": now.day,
        "hour": now.hour,
        "minute": now.minute,
        "second": now.second,
    }
    return RTN_OK, write_fields(doc.CLOCK_LAYOUT, values)


def _manufacturer(_stack: Stack, _pack: Pack, _adr: int, _info: bytes) -> Answer:
    return RTN_OK, MANUFACTURER


DIALECT: Final = Ver20Dialect(
    cid1=doc.CID1,
    handlers={
        doc.ANALOG: _analog,
        doc.STATUS: _status,
        doc.CLOCK_READ: _clock,
        doc.MANUFACTURER_INFO: _manufacturer,
    },
    bus_address=bus_address,
)
