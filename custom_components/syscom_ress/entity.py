"""Base entities: one for the stack device, one for each pack device.

Every platform (sensors, binary sensors, and the control side's numbers, switches and events)
builds on these. Unique ids: ``{stack}_{key}`` for the stack, ``{stack}_pack{address}_{key}``
for a pack, where ``stack`` is the master pack's BMS serial (see
:meth:`StackCoordinator.pack_identifier` for why packs are keyed by address).

A refresh writes an entity's state only when what it shows changed (:meth:`RessEntity.shown`):
Home Assistant's state machine would drop an unchanged state too, but only after the entity has
computed its whole state and attributes, and it still fires ``state_reported`` for it. With a
thousand entities of which a few dozen change per refresh, that is most of a refresh's cost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache

from homeassistant.components.binary_sensor import BinarySensorEntity
from homeassistant.components.event import EventEntity
from homeassistant.components.number import NumberEntity
from homeassistant.components.sensor import SensorEntity
from homeassistant.core import callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import Entity, EntityDescription, ToggleEntity
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN
from .coordinator import PackState, RessConfigEntry, StackCoordinator


@cache
def _value_property(kind: type[Entity]) -> str | None:
    """The property a kind of entity shows its value in; ``""``: none (events); ``None``: unknown.

    Once per class: ``isinstance`` against Home Assistant's abstract entity classes is slow at
    every entity of every refresh.
    """
    if issubclass(kind, SensorEntity | NumberEntity):
        return "native_value"
    if issubclass(kind, BinarySensorEntity | ToggleEntity):
        return "is_on"
    if issubclass(kind, EventEntity):
        return ""
    return None


class RessEntity(CoordinatorEntity[StackCoordinator]):
    """Common ground: a coordinator, a description, a translated name; writes only changes."""

    _attr_has_entity_name = True
    _written: tuple[object, ...] | None = None
    """What the last state write showed (:meth:`shown`)."""

    def __init__(self, coordinator: StackCoordinator, description: EntityDescription) -> None:
        super().__init__(coordinator)
        self.entity_description = description

    def shown(self) -> tuple[object, ...] | None:
        """What the entity shows, from the few properties its state is made of.

        Availability, then the value (a sensor's or number's native value, a binary sensor's or
        switch's on/off; an event entity's state changes only when it fires, and that writes)
        and the extra attributes. Units, classes and names come from the description and do not
        change between refreshes. ``None`` for any other kind of entity: always written.
        """
        if (value_of := _value_property(type(self))) is None:
            return None
        if not self.available:
            return (False,)
        value = getattr(self, value_of) if value_of else None
        return (True, value, self.extra_state_attributes)

    @callback
    def _handle_coordinator_update(self) -> None:
        """A refresh: write the state if what the entity shows changed."""
        self.async_write_if_changed()

    @callback
    def async_write_if_changed(self) -> None:
        """Write the state if what the entity shows changed (a refresh, or news of its own)."""
        shown = self.shown()
        if shown is None or shown != self._written:
            self.async_write_ha_state()

    @callback
    def _async_write_ha_state(self) -> None:
        """Every write (a refresh, an event, a registry change) remembers what it showed."""
        self._written = self.shown()
        super()._async_write_ha_state()


class StackEntity(RessEntity):
    """An entity of the stack device (totals, link health)."""

    def __init__(self, coordinator: StackCoordinator, description: EntityDescription) -> None:
        super().__init__(coordinator, description)
        self._attr_unique_id = f"{coordinator.stack_id}_{description.key}"
        self._attr_device_info = DeviceInfo(identifiers={(DOMAIN, coordinator.stack_id)})


class PackEntity(RessEntity):
    """An entity of one pack; unavailable while that pack is silent, whatever the others do."""

    def __init__(
        self, coordinator: StackCoordinator, description: EntityDescription, address: int
    ) -> None:
        super().__init__(coordinator, description)
        self.address = address
        root = coordinator.pack_identifier(address)
        self._attr_unique_id = f"{root}_{description.key}"
        self._attr_device_info = DeviceInfo(identifiers={(DOMAIN, root)})

    @property
    def pack(self) -> PackState | None:
        """This pack's current state."""
        return self.coordinator.pack(self.address)

    @property
    def available(self) -> bool:
        """Available while the bus works and this pack answered recently enough."""
        pack = self.pack
        return super().available and pack is not None and pack.available


type PackEntityFactory = Callable[[StackCoordinator, PackState], Iterable[Entity]]


@callback
def async_add_pack_entities(
    entry: RessConfigEntry,
    add_entities: Callable[[Iterable[Entity]], None],
    factory: PackEntityFactory,
) -> None:
    """Add a pack's entities once it has sent values, now and for packs found later.

    A pack's first values tell how many cells and temperature sensors it has, so its entities
    wait for them; a pack that joins the stack later gets its entities without a reload.
    """
    coordinator = entry.runtime_data
    added: set[int] = set()

    @callback
    def add_new() -> None:
        entities: list[Entity] = []
        added.intersection_update(coordinator.data.packs)  # removed packs may come back
        for address, pack in coordinator.data.packs.items():
            if address in added or pack.analog is None:
                continue
            added.add(address)
            entities.extend(factory(coordinator, pack))
        if entities:
            add_entities(entities)

    add_new()
    entry.async_on_unload(coordinator.async_add_listener(add_new))
