"""Energy charged and discharged: integrated from power, never decreasing, kept across restarts."""

from __future__ import annotations

import asyncio

from homeassistant.core import HomeAssistant, State
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    mock_restore_cache_with_extra_data,
)

from custom_components.syscom_ress.const import MAX_INTEGRATION_GAP
from custom_components.syscom_ress.coordinator import EnergyCounter
from custom_components.syscom_ress.ress_bms.simulator import Simulator

CHARGED = "sensor.ress_battery_energy_charged"
DISCHARGED = "sensor.ress_battery_energy_discharged"


def test_trapezoids() -> None:
    """Constant power for an hour is its kWh; a ramp counts its mean."""
    energy = EnergyCounter()
    energy.add(1, 0.0, -1000.0)  # first reading: nothing yet
    assert (energy.charged, energy.discharged) == (0.0, 0.0)
    for second in range(60, 3601, 60):
        energy.add(1, float(second), -1000.0)
    assert energy.discharged == pytest.approx(1.0)
    energy.add(1, 3660.0, -3000.0)  # ramp 1 kW -> 3 kW over a minute: 2 kW mean
    assert energy.discharged == pytest.approx(1.0 + 2 / 60)
    assert energy.charged == 0.0


def test_sign_change_is_split_at_zero() -> None:
    """From -1 kW to +1 kW in two minutes: half a minute of each, at half power on average."""
    energy = EnergyCounter()
    energy.add(1, 0.0, -1000.0)
    energy.add(1, 120.0, 1000.0)
    assert energy.discharged == pytest.approx(1000 * 60 / 2 / 3_600_000)
    assert energy.charged == pytest.approx(1000 * 60 / 2 / 3_600_000)


def test_gaps_and_silence_are_not_bridged() -> None:
    """A long gap, or a pack that went silent in between, adds nothing."""
    energy = EnergyCounter()
    energy.add(1, 0.0, 5000.0)
    energy.add(1, MAX_INTEGRATION_GAP + 1, 5000.0)
    assert energy.charged == 0.0
    energy.forget(1)
    energy.add(1, MAX_INTEGRATION_GAP + 2, 5000.0)
    assert energy.charged == 0.0
    energy.add(1, MAX_INTEGRATION_GAP + 2, 5000.0)  # same moment twice: nothing
    assert energy.charged == 0.0


def test_packs_are_integrated_separately() -> None:
    """Each pack has its own previous reading; totals are their sum."""
    energy = EnergyCounter()
    energy.add(1, 0.0, 3600.0)
    energy.add(2, 0.0, -7200.0)
    energy.add(1, 500.0, 3600.0)
    energy.add(2, 500.0, -7200.0)
    assert energy.charged == pytest.approx(0.5)
    assert energy.discharged == pytest.approx(1.0)


def test_each_pack_has_its_share() -> None:
    """The same trapezoids, per pack; restored per pack without touching the stack's total."""
    energy = EnergyCounter()
    energy.add(1, 0.0, 3600.0)
    energy.add(2, 0.0, -7200.0)
    energy.add(1, 500.0, 3600.0)
    energy.add(2, 500.0, -7200.0)
    assert energy.total("energy_charged", 1) == pytest.approx(0.5)
    assert energy.total("energy_discharged", 2) == pytest.approx(1.0)
    assert energy.total("energy_discharged", 1) == 0.0
    assert energy.total("energy_charged", 3) == 0.0  # never seen
    energy.restore("energy_charged", 4.0, 1)
    energy.restore("energy_charged", 4.0, 1)  # once
    assert energy.total("energy_charged", 1) == pytest.approx(4.5)
    assert energy.total("energy_charged") == pytest.approx(0.5)
    energy.restore("energy_charged", 7.0)  # the stack's own baseline is separate
    assert energy.total("energy_charged") == pytest.approx(7.5)


def test_restore_once() -> None:
    """A restored total is added once per counter; nonsense is ignored."""
    energy = EnergyCounter()
    energy.charged = 0.5
    energy.restore("energy_charged", 10.0)
    energy.restore("energy_charged", 10.0)
    energy.restore("energy_discharged", -1.0)
    energy.restore("other", 3.0)
    assert energy.total("energy_charged") == 10.5
    assert energy.total("energy_discharged") == 0.0


async def _discharge(hass: HomeAssistant, sim: Simulator, entry: MockConfigEntry) -> None:
    """Discharge every pack at 100 A (about 16 kW) for half a second of real time."""
    coordinator = entry.runtime_data
    for address in (1, 2, 3):
        sim.pack(address).demand = -100.0
    sim.advance(2)
    await coordinator.async_refresh()
    await asyncio.sleep(0.5)
    await coordinator.async_refresh()
    await hass.async_block_till_done()


