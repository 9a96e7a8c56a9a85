"""Actions: read and write parameters, read the history log, set the clocks."""

from __future__ import annotations

from datetime import datetime, timedelta

from homeassistant.auth.models import User
from homeassistant.const import ATTR_DEVICE_ID
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError, Unauthorized
from homeassistant.helpers import device_registry as dr
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.syscom_ress.const import DOMAIN
from custom_components.syscom_ress.ress_bms.commands import Command
from custom_components.syscom_ress.ress_bms.params import PARAMETERS
from custom_components.syscom_ress.ress_bms.simulator import Simulator

from .control_helpers import chained, settle_history


def _device(hass: HomeAssistant, sim: Simulator, address: int | None) -> str:
    """The device id of a pack (``None``: the stack)."""
    serial = sim.pack(1).bms_serial
    identifier = serial if address is None else f"{serial}_pack{address}"
    (entry,) = hass.config_entries.async_entries(DOMAIN)
    device = dr.async_get(hass).async_get_device_by_identifier((DOMAIN, identifier), entry.entry_id)
    assert device is not None
    return device.id


async def _call(hass: HomeAssistant, service: str, data: dict, **kwargs):  # type: ignore[no-untyped-def]
    return await hass.services.async_call(
        DOMAIN, service, data, blocking=True, return_response=True, **kwargs
    )


