"""Seplos V2.0 as the simulator speaks it ([SEPLOS-V2], dialects.md 2).

Pack n sits at ADR n - 1: "the master is always pack 00, the next one 01" (dialects.md 2.1).
Each pack answers at its own address only (per-address multi-pack, up to 16 on ADR 00-0F);
any COMMAND GROUP is accepted and echoed. Reads: 42H, 44H (INFO = 1 byte group), 4FH (empty
reply: the version is the VER), 51H (the 10 + 2 + 20 byte vendor info). Everything else, the
writes 45H/49H/4EH and the production A0H-A2H included, gets RTN 04, a foreign CID1 RTN E1.

42H sends the temperatures T1-T4 (cells), T5 environment, T6 power (dialects.md 2.3): the
environment comes before the MOSFET on the wire. 44H sends the same order for its codes, one
current code, and the P = 20 status bytes (14 defined, 6 reserved).
"""

from __future__ import annotations

from typing import Final

from ...dialects import seplos as doc
from ...dialects.base import Field, Value, write_fields
from ...dialects.ver20 import MANUFACTURER
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

RTN_CID1: Final = 0xE1
ANALOG_WORDS: Final = 10
"""P of 42H in the document: 6 defined words, 4 reserved."""
STATUS_BYTES: Final = 20
"""P of 44H in the document: 14 defined bytes, 6 reserved."""
DATA_FLAG: Final = 0x00


def bus_address(address: int) -> int:
    """Pack n at ADR n - 1."""
    return address - 1


def _group(info: bytes) -> int | None:
    return info[0] if len(info) == 1 else None


def analog_info(pack: Pack, group: int) -> bytes:
    """The 42H INFO of one pack."""
    a = pack.analog()
    cells, mos, environment = roles(temperatures(pack))
    p = pack.physics
    head = write_fields(
        doc.ANALOG_HEAD,
        {
            "data_flag": DATA_FLAG,
            "command_group": group,
            "cell_voltages": a.cell_voltages,
            "temperatures": (*cells, environment, mos),
            "current": a.current,
            "voltage": a.voltage,
            "remaining_capacity": a.remaining_capacity,
            "user_defined_count": ANALOG_WORDS,
        },
    )
    reserved = Field("reserved", "raw", size=2 * (ANALOG_WORDS - len(doc.ANALOG_ITEMS)))
    items = write_fields(
        (*doc.ANALOG_ITEMS, reserved),
        {
            "full_capacity": a.full_capacity,
            "soc": round(p.soc, 1),
            "design_capacity": a.design_capacity,
            "cycles": a.cycles,
            "soh": round(p.soh, 1),
            "port_voltage": a.voltage,
            "reserved": bytes(reserved.size),
        },
    )
    return head + items


def status_info(pack: Pack, group: int) -> bytes:
    """The 44H INFO of one pack."""
    s = pack.status()
    cells, mos, environment = roles(s.temperature_codes)
    fields = status_fields(doc.STATUS_TABLE, s)
    current = pack.physics.current
    set_own(doc.STATUS_TABLE, fields, "discharging", current < -1)
    set_own(doc.STATUS_TABLE, fields, "standby", abs(current) <= 1)
    head = write_fields(
        doc.STATUS_HEAD,
        {
            "data_flag": DATA_FLAG,
            "command_group": group,
            "cell_codes": s.cell_codes,
            "temperature_codes": (*cells, environment, mos),
            "current_code": s.charge_current_code or s.discharge_current_code,
            "voltage_code": s.voltage_code,
            "user_defined_count": STATUS_BYTES,
        },
    )
    reserved = Field("reserved", "raw", size=STATUS_BYTES - len(doc.STATUS_ITEMS))
    items = write_fields((*doc.STATUS_ITEMS, reserved), {**fields, "reserved": bytes(6)})
    return head + items


def _analog(_stack: Stack, pack: Pack, _adr: int, info: bytes) -> Answer:
    group = _group(info)
    return (RTN_FORMAT, b"") if group is None else (RTN_OK, analog_info(pack, group))


def _status(_stack: Stack, pack: Pack, _adr: int, info: bytes) -> Answer:
    group = _group(info)
    return (RTN_FORMAT, b"") if group is None else (RTN_OK, status_info(pack, group))


def _protocol_version(_stack: Stack, _pack: Pack, _adr: int, _info: bytes) -> Answer:
    return RTN_OK, b""


def _vendor_info(_stack: Stack, pack: Pack, _adr: int, _info: bytes) -> Answer:
    values: dict[str, Value] = {
        "device_name": f"1101-SP{pack.cells}",
        "software_version": (2, 0),
        "manufacturer": "SYSCOM RESS SIM",
    }
    return RTN_OK, write_fields(MANUFACTURER, values)


DIALECT: Final = Ver20Dialect(
    cid1=doc.CID1,
    handlers={
        doc.ANALOG: _analog,
        doc.STATUS: _status,
        doc.PROTOCOL_VERSION: _protocol_version,
        doc.VENDOR_INFO: _vendor_info,
    },
    bus_address=bus_address,
    cid1_rtn=RTN_CID1,
)
MAX_PACKS: Final = 16
"""ADR 00-0F from the DIP switch."""
