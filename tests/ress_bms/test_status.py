"""44H alarm and status: every named bit, the V3.1 extras, balancing, multi-pack replies."""

from __future__ import annotations

import pytest

from ress_bms.analog import temperature_names
from ress_bms.errors import DecodeError
from ress_bms.status import (
    BITS_BY_KEY,
    CODE_ABOVE,
    CODE_BELOW,
    CODE_FAULT,
    EXTRA_BYTES,
    PLACES,
    STATUS_BITS,
    Kind,
    PackStatus,
    Place,
    StatusByte,
    balance_bytes,
    balancing_cells,
    decode_status,
    encode_status,
    status_bytes,
)


def _pack(address: int = 1, active: tuple[str, ...] = (), extras: int = 0,
          balancing: tuple[int, ...] = ()) -> PackStatus:  # fmt: skip
    values = status_bytes(active, extras)
    values[StatusByte.BALANCE_1], values[StatusByte.BALANCE_2] = balance_bytes(balancing)
    return PackStatus(address, (0,) * 16, (0,) * 6, 0, 0, 0, values)


def test_bit_keys_are_unique_and_positions_distinct() -> None:
    assert len(BITS_BY_KEY) == len(STATUS_BITS)
    positions = {(b.byte, b.bit) for b in STATUS_BITS}
    assert len(positions) == len(STATUS_BITS)


@pytest.mark.parametrize("bit", STATUS_BITS, ids=lambda b: b.key)
def test_every_named_bit_round_trips_alone(bit) -> None:  # type: ignore[no-untyped-def]
    extras = len(EXTRA_BYTES) if bit.byte in EXTRA_BYTES else 0
    pack = decode_status(encode_status([_pack(active=(bit.key,), extras=extras)], 1), 1).packs[0]
    assert [b.key for b in STATUS_BITS if pack.is_set(b)] == [bit.key]
    listed = {Kind.PROTECTION: pack.protections, Kind.ALARM: pack.alarms,
              Kind.FAULT: pack.faults}.get(bit.kind, ())  # fmt: skip
    if bit.kind in (Kind.PROTECTION, Kind.ALARM, Kind.FAULT):
        assert listed == (bit.name,)


def test_protection_keys_read_like_the_battery() -> None:
    assert BITS_BY_KEY["cell_over_voltage_protection"].byte is StatusByte.PROTECTION_1
    assert BITS_BY_KEY["cell_over_voltage_alarm"].byte is StatusByte.ALARM_1
    assert BITS_BY_KEY["low_soc_alarm"].bit == 7
    assert BITS_BY_KEY["fully_charged"].kind is Kind.STATE  # not a problem
    assert BITS_BY_KEY["charge_mos"].byte is StatusByte.INDICATION
    assert BITS_BY_KEY["charge_mos_fault"].byte is StatusByte.FAULT


def test_issue_30_chained_pack() -> None:
    """nkinnan issue #30: protection 2 = 80, indication 06, control 48, alarm 1 = 05."""
    values = dict.fromkeys(StatusByte, 0)
    values.update({StatusByte.PROTECTION_2: 0x80, StatusByte.INDICATION: 0x06,
                   StatusByte.CONTROL: 0x48, StatusByte.ALARM_1: 0x05})  # fmt: skip
    pack = PackStatus(
        2, (2,) * 16, (0,) * 6, 0, 2, 0, {b: values[b] for b in list(StatusByte)[:10]}
    )
    decoded = decode_status(encode_status([pack], 0xFF), 0xFF).packs[0]
    assert decoded.protections == ()
    assert decoded.flag("fully_charged")
    assert decoded.alarms == ("cell_over_voltage", "pack_over_voltage")
    assert decoded.charge_mos and decoded.discharge_mos
    assert decoded.flag("system_lock") and decoded.flag("limiter_low_gear")
    assert decoded.voltage_code == 2