async def test_read_parameters(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """Every parameter of the pack, with unit and range."""
    sim.pack(2).bms.settings.set("cell_over_voltage_protection", 3.6)
    response = await _call(hass, "read_parameters", {ATTR_DEVICE_ID: _device(hass, sim, 2)})
    assert response["pack"] == 2
    assert set(response["parameters"]) == {p.key for p in PARAMETERS}
    assert response["parameters"]["cell_over_voltage_protection"] == {
        "value": 3.6,
        "unit": "V",
        "minimum": 2.5,
        "maximum": 4.5,
        "step": 0.01,
        "threshold": True,
    }
    assert loaded_entry.runtime_data.control.parameters(2)["cell_over_voltage_protection"] == 3.6

    # The stack device stands for its master pack.
    response = await _call(hass, "read_parameters", {ATTR_DEVICE_ID: _device(hass, sim, None)})
    assert response["pack"] == 1


async def test_write_parameters_as_a_set(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """Several values at once; the protection now trips at the cells' present voltage."""
    coordinator = loaded_entry.runtime_data
    lowest = min(sim.pack(1).physics.cell_voltages)
    protection = round(int(lowest * 100) / 100 - 0.02, 2)
    changes = {
        "cell_over_voltage_alarm": protection - 0.05,
        "cell_over_voltage_protection": protection,
        "cell_over_voltage_release": protection - 0.1,
    }
    sim.advance(2)
    await coordinator.async_refresh()
    assert not coordinator.pack(1).status.flag("cell_over_voltage_protection")

    response = await _call(
        hass, "write_parameters", {ATTR_DEVICE_ID: _device(hass, sim, 1), "parameters": changes}
    )
    assert response["dry_run"] is False
    assert response["old"] == {
        "cell_over_voltage_alarm": 3.5,
        "cell_over_voltage_protection": 3.65,
        "cell_over_voltage_release": 3.38,
    }
    assert response["new"] == pytest.approx(changes)
    assert [w["command"] for w in response["writes"]] == ["D0H"]
    assert sim.pack(1).bms.value("cell_over_voltage_protection") == protection

    sim.advance(2)
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    assert coordinator.pack(1).status.flag("cell_over_voltage_protection")
    state = hass.states.get("binary_sensor.ress_battery_pack_1_protection")
    assert (state.state, state.attributes["active"]) == ("on", ["cell_over_voltage"])


async def test_dry_run_sends_nothing(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """A dry run reads, validates and returns the frames, and writes nothing."""
    link = loaded_entry.runtime_data.link
    response = await _call(
        hass,
        "write_parameters",
        {
            ATTR_DEVICE_ID: _device(hass, sim, 2),
            "parameters": {"balance_start_voltage": 3.45, "balance_delta": 40},
            "dry_run": True,
        },
    )
    assert response["dry_run"] is True
    assert response["old"] == {"balance_start_voltage": 3.4, "balance_delta": 30}
    assert response["new"] == {"balance_start_voltage": 3.45, "balance_delta": 40}
    (write,) = response["writes"]
    assert write["command"] == f"{Command.BALANCE_WRITE:02X}H"
    assert write["payload"] == "0D7A0028"
    assert write["frame"].startswith("~2502")
    assert Command.BALANCE_WRITE not in link.stats.last_frames
    assert sim.pack(2).bms.value("balance_start_voltage") == 3.4


async def test_out_of_range_sends_no_frame(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """Out of range, unknown or not a number: refused, translated, and not a byte sent."""
    link = loaded_entry.runtime_data.link
    device = _device(hass, sim, 1)
    requests = link.stats.requests
    for parameters, text in (
        ({"cell_over_voltage_protection": 5.0}, "outside 2.5..4.5 V"),
        ({"cell_over_voltage_protection": 3.605}, "not a multiple of 0.01"),
        ({"no_such_thing": 1}, "no_such_thing: unknown parameter"),
        ({"sleep_delay": "soon"}, "'soon' is not a number"),
        ({"sleep_delay": True}, "True is not a number"),
        ({"cell_over_voltage_alarm": 3.7, "cell_over_voltage_protection": 3.6}, "must stay below"),
    ):
        with pytest.raises(ServiceValidationError) as err:
            await _call(
                hass, "write_parameters", {ATTR_DEVICE_ID: device, "parameters": parameters}
            )
        assert err.value.translation_key == "invalid_parameters"
        assert text in str(err.value), str(err.value)
    assert link.stats.requests == requests
    assert sim.pack(1).bms.value("cell_over_voltage_protection") == 3.65


async def test_write_actions_are_for_admins(
    hass: HomeAssistant,
    sim: Simulator,
    loaded_entry: MockConfigEntry,
    hass_read_only_user: User,
) -> None:
    """Writing parameters and setting clocks need an admin; reading does not."""
    from homeassistant.core import Context

    context = Context(user_id=hass_read_only_user.id)
    device = _device(hass, sim, 1)
    with pytest.raises(Unauthorized):
        await _call(
            hass,
            "write_parameters",
            {ATTR_DEVICE_ID: device, "parameters": {"low_soc_alarm": 10}},
            context=context,
        )
    with pytest.raises(Unauthorized):
        await hass.services.async_call(
            DOMAIN, "sync_clock", {ATTR_DEVICE_ID: device}, blocking=True, context=context
        )
    assert sim.pack(1).bms.value("low_soc_alarm") == 5
    response = await _call(hass, "read_parameters", {ATTR_DEVICE_ID: device}, context=context)
    assert response["pack"] == 1


async def test_read_history(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """Decoded records, newest first, as many as asked for, from the cache: how fresh it is."""
    coordinator = loaded_entry.runtime_data
    sim.raise_protection(2, "cell_over_voltage")
    sim.advance(1)
    sim.raise_protection(2, "ntc_fault")
    await settle_history(hass, coordinator)  # the cache has learned their records
    requests = sim.line.traffic.requests
    response = await _call(hass, "read_history", {ATTR_DEVICE_ID: _device(hass, sim, 2)})
    assert sim.line.traffic.requests == requests  # nothing read from the bus
    records = response["records"]
    assert response["pack"] == 2
    assert response["cached"] == 3
    assert response["complete"] is True
    assert response["error"] is None
    assert dt_util.parse_datetime(response["checked_at"]) is not None
    assert len(records) == 3  # two events and the power-on record
    assert records[0]["faults"] == ["ntc"]
    assert "cell_over_voltage" in records[1]["protections"]
    assert records[-1]["power_on"] is True
    response = await _call(
        hass, "read_history", {ATTR_DEVICE_ID: _device(hass, sim, 2), "count": 1}
    )
    assert len(response["records"]) == 1


async def test_sync_clock(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """One pack, or every reachable pack for the stack; Home Assistant's local time."""
    await hass.config.async_set_time_zone("Pacific/Auckland")

    def local() -> datetime:
        return dt_util.now().replace(tzinfo=None, microsecond=0)

    # Simulated time stands still: a synced clock reads the moment it was set, however long
    # the call took on this machine.
    before = local()
    await hass.services.async_call(
        DOMAIN, "sync_clock", {ATTR_DEVICE_ID: _device(hass, sim, 2)}, blocking=True
    )
    assert before <= sim.pack(2).now() <= local()
    assert abs((sim.pack(3).now() - before).total_seconds()) > 3600
    before = local()
    await hass.services.async_call(
        DOMAIN, "sync_clock", {ATTR_DEVICE_ID: _device(hass, sim, None)}, blocking=True
    )
    for address in (1, 3):
        assert before <= sim.pack(address).now() <= local()


async def test_sync_clock_returns_old_and_new_clocks_and_the_drift(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """Per pack: the clock read before, the one set, and how far off it was (s, + = ahead)."""
    ahead = dt_util.now().replace(tzinfo=None, microsecond=0) + timedelta(hours=2)
    sim.pack(3).set_clock(ahead)  # simulated time stands still: the pack's clock stays there
    response = await _call(hass, "sync_clock", {ATTR_DEVICE_ID: _device(hass, sim, None)})
    after = dt_util.now().replace(tzinfo=None, microsecond=0)
    assert [p["pack"] for p in response["packs"]] == [1, 2, 3]
    pack3 = response["packs"][2]
    old, new = datetime.fromisoformat(pack3["old"]), datetime.fromisoformat(pack3["new"])
    assert old == ahead
    assert new <= after
    assert pack3["drift"] == (old - new).total_seconds() > 0
    assert sim.pack(3).now() == new
    response = await _call(hass, "sync_clock", {ATTR_DEVICE_ID: _device(hass, sim, 3)})
    (only,) = response["packs"]
    assert only["pack"] == 3
    assert datetime.fromisoformat(only["old"]) == new


async def test_bad_targets(
    hass: HomeAssistant,
    sim: Simulator,
    loaded_entry: MockConfigEntry,
) -> None:
    """Unknown devices, devices of other integrations, unloaded stacks: translated errors."""
    with pytest.raises(ServiceValidationError) as err:
        await _call(hass, "read_parameters", {ATTR_DEVICE_ID: "nope"})
    assert err.value.translation_key == "unknown_device"

    other = MockConfigEntry(domain="other")
    other.add_to_hass(hass)
    foreign = dr.async_get(hass).async_get_or_create(
        config_entry_id=other.entry_id, identifiers={("other", "x")}
    )
    with pytest.raises(ServiceValidationError) as err:
        await _call(hass, "read_parameters", {ATTR_DEVICE_ID: foreign.id})
    assert err.value.translation_key == "unknown_device"

    device = _device(hass, sim, 2)
    await hass.config_entries.async_unload(loaded_entry.entry_id)
    with pytest.raises(ServiceValidationError) as err:
        await _call(hass, "read_parameters", {ATTR_DEVICE_ID: device})
    assert err.value.translation_key == "entry_not_loaded"


async def test_device_failure_is_a_translated_error(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """A pack that stops answering: HomeAssistantError (not a validation error)."""
    sim.set_offline(3)
    with pytest.raises(HomeAssistantError) as err:
        await _call(hass, "read_parameters", {ATTR_DEVICE_ID: _device(hass, sim, 3)})
    assert not isinstance(err.value, ServiceValidationError)
    assert err.value.translation_key == "pack_no_reply"


async def test_packs_behind_the_master_cannot_be_addressed(
    hass: HomeAssistant,
    sim: Simulator,
    config_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In a master/slave chain a slave's settings, history and clock are out of reach."""
    chained(monkeypatch)
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    for service, data in (
        ("read_parameters", {}),
        ("read_history", {}),
        ("write_parameters", {"parameters": {"low_soc_alarm": 10}}),
    ):
        with pytest.raises(ServiceValidationError) as err:
            await _call(hass, service, {ATTR_DEVICE_ID: _device(hass, sim, 2), **data})
        assert err.value.translation_key == "pack_not_reachable"
    with pytest.raises(ServiceValidationError):
        await hass.services.async_call(
            DOMAIN, "sync_clock", {ATTR_DEVICE_ID: _device(hass, sim, 2)}, blocking=True
        )
    # The stack: every pack that can be reached, i.e. the master.
    await hass.services.async_call(
        DOMAIN, "sync_clock", {ATTR_DEVICE_ID: _device(hass, sim, None)}, blocking=True
    )
