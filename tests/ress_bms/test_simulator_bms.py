"""The simulated BMS: every protection triggers after its delay and releases by its rule."""

from __future__ import annotations

import pytest

from ress_bms import history, params, status
from ress_bms.commands import Command, encode_request
from ress_bms.frame import decode_frame
from ress_bms.simulator import LIMITS, Stack, respond
from ress_bms.simulator.bms import AUTO_RELEASE, LOCK_REPEATS
from ress_bms.simulator.pack import Pack
from ress_bms.status import StatusByte


def polled(stack: Stack, address: int = 1) -> status.PackStatus:
    raw = respond(stack, encode_request(Command.STATUS, address, bytes((address,))))
    assert raw is not None
    return status.decode_status(decode_frame(raw).info, address).packs[0]


def write(stack: Stack, group_key: str, **changes: float) -> int:
    """Read-modify-write one group over the wire; returns the RTN."""
    group = params.GROUPS_BY_KEY[group_key]
    read = respond(stack, encode_request(group.read, 1))
    assert read is not None
    payload = decode_frame(read).info
    data = group.encode_write(payload, {**group.decode(payload), **changes})
    reply = respond(stack, encode_request(group.write, 1, data))
    assert reply is not None
    return decode_frame(reply).cid2


def set_enable(stack: Stack, group_key: str, enabled: bool) -> None:
    group = params.GROUPS_BY_KEY[group_key]
    payload = bytearray(stack.master.bms.settings.read(group))
    payload[0] = int(enabled)
    assert stack.master.bms.settings.write(group, bytes(payload)) == 0


def one_pack(**options: float | str) -> tuple[Stack, Pack]:
    stack = Stack(1, seed=7, **options)  # type: ignore[arg-type]
    return stack, stack.master


def test_the_table_covers_every_protection_and_alarm_of_the_guide() -> None:
    guide = {
        "cell_over_voltage", "cell_under_voltage", "pack_over_voltage", "pack_under_voltage",
        "charge_over_current", "discharge_over_current", "short_circuit",
        "charge_high_temperature", "discharge_high_temperature", "charge_low_temperature",
        "discharge_low_temperature", "mos_high_temperature", "environment_high_temperature",
        "environment_low_temperature", "low_soc",
    }  # fmt: skip
    assert {limit.name for limit in LIMITS} == guide
    for limit in LIMITS:
        for key in (limit.alarm, limit.protection, limit.release, limit.delay):
            assert not isinstance(key, str) or key in params.PARAMETERS_BY_KEY
        if limit.protection is not None:
            assert f"{limit.name}_protection" in status.BITS_BY_KEY
        if limit.alarm is not None:
            assert f"{limit.name}_alarm" in status.BITS_BY_KEY


def test_cell_over_voltage_after_its_delay_and_release_below_the_release_voltage() -> None:
    stack, pack = one_pack()
    pack.physics.cells[2].reading_offset = 0.40  # cell 3 reads about 3.70 V
    stack.advance(0.9)
    assert pack.bms.protections == () and pack.bms.alarms == ()
    stack.advance(0.1)
    assert pack.bms.protections == ("cell_over_voltage",)
    assert "cell_over_voltage" in pack.bms.alarms
    assert not pack.bms.charge_mos and pack.bms.discharge_mos
    seen = polled(stack)
    assert seen.protections == ("cell_over_voltage",) and not seen.charge_mos
    assert seen.cell_codes[2] == 0x02 and seen.cell_codes[0] == 0
    stack.advance(60)
    assert pack.bms.protections == ("cell_over_voltage",)  # 3.70 V is above the 3.38 V release
    pack.physics.cells[2].reading_offset = 0.06  # 3.36 V: below the release voltage
    stack.advance(0.1)
    assert pack.bms.protections == () and pack.bms.charge_mos
    record = history.decode_history(
        decode_frame(respond(stack, encode_request(Command.HISTORY, 1, b"\x00\x00")) or b"").info,
        0,
    )
    assert record is not None and record.protections == ("cell_over_voltage",)


