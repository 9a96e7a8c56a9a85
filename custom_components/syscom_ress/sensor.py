"""Sensors: each pack's measurements and state, the stack's totals, energy and link health.

Sign conventions: power sensors follow the energy dashboard's battery convention (positive while
discharging); current sensors read as the BMS reports them (positive while charging).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

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
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType

from .const import IDLE_CURRENT
from .coordinator import PackState, RessConfigEntry, StackCoordinator, StackData, soc_weighted
from .entity import PackEntity, StackEntity, async_add_pack_entities
from .ress_bms.analog import PackAnalog
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


def pack_mode(analog: PackAnalog, status: PackStatus | None) -> PackMode:
    """The LED table's state: faults first, then protections, then the current's direction."""
    if status is not None:
        if status.flag("shutdown"):
            return PackMode.SHUTDOWN
        if status.faults:
            return PackMode.FAILURE
        if status.protections:
            return PackMode.PROTECTION
    if analog.current >= IDLE_CURRENT:
        return PackMode.CHARGING
    if analog.current <= -IDLE_CURRENT:
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


@dataclass(frozen=True, kw_only=True)
class PackSensorDescription(SensorEntityDescription):
    """A pack sensor: how to read its value from the pack's last sample."""

    value_fn: Callable[[PackAnalog, PackStatus | None], StateType]


def _voltage(key: str, value_fn: Callable[[PackAnalog], float | None]) -> PackSensorDescription:
    return PackSensorDescription(
        key=key,
        translation_key=key,
        device_class=SensorDeviceClass.VOLTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfElectricPotential.VOLT,
        suggested_display_precision=3,
        value_fn=lambda a, _s: value_fn(a),
    )


def _cell_number(found: tuple[int, float] | None) -> int | None:
    return found[0] if found else None


def _cell_voltage(found: tuple[int, float] | None) -> float | None:
    return found[1] if found else None


def _delta(analog: PackAnalog) -> float | None:
    low, high = _min_cell(analog), _max_cell(analog)
    return round(high[1] - low[1], 3) if low and high else None


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
    ),
    PackSensorDescription(
        key="current",
        translation_key="current",
        device_class=SensorDeviceClass.CURRENT,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        suggested_display_precision=2,
        value_fn=lambda a, _s: round(a.current, 2),
    ),
    PackSensorDescription(
        key="power",
        translation_key="power",
        device_class=SensorDeviceClass.POWER,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfPower.WATT,
        suggested_display_precision=0,
        value_fn=lambda a, _s: round(-a.power, 1) + 0.0,
    ),
    PackSensorDescription(
        key="soc",
        translation_key="soc",
        device_class=SensorDeviceClass.BATTERY,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=PERCENTAGE,
        suggested_display_precision=0,
        value_fn=lambda a, _s: a.soc,
    ),
    PackSensorDescription(
        key="soh",
        translation_key="soh",
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=PERCENTAGE,
        suggested_display_precision=0,
        value_fn=lambda a, _s: a.soh,
    ),
    PackSensorDescription(
        key="remaining_capacity",
        translation_key="remaining_capacity",
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=AMPERE_HOURS,
        suggested_display_precision=1,
        value_fn=lambda a, _s: round(a.remaining_capacity, 2),
    ),
    PackSensorDescription(
        key="full_capacity",
        translation_key="full_capacity",
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=AMPERE_HOURS,
        suggested_display_precision=1,
        value_fn=lambda a, _s: round(a.full_capacity, 2),
    ),
    PackSensorDescription(
        key="design_capacity",
        translation_key="design_capacity",
        entity_category=EntityCategory.DIAGNOSTIC,
        native_unit_of_measurement=AMPERE_HOURS,
        suggested_display_precision=0,
        value_fn=lambda a, _s: round(a.design_capacity, 2),
    ),
    PackSensorDescription(
        key="stored_energy",
        translation_key="stored_energy",
        device_class=SensorDeviceClass.ENERGY_STORAGE,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        suggested_display_precision=2,
        value_fn=lambda a, _s: _stored_energy([a]),
    ),
    PackSensorDescription(
        key="cycles",
        translation_key="cycles",
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=lambda a, _s: a.cycles,
    ),
    _voltage("min_cell_voltage", lambda a: _cell_voltage(_min_cell(a))),
    _voltage("max_cell_voltage", lambda a: _cell_voltage(_max_cell(a))),
    _voltage("cell_voltage_delta", _delta),
    PackSensorDescription(
        key="min_cell",
        translation_key="min_cell",
        value_fn=lambda a, _s: _cell_number(_min_cell(a)),
    ),
    PackSensorDescription(
        key="max_cell",
        translation_key="max_cell",
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
    ),
    PackSensorDescription(
        key="environment_temperature",
        translation_key="environment_temperature",
        device_class=SensorDeviceClass.TEMPERATURE,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfTemperature.CELSIUS,
        suggested_display_precision=1,
        value_fn=lambda a, _s: a.environment_temperature,
    ),
)


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
    )


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

    @property
    def native_value(self) -> StateType:
        """The value from the pack's last sample."""
        pack = self.pack
        if pack is None or pack.analog is None:
            return None
        return self.entity_description.value_fn(pack.analog, pack.status)


