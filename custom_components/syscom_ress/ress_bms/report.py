"""Plain JSON-ready views of decoded values: the stable keys of ``ress-bms --json``.

The keys are a documented contract (README, "Command-line tool"): add keys, never rename them.
"""

from __future__ import annotations

from typing import Any

from .analog import PackAnalog
from .client import PackSample, StackInfo
from .device import Capacities, Serials
from .history import HistoryRecord
from .status import PackStatus

type Json = dict[str, Any]


def analog_json(pack: PackAnalog) -> Json:
    """42H values of one pack; an offline pack is only its address and ``online: false``."""
    if not pack.online:
        return {"address": pack.address, "online": False}
    return {
        "address": pack.address,
        "online": True,
        "cell_voltages": list(pack.cell_voltages),
        "temperatures": list(pack.cell_temperatures),
        "mos_temperature": pack.mos_temperature,
        "environment_temperature": pack.environment_temperature,
        "current": pack.current,
        "voltage": pack.voltage,
        "power": pack.power,
        "remaining_capacity": pack.remaining_capacity,
        "full_capacity": pack.full_capacity,
        "design_capacity": pack.design_capacity,
        "cycles": pack.cycles,
        "soc": pack.soc,
        "soc_source": pack.soc_source,
        "soh": pack.soh,
        "soh_source": pack.soh_source,
    }


def status_json(pack: PackStatus) -> Json:
    """44H flags of one pack."""
    return {
        "address": pack.address,
        "protections": list(pack.protections),
        "alarms": list(pack.alarms),
        "faults": list(pack.faults),
        "charge_mos": pack.charge_mos,
        "discharge_mos": pack.discharge_mos,
        "current_limit": pack.current_limit,
        "heating": pack.heating,
        "balancing": list(pack.balancing),
    }


def sample_json(sample: PackSample) -> Json:
    """One pack of a poll: analog and status keys together, or the error."""
    data: Json = {"address": sample.address, "online": sample.online}
    if sample.error is not None:
        data["error"] = str(sample.error)
        return data
    if sample.analog is not None:
        data |= analog_json(sample.analog)
    if sample.status is not None and sample.online:
        data |= status_json(sample.status)
    return data


def stack_json(stack: StackInfo) -> Json:
    """Discovery results."""
    return {
        "master_address": stack.master_address,
        "packs": [
            {
                "address": p.address,
                "version": p.version,
                "bms_serial": p.bms_serial,
                "pack_serial": p.pack_serial,
                "direct": p.direct,
            }
            for p in stack.packs
        ],
    }


def history_json(record: HistoryRecord) -> Json:
    """One history record."""
    return {
        "index": record.index,
        "time": record.time.isoformat() if record.time else None,
        "cell_voltages": list(record.cell_voltages),
        "temperatures": list(record.temperatures),
        "current": record.current,
        "voltage": record.voltage,
        "remaining_capacity": record.remaining_capacity,
        "full_capacity": record.full_capacity,
        "cycles": record.cycles,
        "protections": list(record.protections),
        "alarms": list(record.alarms),
        "faults": list(record.faults),
        "power_on": record.power_on,
        "status_record": f"{record.status_record:04X}",
    }


def serials_json(serials: Serials) -> Json:
    """C2H serials."""
    return {"bms_serial": serials.bms, "pack_serial": serials.pack}


def capacities_json(value: Capacities) -> Json:
    """A6H capacities."""
    return {
        "remaining_capacity": value.remaining,
        "full_capacity": value.full,
        "design_capacity": value.design,
    }
