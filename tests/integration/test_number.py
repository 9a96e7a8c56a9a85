"""Threshold numbers: one per adjustable parameter, read once, written and read back."""

from __future__ import annotations

import logging

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
    EVENT_STATE_CHANGED,
    STATE_UNAVAILABLE,
    EntityCategory,
)
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.syscom_ress.const import DOMAIN
from custom_components.syscom_ress.number import NUMBERS, UNITS, WEBSOCKET_LOGGER
from custom_components.syscom_ress.ress_bms.commands import Command
from custom_components.syscom_ress.ress_bms.params import GROUPS, PARAMETERS
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

    # Polls do not read parameters again (the history cache may read A1H meanwhile).
    link = loaded_entry.runtime_data.link
    sent: list[int] = []
    link.recorder = lambda direction, data: (
        sent.append(int(data[7:9], 16)) if direction == "tx" else None
    )
    await refresh(hass, loaded_entry.runtime_data)
    assert {Command.ANALOG, Command.STATUS} <= set(sent)  # 42H and 44H for the whole stack
    assert not set(sent) & {group.read for group in GROUPS}


@pytest.mark.usefixtures("enable_numbers")
async def test_write_changes_when_the_protection_triggers(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """The low-SOC alarm follows its written threshold; the write is read back."""
    await hass.async_block_till_done(wait_background_tasks=True)
    coordinator = loaded_entry.runtime_data
    alarm = f"binary_sensor.{PACK1}alarm"  # the summary: the single bits are off by default
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
    assert hass.states.get(alarm).attributes["active"] == ["low_soc"]
    assert hass.states.get(f"binary_sensor.{PACK2}alarm").state == "off"


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
    assert err.value.translation_key == "number_must_stay_below"
    assert err.value.translation_placeholders == {
        "entity": "RESS battery pack 1 Cell over-voltage alarm threshold",
        "value": "3.7 V",
        "other": "RESS battery pack 1 Cell over-voltage protection threshold",
        "other_value": "3.65 V",
        "current": "3.5 V",
    }
    assert str(err.value) == (
        "RESS battery pack 1 Cell over-voltage alarm threshold cannot be 3.7 V: it must stay "
        "below RESS battery pack 1 Cell over-voltage protection threshold, which is 3.65 V. "
        "Nothing was written; the pack keeps 3.5 V"
    )
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
    assert err.value.translation_key == "number_not_kept"
    assert err.value.translation_placeholders == {
        "entity": "RESS battery pack 1 Low SOC alarm threshold",
        "value": "20 %",
        "kept": "5 %",
    }
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


@pytest.mark.usefixtures("enable_numbers")
async def test_a_refused_value_is_replaced_by_what_the_pack_holds(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """After a refusal the state is written again (unchanged): the box drops the typed value."""
    await hass.async_block_till_done(wait_background_tasks=True)
    alarm = f"number.{PACK1}cell_over_voltage_alarm_threshold"
    written = async_capture_events(hass, EVENT_STATE_CHANGED)
    for value in (3.7, 3.453):
        with pytest.raises(ServiceValidationError):
            await hass.services.async_call(
                NUMBER_DOMAIN,
                SERVICE_SET_VALUE,
                {ATTR_ENTITY_ID: alarm, ATTR_VALUE: value},
                blocking=True,
            )
    shown = [e.data["new_state"].state for e in written if e.data["entity_id"] == alarm]
    assert shown == ["3.5", "3.5"]  # one write per refusal, each the pack's value


@pytest.mark.usefixtures("enable_numbers")
async def test_an_off_step_value_is_refused_with_the_steps_around_it(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """3.453 V on a 0.01 V step is refused, not rounded in silence; nothing goes out."""
    await hass.async_block_till_done(wait_background_tasks=True)
    link = loaded_entry.runtime_data.link
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            NUMBER_DOMAIN,
            SERVICE_SET_VALUE,
            {ATTR_ENTITY_ID: CELL_OV, ATTR_VALUE: 3.453},
            blocking=True,
        )
    assert err.value.translation_key == "number_off_step"
    assert str(err.value) == (
        "RESS battery pack 1 Cell over-voltage protection threshold goes in steps of 0.01 V "
        "from 2.5 V, so 3.453 V cannot be set: choose 3.45 V or 3.46 V. Nothing was written"
    )
    assert Command.CELL_OV_WRITE not in link.stats.last_frames
    assert sim.pack(1).bms.value("cell_over_voltage_protection") == 3.65
    assert float(hass.states.get(CELL_OV).state) == 3.65


@pytest.mark.usefixtures("enable_numbers")
async def test_a_disabled_partner_is_named_too(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """The rule partner's number may be disabled (no state): its name comes from the registry."""
    await hass.async_block_till_done(wait_background_tasks=True)
    registry = er.async_get(hass)
    registry.async_update_entity(CELL_OV, disabled_by=er.RegistryEntryDisabler.USER)
    await hass.config_entries.async_reload(loaded_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert hass.states.get(CELL_OV) is None
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            NUMBER_DOMAIN,
            SERVICE_SET_VALUE,
            {ATTR_ENTITY_ID: f"number.{PACK1}cell_over_voltage_alarm_threshold", ATTR_VALUE: 3.7},
            blocking=True,
        )
    assert err.value.translation_placeholders["other"] == (
        "RESS battery pack 1 Cell over-voltage protection threshold"
    )


@pytest.mark.usefixtures("enable_numbers")
async def test_a_value_the_pack_changed_is_shown(
    hass: HomeAssistant,
    sim: Simulator,
    loaded_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The pack acknowledges but keeps a value of its own: the number shows that one."""
    await hass.async_block_till_done(wait_background_tasks=True)
    settings = sim.pack(1).bms.settings
    original = settings.write

    def clamp(group, payload):  # type: ignore[no-untyped-def]
        rtn = original(group, payload)
        settings.set("low_soc_alarm", 10)
        return rtn

    monkeypatch.setattr(settings, "write", clamp)
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(
            NUMBER_DOMAIN,
            SERVICE_SET_VALUE,
            {ATTR_ENTITY_ID: LOW_SOC, ATTR_VALUE: 20},
            blocking=True,
        )
    assert err.value.translation_placeholders["kept"] == "10 %"
    assert float(hass.states.get(LOW_SOC).state) == 10


@pytest.mark.usefixtures("enable_numbers")
async def test_refusals_are_logged_at_info(
    hass: HomeAssistant,
    sim: Simulator,
    loaded_entry: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """From the frontend: the error reaches the owner, translated; the log has no ERROR for it."""
    await hass.async_block_till_done(wait_background_tasks=True)
    client = await hass_ws_client(hass)
    caplog.set_level(logging.INFO)
    caplog.clear()
    await client.send_json_auto_id(
        {
            "type": "call_service",
            "domain": NUMBER_DOMAIN,
            "service": SERVICE_SET_VALUE,
            "service_data": {ATTR_ENTITY_ID: CELL_OV, ATTR_VALUE: 3.453},
        }
    )
    reply = await client.receive_json()
    assert reply["success"] is False
    assert reply["error"]["translation_key"] == "number_off_step"
    assert reply["error"]["translation_domain"] == DOMAIN
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert any(
        r.levelno == logging.INFO and "3.453 V cannot be set" in r.getMessage()
        for r in caplog.records
        if r.name == WEBSOCKET_LOGGER
    )

    # A pack that does not answer is a failure, not a refusal: Home Assistant's error stays.
    sim.set_offline(1)
    caplog.clear()
    await client.send_json_auto_id(
        {
            "type": "call_service",
            "domain": NUMBER_DOMAIN,
            "service": SERVICE_SET_VALUE,
            "service_data": {ATTR_ENTITY_ID: CELL_OV, ATTR_VALUE: 3.6},
        }
    )
    reply = await client.receive_json()
    assert reply["error"]["translation_key"] == "pack_no_reply"
    assert any(r.levelno == logging.ERROR for r in caplog.records if r.name == WEBSOCKET_LOGGER)
