"""Every value Home Assistant shows for a pack is that pack's: compared with the simulator's truth.

Simulated time stands still, so a pack's truth is exactly the block it would send now. Each
refresh under a hostile line (late replies, another master, a gateway that stops forwarding, a
pack that goes away) is followed by a read of every pack's voltage and state of charge in Home
Assistant: a state is either unavailable or its own pack's value. A wrong value fails the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.syscom_ress.const import DOMAIN
from custom_components.syscom_ress.ress_bms.simulator import Simulator
from custom_components.syscom_ress.ress_bms.simulator.gateway import Gateway

from .conftest import entry_data
from .control_helpers import refresh

SOCS = {1: 20.0, 2: 55.0, 3: 90.0}
"""Far apart: one pack's voltage and state of charge can never pass for another's."""
REFRESHES = 12


@pytest.fixture
def distinct(sim: Simulator) -> Simulator:
    for address, soc in SOCS.items():
        sim.pack(address).physics.soc = soc
    return sim


@pytest.fixture
async def gateway(distinct: Simulator) -> AsyncIterator[Gateway]:
    async with Gateway(distinct.host, distinct.port, packs=3, foreign_timeout=0.5) as gateway:
        yield gateway


async def set_up(hass: HomeAssistant, sim: Simulator, url: str, poll_mode: str) -> MockConfigEntry:
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="RESS battery",  # the stack's name: entity ids sensor.ress_battery_...
        unique_id=sim.pack(1).bms_serial,
        data=entry_data(url, poll_mode=poll_mode),
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


def check(hass: HomeAssistant, sim: Simulator) -> tuple[list[str], int]:
    """(wrong values shown, pack values shown) right now."""
    wrong, shown = [], 0
    for address in SOCS:
        truth = sim.pack(address).analog()
        for key, expected in (("voltage", truth.voltage), ("state_of_charge", truth.soc)):
            state = hass.states.get(f"sensor.ress_battery_pack_{address}_{key}")
            assert state is not None, f"pack {address} {key}"
            if state.state == STATE_UNAVAILABLE:
                continue
            shown += 1
            if abs(float(state.state) - expected) > 0.01:
                wrong.append(f"pack {address} {key} {state.state}, truth {expected}")
    return wrong, shown


async def refreshes(
    hass: HomeAssistant, sim: Simulator, entry: MockConfigEntry, count: int = REFRESHES
) -> tuple[list[str], int]:
    wrong, shown = [], 0
    for _ in range(count):
        await refresh(hass, entry.runtime_data)
        found, seen = check(hass, sim)
        wrong += found
        shown += seen
    return wrong, shown


@pytest.mark.parametrize("poll_mode", ["broadcast", "relay", "direct"])
async def test_late_replies(hass: HomeAssistant, distinct: Simulator, poll_mode: str) -> None:
    entry = await set_up(hass, distinct, distinct.url, poll_mode)
    assert check(hass, distinct) == ([], 6)
    distinct.faults.set(late=0.3, late_delay=0.45)  # past the 0.3 s timeout, into later exchanges
    wrong, shown = await refreshes(hass, distinct, entry)
    assert wrong == []
    assert distinct.faults.injected["late"] >= 5
    assert shown > 0
    distinct.faults.clear()
    await refresh(hass, entry.runtime_data)
    assert check(hass, distinct) == ([], 6)  # and everything is back


async def test_another_master_on_the_bus(
    hass: HomeAssistant, distinct: Simulator, gateway: Gateway
) -> None:
    entry = await set_up(hass, distinct, gateway.url, "relay")
    gateway.set(foreign=0.5)
    wrong, shown = await refreshes(hass, distinct, entry)
    assert wrong == []
    assert gateway.injected["foreign"] >= 5
    assert shown > 0


async def test_a_gateway_that_stops_forwarding_without_closing(
    hass: HomeAssistant, distinct: Simulator, gateway: Gateway
) -> None:
    entry = await set_up(hass, distinct, gateway.url, "auto")
    gateway.half_open = True
    wrong, _ = await refreshes(hass, distinct, entry, 4)
    assert wrong == []
    # Nothing gets through: the packs go unavailable rather than keep their values forever.
    assert all(
        hass.states.get(f"sensor.ress_battery_pack_{n}_voltage").state == STATE_UNAVAILABLE
        for n in SOCS
    )
    distinct.pack(2).physics.soc = 70.0  # the truth moved meanwhile
    gateway.half_open = False
    gateway.reset()  # what a gateway does when it comes back
    await refresh(hass, entry.runtime_data)
    assert check(hass, distinct) == ([], 6)


async def test_a_pack_going_offline_and_coming_back(
    hass: HomeAssistant, distinct: Simulator
) -> None:
    entry = await set_up(hass, distinct, distinct.url, "auto")
    distinct.set_offline(2)
    wrong, _ = await refreshes(hass, distinct, entry, 4)
    assert wrong == []
    assert hass.states.get("sensor.ress_battery_pack_2_voltage").state == STATE_UNAVAILABLE
    assert hass.states.get("sensor.ress_battery_pack_3_voltage").state != STATE_UNAVAILABLE
    distinct.pack(2).physics.soc = 40.0
    distinct.set_offline(2, offline=False)
    await refresh(hass, entry.runtime_data)
    assert check(hass, distinct) == ([], 6)


async def test_another_battery_on_the_link_is_not_shown_as_this_stack(
    hass: HomeAssistant, distinct: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A swapped cable or gateway: another battery's values never appear under this entry."""
    from custom_components.syscom_ress import coordinator as coordinator_module

    entry = await set_up(hass, distinct, distinct.url, "auto")
    ours = distinct.pack(1).bms_serial
    distinct.pack(1).bms_serial = "OTHER-BATTERY-01"
    monkeypatch.setattr(coordinator_module, "REDISCOVERY_INTERVAL", timedelta(0))
    await refresh(hass, entry.runtime_data)
    coordinator = entry.runtime_data
    assert not coordinator.last_update_success
    assert coordinator.last_exception.translation_key == "other_battery"
    assert "OTHER-BATTERY-01" in str(coordinator.last_exception)
    assert check(hass, distinct)[1] == 0  # nothing shown
    distinct.pack(1).bms_serial = ours
    await refresh(hass, entry.runtime_data)
    assert coordinator.last_update_success
    assert check(hass, distinct) == ([], 6)