def test_over_voltage_released_by_a_discharge() -> None:
    stack, pack = one_pack()
    pack.physics.cells[0].reading_offset = 0.40
    stack.advance(1)
    assert pack.bms.protections == ("cell_over_voltage",)
    pack.demand = 5.0
    stack.advance(5)
    assert pack.physics.current == 0.0  # the charge MOSFET is open
    pack.demand = -5.0
    stack.advance(0.1)
    assert pack.bms.protections == ()  # "Discharge release: discharge current > 1A"


def test_a_written_threshold_and_delay_change_when_it_triggers() -> None:
    stack, pack = one_pack()
    assert write(stack, "cell_over_voltage", cell_over_voltage_protection=3.75) == 0
    pack.physics.cells[2].reading_offset = 0.40  # 3.70 V: now below the protection
    stack.advance(5)
    assert pack.bms.protections == () and pack.bms.alarms == ("cell_over_voltage",)
    assert write(stack, "cell_over_voltage", cell_over_voltage_delay=3.0) == 0
    pack.physics.cells[2].reading_offset = 0.50  # 3.80 V
    stack.advance(2.9)
    assert pack.bms.protections == ()
    stack.advance(0.1)
    assert pack.bms.protections == ("cell_over_voltage",)


def test_a_disabled_function_never_trips() -> None:
    stack, pack = one_pack()
    set_enable(stack, "cell_over_voltage", enabled=False)
    pack.physics.cells[2].reading_offset = 0.40
    stack.advance(3)
    assert pack.bms.protections == () and pack.bms.alarms == ()


def test_cell_under_voltage_released_by_a_charger() -> None:
    stack, pack = one_pack()
    pack.physics.cells[4].reading_offset = -0.85  # about 2.45 V
    pack.demand = -10.0
    stack.advance(1)
    assert pack.bms.protections == ("cell_under_voltage",)
    assert pack.bms.charge_mos and not pack.bms.discharge_mos
    stack.advance(1)
    assert pack.physics.current == 0.0
    pack.demand = 10.0
    stack.advance(0.1)
    assert "cell_under_voltage" not in pack.bms.protections  # "connect to charger"


def test_pack_over_and_under_voltage() -> None:
    stack, pack = one_pack()
    for cell in pack.physics.cells:
        cell.reading_offset = 0.32  # about 3.62 V each, 57.9 V: cells are fine, the pack is not
    stack.advance(1)
    assert pack.bms.protections == ("pack_over_voltage",)
    for cell in pack.physics.cells:
        cell.reading_offset = 0.0
    stack.advance(0.1)
    assert pack.bms.protections == ()
    for cell in pack.physics.cells:
        cell.reading_offset = -0.52  # about 2.78 V each: 44.5 V < 44.8 V, cells above 2.5 V
    stack.advance(1)
    assert pack.bms.protections == ("pack_under_voltage",)
    assert "cell_under_voltage" in pack.bms.alarms


def test_charge_over_current_behind_the_limiter() -> None:
    stack, pack = one_pack()
    pack.demand = 115.0
    stack.advance(2)
    # The limiter holds the charge at its start current (100 A): no over-current.
    assert pack.physics.current == 100.0 and pack.bms.protections == ()
    assert polled(stack).current_limit
    reply = respond(stack, encode_request(Command.CONTROL, 1, bytes((0x0B,))))  # limiter off
    assert reply is not None and decode_frame(reply).info[1] & 0x10
    stack.advance(0.9)
    assert pack.bms.alarms == () and pack.bms.protections == ()
    stack.advance(0.1)
    assert pack.bms.protections == ("charge_over_current",) and not pack.bms.charge_mos
    assert pack.bms.alarms == ("charge_over_current",)
    assert polled(stack).charge_current_code == 0x02
    stack.advance(AUTO_RELEASE - 0.2)
    assert pack.bms.protections == ("charge_over_current",)
    stack.advance(0.3)
    assert pack.bms.protections == ()  # "1min automatic release"


