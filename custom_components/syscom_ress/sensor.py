"""Sensors: each pack's measurements and state, the stack's totals, health, energy and link.

Sign convention: current and power sensors are both positive while the battery **discharges**
(the energy dashboard's battery convention, so the power sensor goes in as it is) and negative
while it charges. The BMS, its PC tool and ``ress-bms --json`` count current the other way.

What is on by default (docs/entities.md says why for each): what an owner reads every day. Noisy
values stay out of the logbook: every default sensor but the pack state has a unit and a state
class, and the pack state changes direction with a hysteresis.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any, Final

from homeassistant.components.sensor import (
    RestoreSensor,
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import (
    PERCENTAGE,
    EntityCategory,
    UnitOfElectricCurrent,
    UnitOfElectricPotential,
    UnitOfEnergy,
    UnitOfPower,
    UnitOfTemperature,
    UnitOfTime,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType

from .const import IDLE_CURRENT
from .control import signal_parameters
from .coordinator import PackState, RessConfigEntry, StackCoordinator, StackData, soc_weighted
from .entity import PackEntity, StackEntity, async_add_pack_entities
from .estimates import (
    End,
    EndSource,
    empty_end,
    full_end,
    stack_source,
    stack_time_to_empty,
    stack_time_to_full,
    time_to_empty,
    time_to_full,
)
from .history_cache import (
    LAST_RECORD,
    RecordAttributes,
    RecordTime,
    follow_history,
    newest_record_attributes,
    newest_record_time,
)
from .ress_bms.analog import PackAnalog
from .ress_bms.dialects.base import Capability
from .ress_bms.status import PackStatus

PARALLEL_UPDATES = 0

AMPERE_HOURS = "Ah"


class PackMode(StrEnum):
    """What a pack is doing, after the user guide's LED table (RUN / ALM lights)."""

    SHUTDOWN = "shutdown"
    STANDBY = "standby"
    CHARGING = "charging"
    DISCHARGING = "discharging"
    PROTECTION = "protection"
    FAILURE = "failure"


HYSTERESIS: Final = 0.5
"""A pack stays charging (discharging) until its current falls below half the idle threshold."""


def pack_mode(
    analog: PackAnalog, status: PackStatus | None, previous: PackMode | None = None
) -> PackMode:
    """The LED table's state: faults first, then protections, then the current's direction.

    The direction starts at :data:`IDLE_CURRENT` and ends below half of it (``previous`` is the
    state shown so far), so a current that wavers around the threshold does not flip the state.
    """
    if status is not None:
        if status.flag("shutdown"):
            return PackMode.SHUTDOWN
        if status.faults:
            return PackMode.FAILURE
        if status.protections:
            return PackMode.PROTECTION
    current = analog.current
    if current >= IDLE_CURRENT or (
        previous is PackMode.CHARGING and current >= IDLE_CURRENT * HYSTERESIS
    ):
        return PackMode.CHARGING
    if current <= -IDLE_CURRENT or (
        previous is PackMode.DISCHARGING and current <= -IDLE_CURRENT * HYSTERESIS
    ):
        return PackMode.DISCHARGING
    return PackMode.STANDBY


def _stored_energy(analogs: Iterable[PackAnalog]) -> float:
    """Energy left in the packs (kWh): remaining capacity times voltage."""
    return round(sum(a.remaining_capacity * a.voltage for a in analogs) / 1000, 3)


def _min_cell(analog: PackAnalog) -> tuple[int, float] | None:
    cells = analog.cell_voltages
    if not cells:
        return None
    index = min(range(len(cells)), key=cells.__getitem__)
    return index + 1, cells[index]


def _max_cell(analog: PackAnalog) -> tuple[int, float] | None:
    cells = analog.cell_voltages
    if not cells:
        return None
    index = max(range(len(cells)), key=cells.__getitem__)
    return index + 1, cells[index]


# -- pack sensors ----------------------------------------------------------------------------

type Attributes = dict[str, Any] | None


