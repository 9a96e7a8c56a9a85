"""Switches: MOS, 99H controls and forced shutdown, on the simulator."""

from __future__ import annotations

from homeassistant.components.switch import DOMAIN as SWITCH_DOMAIN
from homeassistant.const import (
    ATTR_ENTITY_ID,
    SERVICE_TURN_OFF,
    SERVICE_TURN_ON,
    STATE_OFF,
    STATE_ON,
    STATE_UNAVAILABLE,
    EntityCategory,
)
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.syscom_ress import switch
from custom_components.syscom_ress.const import DOMAIN
from custom_components.syscom_ress.ress_bms.simulator import Simulator

from .control_helpers import PACK1, PACK2, chained, enable_shutdown, refresh

__all__ = ["enable_shutdown"]

SHUTDOWN2 = f"switch.{PACK2}forced_shutdown"


async def _switch(hass: HomeAssistant, entity_id: str, on: bool) -> None:
    await hass.services.async_call(
        SWITCH_DOMAIN,
        SERVICE_TURN_ON if on else SERVICE_TURN_OFF,
        {ATTR_ENTITY_ID: entity_id},
        blocking=True,
    )
    # The switch asked for a refresh; within the debouncer's cooldown it comes later: now.
    for entry in hass.config_entries.async_loaded_entries(DOMAIN):
        await refresh(hass, entry.runtime_data)