def test_discharge_over_current_locks_after_ten_repeats() -> None:
    stack, pack = one_pack(step=0.5)
    pack.demand = -130.0
    for repeat in range(1, LOCK_REPEATS + 1):
        stack.advance(1)
        assert pack.bms.protections == ("discharge_over_current",), repeat
        assert pack.physics.current == 0.0
        if repeat < LOCK_REPEATS:
            stack.advance(AUTO_RELEASE)
            assert pack.bms.protections == ()
    stack.advance(5 * AUTO_RELEASE)
    assert pack.bms.protections == ("discharge_over_current",)  # locked
    assert pack.bms.locked
    pack.demand = 5.0
    stack.advance(0.5)
    assert pack.bms.protections == () and not pack.bms.locked  # "charge current > 1A"


def test_discharge_over_current_2_trips_first() -> None:
    stack, pack = one_pack(step=0.025)
    pack.demand = -160.0
    stack.advance(0.1)
    assert pack.bms.protections == ("discharge_over_current",)


def test_short_circuit_released_by_removing_the_load() -> None:
    stack, pack = one_pack()
    pack.demand = -600.0
    stack.advance(0.1)
    assert "short_circuit" in pack.bms.protections and not pack.bms.discharge_mos
    stack.advance(10)
    assert "short_circuit" in pack.bms.protections
    pack.demand = 0.0
    stack.advance(0.1)
    assert "short_circuit" not in pack.bms.protections


@pytest.mark.parametrize(
    ("sensor", "hot", "between", "cool", "name", "charge", "discharge"),
    [
        (4, 112.0, 95.0, 85.0, "mos_high_temperature", False, False),
        (5, 71.0, 67.0, 64.0, "environment_high_temperature", False, False),
        (5, -26.0, -21.0, -19.0, "environment_low_temperature", False, False),
        (0, 66.0, 62.0, 59.0, "charge_high_temperature", False, True),
        (1, -6.0, -1.0, 1.0, "charge_low_temperature", False, True),
    ],
)
def test_temperature_protections(
    sensor: int, hot: float, between: float, cool: float, name: str, charge: bool, discharge: bool
) -> None:
    stack, pack = one_pack()
    pack.physics.forced_temperatures = {sensor: hot}
    stack.advance(1)
    assert name in pack.bms.protections and name in pack.bms.alarms
    assert (pack.bms.charge_mos, pack.bms.discharge_mos) == (charge, discharge)
    pack.physics.forced_temperatures = {sensor: between}
    stack.advance(5)
    assert name in pack.bms.protections  # not yet past the release temperature
    pack.physics.forced_temperatures = {sensor: cool}
    stack.advance(0.1)
    assert name not in pack.bms.protections and pack.bms.charge_mos and pack.bms.discharge_mos


def test_low_soc_alarm() -> None:
    stack, pack = one_pack()
    pack.physics.soc = 4.0
    stack.advance(1)
    assert pack.bms.alarms == ("low_soc",)
    assert polled(stack).flag("low_soc_alarm")


def test_raise_and_clear_a_protection() -> None:
    stack, pack = one_pack()
    assert pack.bms.raise_bit("discharge_over_current") == "discharge_over_current_protection"
    assert not pack.bms.discharge_mos
    assert polled(stack).protections == ("discharge_over_current",)
    pack.bms.raise_bit("ntc_fault")
    assert polled(stack).faults == ("ntc",)
    assert pack.bms.raise_bit("low_soc") == "low_soc_alarm"
    assert polled(stack).alarms == ("low_soc",)
    pack.bms.clear_bit("low_soc")
    assert polled(stack).alarms == ()
    pack.bms.clear_bit()
    assert pack.bms.discharge_mos and polled(stack).protections == ()
    assert len(pack.bms.history) == 4  # power-on, and one record per raised event