CELL_JITTER: Final = 0.001
"""A cell channel's last digit: a cell voltage (or the lowest / highest) that moves by 1 mV and
back from one refresh to the next is the reading's noise, not the cell."""
DELTA_JITTER: Final = 0.002
"""Highest minus lowest cell: the jitter of two channels."""
PACK_VOLTAGE_JITTER: Final = 0.01
"""A pack's voltage carries the jitter of its 16 cell channels (a few mV); 10 mV is also the step
it is shown in."""
CURRENT_JITTER: Final = 0.01
"""One step of the current (10 mA): the stack's current, a sum that moves with every pack."""
PACK_CURRENT_JITTER: Final = 0.1
"""A pack's current is shown to 0.1 A and held within 0.1 A: the BMS reads it in 10 mA steps,
but a charge or discharge drifts by a few of them at every refresh, and a pack's current to
the ampere's tenth is all an owner compares packs by (the stack's current has 10 mA)."""
POWER_JITTER: Final = 1.0
"""One step of the power (1 W)."""
TEMPERATURE_JITTER: Final = 0.1
"""One step of a temperature (0.1 K)."""


def within_jitter(jitter: float | None, shown: StateType, value: StateType) -> bool:
    """Whether ``value`` differs from the ``shown`` one by no more than the reading's jitter.

    Such a value is noise: the state stays, so that a reading whose last digit wavers writes no
    state (and no recorder row) at each refresh. A move beyond the jitter is shown at once.
    """
    if jitter is None or isinstance(shown, bool) or isinstance(value, bool):
        return False
    if not isinstance(shown, int | float) or not isinstance(value, int | float):
        return False
    return round(abs(value - shown), 6) <= jitter


@dataclass(frozen=True, kw_only=True)
class PackSensorDescription(SensorEntityDescription):
    """A pack sensor: how to read its value (and attributes) from the pack's last sample."""

    value_fn: Callable[[PackAnalog, PackStatus | None], StateType]
    attrs_fn: Callable[[PackAnalog], Attributes] | None = None
    jitter: float | None = None
    """How far the value wavers from noise alone (:func:`within_jitter`); ``None``: no noise."""


def _voltage(
    key: str,
    value_fn: Callable[[PackAnalog], float | None],
    attrs_fn: Callable[[PackAnalog], Attributes] | None = None,
    jitter: float = CELL_JITTER,
) -> PackSensorDescription:
    return PackSensorDescription(
        key=key,
        translation_key=key,
        device_class=SensorDeviceClass.VOLTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfElectricPotential.VOLT,
        suggested_display_precision=3,
        value_fn=lambda a, _s: value_fn(a),
        attrs_fn=attrs_fn,
        jitter=jitter,
    )


def _cell_number(found: tuple[int, float] | None) -> int | None:
    return found[0] if found else None


def _cell_voltage(found: tuple[int, float] | None) -> float | None:
    return found[1] if found else None


def _cell_attribute(found: tuple[int, float] | None) -> Attributes:
    return {"cell": found[0]} if found else None


def _delta(analog: PackAnalog) -> float | None:
    low, high = _min_cell(analog), _max_cell(analog)
    return round(high[1] - low[1], 3) if low and high else None


def _delta_attributes(analog: PackAnalog) -> Attributes:
    low, high = _min_cell(analog), _max_cell(analog)
    return {"min_cell": low[0], "max_cell": high[0]} if low and high else None


def _discharge_positive(amperes_or_watts: float, digits: int) -> float:
    """The battery's convention turned around: + = discharging (``+ 0.0`` drops ``-0.0``).

    Power is shown to the watt: volts (1 mV) times amperes (10 mA) resolve about half a watt, and
    a tenth would flip with every millivolt of noise.
    """
    return round(-amperes_or_watts, digits) + 0.0


PLACE_ATTRIBUTES: Final = frozenset(
    {"cell", "pack", "min_cell", "max_cell", "min_pack", "max_pack"}
)
"""Where an extreme is changes with a millivolt of noise: kept out of the recorder, where each
new set of attributes is a row of its own (and a database lookup once out of its cache)."""


