"""Switches: charge / discharge MOS (9AH / 9BH), buzzer, LED alarm, limiter (99H), shutdown (9CH).

States come from the 44H control status byte of the last poll (the setting bits of
:data:`~.ress_bms.status.STATUS_BITS`), so a change made with the PC tool shows here too. The
MOS switches show whether charging / discharging is *allowed* (control bits 1 and 2: the MOS was
not forced off); whether the MOSFET is actually closed is the "Charge MOS" / "Discharge MOS"
binary sensor, because a protection can open it while it is allowed.

Forced shutdown is a switch whose state is honest about what the bus can do: it is on from the
moment the pack acknowledges 9CH until the pack answers again (woken by its key or a charger, or
it rebooted instead because current was flowing), and on while a V3.1 pack reports its shutdown
bit. Turning it off is refused with an explanation: no command wakes a pack.

Like the numbers, these exist only on packs that answer at their own address.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from homeassistant.components.switch import SwitchEntity, SwitchEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import DOMAIN
from .control import StackControl
from .coordinator import PackState, RessConfigEntry, StackCoordinator
from .entity import PackEntity, async_add_pack_entities
from .ress_bms.commands import Command
from .ress_bms.dialects.base import Capability
from .ress_bms.status import PackStatus

PARALLEL_UPDATES = 1


@dataclass(frozen=True, kw_only=True)
class ControlSwitchDescription(SwitchEntityDescription):
    """A switch: its state from the pack's status, and the command that sets it."""

    is_on_fn: Callable[[PackStatus], bool]
    set_fn: Callable[[StackControl, int, bool], Awaitable[None]]


def _control_99h(name: str) -> Callable[[StackControl, int, bool], Awaitable[None]]:
    return lambda control, address, on: control.async_set_switch(address, name, on)


def _mos(which: Command) -> Callable[[StackControl, int, bool], Awaitable[None]]:
    return lambda control, address, on: control.async_set_mos(address, which, on)


SWITCHES: Final[tuple[ControlSwitchDescription, ...]] = (
    ControlSwitchDescription(
        key="charge_allowed",
        translation_key="charge_allowed",
        entity_category=EntityCategory.CONFIG,
        is_on_fn=lambda status: not status.flag("charge_mos_control"),
        set_fn=_mos(Command.CHARGE_MOS),
    ),
    ControlSwitchDescription(
        key="discharge_allowed",
        translation_key="discharge_allowed",
        entity_category=EntityCategory.CONFIG,
        is_on_fn=lambda status: not status.flag("discharge_mos_control"),
        set_fn=_mos(Command.DISCHARGE_MOS),
    ),
    ControlSwitchDescription(
        key="buzzer",
        translation_key="buzzer",
        entity_category=EntityCategory.CONFIG,
        is_on_fn=lambda status: status.flag("buzzer_enabled"),
        set_fn=_control_99h("buzzer"),
    ),
    ControlSwitchDescription(
        key="led_alarm",
        translation_key="led_alarm",
        entity_category=EntityCategory.CONFIG,
        is_on_fn=lambda status: not status.flag("led_alarm_disabled"),
        set_fn=_control_99h("led_alarm"),
    ),
    ControlSwitchDescription(
        key="current_limiter",
        translation_key="current_limiter",
        entity_category=EntityCategory.CONFIG,
        is_on_fn=lambda status: not status.flag("current_limit_disabled"),
        set_fn=_control_99h("current_limiter"),
    ),
    ControlSwitchDescription(
        key="limiter_low_gear",
        translation_key="limiter_low_gear",
        entity_category=EntityCategory.CONFIG,
        entity_registry_enabled_default=False,
        is_on_fn=lambda status: status.flag("limiter_low_gear"),
        set_fn=_control_99h("limiter_low_gear"),
    ),
)
"""Switches whose state is a bit of the 44H control status byte."""

SHUTDOWN: Final = SwitchEntityDescription(
    key="forced_shutdown",
    translation_key="forced_shutdown",
    entity_category=EntityCategory.CONFIG,
    entity_registry_enabled_default=False,
)
"""Disabled by default: a pack that was shut down can only be woken at the rack."""


class ControlSwitch(PackEntity, SwitchEntity):
    """A setting of one pack, read from its control status byte."""

    entity_description: ControlSwitchDescription

    @property
    def is_on(self) -> bool | None:
        """The setting as the last poll reported it."""
        pack = self.pack
        if pack is None or pack.status is None:
            return None
        return self.entity_description.is_on_fn(pack.status)

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Send the command; the next poll shows what the BMS made of it."""
        await self.entity_description.set_fn(self.coordinator.control, self.address, True)

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Send the command; the next poll shows what the BMS made of it."""
        await self.entity_description.set_fn(self.coordinator.control, self.address, False)


class ShutdownSwitch(PackEntity, SwitchEntity):
    """Forced shutdown (9CH): on while the pack is shut down; off cannot be done over the bus."""

    @property
    def available(self) -> bool:
        """Available while the pack is known, also while it is silent (that is the "on" state)."""
        return self.coordinator.data is not None and self.pack is not None

    @property
    def is_on(self) -> bool:
        """Shut down by this switch and silent since, or reporting its shutdown bit."""
        return self.coordinator.control.shut_down(self.address)

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Shut the pack down; it stops answering until woken at the rack."""
        await self.coordinator.control.async_shutdown(self.address)

    async def async_turn_off(self, **kwargs: Any) -> None:
        """No command wakes a pack: explain how instead."""
        if self.is_on:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="cannot_wake",
                translation_placeholders={"pack": str(self.address)},
            )


def _pack_switches(coordinator: StackCoordinator, pack: PackState) -> Iterable[Entity]:
    if not coordinator.control.reachable(pack.address, Capability.CONTROLS):
        return []
    entities: list[Entity] = [ControlSwitch(coordinator, d, pack.address) for d in SWITCHES]
    entities.append(ShutdownSwitch(coordinator, SHUTDOWN, pack.address))
    return entities


async def async_setup_entry(
    hass: HomeAssistant,
    entry: RessConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the switches of every pack that answers at its own address."""
    async_add_pack_entities(entry, async_add_entities, _pack_switches)