async def test_counts_while_discharging(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """About 16 kW for half a second shows up as watt-hours discharged, none charged."""
    await _discharge(hass, sim, loaded_entry)
    discharged = float(hass.states.get(DISCHARGED).state)
    assert 0.001 <= discharged < 0.01
    assert float(hass.states.get(CHARGED).state) == 0.0


async def test_monotonic_across_restart_and_bad_reads(
    hass: HomeAssistant, sim: Simulator, config_entry: MockConfigEntry
) -> None:
    """Restored totals are the baseline; silence or a zero-filled block never lowers them."""
    mock_restore_cache_with_extra_data(
        hass,
        [
            (
                State(DISCHARGED, "123.456"),
                {"native_value": 123.456, "native_unit_of_measurement": "kWh"},
            ),
            (
                State(CHARGED, "unknown"),
                {"native_value": None, "native_unit_of_measurement": "kWh"},
            ),
        ],
    )
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert float(hass.states.get(DISCHARGED).state) == 123.456
    assert float(hass.states.get(CHARGED).state) == 0.0

    await _discharge(hass, sim, config_entry)
    after = float(hass.states.get(DISCHARGED).state)
    assert after > 123.456

    # Bad reads: a pack reported zero-filled by the master, then the whole bus silent.
    coordinator = config_entry.runtime_data
    sim.set_offline(2)
    await coordinator.async_refresh()
    assert float(hass.states.get(DISCHARGED).state) >= after
    for address in (1, 2, 3):
        sim.set_offline(address)
    for _ in range(3):
        await coordinator.async_refresh()
    await hass.async_block_till_done()
    assert round(coordinator.energy.discharged, 3) >= after

    # A reload (as after a restart) keeps the total.
    for address in (1, 2, 3):
        sim.set_offline(address, False)
    total = coordinator.energy.discharged
    assert await hass.config_entries.async_reload(config_entry.entry_id)
    await hass.async_block_till_done()
    assert float(hass.states.get(DISCHARGED).state) == pytest.approx(total, abs=0.001)
    assert config_entry.runtime_data.energy.discharged >= round(total, 3)


async def test_unparsable_restore_is_ignored(
    hass: HomeAssistant, sim: Simulator, config_entry: MockConfigEntry
) -> None:
    """A stored value that is not a number starts the counter from zero."""
    mock_restore_cache_with_extra_data(
        hass,
        [
            (
                State(CHARGED, "abc"),
                {"native_value": "abc", "native_unit_of_measurement": "kWh"},
            ),
        ],
    )
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert float(hass.states.get(CHARGED).state) == 0.0


PACK2_DISCHARGED = "sensor.ress_battery_pack_2_energy_discharged"


def _enable_pack_counters(hass: HomeAssistant, sim: Simulator, entry: MockConfigEntry) -> None:
    """Register the packs' counters before set-up, as an owner who enabled them would have."""
    registry = er.async_get(hass)
    serial = sim.pack(1).bms_serial
    for address in (1, 2, 3):
        for key in ("energy_charged", "energy_discharged"):
            registry.async_get_or_create(
                "sensor",
                "syscom_ress",
                f"{serial}_pack{address}_{key}",
                config_entry=entry,
                suggested_object_id=f"ress_battery_pack_{address}_{key}",
            )


async def test_pack_counters_off_by_default(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    """Each pack's counters exist, disabled: the stack's feed the energy dashboard."""
    entry = er.async_get(hass).async_get(PACK2_DISCHARGED)
    assert entry is not None
    assert entry.disabled_by is er.RegistryEntryDisabler.INTEGRATION


async def test_pack_counters_add_up_and_survive_a_restart(
    hass: HomeAssistant, sim: Simulator, config_entry: MockConfigEntry
) -> None:
    """Enabled, each pack counts its own share; the stack's total is their sum; restored."""
    mock_restore_cache_with_extra_data(
        hass,
        [
            (
                State(PACK2_DISCHARGED, "2.5"),
                {"native_value": 2.5, "native_unit_of_measurement": "kWh"},
            ),
        ],
    )
    config_entry.add_to_hass(hass)
    _enable_pack_counters(hass, sim, config_entry)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert float(hass.states.get(PACK2_DISCHARGED).state) == 2.5

    await _discharge(hass, sim, config_entry)
    energy = config_entry.runtime_data.energy
    shares = [energy.total("energy_discharged", address) for address in (1, 2, 3)]
    assert shares[0] > 0 and shares[2] > 0
    assert shares[1] > 2.5
    assert sum(shares) - 2.5 == pytest.approx(energy.discharged)
    pack1 = float(hass.states.get("sensor.ress_battery_pack_1_energy_discharged").state)
    assert pack1 == round(shares[0], 3) > 0
    assert float(hass.states.get("sensor.ress_battery_pack_1_energy_charged").state) == 0.0

    total = energy.total("energy_discharged", 2)
    assert await hass.config_entries.async_reload(config_entry.entry_id)
    await hass.async_block_till_done()
    assert float(hass.states.get(PACK2_DISCHARGED).state) == pytest.approx(total, abs=0.001)
