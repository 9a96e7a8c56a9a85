"""Events: one event entity per pack, fired when a protection, alarm or fault is raised or cleared.

Event types are ``{bit}_raised`` and ``{bit}_cleared`` for every protection, alarm and fault bit
of the 44H table (:data:`~.control.EVENT_TYPES`). Transitions are found between two refreshes by
:class:`~.control.StackControl`, which also fires the ``syscom_ress_protection`` bus event;
what is already active when a pack is first seen fires nothing (its binary sensor shows it).
Every pack has one: the master relays 44H for all of them. Event data: ``name``, ``kind``, and
where it is: ``cells`` (numbers), ``sensors`` (temperature sensor names) and ``message``, one
translated line ("Pack 2 · Cell 12 · Cell over-voltage protection").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from homeassistant.components.event import EventEntity, EventEntityDescription
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .control import EVENT_TYPES, Transition, event_place, signal_protection
from .coordinator import PackState, RessConfigEntry, StackCoordinator
from .entity import PackEntity, async_add_pack_entities

PARALLEL_UPDATES = 0

PROTECTION_EVENT: Final = EventEntityDescription(
    key="protection_event",
    translation_key="protection_event",
    event_types=list(EVENT_TYPES),
)


class ProtectionEvent(PackEntity, EventEntity):
    """A pack's protection, alarm and fault transitions."""

    async def async_added_to_hass(self) -> None:
        """Listen for this stack's transitions."""
        await super().async_added_to_hass()
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass,
                signal_protection(self.coordinator.config_entry.entry_id),
                self._transition,
            )
        )

    @callback
    def _transition(self, transition: Transition) -> None:
        if transition.address != self.address:
            return
        self._trigger_event(
            transition.event_type,
            {
                "name": transition.bit.name,
                "kind": str(transition.bit.kind),
                **event_place(self.hass, transition),
            },
        )
        self.async_write_ha_state()


def _pack_events(coordinator: StackCoordinator, pack: PackState) -> Iterable[Entity]:
    return [ProtectionEvent(coordinator, PROTECTION_EVENT, pack.address)]


async def async_setup_entry(
    hass: HomeAssistant,
    entry: RessConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add each pack's event entity once it has sent values."""
    async_add_pack_entities(entry, async_add_entities, _pack_events)