PACK_SENSORS: tuple[PackSensorDescription, ...] = (
    PackSensorDescription(
        key="state",
        translation_key="pack_state",
        device_class=SensorDeviceClass.ENUM,
        options=[m.value for m in PackMode],
        value_fn=lambda a, s: pack_mode(a, s).value,
    ),
    PackSensorDescription(
        key="voltage",
        translation_key="voltage",
        device_class=SensorDeviceClass.VOLTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfElectricPotential.VOLT,
        suggested_display_precision=2,
        value_fn=lambda a, _s: round(a.voltage, 3),
        jitter=PACK_VOLTAGE_JITTER,
    ),
    PackSensorDescription(
        key="current",
        translation_key="current",
        device_class=SensorDeviceClass.CURRENT,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        suggested_display_precision=1,
        value_fn=lambda a, _s: _discharge_positive(a.current, 2),
        jitter=PACK_CURRENT_JITTER,
    ),
    PackSensorDescription(
        key="power",
        translation_key="power",
        device_class=SensorDeviceClass.POWER,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfPower.WATT,
        suggested_display_precision=0,
        entity_registry_enabled_default=False,
        value_fn=lambda a, _s: _discharge_positive(a.power, 0),
        jitter=POWER_JITTER,
    ),
    PackSensorDescription(
        key="soc",
        translation_key="soc",
        device_class=SensorDeviceClass.BATTERY,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=PERCENTAGE,
        suggested_display_precision=0,
        value_fn=lambda a, _s: round(a.soc),
    ),
    PackSensorDescription(
        key="soh",
        translation_key="soh",
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=PERCENTAGE,
        suggested_display_precision=0,
        entity_registry_enabled_default=False,
        value_fn=lambda a, _s: a.soh,
    ),
    PackSensorDescription(
        key="remaining_capacity",
        translation_key="remaining_capacity",
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=AMPERE_HOURS,
        suggested_display_precision=1,
        entity_registry_enabled_default=False,
        value_fn=lambda a, _s: round(a.remaining_capacity, 2),
    ),
    PackSensorDescription(
        key="full_capacity",
        translation_key="full_capacity",
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=AMPERE_HOURS,
        suggested_display_precision=1,
        entity_registry_enabled_default=False,
        value_fn=lambda a, _s: round(a.full_capacity, 2),
    ),
    PackSensorDescription(
        key="design_capacity",
        translation_key="design_capacity",
        entity_category=EntityCategory.DIAGNOSTIC,
        native_unit_of_measurement=AMPERE_HOURS,
        suggested_display_precision=0,
        entity_registry_enabled_default=False,
        value_fn=lambda a, _s: round(a.design_capacity, 2),
    ),
    PackSensorDescription(
        key="stored_energy",
        translation_key="stored_energy",
        device_class=SensorDeviceClass.ENERGY_STORAGE,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        suggested_display_precision=2,
        entity_registry_enabled_default=False,
        value_fn=lambda a, _s: _stored_energy([a]),
    ),
    PackSensorDescription(
        key="cycles",
        translation_key="cycles",
        state_class=SensorStateClass.TOTAL_INCREASING,
        entity_registry_enabled_default=False,
        value_fn=lambda a, _s: a.cycles,
    ),
    _voltage(
        "min_cell_voltage",
        lambda a: _cell_voltage(_min_cell(a)),
        lambda a: _cell_attribute(_min_cell(a)),
    ),
    _voltage(
        "max_cell_voltage",
        lambda a: _cell_voltage(_max_cell(a)),
        lambda a: _cell_attribute(_max_cell(a)),
    ),
    _voltage("cell_voltage_delta", _delta, _delta_attributes, DELTA_JITTER),
    # Which cell is lowest / highest changes with every millivolt of noise, and a number
    # without a unit lands in the logbook on each change: off by default, and the cell is an
    # attribute of the lowest / highest cell voltage instead.
    PackSensorDescription(
        key="min_cell",
        translation_key="min_cell",
        entity_registry_enabled_default=False,
        value_fn=lambda a, _s: _cell_number(_min_cell(a)),
    ),
    PackSensorDescription(
        key="max_cell",
        translation_key="max_cell",
        entity_registry_enabled_default=False,
        value_fn=lambda a, _s: _cell_number(_max_cell(a)),
    ),
    PackSensorDescription(
        key="mos_temperature",
        translation_key="mos_temperature",
        device_class=SensorDeviceClass.TEMPERATURE,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfTemperature.CELSIUS,
        suggested_display_precision=1,
        value_fn=lambda a, _s: a.mos_temperature,
        jitter=TEMPERATURE_JITTER,
    ),
    PackSensorDescription(
        key="environment_temperature",
        translation_key="environment_temperature",
        device_class=SensorDeviceClass.TEMPERATURE,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfTemperature.CELSIUS,
        suggested_display_precision=1,
        value_fn=lambda a, _s: a.environment_temperature,
        jitter=TEMPERATURE_JITTER,
    ),
)