# -- stack sensors ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class StackSensorDescription(SensorEntityDescription):
    """A stack sensor: how to read it from a refresh's result."""

    value_fn: Callable[[StackData], StateType]
    needs_packs: bool = True
    """Unavailable while no pack answers (totals); link-health sensors are not."""


def _all_cells(data: StackData) -> list[float]:
    return [v for a in data.analogs() for v in a.cell_voltages]


def _stack_voltage(data: StackData) -> float | None:
    analogs = data.analogs()
    return round(sum(a.voltage for a in analogs) / len(analogs), 3) if analogs else None


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
    ),
    StackSensorDescription(
        key="current",
        translation_key="current",
        device_class=SensorDeviceClass.CURRENT,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        suggested_display_precision=2,
        value_fn=lambda d: round(sum(a.current for a in d.analogs()), 2) + 0.0,
    ),
    StackSensorDescription(
        key="power",
        translation_key="power",
        device_class=SensorDeviceClass.POWER,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfPower.WATT,
        suggested_display_precision=0,
        value_fn=lambda d: round(-sum(a.power for a in d.analogs()), 1) + 0.0,
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
        key="min_cell_voltage",
        translation_key="min_cell_voltage",
        device_class=SensorDeviceClass.VOLTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfElectricPotential.VOLT,
        suggested_display_precision=3,
        value_fn=lambda d: min(_all_cells(d), default=None),
    ),
    StackSensorDescription(
        key="max_cell_voltage",
        translation_key="max_cell_voltage",
        device_class=SensorDeviceClass.VOLTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfElectricPotential.VOLT,
        suggested_display_precision=3,
        value_fn=lambda d: max(_all_cells(d), default=None),
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

ENERGY_SENSORS: tuple[SensorEntityDescription, ...] = (
    SensorEntityDescription(
        key="energy_charged",
        translation_key="energy_charged",
        device_class=SensorDeviceClass.ENERGY,
        state_class=SensorStateClass.TOTAL_INCREASING,
        native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        suggested_display_precision=2,
    ),
    SensorEntityDescription(
        key="energy_discharged",
        translation_key="energy_discharged",
        device_class=SensorDeviceClass.ENERGY,
        state_class=SensorStateClass.TOTAL_INCREASING,
        native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        suggested_display_precision=2,
    ),
)


class StackSensor(StackEntity, SensorEntity):
    """A total or health value of the whole stack."""

    entity_description: StackSensorDescription

    @property
    def available(self) -> bool:
        """Totals need at least one pack with current values."""
        if not super().available:
            return False
        return not self.entity_description.needs_packs or bool(
            self.coordinator.data.available_packs
        )

    @property
    def native_value(self) -> StateType:
        """The value computed from the last refresh."""
        return self.entity_description.value_fn(self.coordinator.data)


class EnergySensor(StackEntity, RestoreSensor):
    """Energy charged into or discharged from the stack: only ever grows, survives restarts."""

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
        self.coordinator.energy.restore(self.entity_description.key, value)

    @property
    def native_value(self) -> float:
        """The total in kWh, to the watt-hour."""
        return round(self.coordinator.energy.total(self.entity_description.key), 3)


# -- platform --------------------------------------------------------------------------------


def _pack_sensors(coordinator: StackCoordinator, pack: PackState) -> Iterable[Entity]:
    assert pack.analog is not None
    return [
        PackSensor(coordinator, description, pack.address)
        for description in pack_sensor_descriptions(pack.analog)
    ]


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
            *(EnergySensor(coordinator, d) for d in ENERGY_SENSORS),
        ]
    )
    async_add_pack_entities(entry, async_add_entities, _pack_sensors)
