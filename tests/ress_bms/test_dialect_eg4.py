"""EG4 LifePower4: every frame of the family in frames-dialects.json, the documented layouts
(no-INFO requests, N + 2 temperatures, 15 and 9 user-defined items, 4DH), fuzzing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from hypothesis import given, strategies as st
import pytest

from ress_bms.dialects import DIALECTS, Capability, eg4, ver20
from ress_bms.dialects.base import read_fields
from ress_bms.errors import BmsError, DecodeError, ForbiddenCommandError, ResponseError
from ress_bms.frame import Frame, decode_frame
from ress_bms.status import BITS_BY_KEY

from .ver20_frames import (
    FUZZ,
    Entry,
    check_values,
    entry_id,
    family,
    header,
    mutated,
    only_typed_errors,
    printed_and_correct,
    real_frames,
    reply,
)

EG4 = family("EG4")
REQUESTS = [e for e in EG4 if e["request"]]
RESPONSES = [e for e in EG4 if e["response"]]
ENCODERS: dict[int, Callable[[int], bytes]] = {
    eg4.ANALOG: eg4.analog_request,
    eg4.STATUS: eg4.status_request,
    eg4.MANUFACTURER_INFO: eg4.manufacturer_info_request,
    eg4.CLOCK_READ: eg4.clock_request,
}
DECODERS: list[Callable[[Any], object]] = [
    eg4.decode_analog,
    eg4.decode_status,
    eg4.decode_clock,
    eg4.decode_manufacturer_info,
]

# Values a source printed that the frame's own bytes contradict: none (nkinnan prints no
# values for these frames; decoded_per_layout agrees with the bytes).
ERRATA: dict[tuple[str, str], Any] = {}


def test_the_family_is_in_the_file() -> None:
    assert len(EG4) == 5
    assert len(RESPONSES) == 3


@pytest.mark.parametrize("entry", REQUESTS, ids=entry_id)
def test_every_request_is_encoded_byte_for_byte_or_never(entry: Entry) -> None:
    printed, wire = printed_and_correct(entry)
    assert printed == wire
    ver, adr, cid1, cid2, info = header(wire)
    assert (ver, cid1) == (ver20.VER, eg4.CID1)
    if cid2 in ENCODERS:
        assert not info  # EG4 requests carry no INFO
        assert ENCODERS[cid2](adr).decode() == wire + "\r"
        return
    # 93H: no EG4 document has it and the one pack tried never answered; 45H: a reboot.
    assert cid2 not in eg4.READ_COMMANDS
    with pytest.raises(ForbiddenCommandError):
        ver20.encode_read(eg4.READ_COMMANDS, eg4.CID1, cid2, adr, info)
    if "WRITE" in entry["command"]:
        assert cid2 in ver20.WRITES_IN_SOME_DIALECT
        with pytest.raises(ForbiddenCommandError):
            ver20.encode_read(frozenset({cid2}), eg4.CID1, cid2, adr, info)
        sent = {decode_frame(encode(a)).cid2 for encode in ENCODERS.values() for a in range(16)}
        assert cid2 not in sent


def _analog_view(decoded: eg4.Eg4Analog) -> dict[str, Any]:
    pack = decoded.pack
    return {
        "data_flag": decoded.data_flag,
        "pack_group": decoded.pack_group,
        "cells_mV": [round(v * 1000) for v in pack.cell_voltages],
        "temperature_count_field": len(pack.cell_temperatures),
        "cell_temps_C": list(pack.cell_temperatures),
        "environment_temp_C": pack.environment_temperature,
        "mosfet_temp_C": pack.mos_temperature,
        "current_A": pack.current,
        "voltage_V": pack.voltage,
        "remaining_capacity_Ah": pack.remaining_capacity,
        "full_capacity_Ah": pack.full_capacity,
        "cycles": pack.cycles,
        "user_defined": pack.user_defined_count,
        "soc_pct": pack.soc,
        "soh_pct": pack.soh,
        "max_cell_mV": round(decoded.max_cell_voltage * 1000),
        "min_cell_mV": round(decoded.min_cell_voltage * 1000),
        "cell_diff_mV": round(decoded.cell_voltage_difference * 1000),
        "max_cell_temp_C": decoded.max_cell_temperature,
        "min_cell_temp_C": decoded.min_cell_temperature,
        "cum_charge_Ah": decoded.cumulative_charge,
        "cum_discharge_Ah": decoded.cumulative_discharge,
        "cum_charge_kWh": decoded.cumulative_charge_energy,
        "cum_discharge_kWh": decoded.cumulative_discharge_energy,
        "cum_charge_time_h": decoded.cumulative_charge_time,
        "cum_discharge_time_h": decoded.cumulative_discharge_time,
        "cum_charge_times": decoded.charge_count,
        "cum_discharge_times": decoded.discharge_count,
    }


def _status_view(frame: Frame, decoded: ver20.Ver20Status) -> dict[str, Any]:
    status = decoded.status
    head, end = read_fields(eg4.STATUS_HEAD, frame.info)  # the module's own table
    items, _ = read_fields(eg4.STATUS_ITEMS, frame.info, end)
    codes = list(status.temperature_codes)
    return {
        "pack_group": head["pack_group"],
        "cell_alarm_codes": list(status.cell_codes),
        "temperature_count_field": len(codes) - 2,
        "temp_alarm_codes": [*codes[:-2], codes[-1], codes[-2]],  # wire: cells, env, MOS
        "pack_current_alarm": status.charge_current_code,
        "pack_voltage_alarm": status.voltage_code,
        "user_defined": head["user_defined_count"],
        **decoded.raw,
        "reserved": items["reserved"],
    }


def _manufacturer_view(decoded: eg4.Eg4ManufacturerInfo) -> dict[str, Any]:
    raw = decoded.raw
    return {
        "info_bytes": len(raw),
        "bytes_0_19": raw[:20].decode(),
        "bytes_20_21_hex": raw[20:22].hex().upper(),
        "bytes_22_41": raw[22:42].decode(),
        "bytes_42_45_hex": raw[42:46].hex().upper(),
    }


@pytest.mark.parametrize("entry", RESPONSES, ids=entry_id)
def test_every_response_decodes_to_the_files_values(entry: Entry) -> None:
    frame = decode_frame(entry["response"].encode())
    cid2 = decode_frame(entry["request"].encode()).cid2
    errata = {k: v for (c, k), v in ERRATA.items() if c == entry["command"]}
    layout = dict(entry["decoded_per_layout"])
    view: dict[str, Any]
    if cid2 == eg4.ANALOG:
        analog = eg4.decode_analog(frame)
        assert analog.pack.soc_source == analog.pack.soh_source == "bms"
        view = _analog_view(analog)
    elif cid2 == eg4.STATUS:
        status = eg4.decode_status(frame)
        view = _status_view(frame, status)
        # "FET status 0x03 = discharge MOS on + charge MOS on; system status 0x02 = charging"
        assert "charging" in layout.pop("meaning")
        assert status.status.discharge_mos and status.status.charge_mos
        assert status.status.flag("charging") and not status.status.current_limit
        assert status.extra == () and status.status.balancing == ()
    else:
        info = eg4.decode_manufacturer_info(frame)
        view = _manufacturer_view(info)
        assert info.text == "QTHN 0d"
    checked = 0
    for source in (entry["decoded_by_source"], layout):
        if source:
            checked += check_values(view, source, errata)
    assert checked


# -- layouts built from [EG4] 2.1 and 2.2 -------------------------------------------------


def _analog_info(cells: int = 16, cell_temps: int = 4, items: int = 15) -> bytes:
    info = bytes((0x01, 0x01, cells)) + b"".join((3300 + i).to_bytes(2) for i in range(cells))
    info += bytes((cell_temps,)) + b"".join((2981 + 10 * i).to_bytes(2) for i in range(cell_temps))
    info += (3031).to_bytes(2) + (3131).to_bytes(2)  # environment 30.0, MOSFET 40.0
    info += (-250).to_bytes(2, signed=True) + (5330).to_bytes(2) + (5000).to_bytes(2)
    info += (10000).to_bytes(2) + (12).to_bytes(2) + bytes((items,))
    words = [50, 99, 3315, 3300, 15, 3011, 2981]
    tail = b"".join(w.to_bytes(2) for w in words)
    tail += b"".join(v.to_bytes(4) for v in (100, 200, 300, 400, 5, 6))
    tail += (7).to_bytes(2) + (8).to_bytes(2)
    return info + tail


def test_analog_units_roles_and_counters() -> None:
    decoded = eg4.decode_analog(reply(7, eg4.CID1, _analog_info()))
    pack = decoded.pack
    assert pack.address == 7 and pack.current == -2.5 and pack.voltage == 53.3
    assert (pack.remaining_capacity, pack.full_capacity, pack.cycles) == (50.0, 100.0, 12)
    assert (pack.soc, pack.soh, pack.design_capacity) == (50.0, 99.0, 0.0)
    assert pack.cell_temperatures == (25.0, 26.0, 27.0, 28.0)
    assert (pack.mos_temperature, pack.environment_temperature) == (40.0, 30.0)
    assert (decoded.max_cell_voltage, decoded.min_cell_voltage) == (3.315, 3.3)
    assert decoded.cell_voltage_difference == 0.015
    assert (decoded.max_cell_temperature, decoded.min_cell_temperature) == (28.0, 25.0)
    assert (decoded.cumulative_charge, decoded.cumulative_discharge) == (1.0, 2.0)
    assert decoded.cumulative_charge_energy == 0.3 and decoded.cumulative_discharge_energy == 0.4
    assert (decoded.cumulative_charge_time, decoded.cumulative_discharge_time) == (5, 6)
    assert (decoded.charge_count, decoded.discharge_count) == (7, 8)


def test_eight_cells_and_more_cell_sensors_walk_the_counts() -> None:
    eight = eg4.decode_analog(reply(1, eg4.CID1, _analog_info(cells=8))).pack
    assert len(eight.cell_voltages) == 8
    six = eg4.decode_analog(reply(1, eg4.CID1, _analog_info(cell_temps=6))).pack
    assert len(six.cell_temperatures) == 6 and six.mos_temperature == 40.0
    assert six.environment_temperature == 30.0


@pytest.mark.parametrize(
    "info",
    [
        _analog_info(items=14),
        _analog_info(items=16),
        _analog_info() + b"\x00",
        _analog_info()[:-1],
        _analog_info()[:50],
        b"",
    ],
    ids=["14 items", "16 items", "trailing", "one short", "cut", "empty"],
)
def test_analog_misfits_are_decode_errors(info: bytes) -> None:
    with pytest.raises(DecodeError):
        eg4.decode_analog(reply(1, eg4.CID1, info))


def _status_info(items: dict[str, int] | None = None, cells: int = 16, count: int = 9) -> bytes:
    values = {f.name: 0 for f in eg4.STATUS_ITEMS} | (items or {})
    info = bytes((0x10, 0x01, cells, *([0] * cells), 4, 0, 0xF0, 0, 0, 2, 1, 2, 1, count))
    for item in eg4.STATUS_ITEMS:
        size = {"u8": 1, "u16": 2, "u32": 4}[item.kind]
        info += values[item.name].to_bytes(size)
    return info


def test_status_bits_map_to_shared_keys_and_keep_the_rest() -> None:
    items = {
        "balance_event": 0b0010_0001,  # balance module on, charge MOS fault
        "voltage_event": 0b0100_0000,  # pack under-voltage alarm
        "temperature_event": 0b0011_0010_0000_0010,  # fire, MOS prot., env high prot., chg high
        "current_event": 0b1010_0000,  # short-circuit protection and lockout
        "remaining_capacity_alarm": 0b0000_0001,
        "fet_status": 0b0000_1101,  # discharge MOS, limiter, heater
        "system_status": 0b0000_1001,  # discharging, standby
        "balance_status": 0xFFFF_8001,  # cells 1 and 16; bits 16-31 reserved
    }
    decoded = eg4.decode_status(reply(3, eg4.CID1, _status_info(items)))
    status = decoded.status
    assert status.protections == (
        "short_circuit", "charge_high_temperature", "mos_high_temperature",
        "environment_high_temperature",
    )  # fmt: skip
    assert status.alarms == ("pack_under_voltage", "low_soc")
    assert status.faults == ("charge_mos",)
    assert status.discharge_mos and not status.charge_mos
    assert status.current_limit and status.heating and not status.flag("charging")
    assert status.balancing == (1, 16)
    assert decoded.extra == ("balance_module_on", "fire_alarm", "short_circuit_lockout",
                             "discharging", "standby")  # fmt: skip
    assert decoded.raw["temperature_event"] == items["temperature_event"]
    # cells 1-4, environment (02), MOSFET (01) on the wire; cells, MOS, environment here
    assert status.temperature_codes == (0, 0xF0, 0, 0, 1, 2)
    assert status.place(BITS_BY_KEY["ntc_fault"]).sensors == ("cell_temperature_2",)
    assert (status.charge_current_code, status.voltage_code) == (2, 1)
    assert status.discharge_current_code == 2


def test_status_misfits_are_decode_errors() -> None:
    eight = eg4.decode_status(reply(1, eg4.CID1, _status_info(cells=8)))
    assert len(eight.status.cell_codes) == 8
    for info in (_status_info(count=8), _status_info(count=10), _status_info() + b"\0"):
        with pytest.raises(DecodeError):
            eg4.decode_status(reply(1, eg4.CID1, info))


def test_every_documented_status_bit_has_a_name() -> None:
    table = eg4.STATUS_TABLE
    assert all(key in BITS_BY_KEY for key in table.shared_keys)
    assert not set(eg4.OWN_BITS) & set(BITS_BY_KEY)
    assert len(table) == 4 + 8 + 14 + 8 + 1 + 4 + 3


# -- 4DH, CID1, RTN -----------------------------------------------------------------------


def test_clock_is_the_full_year_then_bytes() -> None:
    info = (2024).to_bytes(2) + bytes((10, 14, 23, 59, 30))
    assert eg4.decode_clock(reply(1, eg4.CID1, info)) == datetime(2024, 10, 14, 23, 59, 30)
    with pytest.raises(DecodeError, match="not a date"):
        eg4.decode_clock(reply(1, eg4.CID1, (2024).to_bytes(2) + bytes((13, 1, 0, 0, 0))))
    with pytest.raises(DecodeError):
        eg4.decode_clock(reply(1, eg4.CID1, info[:-1]))


def test_reply_cid1_vers_and_return_codes() -> None:
    info = _analog_info()
    assert eg4.decode_analog(reply(1, 0x4E, info)).pack.voltage == 53.3
    assert eg4.decode_analog(reply(1, 0x4F, info)).pack.voltage == 53.3
    with pytest.raises(DecodeError, match="CID1"):
        eg4.decode_analog(reply(1, 0x46, info))
    with pytest.raises(DecodeError, match="VER"):
        eg4.decode_analog(reply(1, eg4.CID1, info, ver=0x25))
    with pytest.raises(ResponseError) as err:
        eg4.decode_status(reply(1, eg4.CID1, b"", rtn=0x06))
    assert err.value.meaning == "invalid data"


# -- requests and what the dialect says of itself -----------------------------------------


def test_only_reads_are_encoded() -> None:
    assert sorted(eg4.READ_COMMANDS) == [0x42, 0x44, 0x4D, 0x51]
    for cid2 in (0x45, 0x47, 0x49, 0x4E, 0x93):
        with pytest.raises(ForbiddenCommandError):
            ver20.encode_read(eg4.READ_COMMANDS, eg4.CID1, cid2, 1)
    for encode in ENCODERS.values():
        frame = decode_frame(encode(15))
        assert (frame.ver, frame.adr, frame.cid1, frame.info) == (0x20, 15, eg4.CID1, b"")
        with pytest.raises(ValueError, match="out of range"):
            encode(0xFF)


def test_the_dialect_describes_itself() -> None:
    info = eg4.INFO
    assert DIALECTS["eg4"] is info
    assert info.baudrates == (9600,)
    assert info.capabilities == {Capability.TELEMETRY, Capability.ALARMS}
    assert set(info.reasons) == set(Capability) - info.capabilities
    assert any("LifePower4" in brand for brand in info.brands)


# -- fuzzing ------------------------------------------------------------------------------

SAMPLES = [
    *real_frames(EG4),
    reply(1, eg4.CID1, _analog_info(cells=8)),
    reply(1, eg4.CID1, (2024).to_bytes(2) + bytes((10, 14, 23, 59, 30))),
]


@FUZZ
@given(st.binary(max_size=200), st.integers(0, 0xFE))
def test_arbitrary_info_raises_only_typed_errors(info: bytes, adr: int) -> None:
    only_typed_errors(DECODERS, Frame(0x20, adr, eg4.CID1, 0, info))


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_typed_errors(data: bytes) -> None:
    only_typed_errors(DECODERS, data)


@FUZZ
@given(st.sampled_from(SAMPLES), st.data())
def test_mutated_real_frames_raise_only_typed_errors(raw: bytes, data: st.DataObject) -> None:
    frame = mutated(raw, data)
    try:
        decoded = decode_frame(frame)
    except BmsError:
        return
    only_typed_errors(DECODERS, Frame(0x20, decoded.adr, eg4.CID1, 0, decoded.info))