@cache  # one description per cell for every pack
def cell_voltage_description(cell: int) -> PackSensorDescription:
    """Cell ``cell`` (1-based) voltage: diagnostic, disabled by default."""
    return PackSensorDescription(
        key=f"cell_{cell}_voltage",
        translation_key="cell_voltage",
        translation_placeholders={"cell": str(cell)},
        device_class=SensorDeviceClass.VOLTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfElectricPotential.VOLT,
        suggested_display_precision=3,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=lambda a, _s: a.cell_voltages[cell - 1] if cell <= len(a.cell_voltages) else None,
        jitter=CELL_JITTER,
    )


@cache  # one description per cell for every pack
def cell_temperature_description(sensor: int) -> PackSensorDescription:
    """Cell temperature sensor ``sensor`` (1-based)."""

    def value(analog: PackAnalog, _status: PackStatus | None) -> float | None:
        temps = analog.cell_temperatures
        return temps[sensor - 1] if sensor <= len(temps) else None

    return PackSensorDescription(
        key=f"cell_temperature_{sensor}",
        translation_key="cell_temperature",
        translation_placeholders={"sensor": str(sensor)},
        device_class=SensorDeviceClass.TEMPERATURE,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfTemperature.CELSIUS,
        suggested_display_precision=1,
        value_fn=value,
        jitter=TEMPERATURE_JITTER,
    )


def pack_sensor_descriptions(analog: PackAnalog) -> list[PackSensorDescription]:
    """Every sensor of a pack shaped like ``analog`` (cell count, temperature sensors)."""
    descriptions = list(PACK_SENSORS)
    descriptions += [cell_voltage_description(n + 1) for n in range(len(analog.cell_voltages))]
    descriptions += [
        cell_temperature_description(n + 1)
        for n, temp in enumerate(analog.cell_temperatures)
        if temp is not None
    ]
    absent = {
        "mos_temperature": analog.mos_temperature is None,
        "environment_temperature": analog.environment_temperature is None,
    }
    return [d for d in descriptions if not absent.get(d.key, False)]


class PackSensor(PackEntity, SensorEntity):
    """A measurement of one pack."""

    entity_description: PackSensorDescription
    _unrecorded_attributes = PLACE_ATTRIBUTES
    _reading: tuple[PackAnalog, PackStatus | None, StateType, Attributes] | None = None
    """(the sample's analog values and status, value, attributes): read once per sample."""

    def _read(self) -> tuple[StateType, Attributes]:
        """Value and attributes from the pack's last sample; within the jitter, what is shown.

        A sample is recognised by identity: the coordinator keeps the previous objects when a
        new sample equals them, and comparing two unequal samples field by field at each of a
        pack's entities is most of what a refresh would cost here.
        """
        pack = self.pack
        if pack is None or pack.analog is None:
            return None, None
        last = self._reading
        if last is not None and last[0] is pack.analog and last[1] is pack.status:
            return last[2], last[3]
        description = self.entity_description
        value = description.value_fn(pack.analog, pack.status)
        attrs = description.attrs_fn(pack.analog) if description.attrs_fn else None
        if last is not None and within_jitter(description.jitter, last[2], value):
            value, attrs = last[2], last[3]  # an extreme's place is held with its value
        self._reading = (pack.analog, pack.status, value, attrs)
        return value, attrs

    @property
    def native_value(self) -> StateType:
        """The value from the pack's last sample."""
        return self._read()[0]

    @property
    def extra_state_attributes(self) -> Attributes:
        """Which cell holds the value, for the cell extremes."""
        return self._read()[1]


class PackStateSensor(PackSensor):
    """What the pack is doing; the direction changes with a hysteresis (:func:`pack_mode`)."""

    _mode: PackMode | None = None
    """The state shown since the last refresh (the hysteresis starts from it)."""

    def _mode_now(self) -> PackMode | None:
        pack = self.pack
        if pack is None or pack.analog is None:
            return None
        return pack_mode(pack.analog, pack.status, self._mode)

    @callback
    def _handle_coordinator_update(self) -> None:
        """A refresh: the state follows the new sample, from the one shown so far."""
        self._mode = self._mode_now() or self._mode
        super()._handle_coordinator_update()

    @property
    def native_value(self) -> StateType:
        """The LED table's state (reading it changes nothing: pack_mode is idempotent)."""
        mode = self._mode_now()
        return mode.value if mode is not None else None


