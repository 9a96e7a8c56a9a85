"""Binary sensors: every protection, alarm, fault and state bit of a pack, and their summaries.

The bits come from the library's :data:`~.ress_bms.status.STATUS_BITS` table: a bit added
there becomes an entity here (with a translation in strings.json), nothing is listed twice.
Setting bits (the control byte) are left to the control side's switches.

On by default: one problem sensor per kind (Protection, Alarm, Fault; on while any bit of the
kind is, the attributes say which and where), the two MOSFETs and Balancing. Every single bit
is there too, disabled: a binary sensor lands in the logbook at every change, and a page of 45
"OK" rows hides the one that matters. Problems are read from the control side's tracker
(:class:`~.control.StackControl`), so an alarm that flickers at its threshold shows as one alarm,
as in the events; Balancing stays on for :data:`~.const.BALANCING_HOLD` after the last cell was
balanced (the BMS balances in bursts).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, Final

from homeassistant.components.binary_sensor import (  # type: ignore[attr-defined,unused-ignore]
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import MATCH_ALL, EntityCategory
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.event import async_call_later
from homeassistant.helpers.translation import async_get_translations

from .const import BALANCING_HOLD, DOMAIN
from .control import describe
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
    # Off by default: each flips with the load (the limiter whenever the charge current reaches
    # its start, Charging with every change of direction, which the State sensor already
    # shows, Fully charged at every top of charge) or exists only on V3.1 packs with heaters.
    "current_limit": StatePresentation(BinarySensorDeviceClass.RUNNING, enabled=False),
    "heating": StatePresentation(BinarySensorDeviceClass.HEAT, enabled=False),
    "charging": StatePresentation(BinarySensorDeviceClass.BATTERY_CHARGING, enabled=False),
    "fully_charged": StatePresentation(enabled=False),
}
"""State bits with a device class; the MOSFETs are on by default. Any other state bit is a
disabled diagnostic entity."""
OTHER_STATE: Final = StatePresentation(enabled=False, category=EntityCategory.DIAGNOSTIC)


@dataclass(frozen=True, kw_only=True)
class PackBinarySensorDescription(BinarySensorEntityDescription):
    """A pack binary sensor: how to read it from the pack's last status."""

    is_on_fn: Callable[[PackStatus], bool]
    """From the status as the BMS sent it (states, balancing)."""
    problem: StatusBit | None = None
    """A protection, alarm or fault bit: read from the tracker instead."""
    summary: Kind | None = None
    """A summary of every bit of this kind: on while any is active; attributes say which."""


def bit_description(bit: StatusBit) -> PackBinarySensorDescription:
    """The entity of one status bit."""
    if bit.kind in PROBLEM_KINDS:
        presentation = StatePresentation(BinarySensorDeviceClass.PROBLEM, enabled=False)
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
        problem=bit if bit.kind in PROBLEM_KINDS else None,
    )


def _summary(kind: Kind) -> PackBinarySensorDescription:
    return PackBinarySensorDescription(
        key=f"any_{kind}",
        translation_key=f"any_{kind}",
        device_class=BinarySensorDeviceClass.PROBLEM,
        is_on_fn=lambda status: bool(status.active(kind)),
        summary=kind,
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


@cache  # one description per cell for every pack
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
    def is_on(self) -> bool | None:
        """Whether the bit is set (a problem: active in the tracker's view)."""
        pack = self.pack
        if pack is None or pack.status is None:
            return None
        description = self.entity_description
        control = self.coordinator.control
        if description.summary is not None:
            return bool(control.problems(pack, description.summary))
        if description.problem is not None:
            active = control.active_keys(pack)
            return None if active is None else description.problem.key in active
        return description.is_on_fn(pack.status)

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """For summaries, which bits are active and where (kept out of the recorder)."""
        pack, kind = self.pack, self.entity_description.summary
        if pack is None or pack.status is None or kind is None:
            return None
        problems = self.coordinator.control.problems(pack, kind)
        return {
            "active": [bit.name for bit, _place in problems],
            "messages": [describe(self.hass, pack.address, bit, place) for bit, place in problems],
        }


class BalancingBinarySensor(PackBinarySensor):
    """On while any cell is balanced, and :data:`BALANCING_HOLD` after the last one was.

    The BMS balances in bursts as the cells cross its balance threshold; without the hold the
    sensor (and the logbook) would follow every burst.
    """

    _release: CALLBACK_TYPE | None = None
    """Ends the hold; set while the last refresh that saw balancing is less than the hold ago."""

    @property
    def is_on(self) -> bool | None:
        """Balancing now, or recently enough."""
        pack = self.pack
        if pack is None or pack.status is None:
            return None
        return bool(pack.status.balancing) or self._release is not None

    @callback
    def _handle_coordinator_update(self) -> None:
        pack = self.pack
        if pack is not None and pack.status is not None and pack.status.balancing:
            self._cancel_release()
            self._release = async_call_later(self.hass, BALANCING_HOLD, self._released)
        super()._handle_coordinator_update()

    @callback
    def _released(self, _now: datetime) -> None:
        self._release = None
        self.async_write_ha_state()

    def _cancel_release(self) -> None:
        if self._release is not None:
            self._release()
            self._release = None

    async def async_will_remove_from_hass(self) -> None:
        """No timer survives the entity."""
        self._cancel_release()
        await super().async_will_remove_from_hass()


def offered(description: PackBinarySensorDescription, keys: frozenset[str] | None) -> bool:
    """Whether a pack whose dialect sets the status bits ``keys`` (None: all) has this entity.

    A bit the dialect has no bit for would stay off for ever: it is not offered.
    """
    if keys is None:
        return True
    if description.summary is not None:
        return any(b.kind is description.summary for b in STATUS_BITS if b.key in keys)
    if description.key == "balancing" or description.key.endswith("_balancing"):
        return "balancing" in keys
    return description.key in keys


def _pack_binary_sensors(coordinator: StackCoordinator, pack: PackState) -> Iterable[Entity]:
    assert pack.analog is not None
    cells = min(len(pack.analog.cell_voltages), 16)  # two balance bytes: 16 cells at most
    keys = coordinator.client.status_keys
    descriptions = [
        d
        for d in (
            *PACK_BINARY_SENSORS,
            *(cell_balancing_description(n + 1) for n in range(cells)),
        )
        if offered(d, keys)
    ]
    return [
        (BalancingBinarySensor if d.key == "balancing" else PackBinarySensor)(
            coordinator, d, pack.address
        )
        for d in descriptions
    ]


async def async_setup_entry(
    hass: HomeAssistant,
    entry: RessConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add each pack's binary sensors once it has sent values."""
    # The summaries' messages are written in Home Assistant's language (control.describe).
    await async_get_translations(hass, hass.config.language, "common", [DOMAIN])
    async_add_pack_entities(entry, async_add_entities, _pack_binary_sensors)
