"""Actions: read and write parameters, read the history log, set the packs' clocks.

Registered once in ``async_setup`` (not per entry). Each takes a device: a pack, or the stack
(meaning its master pack, the one the link is wired to; for ``sync_clock``, every pack that
answers at its own address). Actions that change the battery (``write_parameters``,
``sync_clock``) are admin-only. Bad input raises ``ServiceValidationError`` and a failing pack
``HomeAssistantError``, both translated.

``read_history`` answers from the history cache (history_cache.py) without a byte on the bus,
and says how fresh it is; ``sync_clock`` reads each clock before it sets it and returns the
drift.
"""

from __future__ import annotations

from typing import Any, Final

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_DEVICE_ID
from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse, SupportsResponse
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv, device_registry as dr
from homeassistant.helpers.service import async_register_admin_service
from homeassistant.util import dt as dt_util
from homeassistant.util.json import JsonValueType

try:  # Home Assistant validates with probatio from 2026.9 on (voluptuous is aliased to it)
    import probatio as vol
except ImportError:  # pragma: no cover - Home Assistant 2026.8
    import voluptuous as vol  # type: ignore[no-redef]

from .const import DOMAIN
from .coordinator import StackCoordinator
from .ress_bms.dialects.base import Capability
from .ress_bms.history import MAX_RECORDS
from .ress_bms.params import PARAMETERS, PARAMETERS_BY_KEY
from .ress_bms.report import history_json

SERVICE_READ_PARAMETERS: Final = "read_parameters"
SERVICE_WRITE_PARAMETERS: Final = "write_parameters"
SERVICE_READ_HISTORY: Final = "read_history"
SERVICE_SYNC_CLOCK: Final = "sync_clock"

ATTR_PARAMETERS: Final = "parameters"
ATTR_DRY_RUN: Final = "dry_run"
ATTR_COUNT: Final = "count"
DEFAULT_HISTORY_COUNT: Final = 20

DEVICE_SCHEMA: Final = vol.Schema({vol.Required(ATTR_DEVICE_ID): cv.string})
WRITE_SCHEMA: Final = DEVICE_SCHEMA.extend(
    {
        vol.Required(ATTR_PARAMETERS): vol.All(dict, vol.Length(min=1)),
        vol.Optional(ATTR_DRY_RUN, default=False): cv.boolean,
    }
)
HISTORY_SCHEMA: Final = DEVICE_SCHEMA.extend(
    {
        vol.Optional(ATTR_COUNT, default=DEFAULT_HISTORY_COUNT): vol.All(
            vol.Coerce(int), vol.Range(min=1, max=MAX_RECORDS)
        )
    }
)


def _invalid(key: str, **placeholders: str) -> ServiceValidationError:
    return ServiceValidationError(
        translation_domain=DOMAIN, translation_key=key, translation_placeholders=placeholders
    )


def _target(hass: HomeAssistant, call: ServiceCall) -> tuple[StackCoordinator, int | None]:
    """The stack and pack a call names (``None``: the stack device itself)."""
    device_id: str = call.data[ATTR_DEVICE_ID]
    device = dr.async_get(hass).async_get(device_id)
    if device is None:
        raise _invalid("unknown_device", device=device_id)
    # A device belongs to one config entry (``DeviceEntry.config_entries`` is deprecated).
    entry = hass.config_entries.async_get_entry(device.config_entry_id)
    if entry is None or entry.domain != DOMAIN:
        raise _invalid("unknown_device", device=device_id)
    if entry.state is not ConfigEntryState.LOADED:
        raise _invalid("entry_not_loaded", device=device.name_by_user or device.name or "")
    coordinator: StackCoordinator = entry.runtime_data
    return coordinator, coordinator.address_of_device(device)


def _pack(
    hass: HomeAssistant, call: ServiceCall, capability: Capability
) -> tuple[StackCoordinator, int]:
    """The pack a call names (the stack stands for its master) that ``capability`` reaches."""
    coordinator, address = _target(hass, call)
    if address is None:
        address = coordinator.client.master_address
    _check_reach(coordinator, address, capability)
    return coordinator, address


