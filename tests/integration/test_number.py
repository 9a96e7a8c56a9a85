"""Threshold numbers: one per adjustable parameter, read once, written and read back."""

from __future__ import annotations

from homeassistant.components.number import (
    ATTR_VALUE,
    DOMAIN as NUMBER_DOMAIN,
    SERVICE_SET_VALUE,
    NumberDeviceClass,
)
from homeassistant.const import (
    ATTR_DEVICE_CLASS,
    ATTR_ENTITY_ID,
    ATTR_UNIT_OF_MEASUREMENT,
    STATE_UNAVAILABLE,
    EntityCategory,
)
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.syscom_ress.const import DOMAIN
from custom_components.syscom_ress.number import NUMBERS, UNITS
from custom_components.syscom_ress.ress_bms.commands import Command
from custom_components.syscom_ress.ress_bms.params import PARAMETERS
from custom_components.syscom_ress.ress_bms.simulator import Simulator

from .control_helpers import PACK1, PACK2, chained, enable_numbers, refresh

__all__ = ["enable_numbers"]

LOW_SOC = f"number.{PACK1}low_soc_alarm_threshold"
CELL_OV = f"number.{PACK1}cell_over_voltage_protection_threshold"


def test_one_number_per_threshold() -> None:
    """Every threshold of the table is a number with the table's range and a known unit."""
    thresholds = [p for p in PARAMETERS if p.threshold]
    assert [d.key for d in NUMBERS] == [p.key for p in thresholds]
    assert len(NUMBERS) == 54
    for description, parameter in zip(NUMBERS, thresholds, strict=True):
        assert description.native_min_value == parameter.minimum
        assert description.native_max_value == parameter.maximum
        assert description.native_step == parameter.step
        assert description.native_unit_of_measurement == UNITS[parameter.unit][0]
        assert description.entity_category is EntityCategory.CONFIG
        assert description.entity_registry_enabled_default is False