# -- time to full / empty ----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class TimeSensorDescription(SensorEntityDescription):
    """Time to full or to empty (see :mod:`.estimates`)."""

    charging: bool
    """True: time to full; False: time to empty."""


TIME_SENSORS: Final[tuple[TimeSensorDescription, ...]] = tuple(
    TimeSensorDescription(
        key=key,
        translation_key=key,
        device_class=SensorDeviceClass.DURATION,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfTime.HOURS,
        suggested_display_precision=1,
        charging=charging,
    )
    for key, charging in (("time_to_full", True), ("time_to_empty", False))
)


def _end(coordinator: StackCoordinator, analog: PackAnalog, charging: bool) -> End:
    """Where a pack's charge (discharge) ends, from its thresholds when they were read."""
    parameters = coordinator.control.parameters(analog.address)
    cells = len(analog.cell_voltages)
    return full_end(parameters, cells) if charging else empty_end(parameters, cells)


def _end_attributes(soc: float, source: EndSource) -> dict[str, Any]:
    return {"end_soc": round(soc * 100, 1), "end_source": source.value}


class _ThresholdFollower(SensorEntity):
    """Writes its state again when a pack's parameters are read or written (new thresholds)."""

    coordinator: StackCoordinator

    async def async_added_to_hass(self) -> None:
        """Follow the parameter cache of the control side."""
        await super().async_added_to_hass()
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass,
                signal_parameters(self.coordinator.config_entry.entry_id),
                self._parameters_changed,
            )
        )

    @callback
    def _parameters_changed(self, _address: int) -> None:
        self.async_write_ha_state()


class PackTimeSensor(PackEntity, _ThresholdFollower):
    """Hours until the pack is full (empty) at its present current; unknown while idle."""

    entity_description: TimeSensorDescription

    def _analog_and_end(self) -> tuple[PackAnalog, End] | None:
        pack = self.pack
        if pack is None or pack.analog is None:
            return None
        analog = pack.analog
        return analog, _end(self.coordinator, analog, self.entity_description.charging)

    @property
    def native_value(self) -> float | None:
        """The estimate in hours."""
        if (found := self._analog_and_end()) is None:
            return None
        analog, end = found
        estimate = time_to_full if self.entity_description.charging else time_to_empty
        return estimate(analog, end)

    @property
    def extra_state_attributes(self) -> Attributes:
        """Where the estimate ends (% of full capacity) and why there."""
        if (found := self._analog_and_end()) is None:
            return None
        _analog, end = found
        return _end_attributes(end.soc, end.source)


class StackTimeSensor(StackEntity, _ThresholdFollower):
    """Hours until every pack is full (empty) at the stack's present current."""

    entity_description: TimeSensorDescription

    def _packs(self) -> list[tuple[PackAnalog, End]]:
        charging = self.entity_description.charging
        return [(a, _end(self.coordinator, a, charging)) for a in self.coordinator.data.analogs()]

    @property
    def available(self) -> bool:
        """Needs at least one pack with current values."""
        return super().available and bool(self.coordinator.data.available_packs)

    @property
    def native_value(self) -> float | None:
        """The estimate in hours."""
        estimate = stack_time_to_full if self.entity_description.charging else stack_time_to_empty
        return estimate(self._packs())

    @property
    def extra_state_attributes(self) -> Attributes:
        """Where the estimate ends (% of the stack's full capacity) and why there."""
        packs = self._packs()
        full = sum(analog.full_capacity for analog, _ in packs)
        if not packs or not full:
            return None
        soc = sum(analog.full_capacity * end.soc for analog, end in packs) / full
        return _end_attributes(soc, stack_source(end.source for _, end in packs))


# -- stack sensors ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class StackSensorDescription(SensorEntityDescription):
    """A stack sensor: how to read it (and its attributes) from a refresh's result."""

    value_fn: Callable[[StackData], StateType]
    attrs_fn: Callable[[StackData], Attributes] | None = None
    jitter: float | None = None
    """How far the value wavers from noise alone (:func:`within_jitter`); ``None``: no noise."""
    needs_packs: bool = True
    """Unavailable while no pack answers (totals); link-health sensors are not."""


