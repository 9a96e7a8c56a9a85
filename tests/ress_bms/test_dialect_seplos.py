"""Seplos V2.0: every frame of the family in frames-dialects.json, the documented layouts, fuzzing.

Also the VER 0x20 helpers every 0x20 dialect uses (``dialects.ver20``).
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, strategies as st
import pytest

from ress_bms.dialects import DIALECTS, Capability, seplos, ver20
from ress_bms.dialects.base import DialectStatus
from ress_bms.dialects.ver20 import Own, Ver20Status, bit_table
from ress_bms.errors import (
    BmsError,
    ChecksumError,
    DecodeError,
    ForbiddenCommandError,
    FrameError,
    ResponseError,
)
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

SEPLOS = family("Seplos V2.0")
REQUESTS = [e for e in SEPLOS if e["request"]]
RESPONSES = [e for e in SEPLOS if e["response"]]
ENCODERS = {
    seplos.ANALOG: seplos.analog_request,
    seplos.STATUS: seplos.status_request,
}
NO_INFO_ENCODERS = {
    seplos.PROTOCOL_VERSION: seplos.protocol_version_request,
    seplos.VENDOR_INFO: seplos.vendor_info_request,
}
DECODERS = [
    seplos.decode_analog,
    seplos.decode_status,
    seplos.decode_protocol_version,
    seplos.decode_vendor_info,
]

# Values a source printed that the frame's own bytes contradict: none in this family (the
# sources print no values; the file's decoded_per_layout values all agree with the bytes).
ERRATA: dict[tuple[str, str], Any] = {}


def test_the_family_is_in_the_file() -> None:
    assert len(SEPLOS) == 13
    assert sum(1 for e in SEPLOS if e["response"]) == 5


@pytest.mark.parametrize("entry", REQUESTS, ids=entry_id)
def test_every_request_is_encoded_byte_for_byte(entry: Entry) -> None:
    printed, wire = printed_and_correct(entry)
    if printed != wire:
        with pytest.raises(ChecksumError):
            decode_frame(printed.encode())
    ver, adr, cid1, cid2, info = header(wire)
    assert (ver, cid1) == (ver20.VER, seplos.CID1)
    if cid2 in ENCODERS:
        assert ENCODERS[cid2](adr, info[0]).decode() == wire + "\r"
        if info[0] == adr:
            assert ENCODERS[cid2](adr).decode() == wire + "\r"
    elif cid2 in NO_INFO_ENCODERS:
        assert not info
        assert NO_INFO_ENCODERS[cid2](adr).decode() == wire + "\r"
    else:
        # 93H (a Pylontech read) and the undocumented master poll 5AH: not Seplos reads.
        assert cid2 not in seplos.READ_COMMANDS
        with pytest.raises(ForbiddenCommandError):
            ver20.encode_read(seplos.READ_COMMANDS, seplos.CID1, cid2, adr, info)


def _analog_view(decoded: seplos.SeplosAnalog) -> dict[str, Any]:
    """Our 42H values in the file's vocabulary (temperatures by role, wire units)."""
    pack = decoded.pack
    return {
        "data_flag": decoded.data_flag,
        "command_group": decoded.command_group,
        "cells_mV": [round(v * 1000) for v in pack.cell_voltages],
        "cell_temps_C": list(pack.cell_temperatures),
        "environment_temp_C": pack.environment_temperature,
        "power_temp_C": pack.mos_temperature,
        "current_A": pack.current,
        "voltage_V": pack.voltage,
        "residual_capacity_Ah": pack.remaining_capacity,
        "P": pack.user_defined_count,
        "battery_capacity_Ah": pack.full_capacity,
        "soc_pct": pack.soc,
        "rated_capacity_Ah": pack.design_capacity,
        "cycles": pack.cycles,
        "soh_pct": pack.soh,
        "port_voltage_V": decoded.port_voltage,
    }


