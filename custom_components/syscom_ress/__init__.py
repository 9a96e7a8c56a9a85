"""The Syscom RESS battery integration: rack LiFePO4 stacks with a PACE (VER 0x25) BMS."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from homeassistant.config_entries import (
    SIGNAL_CONFIG_ENTRY_CHANGED,
    ConfigEntry,
    ConfigEntryChange,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import config_validation as cv, device_registry as dr
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.storage import Store
from homeassistant.helpers.typing import ConfigType

from .const import DOMAIN, PLATFORMS
from .coordinator import RessConfigEntry, StackCoordinator
from .history_cache import STORAGE_VERSION, storage_key
from .repairs import async_watch_stack
from .services import async_setup_services

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions (once, for every stack)."""
    async_setup_services(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: RessConfigEntry) -> bool:
    """Open the link, discover the packs, poll once, then set up the platforms."""
    coordinator = StackCoordinator(hass, entry)
    try:
        await coordinator.async_config_entry_first_refresh()
    except BaseException:
        await coordinator.link.close()
        raise
    entry.runtime_data = coordinator
    await coordinator.history.async_load()
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    # Protection events and repair issues follow the refreshes from here on; what is active
    # now is the start-up state, shown by the binary sensors, not an event.
    entry.async_on_unload(coordinator.control.async_start())
    entry.async_on_unload(async_watch_stack(hass, coordinator))
    entry.async_on_unload(_follow_title(hass, entry))
    # The history log is read between refreshes, a few records at a time (history_cache.py).
    entry.async_on_unload(coordinator.history.async_unload)
    entry.async_on_unload(coordinator.history.async_start())
    return True


def _follow_title(hass: HomeAssistant, entry: RessConfigEntry) -> Callable[[], None]:
    """Rename the devices when the owner renames the entry (its title is the stack's name)."""
    title = entry.title

    @callback
    def changed(change: ConfigEntryChange, changed_entry: ConfigEntry) -> None:
        nonlocal title
        if changed_entry.entry_id != entry.entry_id or changed_entry.title == title:
            return
        title = changed_entry.title
        entry.runtime_data.async_rename_devices()

    return async_dispatcher_connect(hass, SIGNAL_CONFIG_ENTRY_CHANGED, changed)


async def async_unload_entry(hass: HomeAssistant, entry: RessConfigEntry) -> bool:
    """Unload the platforms; the coordinator's shutdown closes the link."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: RessConfigEntry) -> None:
    """The stack is gone: so is its cached history log."""
    await Store[dict[str, Any]](hass, STORAGE_VERSION, storage_key(entry.entry_id)).async_remove()


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: RessConfigEntry, device: dr.DeviceEntry
) -> bool:
    """Let the owner remove a pack that no longer answers; the stack and live packs stay."""
    coordinator = entry.runtime_data
    address = coordinator.address_of_device(device)
    if address is None or address == coordinator.client.master_address:
        return False  # the stack, and the master pack the link talks through, stay
    pack = coordinator.pack(address)
    if pack is not None and pack.available:
        return False
    coordinator.forget_pack(address)
    return True