type CellAt = tuple[float, int, int]
"""(volts, pack address, cell number)."""


def _all_cells(data: StackData) -> list[CellAt]:
    return [
        (volts, pack.address, number)
        for pack in data.available_packs
        if pack.analog is not None
        for number, volts in enumerate(pack.analog.cell_voltages, start=1)
    ]


def _lowest_cell(data: StackData) -> CellAt | None:
    return min(_all_cells(data), default=None)


def _highest_cell(data: StackData) -> CellAt | None:
    return max(_all_cells(data), key=lambda cell: (cell[0], -cell[1], -cell[2]), default=None)


def _where(cell: CellAt | None, prefix: str = "") -> dict[str, Any]:
    return {f"{prefix}pack": cell[1], f"{prefix}cell": cell[2]} if cell else {}


def _stack_delta(data: StackData) -> float | None:
    low, high = _lowest_cell(data), _highest_cell(data)
    return round(high[0] - low[0], 3) if low and high else None


def _stack_voltage(data: StackData) -> float | None:
    analogs = data.analogs()
    return round(sum(a.voltage for a in analogs) / len(analogs), 3) if analogs else None


def _stack_soh(data: StackData) -> float | None:
    """Each pack's SOH weighted by its design capacity (a plain mean if none is known)."""
    analogs = data.analogs()
    if not analogs:
        return None
    weight = sum(a.design_capacity for a in analogs)
    if not weight:
        return round(sum(a.soh for a in analogs) / len(analogs), 1)
    return round(sum(a.soh * a.design_capacity for a in analogs) / weight, 1)


def _weakest(data: StackData) -> Attributes:
    analogs = data.analogs()
    return {"min_pack": min(analogs, key=lambda a: a.soh).address} if analogs else None


def _soc_spread(data: StackData) -> float | None:
    socs = [a.soc for a in data.analogs()]
    return round(max(socs) - min(socs), 1) if socs else None


def _soc_spread_attributes(data: StackData) -> Attributes:
    analogs = data.analogs()
    if not analogs:
        return None
    return {
        "min_pack": min(analogs, key=lambda a: a.soc).address,
        "max_pack": max(analogs, key=lambda a: a.soc).address,
    }


