"""The Syscom RESS battery integration: rack LiFePO4 stacks with a PACE (VER 0x25) BMS."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr

from .const import PLATFORMS
from .coordinator import RessConfigEntry, StackCoordinator


async def async_setup_entry(hass: HomeAssistant, entry: RessConfigEntry) -> bool:
    """Open the link, discover the packs, poll once, then set up the platforms."""
    coordinator = StackCoordinator(hass, entry)
    try:
        await coordinator.async_config_entry_first_refresh()
    except BaseException:
        await coordinator.link.close()
        raise
    entry.runtime_data = coordinator
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: RessConfigEntry) -> bool:
    """Unload the platforms; the coordinator's shutdown closes the link."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


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