async def test_numbers_disabled_and_not_read(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """Disabled by default, configuration category; no parameter is read for them."""
    registry = er.async_get(hass)
    serial = sim.pack(1).bms_serial
    for address in (1, 2, 3):
        entity_id = registry.async_get_entity_id(
            NUMBER_DOMAIN, DOMAIN, f"{serial}_pack{address}_cell_over_voltage_protection"
        )
        assert entity_id is not None
        entry = registry.async_get(entity_id)
        assert entry is not None
        assert entry.disabled_by is er.RegistryEntryDisabler.INTEGRATION
        assert entry.entity_category is EntityCategory.CONFIG
    numbers = [
        e
        for e in er.async_entries_for_config_entry(registry, loaded_entry.entry_id)
        if e.domain == NUMBER_DOMAIN
    ]
    assert len(numbers) == 3 * 54
    assert Command.CELL_OV_READ not in loaded_entry.runtime_data.link.stats.last_frames


@pytest.mark.usefixtures("enable_numbers")
async def test_values_units_and_classes(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """Read once at set-up: the simulator's defaults, with units and device classes."""
    await hass.async_block_till_done(wait_background_tasks=True)
    state = hass.states.get(CELL_OV)
    assert float(state.state) == sim.pack(1).bms.value("cell_over_voltage_protection") == 3.65
    assert state.attributes[ATTR_UNIT_OF_MEASUREMENT] == "V"
    assert state.attributes[ATTR_DEVICE_CLASS] == NumberDeviceClass.VOLTAGE
    assert state.attributes["min"] == 2.5
    assert state.attributes["max"] == 4.5
    assert state.attributes["step"] == 0.01
    assert state.attributes["mode"] == "box"
    delay = hass.states.get(f"number.{PACK2}short_circuit_protection_delay")
    assert delay.attributes[ATTR_UNIT_OF_MEASUREMENT] == "μs"
    assert delay.attributes[ATTR_DEVICE_CLASS] == NumberDeviceClass.DURATION
    temperature = hass.states.get(f"number.{PACK2}charge_high_temperature_protection_threshold")
    assert float(temperature.state) == 65.0
    assert temperature.attributes[ATTR_DEVICE_CLASS] == NumberDeviceClass.TEMPERATURE
    discharge = hass.states.get(f"number.{PACK2}discharge_over_current_protection_threshold")
    assert float(discharge.state) == 120  # read back negative, shown as a magnitude
    assert hass.states.get(LOW_SOC).attributes[ATTR_DEVICE_CLASS] == NumberDeviceClass.BATTERY

    # Polls do not read parameters again.
    link = loaded_entry.runtime_data.link
    requests = link.stats.requests
    await refresh(hass, loaded_entry.runtime_data)
    assert link.stats.requests - requests == 2  # 42H and 44H for the whole stack


@pytest.mark.usefixtures("enable_numbers")
async def test_write_changes_when_the_protection_triggers(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """The low-SOC alarm follows its written threshold; the write is read back."""
    await hass.async_block_till_done(wait_background_tasks=True)
    coordinator = loaded_entry.runtime_data
    alarm = f"binary_sensor.{PACK1}low_soc_alarm"
    sim.advance(2)
    await refresh(hass, coordinator)
    assert hass.states.get(alarm).state == "off"  # SOC 50 %, threshold 5 %

    await hass.services.async_call(
        NUMBER_DOMAIN,
        SERVICE_SET_VALUE,
        {ATTR_ENTITY_ID: LOW_SOC, ATTR_VALUE: 60},
        blocking=True,
    )
    await hass.async_block_till_done(wait_background_tasks=True)
    assert sim.pack(1).bms.value("low_soc_alarm") == 60
    assert sim.pack(2).bms.value("low_soc_alarm") == 5  # only the addressed pack
    assert float(hass.states.get(LOW_SOC).state) == 60
    sim.advance(2)
    await refresh(hass, coordinator)
    assert hass.states.get(alarm).state == "on"
    assert hass.states.get(f"binary_sensor.{PACK2}low_soc_alarm").state == "off"


@pytest.mark.usefixtures("enable_numbers")
async def test_a_write_the_rules_refuse_sends_nothing(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """An alarm above its protection is refused, translated, before any write goes out."""
    await hass.async_block_till_done(wait_background_tasks=True)
    link = loaded_entry.runtime_data.link
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            NUMBER_DOMAIN,
            SERVICE_SET_VALUE,
            {ATTR_ENTITY_ID: f"number.{PACK1}cell_over_voltage_alarm_threshold", ATTR_VALUE: 3.7},
            blocking=True,
        )
    assert err.value.translation_key == "invalid_parameters"
    assert "must stay below" in str(err.value)
    assert Command.CELL_OV_WRITE not in link.stats.last_frames
    assert sim.pack(1).bms.value("cell_over_voltage_alarm") == 3.5


@pytest.mark.usefixtures("enable_numbers")
async def test_a_value_the_bms_did_not_keep(
    hass: HomeAssistant,
    sim: Simulator,
    loaded_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The BMS acknowledges but keeps its old value: a translated error, the old value shown."""
    await hass.async_block_till_done(wait_background_tasks=True)
    monkeypatch.setattr(sim.pack(1).bms.settings, "write", lambda group, payload: 0)
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(
            NUMBER_DOMAIN,
            SERVICE_SET_VALUE,
            {ATTR_ENTITY_ID: LOW_SOC, ATTR_VALUE: 20},
            blocking=True,
        )
    assert err.value.translation_key == "write_not_kept"
    assert "low_soc_alarm: wrote 20, reads 5" in str(err.value)
    assert float(hass.states.get(LOW_SOC).state) == 5


@pytest.mark.usefixtures("enable_numbers")
async def test_values_snap_to_the_step(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """A value converted from another unit lands on the table's step."""
    await hass.async_block_till_done(wait_background_tasks=True)
    await hass.services.async_call(
        NUMBER_DOMAIN,
        SERVICE_SET_VALUE,
        {ATTR_ENTITY_ID: CELL_OV, ATTR_VALUE: 3.6000000001},
        blocking=True,
    )
    assert sim.pack(1).bms.value("cell_over_voltage_protection") == 3.6


@pytest.mark.usefixtures("enable_numbers")
async def test_unreadable_parameters_make_numbers_unavailable(
    hass: HomeAssistant,
    sim: Simulator,
    config_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pack whose parameters cannot be read: its numbers wait, and are read again later."""
    from custom_components.syscom_ress import control

    original = sim.pack(3).bms.settings.read
    monkeypatch.setattr(sim.pack(3).bms.settings, "read", lambda group: b"")
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert hass.states.get("number.ress_battery_pack_3_low_soc_alarm_threshold").state == (
        STATE_UNAVAILABLE
    )
    assert float(hass.states.get(LOW_SOC).state) == 5

    monkeypatch.setattr(sim.pack(3).bms.settings, "read", original)
    monkeypatch.setattr(control, "PARAMETER_RETRY", 0.0)
    await refresh(hass, config_entry.runtime_data)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert float(hass.states.get("number.ress_battery_pack_3_low_soc_alarm_threshold").state) == 5


@pytest.mark.usefixtures("enable_numbers")
async def test_only_packs_that_answer_for_themselves(
    hass: HomeAssistant,
    sim: Simulator,
    config_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In a master/slave chain only the master's settings can be reached: only it has numbers."""
    chained(monkeypatch)
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert hass.states.get(CELL_OV) is not None
    assert hass.states.get(f"sensor.{PACK2}voltage") is not None  # relayed values still come
    assert hass.states.get(f"number.{PACK2}cell_over_voltage_protection_threshold") is None