def _check_reach(coordinator: StackCoordinator, address: int, capability: Capability) -> None:
    """Refuse, saying why, what the stack's dialect does not do or the pack does not answer."""
    client = coordinator.client
    if not client.can(capability):
        raise _invalid(
            "dialect_cannot", dialect=client.dialect.title, reason=client.why_not(capability)
        )
    if not coordinator.control.reachable(address, capability):
        raise _invalid("pack_not_reachable", pack=str(address))


async def _read_parameters(call: ServiceCall) -> ServiceResponse:
    coordinator, address = _pack(call.hass, call, Capability.PARAMETERS_READ)
    values = await coordinator.control.async_read_parameters(address)
    return {
        "pack": address,
        "parameters": {
            p.key: {
                "value": values[p.key],
                "unit": p.unit,
                "minimum": p.minimum,
                "maximum": p.maximum,
                "step": p.step,
                "threshold": p.threshold,
            }
            for p in PARAMETERS
            if p.key in values
        },
    }


def _changes(raw: dict[Any, Any], address: int) -> dict[str, float]:
    """Parameter names and numbers, or one translated error listing every bad entry."""
    problems = []
    changes: dict[str, float] = {}
    for key, value in raw.items():
        if key not in PARAMETERS_BY_KEY:
            problems.append(f"{key}: unknown parameter")
            continue
        if isinstance(value, bool):
            problems.append(f"{key}: {value!r} is not a number")
            continue
        try:
            changes[str(key)] = float(value)
        except TypeError, ValueError:
            problems.append(f"{key}: {value!r} is not a number")
    if problems:
        raise _invalid("invalid_parameters", pack=str(address), problems="; ".join(problems))
    return changes


async def _write_parameters(call: ServiceCall) -> ServiceResponse:
    coordinator, address = _pack(call.hass, call, Capability.PARAMETERS_WRITE)
    changes = _changes(call.data[ATTR_PARAMETERS], address)
    dry_run: bool = call.data[ATTR_DRY_RUN]
    result = await coordinator.control.async_write_parameters(address, changes, dry_run=dry_run)
    return {
        "pack": address,
        "dry_run": dry_run,
        "old": {key: result.old[key] for key in changes},
        "new": {key: result.new[key] for key in changes},
        "writes": [
            {
                "group": write.group,
                "command": f"{write.command:02X}H",
                "payload": write.payload.hex().upper(),
                "frame": write.frame.decode("ascii").strip(),
            }
            for write in result.writes
        ],
    }


async def _read_history(call: ServiceCall) -> ServiceResponse:
    coordinator, address = _pack(call.hass, call, Capability.HISTORY)
    history = coordinator.history.pack(address)
    assert history is not None  # _pack: the pack answers at its own address
    records = history.records[: call.data[ATTR_COUNT]]
    return {
        "pack": address,
        **history.freshness(),
        "records": [history_json(r) for r in records],
    }


async def _sync_clock(call: ServiceCall) -> ServiceResponse:
    coordinator, address = _target(call.hass, call)
    if address is not None:
        _check_reach(coordinator, address, Capability.CLOCK)
        addresses = [address]
    else:
        _check_reach(coordinator, coordinator.client.master_address, Capability.CLOCK)
        stack = coordinator.stack
        addresses = [
            p.address
            for p in (stack.packs if stack is not None else ())
            if coordinator.control.reachable(p.address, Capability.CLOCK)
        ]
    packs: list[JsonValueType] = []
    for pack in addresses:
        old = await coordinator.control.async_read_clock(pack)
        new = dt_util.now().replace(tzinfo=None, microsecond=0)
        await coordinator.control.async_set_clock(pack, new)
        packs.append(
            {
                "pack": pack,
                "old": old.isoformat(),
                "new": new.isoformat(),
                "drift": (old - new).total_seconds(),
            }
        )
    return {"packs": packs}


def async_setup_services(hass: HomeAssistant) -> None:
    """Register the integration's actions."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_READ_PARAMETERS,
        _read_parameters,
        schema=DEVICE_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_READ_HISTORY,
        _read_history,
        schema=HISTORY_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )
    async_register_admin_service(
        hass,
        DOMAIN,
        SERVICE_WRITE_PARAMETERS,
        _write_parameters,
        schema=WRITE_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    async_register_admin_service(
        hass,
        DOMAIN,
        SERVICE_SYNC_CLOCK,
        _sync_clock,
        schema=DEVICE_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