async def test_switches_per_pack(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """Seven per pack, configuration category; low gear and shutdown disabled by default."""
    assert switch.PARALLEL_UPDATES == 1
    registry = er.async_get(hass)
    switches = [
        e
        for e in er.async_entries_for_config_entry(registry, loaded_entry.entry_id)
        if e.domain == SWITCH_DOMAIN and "_pack1_" in e.unique_id
    ]
    assert len(switches) == 7
    assert all(e.entity_category is EntityCategory.CONFIG for e in switches)
    assert sorted(e.unique_id.rsplit("_pack1_")[1] for e in switches if e.disabled_by) == [
        "forced_shutdown",
        "limiter_low_gear",
    ]
    assert hass.states.get(f"switch.{PACK1}charging_allowed").state == STATE_ON
    assert hass.states.get(f"switch.{PACK1}discharging_allowed").state == STATE_ON
    assert hass.states.get(f"switch.{PACK1}led_alarm").state == STATE_ON
    assert hass.states.get(f"switch.{PACK1}current_limiter").state == STATE_ON


@pytest.mark.parametrize(
    ("entity", "bit", "bit_when_on"),
    [
        ("buzzer", "buzzer_enabled", True),
        ("led_alarm", "led_alarm_disabled", False),
        ("current_limiter", "current_limit_disabled", False),
    ],
)
async def test_99h_controls(
    hass: HomeAssistant,
    sim: Simulator,
    loaded_entry: MockConfigEntry,
    entity: str,
    bit: str,
    bit_when_on: bool,
) -> None:
    """Each 99H control reaches its pack only and shows from the control status byte."""
    entity_id = f"switch.{PACK2}{entity}"
    status = loaded_entry.runtime_data.pack
    before = status(1).status.flag(bit)
    for on in (True, False, True):
        await _switch(hass, entity_id, on)
        assert hass.states.get(entity_id).state == (STATE_ON if on else STATE_OFF)
        assert status(2).status.flag(bit) is (on == bit_when_on)
    assert status(1).status.flag(bit) is before  # the master was not touched


async def test_mos_switches(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """Charging forbidden opens the charge MOS; the firmware's refusals are translated."""
    charging = f"switch.{PACK1}charging_allowed"
    await _switch(hass, charging, False)
    assert hass.states.get(charging).state == STATE_OFF
    assert hass.states.get(f"binary_sensor.{PACK1}charge_mos").state == STATE_OFF
    assert hass.states.get(f"binary_sensor.{PACK1}discharge_mos").state == STATE_ON

    # Both MOS off at once: refused by the firmware.
    with pytest.raises(HomeAssistantError) as err:
        await _switch(hass, f"switch.{PACK1}discharging_allowed", False)
    assert err.value.translation_key == "mos_refused"

    await _switch(hass, charging, True)
    assert hass.states.get(charging).state == STATE_ON
    assert hass.states.get(f"binary_sensor.{PACK1}charge_mos").state == STATE_ON

    # Not against the current flowing through it.
    sim.pack(1).demand = -30.0
    sim.advance(1)
    with pytest.raises(HomeAssistantError) as err:
        await _switch(hass, f"switch.{PACK1}discharging_allowed", False)
    assert err.value.translation_key == "mos_refused"
    assert "Pack 1 refused to switch the MOS" in str(err.value)


async def test_a_silent_pack_is_a_translated_error(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """A command to a pack that does not answer: HomeAssistantError, translated."""
    sim.set_offline(2)
    with pytest.raises(HomeAssistantError) as err:
        await _switch(hass, f"switch.{PACK2}buzzer", True)
    assert err.value.translation_key == "pack_no_reply"


@pytest.mark.usefixtures("enable_shutdown")
async def test_forced_shutdown(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """Shutdown makes the pack unavailable at once; off is explained; the key wakes it."""
    coordinator = loaded_entry.runtime_data
    assert hass.states.get(SHUTDOWN2).state == STATE_OFF
    await _switch(hass, SHUTDOWN2, False)  # already off: nothing to do

    await _switch(hass, SHUTDOWN2, True)
    assert sim.pack(2).bms.shutdown
    assert hass.states.get(SHUTDOWN2).state == STATE_ON
    assert hass.states.get(f"sensor.{PACK2}voltage").state == STATE_UNAVAILABLE
    assert hass.states.get(f"switch.{PACK2}buzzer").state == STATE_UNAVAILABLE
    assert hass.states.get(f"sensor.{PACK1}voltage").state != STATE_UNAVAILABLE

    await refresh(hass, coordinator)
    assert hass.states.get(SHUTDOWN2).state == STATE_ON
    assert hass.states.get(f"sensor.{PACK2}voltage").state == STATE_UNAVAILABLE
    with pytest.raises(HomeAssistantError) as err:
        await _switch(hass, SHUTDOWN2, False)
    assert err.value.translation_key == "cannot_wake"
    assert "power key" in str(err.value)

    sim.wake(2)  # the key
    await refresh(hass, coordinator)
    assert hass.states.get(SHUTDOWN2).state == STATE_OFF
    assert hass.states.get(f"sensor.{PACK2}voltage").state != STATE_UNAVAILABLE


@pytest.mark.usefixtures("enable_shutdown")
async def test_no_shutdown_under_load(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """Under load the BMS would reboot instead: refused before anything is sent."""
    sim.pack(2).demand = -40.0
    sim.advance(1)
    await refresh(hass, loaded_entry.runtime_data)
    with pytest.raises(ServiceValidationError) as err:
        await _switch(hass, SHUTDOWN2, True)
    assert err.value.translation_key == "shutdown_under_load"
    assert not sim.pack(2).bms.shutdown
    assert hass.states.get(SHUTDOWN2).state == STATE_OFF


@pytest.mark.usefixtures("enable_shutdown")
async def test_shutdown_state_from_the_v31_bit(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """A pack that reports its own shutdown bit (V3.1 indication b6) shows as shut down."""
    coordinator = loaded_entry.runtime_data
    pack = coordinator.pack(2)
    status = pack.status
    from dataclasses import replace

    from custom_components.syscom_ress.ress_bms.status import BITS_BY_KEY, StatusByte

    bit = BITS_BY_KEY["shutdown"]
    bytes_ = dict(status.bytes_)
    bytes_[StatusByte.INDICATION] |= 1 << bit.bit
    coordinator._packs[2] = replace(pack, status=replace(status, bytes_=bytes_))
    coordinator.async_set_pack_updated()
    await hass.async_block_till_done()
    assert hass.states.get(SHUTDOWN2).state == STATE_ON


async def test_no_switches_where_commands_cannot_reach(
    hass: HomeAssistant,
    sim: Simulator,
    config_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In a master/slave chain only the master has switches."""
    chained(monkeypatch)
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get(f"switch.{PACK1}buzzer") is not None
    assert hass.states.get(f"switch.{PACK2}buzzer") is None