STACK_SENSORS: tuple[StackSensorDescription, ...] = (
    StackSensorDescription(
        key="soc",
        translation_key="soc",
        device_class=SensorDeviceClass.BATTERY,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=PERCENTAGE,
        suggested_display_precision=0,
        value_fn=lambda d: soc_weighted(d.analogs()),
    ),
    StackSensorDescription(
        key="voltage",
        translation_key="voltage",
        device_class=SensorDeviceClass.VOLTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfElectricPotential.VOLT,
        suggested_display_precision=2,
        value_fn=_stack_voltage,
        jitter=PACK_VOLTAGE_JITTER,
    ),
    StackSensorDescription(
        key="current",
        translation_key="current",
        device_class=SensorDeviceClass.CURRENT,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        suggested_display_precision=2,
        value_fn=lambda d: _discharge_positive(sum(a.current for a in d.analogs()), 2),
        jitter=CURRENT_JITTER,
    ),
    StackSensorDescription(
        key="power",
        translation_key="power",
        device_class=SensorDeviceClass.POWER,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfPower.WATT,
        suggested_display_precision=0,
        value_fn=lambda d: _discharge_positive(sum(a.power for a in d.analogs()), 0),
        jitter=POWER_JITTER,
    ),
    StackSensorDescription(
        key="remaining_capacity",
        translation_key="remaining_capacity",
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=AMPERE_HOURS,
        suggested_display_precision=1,
        value_fn=lambda d: round(sum(a.remaining_capacity for a in d.analogs()), 2),
    ),
    StackSensorDescription(
        key="full_capacity",
        translation_key="full_capacity",
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=AMPERE_HOURS,
        suggested_display_precision=1,
        value_fn=lambda d: round(sum(a.full_capacity for a in d.analogs()), 2),
    ),
    StackSensorDescription(
        key="stored_energy",
        translation_key="stored_energy",
        device_class=SensorDeviceClass.ENERGY_STORAGE,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        suggested_display_precision=2,
        value_fn=lambda d: _stored_energy(d.analogs()),
    ),
    StackSensorDescription(
        key="soh",
        translation_key="soh",
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=PERCENTAGE,
        suggested_display_precision=0,
        value_fn=_stack_soh,
        attrs_fn=_weakest,
    ),
    StackSensorDescription(
        key="min_cell_voltage",
        translation_key="min_cell_voltage",
        device_class=SensorDeviceClass.VOLTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfElectricPotential.VOLT,
        suggested_display_precision=3,
        value_fn=lambda d: _cell_volts(_lowest_cell(d)),
        attrs_fn=lambda d: _where(_lowest_cell(d)) or None,
        jitter=CELL_JITTER,
    ),
    StackSensorDescription(
        key="max_cell_voltage",
        translation_key="max_cell_voltage",
        device_class=SensorDeviceClass.VOLTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfElectricPotential.VOLT,
        suggested_display_precision=3,
        value_fn=lambda d: _cell_volts(_highest_cell(d)),
        attrs_fn=lambda d: _where(_highest_cell(d)) or None,
        jitter=CELL_JITTER,
    ),
    StackSensorDescription(
        key="cell_voltage_delta",
        translation_key="cell_voltage_delta",
        device_class=SensorDeviceClass.VOLTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfElectricPotential.VOLT,
        suggested_display_precision=3,
        value_fn=_stack_delta,
        attrs_fn=lambda d: (
            {
                **_where(_lowest_cell(d), "min_"),
                **_where(_highest_cell(d), "max_"),
            }
            or None
        ),
        jitter=DELTA_JITTER,
    ),
    StackSensorDescription(
        key="soc_spread",
        translation_key="soc_spread",
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=PERCENTAGE,
        suggested_display_precision=0,
        value_fn=_soc_spread,
        attrs_fn=_soc_spread_attributes,
    ),
    StackSensorDescription(
        key="packs_online",
        translation_key="packs_online",
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda d: len(d.available_packs),
        needs_packs=False,
    ),
    StackSensorDescription(
        key="link_quality",
        translation_key="link_quality",
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=PERCENTAGE,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda d: d.link_quality,
        needs_packs=False,
    ),
    StackSensorDescription(
        key="round_trip_time",
        translation_key="round_trip_time",
        device_class=SensorDeviceClass.DURATION,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfTime.MILLISECONDS,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=lambda d: d.round_trip,
        needs_packs=False,
    ),
)


def _cell_volts(cell: CellAt | None) -> float | None:
    return cell[0] if cell else None


def _energy(key: str, *, enabled: bool = True) -> SensorEntityDescription:
    return SensorEntityDescription(
        key=key,
        translation_key=key,
        device_class=SensorDeviceClass.ENERGY,
        state_class=SensorStateClass.TOTAL_INCREASING,
        native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        suggested_display_precision=2,
        entity_registry_enabled_default=enabled,
    )


ENERGY_SENSORS: tuple[SensorEntityDescription, ...] = (
    _energy("energy_charged"),
    _energy("energy_discharged"),
)
PACK_ENERGY_SENSORS: tuple[SensorEntityDescription, ...] = (
    _energy("energy_charged", enabled=False),
    _energy("energy_discharged", enabled=False),
)
"""Each pack's share of the stack's counters: off by default (the stack's feed the dashboard)."""


class StackSensor(StackEntity, SensorEntity):
    """A total or health value of the whole stack."""

    entity_description: StackSensorDescription
    _unrecorded_attributes = PLACE_ATTRIBUTES

    @property
    def available(self) -> bool:
        """Totals need at least one pack with current values."""
        if not super().available:
            return False
        return not self.entity_description.needs_packs or bool(
            self.coordinator.data.available_packs
        )

    _reading: tuple[StackData, StateType, Attributes] | None = None
    """(the refresh read, value, attributes): read once per refresh, not at every property."""

    def _read(self) -> tuple[StateType, Attributes]:
        """Value and attributes from the last refresh; within the jitter, what is shown."""
        data, last = self.coordinator.data, self._reading
        if last is not None and last[0] is data:
            return last[1], last[2]
        description = self.entity_description
        value = description.value_fn(data)
        attrs = description.attrs_fn(data) if description.attrs_fn else None
        if last is not None and within_jitter(description.jitter, last[1], value):
            value, attrs = last[1], last[2]
        self._reading = (data, value, attrs)
        return value, attrs

    @property
    def native_value(self) -> StateType:
        """The value computed from the last refresh."""
        return self._read()[0]

    @property
    def extra_state_attributes(self) -> Attributes:
        """Which pack (and cell) the value comes from, where that says something."""
        return self._read()[1]