@pytest.mark.parametrize("entry", RESPONSES, ids=entry_id)
def test_every_response_decodes_to_the_files_values(entry: Entry) -> None:
    frame = decode_frame(entry["response"].encode())
    request = decode_frame(entry["request"].encode())
    layout = entry["decoded_per_layout"]
    errata = {k: v for (c, k), v in ERRATA.items() if c == entry["command"]}
    if request.cid2 == seplos.ANALOG:
        decoded = seplos.decode_analog(entry["response"])
        assert decoded == seplos.decode_analog(frame) == seplos.decode_analog(frame.encode())
        assert decoded.pack.soc_source == decoded.pack.soh_source == "bms"
        checked = 0
        for source in (entry["decoded_by_source"], layout):
            if source:
                checked += check_values(_analog_view(decoded), source, errata)
        assert checked
        return
    # The rest are refusals: RTN 04 to a Pylontech read, and the 5AH master poll whose
    # answer keeps 5A in the RTN slot. Every decoder reports the code, typed.
    for decode in DECODERS:
        with pytest.raises(ResponseError) as err:
            decode(frame)
        assert err.value.code == frame.cid2
    if frame.cid2 == 0x04:
        assert layout["rtn"].startswith(f"{frame.cid2:02X}")
        assert len(frame.info) * 2 == layout["lenid"]
        assert err.value.meaning == "CID2 invalid"
        return
    assert frame.cid2 == 0x5A and err.value.meaning == "unknown return code"
    if layout:  # the slave-02 entry refers to the slave-01 one
        assert layout["reply_cid2_field"].startswith("5A")
        assert len(frame.info) == layout["info_bytes"]
        words = [frame.info[i : i + 2].hex().upper() for i in range(0, 22, 2)]
        assert words == layout["first_words_hex"]
    else:
        assert len(frame.info) == 32


def test_a_15_cell_pack_is_two_bytes_shorter_and_walks_the_same() -> None:
    frames = {len(e["decoded_per_layout"]["cells_mV"]): e for e in RESPONSES if "cells_mV" in (
        e["decoded_per_layout"] or {})}  # fmt: skip
    assert set(frames) == {15, 16}
    sizes = {n: len(decode_frame(e["response"].encode()).info) for n, e in frames.items()}
    assert sizes == {15: 73, 16: 75}
    for count, entry in frames.items():
        assert len(seplos.decode_analog(entry["response"]).pack.cell_voltages) == count


# -- 42H built from [SEPLOS-V2] Table 9 ---------------------------------------------------


def _analog_info(
    cells: int = 16, temps: tuple[int, ...] = (2981, 2982, 2983, 2984, 3031, 3131), words: int = 10
) -> bytes:
    info = bytes((0x00, 0x01, cells)) + b"".join((3300 + i).to_bytes(2) for i in range(cells))
    info += bytes((len(temps),)) + b"".join(t.to_bytes(2) for t in temps)
    info += (-1234).to_bytes(2, signed=True) + (5312).to_bytes(2) + (9000).to_bytes(2)
    info += bytes((words,))
    items = [10000, 900, 10500, 321, 985, 5310] + [0xAAAA] * (words - 6)
    return info + b"".join(w.to_bytes(2) for w in items[:words])


def test_analog_fields_and_units_follow_the_document() -> None:
    decoded = seplos.decode_analog(reply(3, seplos.CID1, _analog_info()))
    pack = decoded.pack
    assert pack.address == 3 and pack.online
    assert pack.cell_voltages[0] == 3.3 and pack.cell_voltages[-1] == 3.315
    assert pack.current == -12.34 and pack.voltage == 53.12 and pack.remaining_capacity == 90.0
    assert (pack.full_capacity, pack.design_capacity, pack.cycles) == (100.0, 105.0, 321)
    assert (pack.soc, pack.soh) == (90.0, 98.5)
    assert decoded.port_voltage == 53.1 and decoded.reserved == bytes.fromhex("AAAA") * 4
    # T1-T4 cells, T5 environment, T6 power on the wire; cells, MOS, environment in PackAnalog
    assert pack.cell_temperatures == (25.0, 25.1, 25.2, 25.3)
    assert pack.environment_temperature == 30.0
    assert pack.mos_temperature == 40.0


@pytest.mark.parametrize(
    ("temps", "cells", "mos", "environment"),
    [
        ((2981, 2982, 2983, 2984, 3031), (25.0, 25.1, 25.2, 25.3), None, 30.0),
        ((2981, 2982, 2983, 2984), (25.0, 25.1, 25.2, 25.3), None, None),
        ((2981, 2982, 2983, 2984, 2985, 3031, 3131), (25.0, 25.1, 25.2, 25.3, 25.4), 40.0, 30.0),
        ((), (), None, None),
    ],
    ids=["five", "four", "seven", "none"],
)
def test_other_temperature_counts_keep_their_roles(
    temps: tuple[int, ...], cells: tuple[float, ...], mos: float | None, environment: float | None
) -> None:
    pack = seplos.decode_analog(reply(0, seplos.CID1, _analog_info(temps=temps))).pack
    assert pack.cell_temperatures == cells
    assert pack.mos_temperature == mos
    assert pack.environment_temperature == environment


