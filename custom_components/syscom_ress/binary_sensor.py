"""Binary sensors: every protection, alarm, fault and state bit of a pack, and their summaries.

The bits come from the library's :data:`~.ress_bms.status.STATUS_BITS` table: a bit added
there becomes an entity here (with a translation in strings.json), nothing is listed twice.
Setting bits (the control byte) are left to the control side's switches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from homeassistant.components.binary_sensor import (  # type: ignore[attr-defined,unused-ignore]
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import MATCH_ALL, EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import PackState, RessConfigEntry, StackCoordinator
from .entity import PackEntity, async_add_pack_entities
from .ress_bms.status import STATUS_BITS, Kind, PackStatus, StatusBit

PARALLEL_UPDATES = 0

PROBLEM_KINDS: Final = (Kind.PROTECTION, Kind.ALARM, Kind.FAULT)


@dataclass(frozen=True, slots=True)
class StatePresentation:
    """How a state bit shows: its device class and whether it is on by default."""

    device_class: BinarySensorDeviceClass | None = None
    enabled: bool = True
    category: EntityCategory | None = None


STATE_PRESENTATION: Final[Mapping[str, StatePresentation]] = {
    "charge_mos": StatePresentation(BinarySensorDeviceClass.POWER),
    "discharge_mos": StatePresentation(BinarySensorDeviceClass.POWER),
    "current_limit": StatePresentation(BinarySensorDeviceClass.RUNNING),
    "heating": StatePresentation(BinarySensorDeviceClass.HEAT),
    "charging": StatePresentation(BinarySensorDeviceClass.BATTERY_CHARGING),
    "fully_charged": StatePresentation(),
}
"""State bits shown by default; any other state bit is a disabled diagnostic entity."""
OTHER_STATE: Final = StatePresentation(enabled=False, category=EntityCategory.DIAGNOSTIC)


@dataclass(frozen=True, kw_only=True)
class PackBinarySensorDescription(BinarySensorEntityDescription):
    """A pack binary sensor: how to read it from the pack's last status."""

    is_on_fn: Callable[[PackStatus], bool]
    active_fn: Callable[[PackStatus], tuple[str, ...]] | None = None
    """For summaries: the names of the bits that are set (an attribute)."""


def bit_description(bit: StatusBit) -> PackBinarySensorDescription:
    """The entity of one status bit."""
    if bit.kind in PROBLEM_KINDS:
        presentation = StatePresentation(BinarySensorDeviceClass.PROBLEM, enabled=not bit.rare)
    else:
        presentation = STATE_PRESENTATION.get(bit.key, OTHER_STATE)
        if bit.rare:
            presentation = StatePresentation(
                presentation.device_class, False, presentation.category
            )
    return PackBinarySensorDescription(
        key=bit.key,
        translation_key=bit.key,
        device_class=presentation.device_class,
        entity_category=presentation.category,
        entity_registry_enabled_default=presentation.enabled,
        is_on_fn=lambda status: status.is_set(bit),
    )


def _summary(kind: Kind) -> PackBinarySensorDescription:
    return PackBinarySensorDescription(
        key=f"any_{kind}",
        translation_key=f"any_{kind}",
        device_class=BinarySensorDeviceClass.PROBLEM,
        is_on_fn=lambda status: bool(status.active(kind)),
        active_fn=lambda status: status.active(kind),
    )


PACK_BINARY_SENSORS: Final[tuple[PackBinarySensorDescription, ...]] = (
    *(_summary(kind) for kind in PROBLEM_KINDS),
    *(bit_description(bit) for bit in STATUS_BITS if bit.kind is not Kind.SETTING),
    PackBinarySensorDescription(
        key="balancing",
        translation_key="balancing",
        is_on_fn=lambda status: bool(status.balancing),
    ),
)


def cell_balancing_description(cell: int) -> PackBinarySensorDescription:
    """Whether cell ``cell`` (1-based) is being balanced: diagnostic, disabled by default."""
    return PackBinarySensorDescription(
        key=f"cell_{cell}_balancing",
        translation_key="cell_balancing",
        translation_placeholders={"cell": str(cell)},
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        is_on_fn=lambda status: cell in status.balancing,
    )


class PackBinarySensor(PackEntity, BinarySensorEntity):
    """One bit (or a summary of bits) of a pack's status."""

    entity_description: PackBinarySensorDescription
    _unrecorded_attributes = frozenset({MATCH_ALL})

    @property
    def _status(self) -> PackStatus | None:
        pack = self.pack
        return pack.status if pack is not None else None

    @property
    def is_on(self) -> bool | None:
        """Whether the bit is set in the last status."""
        status = self._status
        return None if status is None else self.entity_description.is_on_fn(status)

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """For summaries, which bits are set (kept out of the recorder)."""
        status, active_fn = self._status, self.entity_description.active_fn
        if status is None or active_fn is None:
            return None
        return {"active": list(active_fn(status))}


def _pack_binary_sensors(coordinator: StackCoordinator, pack: PackState) -> Iterable[Entity]:
    assert pack.analog is not None
    cells = min(len(pack.analog.cell_voltages), 16)  # two balance bytes: 16 cells at most
    descriptions = [
        *PACK_BINARY_SENSORS,
        *(cell_balancing_description(n + 1) for n in range(cells)),
    ]
    return [PackBinarySensor(coordinator, d, pack.address) for d in descriptions]


async def async_setup_entry(
    hass: HomeAssistant,
    entry: RessConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add each pack's binary sensors once it has sent values."""
    async_add_pack_entities(entry, async_add_entities, _pack_binary_sensors)
