"""Sensors: registry metadata, values against the simulator, signs, the pack state, the stack."""

from __future__ import annotations

from homeassistant.components.sensor import SensorDeviceClass, SensorStateClass
from homeassistant.const import (
    ATTR_DEVICE_CLASS,
    ATTR_UNIT_OF_MEASUREMENT,
    PERCENTAGE,
    EntityCategory,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.syscom_ress.coordinator import soc_weighted
from custom_components.syscom_ress.ress_bms.analog import PackAnalog
from custom_components.syscom_ress.ress_bms.simulator import Simulator
from custom_components.syscom_ress.ress_bms.status import PackStatus, status_bytes
from custom_components.syscom_ress.sensor import (
    DELTA_JITTER,
    TEMPERATURE_JITTER,
    PackMode,
    pack_mode,
)

PACK = "sensor.ress_battery_pack_1_"
STACK = "sensor.ress_battery_"

# (suffix, device class, unit, state class, category, enabled by default)
PACK_EXPECTED = [
    ("state", SensorDeviceClass.ENUM, None, None, None, True),
    ("voltage", SensorDeviceClass.VOLTAGE, "V", SensorStateClass.MEASUREMENT, None, True),
    ("current", SensorDeviceClass.CURRENT, "A", SensorStateClass.MEASUREMENT, None, True),
    ("power", SensorDeviceClass.POWER, "W", SensorStateClass.MEASUREMENT, None, False),
    ("state_of_charge", SensorDeviceClass.BATTERY, "%", SensorStateClass.MEASUREMENT, None, True),
    ("state_of_health", None, "%", SensorStateClass.MEASUREMENT, None, False),
    ("remaining_capacity", None, "Ah", SensorStateClass.MEASUREMENT, None, False),
    ("full_capacity", None, "Ah", SensorStateClass.MEASUREMENT, None, False),
    ("design_capacity", None, "Ah", None, EntityCategory.DIAGNOSTIC, False),
    (
        "stored_energy",
        SensorDeviceClass.ENERGY_STORAGE,
        "kWh",
        SensorStateClass.MEASUREMENT,
        None,
        False,
    ),
    ("cycles", None, None, SensorStateClass.TOTAL_INCREASING, None, False),
    (
        "lowest_cell_voltage",
        SensorDeviceClass.VOLTAGE,
        "V",
        SensorStateClass.MEASUREMENT,
        None,
        True,
    ),
    (
        "highest_cell_voltage",
        SensorDeviceClass.VOLTAGE,
        "V",
        SensorStateClass.MEASUREMENT,
        None,
        True,
    ),
    (
        "cell_voltage_difference",
        SensorDeviceClass.VOLTAGE,
        "V",
        SensorStateClass.MEASUREMENT,
        None,
        True,
    ),
    ("lowest_cell", None, None, None, None, False),
    ("highest_cell", None, None, None, None, False),
    ("time_to_full", SensorDeviceClass.DURATION, "h", SensorStateClass.MEASUREMENT, None, True),
    ("time_to_empty", SensorDeviceClass.DURATION, "h", SensorStateClass.MEASUREMENT, None, True),
    (
        "energy_charged",
        SensorDeviceClass.ENERGY,
        "kWh",
        SensorStateClass.TOTAL_INCREASING,
        None,
        False,
    ),
    (
        "energy_discharged",
        SensorDeviceClass.ENERGY,
        "kWh",
        SensorStateClass.TOTAL_INCREASING,
        None,
        False,
    ),
    (
        "mos_temperature",
        SensorDeviceClass.TEMPERATURE,
        "°C",
        SensorStateClass.MEASUREMENT,
        None,
        True,
    ),
    (
        "environment_temperature",
        SensorDeviceClass.TEMPERATURE,
        "°C",
        SensorStateClass.MEASUREMENT,
        None,
        True,
    ),
    (
        "cell_temperature_1",
        SensorDeviceClass.TEMPERATURE,
        "°C",
        SensorStateClass.MEASUREMENT,
        None,
        True,
    ),
    (
        "cell_16_voltage",
        SensorDeviceClass.VOLTAGE,
        "V",
        SensorStateClass.MEASUREMENT,
        EntityCategory.DIAGNOSTIC,
        False,
    ),
]
STACK_EXPECTED = [
    ("state_of_charge", SensorDeviceClass.BATTERY, "%", SensorStateClass.MEASUREMENT, None, True),
    ("voltage", SensorDeviceClass.VOLTAGE, "V", SensorStateClass.MEASUREMENT, None, True),
    ("current", SensorDeviceClass.CURRENT, "A", SensorStateClass.MEASUREMENT, None, True),
    ("power", SensorDeviceClass.POWER, "W", SensorStateClass.MEASUREMENT, None, True),
    ("remaining_capacity", None, "Ah", SensorStateClass.MEASUREMENT, None, True),
    ("full_capacity", None, "Ah", SensorStateClass.MEASUREMENT, None, True),
    (
        "stored_energy",
        SensorDeviceClass.ENERGY_STORAGE,
        "kWh",
        SensorStateClass.MEASUREMENT,
        None,
        True,
    ),
    (
        "energy_charged",
        SensorDeviceClass.ENERGY,
        "kWh",
        SensorStateClass.TOTAL_INCREASING,
        None,
        True,
    ),
    (
        "energy_discharged",
        SensorDeviceClass.ENERGY,
        "kWh",
        SensorStateClass.TOTAL_INCREASING,
        None,
        True,
    ),
    (
        "lowest_cell_voltage",
        SensorDeviceClass.VOLTAGE,
        "V",
        SensorStateClass.MEASUREMENT,
        None,
        True,
    ),
    (
        "highest_cell_voltage",
        SensorDeviceClass.VOLTAGE,
        "V",
        SensorStateClass.MEASUREMENT,
        None,
        True,
    ),
    ("state_of_health", None, "%", SensorStateClass.MEASUREMENT, None, True),
    (
        "cell_voltage_difference",
        SensorDeviceClass.VOLTAGE,
        "V",
        SensorStateClass.MEASUREMENT,
        None,
        True,
    ),
    ("state_of_charge_spread", None, "%", SensorStateClass.MEASUREMENT, None, True),
    ("time_to_full", SensorDeviceClass.DURATION, "h", SensorStateClass.MEASUREMENT, None, True),
    ("time_to_empty", SensorDeviceClass.DURATION, "h", SensorStateClass.MEASUREMENT, None, True),
    ("packs_online", None, None, SensorStateClass.MEASUREMENT, EntityCategory.DIAGNOSTIC, True),
    ("link_quality", None, "%", SensorStateClass.MEASUREMENT, EntityCategory.DIAGNOSTIC, True),
    (
        "round_trip_time",
        SensorDeviceClass.DURATION,
        "ms",
        SensorStateClass.MEASUREMENT,
        EntityCategory.DIAGNOSTIC,
        False,
    ),
]


def _check(
    hass: HomeAssistant,
    entity_id: str,
    device_class: str | None,
    unit: str | None,
    state_class: str | None,
    category: EntityCategory | None,
    enabled: bool,
) -> None:
    entry = er.async_get(hass).async_get(entity_id)
    assert entry is not None, entity_id
    assert entry.entity_category == category, entity_id
    assert (entry.disabled_by is None) == enabled, entity_id
    assert entry.original_device_class == device_class, entity_id
    assert entry.unit_of_measurement == unit, entity_id
    assert (entry.capabilities or {}).get("state_class") == state_class, entity_id
    assert entry.translation_key is not None, entity_id
    if enabled:
        state = hass.states.get(entity_id)
        assert state is not None, entity_id
        assert state.attributes.get(ATTR_UNIT_OF_MEASUREMENT) == unit
        assert state.attributes.get(ATTR_DEVICE_CLASS) == device_class


@pytest.mark.parametrize("expected", PACK_EXPECTED, ids=[e[0] for e in PACK_EXPECTED])
async def test_pack_sensor_metadata(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, expected: tuple
) -> None:
    """Units, device classes, state classes, categories and defaults of pack sensors."""
    _check(hass, PACK + expected[0], *expected[1:])


@pytest.mark.parametrize("expected", STACK_EXPECTED, ids=[e[0] for e in STACK_EXPECTED])
async def test_stack_sensor_metadata(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, expected: tuple
) -> None:
    """Units, device classes, state classes, categories and defaults of stack sensors."""
    _check(hass, STACK + expected[0], *expected[1:])


async def test_unique_ids(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """Unique ids hang off the master serial: the stack's and each pack's by address."""
    registry = er.async_get(hass)
    serial = sim.pack(1).bms_serial
    assert registry.async_get_entity_id("sensor", "syscom_ress", f"{serial}_soc") == (
        "sensor.ress_battery_state_of_charge"
    )
    assert registry.async_get_entity_id("sensor", "syscom_ress", f"{serial}_pack2_voltage") == (
        "sensor.ress_battery_pack_2_voltage"
    )
    assert registry.async_get_entity_id(
        "binary_sensor", "syscom_ress", f"{serial}_pack3_cell_over_voltage_protection"
    ) == ("binary_sensor.ress_battery_pack_3_cell_over_voltage_protection")


async def test_pack_values_match_the_bms(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """Each value is the simulator's, at the BMS's resolution (within its jitter, the one
    shown before: the 20 A move all values but the difference and the temperatures far beyond)."""
    coordinator = loaded_entry.runtime_data
    sim.pack(1).demand = -20.0  # discharging 20 A
    sim.advance(5)
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    analog = sim.pack(1).analog()

    def value(suffix: str) -> str:
        state = hass.states.get(PACK + suffix)
        assert state is not None
        return state.state

    assert float(value("voltage")) == analog.voltage
    # Current and power share one sign, + = discharging (the BMS says -20 A).
    assert float(value("current")) == -analog.current > 0
    assert value("state") == "discharging"
    assert value("state_of_charge") == str(round(analog.soc))  # in whole percent
    assert analog.soc != round(analog.soc)  # the BMS's 10 mAh would give 0.1 %
    cells = analog.cell_voltages
    assert float(value("lowest_cell_voltage")) == min(cells)
    assert float(value("highest_cell_voltage")) == max(cells)
    lowest, highest = cells.index(min(cells)) + 1, cells.index(max(cells)) + 1
    assert hass.states.get(PACK + "lowest_cell_voltage").attributes["cell"] == lowest
    assert hass.states.get(PACK + "highest_cell_voltage").attributes["cell"] == highest
    delta = hass.states.get(PACK + "cell_voltage_difference")
    assert abs(float(delta.state) - round(max(cells) - min(cells), 3)) <= DELTA_JITTER
    assert {"min_cell", "max_cell"} <= set(delta.attributes)
    assert abs(float(value("mos_temperature")) - analog.mos_temperature) <= TEMPERATURE_JITTER
    temperature = float(value("cell_temperature_2"))
    assert abs(temperature - analog.cell_temperatures[1]) <= TEMPERATURE_JITTER
    state = hass.states.get(PACK + "state")
    assert state is not None
    assert state.attributes["options"] == [m.value for m in PackMode]


async def test_values_off_by_default_match_the_bms(
    hass: HomeAssistant, sim: Simulator, config_entry: MockConfigEntry
) -> None:
    """Enabled by the owner, the quiet values read as the BMS sends them."""
    sim.pack(1).demand = -20.0  # discharging 20 A: a power to show
    sim.advance(5)
    registry = er.async_get(hass)
    serial = sim.pack(1).bms_serial
    config_entry.add_to_hass(hass)
    keys = ("power", "soh", "remaining_capacity", "cycles", "stored_energy", "min_cell", "max_cell")
    for key in keys:
        registry.async_get_or_create(
            "sensor", "syscom_ress", f"{serial}_pack1_{key}", config_entry=config_entry
        )  # registered before set-up: enabled
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    analog = sim.pack(1).analog()

    def value(key: str) -> str:
        entity_id = registry.async_get_entity_id("sensor", "syscom_ress", f"{serial}_pack1_{key}")
        assert entity_id is not None
        return hass.states.get(entity_id).state

    assert float(value("power")) == round(-analog.power) > 0  # to the watt, + = discharging
    assert float(value("soh")) == analog.soh
    assert float(value("remaining_capacity")) == analog.remaining_capacity
    assert float(value("cycles")) == analog.cycles
    assert float(value("stored_energy")) == round(
        analog.remaining_capacity * analog.voltage / 1000, 3
    )
    cells = analog.cell_voltages
    assert int(value("min_cell")) == cells.index(min(cells)) + 1
    assert int(value("max_cell")) == cells.index(max(cells)) + 1


async def test_stack_totals(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """Stack power is positive while discharging; SOC is weighted by full capacity."""
    coordinator = loaded_entry.runtime_data
    sim.pack(1).demand = 30.0  # pack 1 charges
    sim.pack(2).demand = -50.0  # pack 2 discharges more
    sim.advance(5)
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    analogs = [sim.pack(a).analog() for a in (1, 2, 3)]

    def value(suffix: str) -> float:
        state = hass.states.get(STACK + suffix)
        assert state is not None
        return float(state.state)

    # Pack 2 discharges more than pack 1 charges: the stack discharges, both signs say so.
    assert value("power") == round(-sum(a.power for a in analogs)) > 0
    assert value("current") == round(-sum(a.current for a in analogs), 2) > 0
    assert value("state_of_charge") == soc_weighted(analogs)
    assert value("voltage") == round(sum(a.voltage for a in analogs) / 3, 3)
    assert value("full_capacity") == round(sum(a.full_capacity for a in analogs), 2)
    all_cells = [v for a in analogs for v in a.cell_voltages]
    assert value("lowest_cell_voltage") == min(all_cells)
    assert value("highest_cell_voltage") == max(all_cells)
    assert value("packs_online") == 3
    assert value("link_quality") == 100
    assert hass.states.get(PACK + "state").state == "charging"
    assert float(hass.states.get(PACK + "current").state) == -analogs[0].current < 0


async def test_stack_health(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """SOH weighted by design capacity, the cell spread with where its ends are, SOC spread."""
    sim.pack(2).physics.soc = 80.0
    sim.pack(3).physics.soc = 30.0
    sim.pack(3).physics.full_capacity = 90.0  # a tired pack: SOH 90 %
    sim.advance(1)
    await loaded_entry.runtime_data.async_refresh()
    await hass.async_block_till_done()
    analogs = {a: sim.pack(a).analog() for a in (1, 2, 3)}

    soh = hass.states.get(STACK + "state_of_health")
    design = sum(a.design_capacity for a in analogs.values())
    expected = sum(a.soh * a.design_capacity for a in analogs.values()) / design
    assert float(soh.state) == round(expected, 1)
    assert soh.attributes["min_pack"] == 3

    cells = [(v, a, n) for a, x in analogs.items() for n, v in enumerate(x.cell_voltages, 1)]
    low = min(cells)
    high = max(cells, key=lambda c: (c[0], -c[1], -c[2]))  # ties: the first pack and cell
    delta = hass.states.get(STACK + "cell_voltage_difference")
    assert float(delta.state) == round(high[0] - low[0], 3)
    assert (delta.attributes["min_pack"], delta.attributes["min_cell"]) == (low[1], low[2])
    assert (delta.attributes["max_pack"], delta.attributes["max_cell"]) == (high[1], high[2])
    lowest = hass.states.get(STACK + "lowest_cell_voltage")
    assert (lowest.attributes["pack"], lowest.attributes["cell"]) == (low[1], low[2])
    highest = hass.states.get(STACK + "highest_cell_voltage")
    assert (highest.attributes["pack"], highest.attributes["cell"]) == (high[1], high[2])

    spread = hass.states.get(STACK + "state_of_charge_spread")
    socs = {a: x.soc for a, x in analogs.items()}
    assert float(spread.state) == round(max(socs.values()) - min(socs.values()), 1) > 40
    assert (spread.attributes["min_pack"], spread.attributes["max_pack"]) == (3, 2)


def _analog(current: float = 0.0, soc_ext: bytes = b"") -> PackAnalog:
    return PackAnalog(1, True, (3.3,) * 16, (25.0,) * 6, current, 52.8, 50, 100, 100, 3, 3, soc_ext)


def _status(*keys: str) -> PackStatus:
    return PackStatus(1, (0,) * 16, (0,) * 6, 0, 0, 0, status_bytes(keys))


@pytest.mark.parametrize(
    ("current", "keys", "mode"),
    [
        (0.0, (), PackMode.STANDBY),
        (0.1, (), PackMode.STANDBY),
        (0.19, (), PackMode.STANDBY),
        (0.2, (), PackMode.CHARGING),
        (-0.2, (), PackMode.DISCHARGING),
        (5.0, (), PackMode.CHARGING),
        (-5.0, (), PackMode.DISCHARGING),
        (5.0, ("cell_over_voltage_protection",), PackMode.PROTECTION),
        (0.0, ("cell_over_voltage_alarm",), PackMode.STANDBY),
        (0.0, ("cell_over_voltage_protection", "ntc_fault"), PackMode.FAILURE),
        (0.0, ("shutdown", "ntc_fault"), PackMode.SHUTDOWN),
    ],
)
def test_pack_mode(current: float, keys: tuple[str, ...], mode: PackMode) -> None:
    """The LED table: shut down, then failure, then protection, then the current's sign."""
    assert pack_mode(_analog(current), _status(*keys)) is mode
    if not keys:
        assert pack_mode(_analog(current), None) is mode


def test_pack_mode_hysteresis() -> None:
    """A direction starts at the idle threshold and ends below half of it."""
    assert pack_mode(_analog(0.15), None, PackMode.CHARGING) is PackMode.CHARGING
    assert pack_mode(_analog(0.09), None, PackMode.CHARGING) is PackMode.STANDBY
    assert pack_mode(_analog(0.15), None, PackMode.STANDBY) is PackMode.STANDBY
    assert pack_mode(_analog(-0.15), None, PackMode.DISCHARGING) is PackMode.DISCHARGING
    assert pack_mode(_analog(-0.15), None, PackMode.CHARGING) is PackMode.STANDBY
    protected = _status("cell_over_voltage_protection")
    assert pack_mode(_analog(0.15), protected, PackMode.CHARGING) is PackMode.PROTECTION


async def test_state_keeps_its_direction_near_the_threshold(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """0.15 A after charging still reads charging; from standby it stays standby."""
    coordinator = loaded_entry.runtime_data
    for demand, expected in ((5.0, "charging"), (0.15, "charging"), (0.05, "standby")):
        sim.pack(1).demand = demand
        sim.advance(1)
        await coordinator.async_refresh()
        await hass.async_block_till_done()
        assert hass.states.get(PACK + "state").state == expected, demand
    sim.pack(1).demand = 0.15
    sim.advance(1)
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    assert hass.states.get(PACK + "state").state == "standby"


def test_soc_weighted() -> None:
    """Weighted by full capacity; a plain mean when no pack knows its capacity; None if empty."""
    small = PackAnalog(1, True, (3.3,), (), 0, 52, 10, 20, 20, 0, 3, b"\x64")  # 100 %, 20 Ah
    big = PackAnalog(2, True, (3.3,), (), 0, 52, 0, 80, 80, 0, 3, b"\x00")  # 0 %, 80 Ah
    assert soc_weighted([small, big]) == 20.0
    empty = PackAnalog(3, True, (3.3,), (), 0, 52, 0, 0, 0, 0, 3, b"\x32")
    assert soc_weighted([empty, empty]) == 50.0
    assert soc_weighted([]) is None


async def test_protection_shows_in_state(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """A held protection turns the pack's state to protection."""
    sim.raise_protection(2, "discharge_over_current")
    await loaded_entry.runtime_data.async_refresh()
    await hass.async_block_till_done()
    assert hass.states.get("sensor.ress_battery_pack_2_state").state == "protection"
    assert hass.states.get("sensor.ress_battery_pack_1_state").state == "standby"
    assert PERCENTAGE == "%"