def test_the_user_defined_count_sizes_the_tail() -> None:
    longer = seplos.decode_analog(reply(0, seplos.CID1, _analog_info(words=12)))
    assert longer.reserved == bytes.fromhex("AAAA") * 6
    exact = seplos.decode_analog(reply(0, seplos.CID1, _analog_info(words=6)))
    assert exact.reserved == b"" and exact.port_voltage == 53.1
    with pytest.raises(DecodeError, match="P = 5"):
        seplos.decode_analog(reply(0, seplos.CID1, _analog_info(words=5)))


@pytest.mark.parametrize(
    "info",
    [
        _analog_info() + b"\x00",
        _analog_info()[:-1],
        _analog_info()[:40],
        b"",
        bytes((0, 1, 200)),
    ],
    ids=["trailing byte", "one short", "cut", "empty", "cells beyond the frame"],
)
def test_a_block_that_does_not_fit_its_counts_is_a_decode_error(info: bytes) -> None:
    with pytest.raises(DecodeError):
        seplos.decode_analog(reply(0, seplos.CID1, info))


def test_wrong_ver_cid1_and_rtn_are_typed() -> None:
    info = _analog_info()
    with pytest.raises(DecodeError, match="VER"):
        seplos.decode_analog(reply(0, seplos.CID1, info, ver=0x25))
    with pytest.raises(DecodeError, match="CID1"):
        seplos.decode_analog(reply(0, 0x4A, info))
    with pytest.raises(ResponseError) as err:
        seplos.decode_analog(reply(0, seplos.CID1, b"", rtn=0xE2))
    assert err.value.meaning == "command execution failed"
    with pytest.raises(FrameError):
        seplos.decode_analog(b"~20004600")
    with pytest.raises(ChecksumError):
        seplos.decode_analog(reply(0, seplos.CID1, info).replace(b"0C", b"0D", 1))


# -- 44H built from [SEPLOS-V2] Tables 11-13 ----------------------------------------------


def _status_info(
    events: dict[str, int] | None = None,
    cells: int = 16,
    temps: int = 6,
    count: int = 20,
    codes: tuple[int, ...] | None = None,
) -> bytes:
    names = [f.name for f in seplos.STATUS_ITEMS]
    values = dict.fromkeys(names, 0) | (events or {})
    temperature_codes = codes if codes is not None else (0,) * temps
    info = bytes((0x00, 0x01, cells)) + bytes(cells) + bytes((len(temperature_codes),))
    info += bytes(temperature_codes) + bytes((0x02, 0x01, count))
    tail = bytes(values[n] for n in names) + bytes(6)
    return info + tail[:count]


def test_status_bits_map_to_the_shared_keys_where_the_meaning_is_the_same() -> None:
    events = {
        "alarm_event_1": 0b0000_0010,  # temperature sensor fault
        "alarm_event_2": 0b0000_0010,  # cell over-voltage protection
        "alarm_event_3": 0b0000_0001,  # charge high-temperature alarm
        "alarm_event_4": 0b0110_0000,  # power high-temp alarm, low-temperature heating
        "alarm_event_5": 0b1010_0000,  # short-circuit protection and its lockout
        "alarm_event_6": 0b0010_0100,  # residual capacity alarm, reverse polarity
        "on_off_state": 0b0000_1011,  # discharge, charge, heating switches
        "equilibrium_1": 0b0000_0001,  # cell 1
        "equilibrium_2": 0b1000_0000,  # cell 16
        "system_state": 0b0001_0010,  # charge, standby
        "disconnection_2": 0b0000_0100,  # cell 11
        "alarm_event_7": 0b0001_0000,  # automatic charging waiting
        "alarm_event_8": 0b0000_0001,  # EEPROM fault
    }
    decoded = seplos.decode_status(reply(5, seplos.CID1, _status_info(events)))
    status = decoded.status
    assert status.address == 5
    assert status.protections == ("cell_over_voltage", "short_circuit")
    assert status.alarms == ("charge_high_temperature", "mos_high_temperature", "low_soc")
    assert status.faults == ("reverse_connection", "ntc")
    assert status.charge_mos and status.discharge_mos and status.heating
    assert not status.current_limit
    assert status.flag("charging") and not status.flag("shutdown")
    assert status.balancing == (1, 16)
    assert decoded.extra == (
        "cell_low_temperature_heating", "short_circuit_lockout", "standby",
        "automatic_charging_waiting", "eeprom_fault", "cell_wire_disconnected",
    )  # fmt: skip
    assert decoded.extra_cells == {"cell_wire_disconnected": (11,)}
    assert decoded.raw["on_off_state"] == 0b1011
    # one current code for both directions, then the total-voltage code
    assert (status.charge_current_code, status.voltage_code) == (0x02, 0x01)
    assert status.discharge_current_code == 0x02


