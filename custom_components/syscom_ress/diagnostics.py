"""Diagnostics: what the integration knows about a stack, and the BMS history log.

Serials, the gateway's host and the serial port are redacted. The raw frames of the last
exchange of each command are included (those of C2H, which carry the serials, are not), and the
history log of every pack that answers at its own address comes from the history cache
(history_cache.py): the download sends nothing on the bus and says how fresh each log is (when
it was last checked, how many records are cached, whether the whole log is).

``report`` is what ``ress-bms report`` writes, built by the same library function from what the
coordinator already holds: discovery, the last poll, the parameters read so far and the last
frames of each command. It sends nothing on the bus, and ``ress-bms replay`` reads the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any, Final

from homeassistant.components.diagnostics import REDACTED, async_redact_data
from homeassistant.const import __version__ as HA_VERSION
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr

from .const import CONF_DEVICE
from .coordinator import PackState, RessConfigEntry, StackCoordinator
from .ress_bms.capture import frames_from_exchanges
from .ress_bms.commands import Command
from .ress_bms.dialects.base import Capability
from .ress_bms.report import build_report, history_json, redact_url
from .ress_bms.status import PackStatus

TO_REDACT: Final = {
    "bms_serial",
    "pack_serial",
    "serial_number",
    "unique_id",
    "title",
    "stack_id",
    "identifiers",
}


def redact_connection(value: str) -> str:
    """Keep a URL's scheme and port, hide its host; hide a device path entirely."""
    return redact_url(value, REDACTED)


def _status(status: PackStatus | None) -> dict[str, Any] | None:
    if status is None:
        return None
    return {
        "bytes": {str(byte): f"{value:02X}" for byte, value in status.bytes_.items()},
        "protections": list(status.protections),
        "alarms": list(status.alarms),
        "faults": list(status.faults),
        "balancing": list(status.balancing),
        "cell_codes": list(status.cell_codes),
        "temperature_codes": list(status.temperature_codes),
    }


def _pack(coordinator: StackCoordinator, pack: PackState) -> dict[str, Any]:
    sample = coordinator.last_sample.packs.get(pack.address) if coordinator.last_sample else None
    analog = None
    if pack.analog is not None:
        analog = asdict(pack.analog)
        analog["extension"] = pack.analog.extension.hex().upper()
        analog["power"] = pack.analog.power
    return {
        "address": pack.address,
        "info": asdict(pack.info),
        "available": pack.available,
        "missed_refreshes": pack.missed,
        "last_error": str(sample.error) if sample is not None and sample.error else None,
        "analog": analog,
        "status": _status(pack.status),
    }


def _history(coordinator: StackCoordinator, address: int) -> dict[str, Any] | None:
    """A pack's cached history log with its freshness (``None``: the pack has no history)."""
    history = coordinator.history.pack(address)
    if history is None:
        return None
    return {**history.freshness(), "records": [history_json(r) for r in history.records]}


def _link(coordinator: StackCoordinator) -> dict[str, Any]:
    stats = asdict(coordinator.link.stats)
    frames = stats.pop("last_frames")
    stack = coordinator.stack
    serials = [
        serial.encode("ascii", "replace")
        for pack in (stack.packs if stack is not None else ())
        for serial in (pack.bms_serial, pack.pack_serial)
        if serial
    ]
    stats["rtt_by_command"] = {
        f"{command:02X}": round(rtt, 3) for command, rtt in stats["rtt_by_command"].items()
    }
    stats["success_rate"] = coordinator.link.stats.success_rate
    return {
        "url": redact_connection(coordinator.link.url),
        "baudrate": coordinator.link.baudrate,
        "timeout": coordinator.link.timeout,
        "connected": coordinator.link.connected,
        "dialect": coordinator.client.dialect.name,
        "offered": sorted(c for c in Capability if coordinator.client.can(c)),
        "poll_mode": coordinator.client.mode,
        "poll_mode_reason": coordinator.client.mode_reason,
        "requested_poll_mode": coordinator.client.requested_mode,
        "stats": stats,
        "last_frames": {
            f"{command:02X}": {
                "request": _shown(request),
                "reply": REDACTED if command == Command.SERIAL else _shown(reply, serials),
            }
            for command, (request, reply) in sorted(frames.items())
        },
    }


def _shown(frame: bytes, serials: Sequence[bytes] = ()) -> str:
    """An ASCII frame as its text, a binary (Modbus RTU) one in hex; serials blanked out."""
    for serial in serials:
        frame = frame.replace(serial, b"*" * len(serial))
    text = frame.decode("ascii", "replace").strip()
    return text if text.isprintable() else frame.hex(" ")


def _entry(entry: RessConfigEntry) -> dict[str, Any]:
    data = dict(entry.data)
    data[CONF_DEVICE] = redact_connection(str(data[CONF_DEVICE]))
    return {
        "title": entry.title,
        "unique_id": entry.unique_id,
        "version": f"{entry.version}.{entry.minor_version}",
        "data": data,
        "options": dict(entry.options),
    }


def _report(coordinator: StackCoordinator, packs: list[PackState]) -> dict[str, Any]:
    """What ``ress-bms report`` would write, from what the coordinator holds (no bus traffic)."""
    addresses = [pack.address for pack in packs]
    parameters = {
        address: values
        for address in addresses
        if (values := coordinator.control.parameters(address)) is not None
    }
    return build_report(
        source="home assistant diagnostics",
        stack=coordinator.stack,
        sample=coordinator.last_sample,
        parameters=parameters,
        frames=frames_from_exchanges(coordinator.link.stats.last_frames),
        link=coordinator.link,
        poll_mode=coordinator.client.mode,
        versions={"home_assistant": HA_VERSION},
        addresses=addresses,
        redact=True,
    )


async def _diagnostics(
    coordinator: StackCoordinator, entry: RessConfigEntry, packs: list[PackState]
) -> dict[str, Any]:
    data = coordinator.data
    report = _report(coordinator, packs)
    return async_redact_data(
        {
            "entry": _entry(entry),
            "last_update_success": coordinator.last_update_success,
            "stack": {
                "packs": len(data.packs) if data else 0,
                "packs_online": len(data.available_packs) if data else 0,
                "energy_charged_kwh": round(coordinator.energy.charged, 6),
                "energy_discharged_kwh": round(coordinator.energy.discharged, 6),
            },
            "link": _link(coordinator),
            "packs": [_pack(coordinator, pack) for pack in packs],
            "history": {
                str(pack.address): history
                for pack in packs
                if (history := _history(coordinator, pack.address)) is not None
            },
            "report": report,
        },
        TO_REDACT,
    )


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: RessConfigEntry
) -> dict[str, Any]:
    """Everything about the stack and every pack."""
    coordinator = entry.runtime_data
    packs = list(coordinator.data.packs.values()) if coordinator.data else []
    return await _diagnostics(coordinator, entry, packs)


async def async_get_device_diagnostics(
    hass: HomeAssistant, entry: RessConfigEntry, device: dr.DeviceEntry
) -> dict[str, Any]:
    """The stack device: everything; a pack device: that pack only."""
    coordinator = entry.runtime_data
    address = coordinator.address_of_device(device)
    packs = list(coordinator.data.packs.values()) if coordinator.data else []
    if address is not None:
        packs = [p for p in packs if p.address == address]
    return await _diagnostics(coordinator, entry, packs)
