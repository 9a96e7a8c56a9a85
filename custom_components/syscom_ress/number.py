"""Numbers: every adjustable threshold of the BMS, from the library's parameter table.

One entity per parameter with ``threshold=True`` in :data:`~.ress_bms.params.PARAMETERS`; range,
step and unit come from that table, nothing is listed here twice. They are configuration
entities, disabled by default, and exist only on packs that answer at their own address: the
master relays 42H/44H alone, so a slave's settings cannot be read or written through it.

Values are read when a pack's first number entity is added and by the ``read_parameters``
action, not on every poll. A write is validated with the other values of its group and their
rule partners, written by read-modify-write, and read back
(:meth:`~.control.StackControl.async_write_parameters`).

A value the pack cannot take is refused in the owner's words: a translated error that names the
numbers involved by their friendly names and says which values would do. A value off the table's
step (3.453 V where the step is 0.01 V) is refused, not rounded, and the error names the two
steps around it; only float noise (a unit conversion's 3.6000000001) is snapped. After any
refusal the number's state is written again, so the box shows what the pack holds. Refusals are
the owner's input, not faults: they are logged at info, and Home Assistant's websocket API, which
logs every validation error of a service call at error, logs these at info
(:class:`RefusalsAtInfo`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
import logging
from typing import Final, NoReturn

from homeassistant.components.number import (
    DOMAIN as NUMBER_DOMAIN,
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
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import DOMAIN, LOGGER
from .control import signal_parameters
from .coordinator import PackState, RessConfigEntry, StackCoordinator
from .entity import PackEntity, async_add_pack_entities
from .ress_bms.client import WriteNotKeptError
from .ress_bms.dialects.base import Capability
from .ress_bms.params import PARAMETERS, Parameter, ParameterValidationError

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

WEBSOCKET_LOGGER: Final = "homeassistant.components.websocket_api.http.connection"
"""Where Home Assistant logs the validation errors of service calls from the frontend."""
_REFUSALS: Final[deque[str]] = deque(maxlen=16)
"""The last refusals raised here (their text), for :class:`RefusalsAtInfo`."""


class RefusalsAtInfo(logging.Filter):
    """Logs this integration's refused threshold values at info instead of error.

    Home Assistant's websocket API logs every ``ServiceValidationError`` of a service call at
    error, with its text. A value the pack cannot take is the owner's input, answered in the
    frontend: only the records carrying the text of a refusal raised here are lowered.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Lower a refusal's record to info (and drop it where info is not logged)."""
        if record.levelno <= logging.INFO or not _REFUSALS:
            return True
        message = record.getMessage()
        if not any(message.endswith(text) for text in _REFUSALS):
            return True
        record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
        return logging.getLogger(record.name).isEnabledFor(logging.INFO)


def _quiet_refusals() -> None:
    logger = logging.getLogger(WEBSOCKET_LOGGER)
    if not any(isinstance(f, RefusalsAtInfo) for f in logger.filters):
        logger.addFilter(RefusalsAtInfo())


def _with_unit(value: float, unit: str | None) -> str:
    return f"{value:g} {unit}" if unit else f"{value:g}"


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
        """Write the threshold and read it back; a refusal says why and shows the pack's value."""
        parameter = self.entity_description.parameter
        current = self.native_value
        if not parameter.on_step(value):
            below, above = parameter.neighbours(value)
            self._refuse(
                self._refusal(
                    "number_off_step",
                    value=self._unit(value),
                    step=self._unit(parameter.step),
                    minimum=self._unit(parameter.minimum),
                    below=self._unit(below),
                    above=self._unit(above),
                )
            )
        try:
            await self.coordinator.control.async_write_parameters(
                self.address,
                {parameter.key: parameter.snap(value)},  # snap: float noise only
            )
        except HomeAssistantError as err:
            refusal = self._explain(err, value, current)
            if refusal is None:  # the pack or the bus failed: not the owner's value
                self._show_pack_value()
                raise
            self._refuse(refusal, err)

    def _refuse(self, refusal: HomeAssistantError, cause: Exception | None = None) -> NoReturn:
        """Show what the pack holds, log the refusal at info, raise it."""
        self._show_pack_value()
        LOGGER.info("%s: %s", self.entity_id, refusal)
        _REFUSALS.append(str(refusal))
        raise refusal from cause

    def _unit(self, value: float) -> str:
        return _with_unit(value, self.native_unit_of_measurement)

    def _refusal(self, key: str, **placeholders: str) -> ServiceValidationError:
        return ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key=key,
            translation_placeholders={"entity": self._friendly_name(None), **placeholders},
        )

    def _explain(
        self, err: HomeAssistantError, value: float, current: float | None
    ) -> HomeAssistantError | None:
        """The refusal in the owner's words, with the numbers' friendly names (None: a failure).

        Values the table refuses and values the pack did not keep are refusals; a reason this
        does not know how to put is passed on as it is.
        """
        cause = err.__cause__
        key = self.entity_description.key
        if isinstance(cause, WriteNotKeptError) and key in cause.mismatches:
            wrote, kept = cause.mismatches[key]
            return HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="number_not_kept",
                translation_placeholders={
                    "entity": self._friendly_name(None),
                    "value": self._unit(wrote),
                    "kept": self._unit(kept),
                },
            )
        if not isinstance(err, ServiceValidationError):
            return None
        if not isinstance(cause, ParameterValidationError):
            return err
        problem = next((p for p in cause.problems if p.key == key), None)
        if problem is None:
            return err
        if problem.reason == "order" and problem.other is not None:
            return self._refusal(
                "number_must_stay_below" if problem.below else "number_must_stay_above",
                value=self._unit(value),
                other=self._friendly_name(problem.other),
                other_value=self._unit(problem.other_value or 0.0),
                current=self._unit(current) if current is not None else "?",
            )
        return self._refusal("number_refused", value=self._unit(value), reason=problem.text)

    def _friendly_name(self, key: str | None) -> str:
        """The friendly name of this number (``None``) or of another of the pack's numbers."""
        if key is None:
            entity_id: str | None = self.entity_id
        else:
            root = self.coordinator.pack_identifier(self.address)
            entity_id = er.async_get(self.hass).async_get_entity_id(
                NUMBER_DOMAIN, DOMAIN, f"{root}_{key}"
            )
        if entity_id is None:
            return key or self.entity_description.key
        if (state := self.hass.states.get(entity_id)) is not None:
            return state.name
        entry = er.async_get(self.hass).async_get(entity_id)  # disabled: no state
        if entry is None:
            return key or entity_id
        name = entry.name or entry.original_name or key or entity_id
        device = dr.async_get(self.hass).async_get(entry.device_id) if entry.device_id else None
        device_name = device.name_by_user or device.name if device is not None else None
        return f"{device_name} {name}" if device_name else name

    def _show_pack_value(self) -> None:
        """Write the state again, even unchanged, so the frontend drops what was typed."""
        self._attr_force_update = True
        try:
            self.async_write_ha_state()
        finally:
            self._attr_force_update = False


def _pack_numbers(coordinator: StackCoordinator, pack: PackState) -> Iterable[Entity]:
    if not coordinator.control.reachable(pack.address, Capability.PARAMETERS_WRITE):
        return []
    return [ParameterNumber(coordinator, d, pack.address) for d in NUMBERS]


async def async_setup_entry(
    hass: HomeAssistant,
    entry: RessConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the thresholds of every pack that answers at its own address."""
    _quiet_refusals()
    async_add_pack_entities(entry, async_add_entities, _pack_numbers)