class _RestoredEnergy(RestoreSensor):
    """An energy counter that only grows and starts from its total before the restart."""

    coordinator: StackCoordinator
    _address: int | None = None
    """The pack whose share this is; ``None`` for the stack's counters."""

    async def async_added_to_hass(self) -> None:
        """Take the total from before the restart as the baseline."""
        await super().async_added_to_hass()
        last = await self.async_get_last_sensor_data()
        if last is None or last.native_value is None:
            return
        try:
            value = float(last.native_value)  # type: ignore[arg-type]
        except TypeError, ValueError:
            return
        self.coordinator.energy.restore(self.entity_description.key, value, self._address)

    @property
    def native_value(self) -> float:
        """The total in kWh, to the watt-hour."""
        return round(self.coordinator.energy.total(self.entity_description.key, self._address), 3)


class EnergySensor(StackEntity, _RestoredEnergy):
    """Energy charged into or discharged from the stack: only ever grows, survives restarts."""


class PackEnergySensor(PackEntity, _RestoredEnergy):
    """One pack's energy charged or discharged (the same counter, per pack)."""

    def __init__(
        self, coordinator: StackCoordinator, description: SensorEntityDescription, address: int
    ) -> None:
        super().__init__(coordinator, description, address)
        self._address = address


class LastRecordSensor(PackEntity, SensorEntity):
    """When the pack's BMS logged its newest history record, and what it holds.

    From the cached log (history_cache.py); only packs that answer at their own address have one.
    It changes when the cache does, which tells it; a refresh changes nothing it shows.
    """

    async def async_added_to_hass(self) -> None:
        """Follow the pack's cached history."""
        await super().async_added_to_hass()
        self.async_on_remove(follow_history(self))

    @callback
    def _handle_coordinator_update(self) -> None:
        """Nothing to do: the cached log is independent of a refresh (and of the pack answering)."""

    @property
    def available(self) -> bool:
        """Once a record is cached: the log is the pack's past, shown while it is silent too."""
        return self.native_value is not None

    @property
    def native_value(self) -> RecordTime:
        """When the newest record was logged."""
        return newest_record_time(self.coordinator, self.address)

    @property
    def extra_state_attributes(self) -> RecordAttributes:
        """Its kind and the protections, alarms and faults it holds."""
        return newest_record_attributes(self.coordinator, self.address)


def _history_sensors(coordinator: StackCoordinator, pack: PackState) -> Iterable[Entity]:
    if not coordinator.control.reachable(pack.address, Capability.HISTORY):
        return []
    return [LastRecordSensor(coordinator, LAST_RECORD, pack.address)]


# -- platform --------------------------------------------------------------------------------


def _pack_sensors(coordinator: StackCoordinator, pack: PackState) -> Iterable[Entity]:
    assert pack.analog is not None
    address = pack.address
    entities: list[Entity] = [
        (PackStateSensor if d.key == "state" else PackSensor)(coordinator, d, address)
        for d in pack_sensor_descriptions(pack.analog)
    ]
    entities += [PackTimeSensor(coordinator, d, address) for d in TIME_SENSORS]
    entities += [PackEnergySensor(coordinator, d, address) for d in PACK_ENERGY_SENSORS]
    return entities


async def async_setup_entry(
    hass: HomeAssistant,
    entry: RessConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the stack's sensors now and each pack's once it has sent values."""
    coordinator = entry.runtime_data
    async_add_entities(
        [
            *(StackSensor(coordinator, d) for d in STACK_SENSORS),
            *(StackTimeSensor(coordinator, d) for d in TIME_SENSORS),
            *(EnergySensor(coordinator, d) for d in ENERGY_SENSORS),
        ]
    )
    async_add_pack_entities(entry, async_add_entities, _pack_sensors)
    async_add_pack_entities(entry, async_add_entities, _history_sensors)