@pytest.mark.parametrize("extras", range(len(EXTRA_BYTES) + 1))
def test_optional_trailing_bytes_are_solved_from_the_length(extras: int) -> None:
    packs = [_pack(1, extras=extras), _pack(2, ("short_circuit_protection",), extras)]
    reply = decode_status(encode_status(packs, 0xFF), 0xFF)
    assert [len(p.bytes_) for p in reply.packs] == [9 + extras] * 2
    assert reply.packs[1].protections == ("short_circuit",)


def test_balancing_follows_the_specification_order() -> None:
    """[PACE-2018]/[PACE-V3.1]: byte 1 bit 0 is cell 1, byte 2 bit 0 is cell 9."""
    assert balancing_cells(0x01, 0x00, 16) == (1,)
    assert balancing_cells(0x00, 0x01, 16) == (9,)
    assert balancing_cells(0x80, 0x80, 16) == (8, 16)
    assert balancing_cells(0x00, 0x80, 15) == ()  # no cell 16 on a 15S pack
    pack = decode_status(encode_status([_pack(balancing=(3, 12))], 1), 1).packs[0]
    assert pack.balancing == (3, 12)


def test_missing_extra_byte_reads_as_clear() -> None:
    pack = _pack()
    assert not pack.flag("master_slave_offline_alarm")


@pytest.mark.parametrize("info", [b"", b"\x00\x01", b"\x00\x01\x10" + bytes(5), b"\x00\x00"])
def test_malformed_payloads_raise_decode_error(info: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_status(info, 0xFF)


def test_reply_for_another_pack_is_rejected() -> None:
    with pytest.raises(DecodeError):
        decode_status(encode_status([_pack(4)], 4), 5)


def test_places_come_from_the_per_value_codes() -> None:
    """Cells and cell sensors by their code; MOS and environment only for an NTC fault."""
    cells = [0] * 16
    cells[11], cells[2] = CODE_ABOVE, CODE_BELOW
    temperatures = [0, CODE_ABOVE, 0, CODE_BELOW, CODE_FAULT, CODE_ABOVE]
    pack = PackStatus(1, tuple(cells), tuple(temperatures), 0, 0, 0, status_bytes(()))
    place = pack.place
    assert place(BITS_BY_KEY["cell_over_voltage_protection"]) == Place(cells=(12,))
    assert place(BITS_BY_KEY["cell_over_voltage_alarm"]).cells == (12,)
    assert place(BITS_BY_KEY["cell_under_voltage_alarm"]).cells == (3,)
    assert place(BITS_BY_KEY["cell_fault"]) == Place()
    assert not place(BITS_BY_KEY["cell_fault"])
    assert place(BITS_BY_KEY["charge_high_temperature_protection"]).sensors == (
        "cell_temperature_2",
    )  # T6 (environment) also says 02, but is not a cell sensor
    assert place(BITS_BY_KEY["discharge_low_temperature_alarm"]).sensors == ("cell_temperature_4",)
    assert place(BITS_BY_KEY["ntc_fault"]).sensors == ("mos_temperature",)
    assert place(BITS_BY_KEY["pack_over_voltage_protection"]) == Place()
    assert place(BITS_BY_KEY["mos_high_temperature_protection"]) == Place()
    assert set(PLACES) <= {bit.name for bit in STATUS_BITS}


def test_temperature_names_follow_the_analog_split() -> None:
    assert temperature_names(6) == (
        "cell_temperature_1",
        "cell_temperature_2",
        "cell_temperature_3",
        "cell_temperature_4",
        "mos_temperature",
        "environment_temperature",
    )
    assert temperature_names(5)[-1] == "mos_temperature"
    assert temperature_names(3) == (
        "cell_temperature_1",
        "cell_temperature_2",
        "cell_temperature_3",
    )
    assert temperature_names(8)[5:] == (
        "cell_temperature_6",
        "mos_temperature",
        "environment_temperature",
    )
