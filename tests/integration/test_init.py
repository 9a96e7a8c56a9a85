"""Set-up, unload, reload, devices, packs that come and go, and the coordinator's failure modes."""

from __future__ import annotations

from datetime import timedelta
import logging
import random

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.helpers.update_coordinator import UpdateFailed
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.syscom_ress import coordinator as coordinator_module
from custom_components.syscom_ress.const import DOMAIN, MANUFACTURER, PACK_MODEL, STACK_MODEL
from custom_components.syscom_ress.coordinator import model_id
from custom_components.syscom_ress.ress_bms.simulator import Pack, Simulator
from tests.ress_bms.fakepeer import FakePeer, reply

from .conftest import entry_data


async def test_setup_unload_reload(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """Set-up opens the link and polls; unload closes it; reload sets everything up again."""
    coordinator = loaded_entry.runtime_data
    assert loaded_entry.state is ConfigEntryState.LOADED
    assert coordinator.link.connected
    assert hass.states.get("sensor.ress_battery_state_of_charge") is not None

    assert await hass.config_entries.async_reload(loaded_entry.entry_id)
    await hass.async_block_till_done()
    assert loaded_entry.state is ConfigEntryState.LOADED
    assert not coordinator.link.connected
    reloaded = loaded_entry.runtime_data
    assert reloaded is not coordinator

    assert await hass.config_entries.async_unload(loaded_entry.entry_id)
    assert loaded_entry.state is ConfigEntryState.NOT_LOADED
    assert not reloaded.link.connected
    assert hass.states.get("sensor.ress_battery_state_of_charge").state == STATE_UNAVAILABLE


async def test_not_ready_while_silent(
    hass: HomeAssistant, sim: Simulator, config_entry: MockConfigEntry
) -> None:
    """A stack that does not answer at start-up is retried later (test before set-up)."""
    sim.set_offline(1)
    config_entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(config_entry.entry_id)
    assert config_entry.state is ConfigEntryState.SETUP_RETRY
    assert config_entry.reason is not None
    assert "does not answer" in config_entry.reason


async def test_ver20_is_a_setup_error(hass: HomeAssistant, socket_enabled: None) -> None:
    """A VER 0x20 battery behind the configured port: a permanent error, no retries."""

    async def script(frame, writer) -> None:  # type: ignore[no-untyped-def]
        writer.write(reply(frame, rtn=0x01))

    async with FakePeer(script) as peer:
        entry = MockConfigEntry(domain=DOMAIN, unique_id="x", data=entry_data(peer.url))
        entry.add_to_hass(hass)
        assert not await hass.config_entries.async_setup(entry.entry_id)
        assert entry.state is ConfigEntryState.SETUP_ERROR


async def test_not_ready_when_first_poll_fails(hass: HomeAssistant, socket_enabled: None) -> None:
    """Discovery works but the first poll gets nothing: retried later, link closed."""

    async def script(frame, writer) -> None:  # type: ignore[no-untyped-def]
        if frame.cid2 == 0x90:
            writer.write(reply(frame, b"\x01"))
        elif frame.cid2 == 0xC1:
            writer.write(reply(frame, b"P16S100A-1812-1.00".ljust(20)))
        elif frame.cid2 == 0xC2:
            writer.write(reply(frame, b"SERIAL1".ljust(40)))
        # 42H/44H: silence

    async with FakePeer(script) as peer:
        entry = MockConfigEntry(domain=DOMAIN, unique_id="SERIAL1", data=entry_data(peer.url))
        entry.add_to_hass(hass)
        assert not await hass.config_entries.async_setup(entry.entry_id)
        assert entry.state is ConfigEntryState.SETUP_RETRY
        assert "No pack of the stack" in (entry.reason or "")


async def test_devices(hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry) -> None:
    """A stack device and one device per pack, linked to it, with model, firmware and serial."""
    registry = dr.async_get(hass)
    serial = sim.pack(1).bms_serial
    stack = registry.async_get_device_by_identifier((DOMAIN, serial), loaded_entry.entry_id)
    assert stack is not None
    assert stack.manufacturer == MANUFACTURER
    assert stack.model == STACK_MODEL
    assert stack.serial_number == serial
    assert stack.name == "RESS battery"
    for address in (1, 2, 3):
        pack = registry.async_get_device_by_identifier(
            (DOMAIN, f"{serial}_pack{address}"), loaded_entry.entry_id
        )
        assert pack is not None
        assert pack.via_device_id == stack.id
        assert pack.manufacturer == MANUFACTURER
        assert pack.model == PACK_MODEL
        assert pack.model_id == "P16S100A"
        assert pack.sw_version == "P16S100A-1812-1.00"
        assert pack.serial_number == sim.pack(address).bms_serial
        assert pack.name == f"RESS battery pack {address}"
    assert len(dr.async_entries_for_config_entry(registry, loaded_entry.entry_id)) == 4


def test_model_id() -> None:
    """The model is the part of the C1H version before the first dash."""
    assert model_id("P16S100A-1812-1.00") == "P16S100A"
    assert model_id("") is None
    assert model_id(None) is None


async def test_pack_found_later_without_reload(
    hass: HomeAssistant,
    sim: Simulator,
    loaded_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A fourth pack on the bus becomes a device with entities at the next rediscovery."""
    coordinator = loaded_entry.runtime_data
    stack = sim.stack
    stack.packs.append(Pack(4, stack.cells, random.Random(4), stack.firmware, stack.now))

    await coordinator.async_refresh()  # not yet: rediscovery runs every 10 minutes
    assert hass.states.get("sensor.ress_battery_pack_4_voltage") is None

    monkeypatch.setattr(coordinator_module, "REDISCOVERY_INTERVAL", timedelta(0))
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    assert hass.states.get("sensor.ress_battery_pack_4_voltage").state != STATE_UNAVAILABLE
    serial = sim.pack(1).bms_serial
    device = dr.async_get(hass).async_get_device_by_identifier(
        (DOMAIN, f"{serial}_pack4"), loaded_entry.entry_id
    )
    assert device is not None
    assert loaded_entry.state is ConfigEntryState.LOADED

    # Same count again: nothing new, no device churn.
    assert not await coordinator.async_rediscover()


async def test_rediscovery_keeps_packs_that_went_missing(
    hass: HomeAssistant, sim: Simulator
) -> None:
    """Direct mode rescans the bus; a pack missing from the scan is still polled."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="RESS battery",
        unique_id="direct",
        data=entry_data(sim.url, poll_mode="direct"),
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    coordinator = entry.runtime_data
    sim.set_offline(3)
    stack = sim.stack
    stack.packs.append(Pack(4, stack.cells, random.Random(4), stack.firmware, stack.now))
    assert await coordinator.async_rediscover()
    assert coordinator.stack is not None
    assert [p.address for p in coordinator.stack.packs] == [1, 2, 3, 4]
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    assert hass.states.get("sensor.ress_battery_pack_4_voltage").state != STATE_UNAVAILABLE
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_rediscovery_failure_is_quiet(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """A failed rediscovery changes nothing."""
    coordinator = loaded_entry.runtime_data
    sim.set_offline(1)
    assert not await coordinator.async_rediscover()
    assert coordinator.stack is not None
    assert len(coordinator.stack.packs) == 3


async def test_remove_stale_pack_device(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    sim: Simulator,
    loaded_entry: MockConfigEntry,
) -> None:
    """A silent pack can be removed; live packs, the master and the stack cannot."""
    assert await async_setup_component(hass, "config", {})
    coordinator = loaded_entry.runtime_data
    registry = dr.async_get(hass)
    serial = sim.pack(1).bms_serial
    stack = registry.async_get_device_by_identifier((DOMAIN, serial), loaded_entry.entry_id)
    master = registry.async_get_device_by_identifier(
        (DOMAIN, f"{serial}_pack1"), loaded_entry.entry_id
    )
    pack3 = registry.async_get_device_by_identifier(
        (DOMAIN, f"{serial}_pack3"), loaded_entry.entry_id
    )
    assert stack is not None
    assert master is not None
    assert pack3 is not None
    client = await hass_ws_client(hass)

    async def remove(device_id: str) -> bool:
        await client.send_json_auto_id(
            {
                "type": "config/device_registry/remove_config_entry",
                "config_entry_id": loaded_entry.entry_id,
                "device_id": device_id,
            }
        )
        response = await client.receive_json()
        return bool(response["success"])

    assert not await remove(stack.id)
    assert not await remove(master.id)
    assert not await remove(pack3.id)  # still answering

    sim.set_offline(3)
    for _ in range(3):
        await coordinator.async_refresh()
    assert await remove(pack3.id)
    assert registry.async_get(pack3.id) is None
    assert coordinator.pack(3) is None
    assert coordinator.stack is not None
    assert [p.address for p in coordinator.stack.packs] == [1, 2]
    entities = er.async_entries_for_config_entry(er.async_get(hass), loaded_entry.entry_id)
    assert not [e for e in entities if e.device_id == pack3.id]

    # It comes back: rediscovery finds it again and it gets a fresh device and entities.
    sim.set_offline(3, False)
    assert await coordinator.async_rediscover()
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    assert (
        registry.async_get_device_by_identifier((DOMAIN, f"{serial}_pack3"), loaded_entry.entry_id)
        is not None
    )
    assert hass.states.get("sensor.ress_battery_pack_3_voltage").state != STATE_UNAVAILABLE


async def test_silent_pack_only_its_entities_unavailable(
    hass: HomeAssistant,
    sim: Simulator,
    loaded_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Pack 2 goes quiet: after 3 refreshes only its entities go; one log line each way."""
    coordinator = loaded_entry.runtime_data
    pack2 = "sensor.ress_battery_pack_2_voltage"
    pack2_bit = "binary_sensor.ress_battery_pack_2_protection"
    others = ["sensor.ress_battery_pack_1_voltage", "sensor.ress_battery_pack_3_voltage"]
    before = hass.states.get(pack2).state
    caplog.set_level(logging.INFO, logger="custom_components.syscom_ress")

    sim.set_offline(2)
    for refresh in range(1, 4):
        await coordinator.async_refresh()
        await hass.async_block_till_done()
        if refresh < 3:
            # Grace: the last value stays for two missed refreshes.
            assert hass.states.get(pack2).state == before
    assert hass.states.get(pack2).state == STATE_UNAVAILABLE
    assert hass.states.get(pack2_bit).state == STATE_UNAVAILABLE
    for entity_id in others:
        assert hass.states.get(entity_id).state != STATE_UNAVAILABLE
    assert hass.states.get("sensor.ress_battery_packs_online").state == "2"
    assert coordinator.last_update_success
    await coordinator.async_refresh()
    assert caplog.text.count("Pack 2 on") == 1
    assert "stopped answering" in caplog.text

    sim.set_offline(2, False)
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    assert hass.states.get(pack2).state != STATE_UNAVAILABLE
    assert hass.states.get(pack2_bit).state == "off"
    assert caplog.text.count("Pack 2 on") == 2
    assert "answers again" in caplog.text


async def test_silent_stack_fails_update_and_recovers(
    hass: HomeAssistant, sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing answers: the update fails after 3 refreshes, and the bus is still asked at every
    interval (no growing back-off), so its return is seen at the next refresh."""
    serial = sim.pack(1).bms_serial
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="RESS battery",
        unique_id=serial,
        data=entry_data(sim.url, poll_mode="broadcast"),
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    coordinator = entry.runtime_data
    for address in (1, 2, 3):
        sim.set_offline(address)
    for _ in range(2):
        await coordinator.async_refresh()
        assert coordinator.last_update_success
    await coordinator.async_refresh()
    assert not coordinator.last_update_success
    failure = coordinator.last_exception
    assert isinstance(failure, UpdateFailed)
    assert failure.translation_key == "stack_silent"
    assert failure.retry_after is None  # the next refresh comes at the scan interval
    await coordinator.async_refresh()
    assert isinstance(coordinator.last_exception, UpdateFailed)
    assert coordinator.last_exception.retry_after is None
    assert coordinator.link.backoff_max <= coordinator.update_interval.total_seconds()
    await hass.async_block_till_done()
    assert hass.states.get("sensor.ress_battery_pack_1_voltage").state == STATE_UNAVAILABLE
    assert hass.states.get("sensor.ress_battery_state_of_charge").state == STATE_UNAVAILABLE
    assert hass.states.get("sensor.ress_battery_link_quality").state == STATE_UNAVAILABLE
    # The coordinator logs the failure once; the packs add nothing while the whole bus is down.
    assert "stopped answering" not in caplog.text
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "No pack of the stack" in errors[0].getMessage()

    for address in (1, 2, 3):
        sim.set_offline(address, False)
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    assert coordinator.last_update_success
    assert hass.states.get("sensor.ress_battery_pack_1_voltage").state != STATE_UNAVAILABLE
    assert "answers again" not in caplog.text
    assert await hass.config_entries.async_unload(entry.entry_id)