def test_status_offsets_match_dbus_serialbattery_for_16_cells_and_6_temperatures() -> None:
    """dbus-serialbattery reads alarm event 2 at INFO byte 30 ... on-off at 35 (dialects.md 2.4)."""
    info = bytearray(_status_info())
    for offset, value in {30: 0x01, 31: 0x10, 33: 0x04, 34: 0x08, 35: 0x04}.items():
        info[offset] = value
    decoded = seplos.decode_status(reply(0, seplos.CID1, bytes(info)))
    assert decoded.raw["alarm_event_2"] == 0x01
    assert decoded.status.alarms == (
        "cell_over_voltage", "discharge_over_current", "discharge_high_temperature",
    )  # fmt: skip
    assert decoded.status.protections == ()
    assert decoded.extra == ("residual_capacity_protection",)
    assert decoded.status.current_limit


def test_status_temperature_codes_take_the_shared_roles() -> None:
    # wire: cells 1-4, environment (02), power (01)
    decoded = seplos.decode_status(reply(0, seplos.CID1, _status_info(codes=(0, 0xF0, 0, 0, 2, 1))))
    assert decoded.status.temperature_codes == (0, 0xF0, 0, 0, 1, 2)
    ntc = decoded.status.place(BITS_BY_KEY["ntc_fault"])
    assert ntc.sensors == ("cell_temperature_2",)


def test_status_counts_walk_and_misfits_are_decode_errors() -> None:
    fifteen = seplos.decode_status(reply(0, seplos.CID1, _status_info(cells=15)))
    assert len(fifteen.status.cell_codes) == 15
    assert seplos.decode_status(reply(0, seplos.CID1, _status_info(count=14))).raw
    with pytest.raises(DecodeError, match="P = 13"):
        seplos.decode_status(reply(0, seplos.CID1, _status_info(count=13)))
    with pytest.raises(DecodeError):
        seplos.decode_status(reply(0, seplos.CID1, _status_info() + b"\x00"))
    with pytest.raises(DecodeError):
        seplos.decode_status(reply(0, seplos.CID1, _status_info()[:-1]))


def test_every_documented_bit_has_a_name_and_shared_keys_exist() -> None:
    table = seplos.STATUS_TABLE
    assert all(key in BITS_BY_KEY for key in table.shared_keys)
    assert not set(seplos.OWN_BITS) & set(BITS_BY_KEY)
    for flags in table.flags.values():
        assert len({f.bit for f in flags}) == len(flags)
    assert set(table.field_names) == {f.name for f in seplos.STATUS_ITEMS}


# -- 4FH, 51H -----------------------------------------------------------------------------


def test_protocol_version_is_the_reply_ver() -> None:
    assert seplos.decode_protocol_version(reply(0, seplos.CID1, b"")) == 0x20
    assert seplos.decode_protocol_version(reply(0, seplos.CID1, b"", ver=0x21)) == 0x21
    with pytest.raises(DecodeError):
        seplos.decode_protocol_version(reply(0, seplos.CID1, b"\x01"))


def test_vendor_info_is_the_32_byte_split() -> None:
    info = b"1101-SP16 " + bytes((1, 7)) + b"SEPLOS".ljust(20, b"\x00")
    decoded = seplos.decode_vendor_info(reply(0, seplos.CID1, info))
    assert (decoded.device_name, decoded.version, decoded.manufacturer) == (
        "1101-SP16", "1.7", "SEPLOS",
    )  # fmt: skip
    with pytest.raises(DecodeError):
        seplos.decode_vendor_info(reply(0, seplos.CID1, info + b" "))


# -- requests and what the dialect says of itself -----------------------------------------


def test_only_reads_are_encoded() -> None:
    assert sorted(seplos.READ_COMMANDS) == [0x42, 0x44, 0x4F, 0x51]
    assert not seplos.READ_COMMANDS & ver20.WRITES_IN_SOME_DIALECT
    for cid2 in (0x45, 0x47, 0x49, 0x4B, 0x4D, 0x4E, 0xA0, 0xA1, 0xA2, 0x5A):
        with pytest.raises(ForbiddenCommandError):
            ver20.encode_read(seplos.READ_COMMANDS, seplos.CID1, cid2, 0)
    with pytest.raises(ForbiddenCommandError):
        ver20.encode_read(frozenset({0x45}), seplos.CID1, 0x45, 0)
    with pytest.raises(ValueError, match="write"):
        ver20.check_reads(frozenset({0x42, 0x49}))
    for encode in (*ENCODERS.values(), *NO_INFO_ENCODERS.values()):
        frame = decode_frame(encode(0x0F))
        assert (frame.ver, frame.adr, frame.cid1) == (0x20, 0x0F, seplos.CID1)
        assert frame.cid2 in seplos.READ_COMMANDS
        with pytest.raises(ValueError, match="out of range"):
            encode(0xFF)
    with pytest.raises(ValueError, match="GROUP"):
        seplos.analog_request(0, 0xFF)


