"""Numbers: every adjustable threshold of the BMS, from the library's parameter table.

One entity per parameter with ``threshold=True`` in :data:`~.ress_bms.params.PARAMETERS`; range,
step and unit come from that table, nothing is listed here twice. They are configuration
entities, disabled by default, and exist only on packs that answer at their own address: the
master relays 42H/44H alone, so a slave's settings cannot be read or written through it.

Values are read when a pack's first number entity is added and by the ``read_parameters``
action, not on every poll. A write is validated with the other values of its group and their
rule partners, written by read-modify-write, and read back
(:meth:`~.control.StackControl.async_write_parameters`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from homeassistant.components.number import (
    NumberDeviceClass,
    NumberEntity,
    NumberEntityDescription,
    NumberMode,
)
from homeassistant.const import (
    PERCENTAGE,
    EntityCategory,
    UnitOfElectricCurrent,
    UnitOfElectricPotential,
    UnitOfTemperature,
    UnitOfTime,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .control import signal_parameters
from .coordinator import PackState, RessConfigEntry, StackCoordinator
from .entity import PackEntity, async_add_pack_entities
from .ress_bms.params import PARAMETERS, Parameter

PARALLEL_UPDATES = 1

UNITS: Final[dict[str, tuple[str, NumberDeviceClass | None]]] = {
    "V": (UnitOfElectricPotential.VOLT, NumberDeviceClass.VOLTAGE),
    "mV": (UnitOfElectricPotential.MILLIVOLT, NumberDeviceClass.VOLTAGE),
    "A": (UnitOfElectricCurrent.AMPERE, NumberDeviceClass.CURRENT),
    "°C": (UnitOfTemperature.CELSIUS, NumberDeviceClass.TEMPERATURE),
    "s": (UnitOfTime.SECONDS, NumberDeviceClass.DURATION),
    "µs": (UnitOfTime.MICROSECONDS, NumberDeviceClass.DURATION),
    "min": (UnitOfTime.MINUTES, NumberDeviceClass.DURATION),
    "%": (PERCENTAGE, NumberDeviceClass.BATTERY),
}
"""The table's units as Home Assistant units and device classes (µs: micro sign vs mu)."""


@dataclass(frozen=True, kw_only=True)
class ParameterNumberDescription(NumberEntityDescription):
    """A threshold number: the table's parameter it shows."""

    parameter: Parameter


def parameter_description(parameter: Parameter) -> ParameterNumberDescription:
    """The number entity of one parameter."""
    unit, device_class = UNITS[parameter.unit]
    return ParameterNumberDescription(
        key=parameter.key,
        translation_key=parameter.key,
        device_class=device_class,
        native_unit_of_measurement=unit,
        native_min_value=parameter.minimum,
        native_max_value=parameter.maximum,
        native_step=parameter.step,
        mode=NumberMode.BOX,
        entity_category=EntityCategory.CONFIG,
        entity_registry_enabled_default=False,
        parameter=parameter,
    )


NUMBERS: Final[tuple[ParameterNumberDescription, ...]] = tuple(
    parameter_description(p) for p in PARAMETERS if p.threshold
)


class ParameterNumber(PackEntity, NumberEntity):
    """One BMS threshold of a pack."""

    entity_description: ParameterNumberDescription

    async def async_added_to_hass(self) -> None:
        """Follow the pack's parameters; read them if nobody has yet."""
        await super().async_added_to_hass()
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass,
                signal_parameters(self.coordinator.config_entry.entry_id),
                self._parameters_changed,
            )
        )
        self.coordinator.control.async_request_parameters(self.address)

    @callback
    def _parameters_changed(self, address: int) -> None:
        if address == self.address:
            self.async_write_ha_state()

    @property
    def available(self) -> bool:
        """Available while the pack answers and its parameters have been read."""
        return super().available and self.native_value is not None

    @property
    def native_value(self) -> float | None:
        """The value last read from (or written to and read back from) the BMS."""
        values = self.coordinator.control.parameters(self.address)
        return None if values is None else values.get(self.entity_description.key)

    async def async_set_native_value(self, value: float) -> None:
        """Write the threshold (snapped to the table's step) and read it back."""
        parameter = self.entity_description.parameter
        steps = round((value - parameter.minimum) / parameter.step)
        value = round(parameter.minimum + steps * parameter.step, 6)
        await self.coordinator.control.async_write_parameters(self.address, {parameter.key: value})


def _pack_numbers(coordinator: StackCoordinator, pack: PackState) -> Iterable[Entity]:
    if not coordinator.control.reachable(pack.address):
        return []
    return [ParameterNumber(coordinator, d, pack.address) for d in NUMBERS]


async def async_setup_entry(
    hass: HomeAssistant,
    entry: RessConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the thresholds of every pack that answers at its own address."""
    async_add_pack_entities(entry, async_add_entities, _pack_numbers)