def test_a_raised_cell_or_sensor_bit_flags_its_place_in_the_codes() -> None:
    """As the firmware does: the cell or sensor the condition is on shows 02, 01 or F0."""
    stack, pack = one_pack()
    cells = pack.physics.cell_voltages
    highest = cells.index(max(cells)) + 1
    pack.bms.raise_bit("cell_over_voltage")
    found = polled(stack)
    assert found.place(status.BITS_BY_KEY["cell_over_voltage_protection"]).cells == (highest,)
    assert found.cell_codes[highest - 1] == status.CODE_ABOVE
    assert sum(code != 0 for code in found.cell_codes) == 1
    pack.bms.raise_bit("cell_under_voltage_alarm", cell=3)
    assert polled(stack).place(status.BITS_BY_KEY["cell_under_voltage_alarm"]).cells == (3,)
    pack.bms.raise_bit("ntc_fault", sensor=5)
    assert polled(stack).place(status.BITS_BY_KEY["ntc_fault"]).sensors == ("mos_temperature",)
    pack.bms.clear_bit("cell_over_voltage")
    assert polled(stack).cell_codes[highest - 1] == 0
    pack.bms.clear_bit()
    assert set(polled(stack).cell_codes) == {0} and set(polled(stack).temperature_codes) == {0}


def test_passive_balancing_above_the_start_voltage() -> None:
    stack, pack = one_pack()
    pack.physics.soc = 99.0
    for cell in pack.physics.cells:
        cell.charge_offset = 0.0
        cell.reading_offset = 0.0
    pack.physics.cells[4].charge_offset = 0.8  # cell 5 is ahead of the others
    stack.advance(1)
    assert pack.bms.balancing == (5,)
    assert polled(stack).balancing == (5,)
    assert polled(stack).bytes_[StatusByte.BALANCE_1] == 0x10
    before = pack.physics.cells[4].charge_offset
    stack.advance(60)
    assert pack.physics.cells[4].charge_offset < before
    pack.physics.soc = 50.0
    stack.advance(0.1)
    assert pack.bms.balancing == ()  # below the balance start voltage


def test_charge_and_discharge_move_soc_voltage_and_temperature() -> None:
    stack, pack = one_pack(step=1.0)
    start_soc, start_mos = pack.physics.soc, pack.physics.mos_temperature
    pack.demand = -50.0
    stack.advance(360)
    assert pack.physics.soc == pytest.approx(start_soc - 100 * 5 / pack.physics.full_capacity)
    assert pack.physics.mos_temperature > start_mos + 2
    idle_voltage = pack.physics.open_circuit_voltage()
    assert pack.physics.voltage == pytest.approx(idle_voltage - 50 * 16 * 0.0008, abs=0.05)
    pack.demand = 0.0
    stack.advance(600)
    assert pack.physics.mos_temperature < start_mos + 1


def test_full_charge_sets_fully_charged_and_recalibrates() -> None:
    stack, pack = one_pack(soc=99.9)
    pack.demand = 20.0
    stack.advance(30)
    assert pack.physics.soc == 100.0
    assert polled(stack).flag("fully_charged")
    pack.demand = -5.0
    stack.advance(0.1)
    assert not polled(stack).flag("fully_charged")


def test_solar_day_charges_by_day_and_discharges_at_night() -> None:
    stack = Stack(2, profile="solar-day", step=30.0, soc=40.0)
    morning = stack.master.physics.soc
    stack.advance(6 * 3600)  # to noon
    assert stack.master.physics.current > 0
    assert stack.master.physics.soc > morning
    noon = stack.master.physics.soc
    stack.advance(8.5 * 3600)  # 20:30
    assert stack.master.physics.current < 0
    assert stack.master.physics.soc < noon


def test_stress_profile_logs_discharge_over_current_alarms() -> None:
    stack = Stack(1, profile="stress", step=0.5)
    stack.advance(300)
    logged = [
        history.decode_history(history.encode_history(record), 0)
        for record in stack.master.bms.history
    ]
    assert any(r is not None and "discharge_over_current" in r.alarms for r in logged)
    assert stack.master.bms.protections == ()  # alarms only: the spike stays under 120 A
