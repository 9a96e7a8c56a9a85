"""JSON views of decoded values (``ress-bms --json``) and the owner's report.

The report is what ``ress-bms report`` writes and the Home Assistant diagnostics include. The keys
are a documented contract (README, "Command-line tool"; docs/troubleshooting.md for the report):
add keys, never rename them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
import platform
import re
from typing import Any, Final

from .analog import PackAnalog
from .capture import REDACTED, CapturedFrame, redact_frames
from .client import PackSample, PollMode, StackInfo, StackSample
from .device import Capacities, Serials
from .history import HistoryRecord
from .link import Link
from .status import STATUS_BITS, Kind, PackStatus

type Json = dict[str, Any]

REPORT_FORMAT: Final = 1
"""Version of the report's layout; raised only if a key ever has to change meaning."""


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
        "user_defined_count": pack.user_defined_count,
        "extension": pack.extension.hex().upper(),
    }


def bits_json(pack: PackStatus) -> dict[str, dict[str, bool]]:
    """Every named bit of the 44H tables, by kind: ``{"state": {"fully_charged": true}, ...}``.

    A bit of a byte the firmware did not send (the V3.1 extras) reads ``false``.
    """
    return {
        kind.value: {bit.name: pack.is_set(bit) for bit in STATUS_BITS if bit.kind is kind}
        for kind in Kind
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
        "bits": bits_json(pack),
        "status_bytes": {str(byte): f"{value:02X}" for byte, value in pack.bytes_.items()},
        "cell_codes": list(pack.cell_codes),
        "temperature_codes": list(pack.temperature_codes),
        "charge_current_code": pack.charge_current_code,
        "voltage_code": pack.voltage_code,
        "discharge_current_code": pack.discharge_current_code,
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
        "states": list(record.status.active(Kind.STATE)),
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


# -- the owner's report --------------------------------------------------------------------


_URL: Final = re.compile(
    r"^(?P<scheme>[a-z0-9+-]+)://(?P<host>[^/]+?)(?P<port>:\d+)?(?P<rest>/.*)?$"
)


def redact_url(url: str, placeholder: str = REDACTED) -> str:
    """Keep a URL's scheme and port, hide its host; hide a device path entirely."""
    match = _URL.match(url)
    if match is None:
        return placeholder
    return f"{match['scheme']}://{placeholder}{match['port'] or ''}"


def versions_json(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Versions of this library, Python, serialx and the platform (plus ``extra``)."""
    from . import __version__  # noqa: PLC0415 - read from the manifest on first use

    try:
        serialx = version("serialx")
    except PackageNotFoundError:
        serialx = "not installed"
    return {
        "ress_bms": __version__,
        "python": platform.python_version(),
        "serialx": serialx,
        "platform": f"{platform.system()} {platform.machine()}".strip(),
        **(extra or {}),
    }


def link_json(link: Link, *, redact: bool = True) -> Json:
    """Where the link goes and its counters (without the per-command details)."""
    counters = {k: v for k, v in asdict(link.stats).items() if isinstance(v, int)}
    return {
        "url": redact_url(link.url) if redact else link.url,
        "baudrate": link.baudrate,
        "timeout": link.timeout,
        "stats": counters,
    }


def build_report(
    *,
    source: str,
    stack: StackInfo | None = None,
    sample: StackSample | None = None,
    parameters: Mapping[int, Mapping[str, float] | BaseException | str] | None = None,
    frames: Sequence[CapturedFrame] = (),
    link: Link | None = None,
    poll_mode: PollMode | None = None,
    errors: Mapping[str, BaseException | str] | None = None,
    versions: Mapping[str, str] | None = None,
    addresses: Collection[int] | None = None,
    redact: bool = True,
    created: datetime | None = None,
) -> Json:
    """Everything needed to tell what a stack is and how it talks, as one JSON object.

    ``ress-bms report`` fills it from one discovery, one poll and a parameter read;
    Home Assistant's diagnostics from what its coordinator already holds (no bus traffic).
    ``scan``, ``status`` and ``parameters`` have the shapes of ``ress-bms scan --json``,
    ``status --json`` and ``params --json``; ``frames`` are the frames exchanged, which
    ``ress-bms replay`` decodes again. With ``redact`` the serials (in ``scan`` and inside the
    C2H reply frames) and the gateway's host are replaced by ``**REDACTED**``. ``addresses``
    limits the packs to those addresses (a pack's own diagnostics).
    """

    def wanted(address: int) -> bool:
        return addresses is None or address in addresses

    def scrub(text: str) -> str:
        if redact and link is not None and link.url:
            return text.replace(link.url, redact_url(link.url))
        return text

    scan = None
    if stack is not None:
        scan = stack_json(stack)
        scan["packs"] = [p for p in scan["packs"] if wanted(p["address"])]
        if redact:
            for pack in scan["packs"]:
                for key in ("bms_serial", "pack_serial"):
                    if pack[key] is not None:
                        pack[key] = REDACTED
    status = None
    if sample is not None:
        packs = [sample_json(s) for s in sample.packs.values() if wanted(s.address)]
        for pack in packs:
            if "error" in pack:
                pack["error"] = scrub(pack["error"])
        status = {"mode": sample.mode.value, "packs": packs}
    read = []
    for address, values in sorted((parameters or {}).items()):
        if not wanted(address):
            continue
        if isinstance(values, Mapping):
            read.append({"address": address, "values": dict(values)})
        else:
            read.append({"address": address, "error": scrub(str(values))})
    link_data = link_json(link, redact=redact) if link is not None else None
    if link_data is not None and poll_mode is not None:
        link_data["poll_mode"] = poll_mode.value
    return {
        "report_format": REPORT_FORMAT,
        "source": source,
        "created": (created or datetime.now(UTC)).isoformat(timespec="seconds"),
        "redacted": redact,
        "versions": versions_json(versions),
        "errors": {key: scrub(str(err)) for key, err in (errors or {}).items()},
        "link": link_data,
        "scan": scan,
        "status": status,
        "parameters": read,
        "frames": [f.json() for f in (redact_frames(frames) if redact else frames)],
    }