def test_the_dialect_describes_itself() -> None:
    info = seplos.INFO
    assert list(DIALECTS)[:4] == ["pace", "seplos", "pylontech", "eg4"]
    assert DIALECTS["seplos"] is info
    assert info.baudrates == (9600, 19200)
    assert info.capabilities == {Capability.TELEMETRY, Capability.ALARMS}
    assert set(info.reasons) == set(Capability) - info.capabilities
    assert not info.can(Capability.PARAMETERS_WRITE) and not info.can(Capability.CONTROLS)
    assert info.brands


# -- the VER 0x20 helpers -----------------------------------------------------------------


def test_shared_roles_pad_only_where_a_later_role_needs_the_slot() -> None:
    roles = ver20.shared_roles
    assert roles((1, 2), None, None, 0) == (1, 2)
    assert roles((1, 2), 5, None, 0) == (1, 2, 0, 0, 5)
    assert roles((1, 2), None, 6, 0) == (1, 2, 0, 0, 0, 6)
    assert roles((1, 2, 3, 4, 7), None, None, 0) == (1, 2, 3, 4, 7, 0, 0)
    assert roles((1, 2, 3, 4), 5, 6, 0) == (1, 2, 3, 4, 5, 6)


def test_bit_tables_refuse_unknown_shared_keys_and_shadowing_names() -> None:
    with pytest.raises(ValueError, match="not a STATUS_BITS key"):
        bit_table({"x": ("cell_over_voltage",)})
    with pytest.raises(ValueError, match="is a shared key"):
        bit_table({"x": (Own("charge_mos"),)})
    with pytest.raises(ValueError, match="two bits"):
        bit_table({"x": ("charge_mos",), "y": ("charge_mos",)})
    with pytest.raises(ValueError, match="more bits"):
        bit_table({"x": (None,) * 9})


def test_a_dialect_status_is_a_pack_status_with_extras() -> None:
    decoded = seplos.decode_status(reply(0, seplos.CID1, _status_info()))
    assert isinstance(decoded, Ver20Status) and isinstance(decoded, DialectStatus)
    assert decoded.extra == () and decoded.extra_cells == {}
    assert decoded.raw["data_flag"] == 0 and decoded.raw["system_state"] == 0
    assert decoded.status.protections == decoded.status.alarms == decoded.status.faults == ()


# -- fuzzing ------------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=200), st.integers(0, 0xFE))
def test_arbitrary_info_raises_only_typed_errors(info: bytes, adr: int) -> None:
    only_typed_errors(DECODERS, Frame(0x20, adr, seplos.CID1, 0, info))


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_typed_errors(data: bytes) -> None:
    only_typed_errors(DECODERS, data)
    only_typed_errors(DECODERS, data.decode("latin-1"))


@FUZZ
@given(st.sampled_from([*real_frames(SEPLOS), reply(0, seplos.CID1, _status_info())]), st.data())
def test_mutated_real_frames_raise_only_typed_errors(raw: bytes, data: st.DataObject) -> None:
    frame = mutated(raw, data)
    try:
        decoded = decode_frame(frame)
    except BmsError:
        return
    only_typed_errors(DECODERS, Frame(0x20, decoded.adr, seplos.CID1, 0, decoded.info))
    only_typed_errors(DECODERS, frame)


@FUZZ
@given(
    st.integers(1, 24),
    st.lists(st.integers(0, 0xFFFF), max_size=9),
    st.integers(0, 16),
    st.integers(0, 40),
)
def test_well_formed_blocks_of_any_shape_decode(
    cells: int, temps: list[int], words: int, status_count: int
) -> None:
    """Counts the documents allow are walked; the ones they do not are decode errors."""
    info = _analog_info(cells=cells, temps=tuple(temps), words=max(words, 0))
    try:
        pack = seplos.decode_analog(reply(0, seplos.CID1, info)).pack
    except DecodeError:
        assert words < 6
    else:
        assert len(pack.cell_voltages) == cells
    try:
        seplos.decode_status(reply(0, seplos.CID1, _status_info(cells=cells, count=status_count)))
    except DecodeError:
        assert status_count < 14 or status_count > 20
