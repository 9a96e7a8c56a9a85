"""Pylontech RS485: every frame of the family in frames-dialects.json, the documented layouts
(one pack and whole groups, the > 65 Ah variant, 47H, 92H, 93H, 96H, 51H, 4FH), fuzzing."""

from __future__ import annotations

from collections.abc import Callable
import json
from pathlib import Path
from typing import Any

from hypothesis import given, strategies as st
import pytest

from ress_bms.dialects import DIALECTS, Capability, pylontech, ver20
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

PYLON = family("Pylontech")
REQUESTS = [e for e in PYLON if e["request"]]
RESPONSES = [e for e in PYLON if e["response"]]
COMMAND_ENCODERS: dict[int, Callable[..., bytes]] = {
    pylontech.ANALOG: pylontech.analog_request,
    pylontech.STATUS: pylontech.status_request,
}
NO_INFO_ENCODERS: dict[int, Callable[[int], bytes]] = {
    pylontech.PROTOCOL_VERSION: pylontech.protocol_version_request,
    pylontech.MANUFACTURER_INFO: pylontech.manufacturer_info_request,
    pylontech.SYSTEM_PARAMETERS: pylontech.system_parameters_request,
}
ADR_ENCODERS: dict[int, Callable[[int], bytes]] = {
    pylontech.MANAGEMENT: pylontech.management_request,
    pylontech.SERIAL_NUMBER: pylontech.serial_number_request,
    pylontech.SOFTWARE_VERSION: pylontech.software_version_request,
}
DECODERS: list[Callable[[Any], object]] = [
    pylontech.decode_analog,
    lambda r: pylontech.decode_analog(r, pylontech.ALL_PACKS),
    lambda r: pylontech.decode_analog(r, 2),
    pylontech.decode_status,
    lambda r: pylontech.decode_status(r, pylontech.ALL_PACKS),
    pylontech.decode_system_parameters,
    pylontech.decode_management,
    pylontech.decode_serial_number,
    pylontech.decode_software_version,
    pylontech.decode_manufacturer_info,
    pylontech.decode_protocol_version,
]

# Values a source printed that the frame's own bytes contradict: none. (The V3.3 example's
# printed CHKSUM E1A2 is wrong, but the file carries the recomputed E27A and says so.)
ERRATA: dict[tuple[str, str], Any] = {}


def test_the_family_is_in_the_file() -> None:
    assert len(PYLON) == 9
    assert len(RESPONSES) == 2


@pytest.mark.parametrize("entry", REQUESTS, ids=entry_id)
def test_every_request_is_encoded_byte_for_byte(entry: Entry) -> None:
    printed, wire = printed_and_correct(entry)
    assert printed == wire
    ver, adr, cid1, cid2, info = header(wire)
    assert (ver, cid1) == (ver20.VER, pylontech.CID1)
    assert cid2 in pylontech.READ_COMMANDS
    if cid2 in COMMAND_ENCODERS:
        assert COMMAND_ENCODERS[cid2](adr, info[0]).decode() == wire + "\r"
        if info[0] == adr:
            assert COMMAND_ENCODERS[cid2](adr).decode() == wire + "\r"
    elif cid2 in ADR_ENCODERS:
        assert info == bytes((adr,))
        assert ADR_ENCODERS[cid2](adr).decode() == wire + "\r"
    else:
        assert not info
        assert NO_INFO_ENCODERS[cid2](adr).decode() == wire + "\r"


def _analog_view(entry: Entry) -> dict[str, Any]:
    """Our 42H values in the file's vocabulary (temperatures back in wire order)."""
    info = decode_frame(entry["response"].encode()).info
    decoded = pylontech.decode_analog(entry["response"])
    (pack,) = decoded.packs
    # The 16-bit capacities are hidden behind the 24-bit ones when P = 4: read them with the
    # module's own tables.
    block, end = read_fields(pylontech.ANALOG_BLOCK, info, 2)
    items, _ = read_fields(pylontech.ANALOG_ITEMS[: pack.user_defined_count], info, end)
    remain_1 = round(float(block["remaining_capacity_1"]) * 1000)  # type: ignore[arg-type]
    total_1 = round(float(items["total_capacity_1"]) * 1000)  # type: ignore[arg-type]
    wire = (pack.mos_temperature, *pack.cell_temperatures)  # T1 is the BMS board
    cells = [round(v * 1000) for v in pack.cell_voltages]
    big = {k: int.from_bytes(v) / 1000 for k, v in items.items() if isinstance(v, bytes)}
    return {
        # [PYLON-2.8]/[PYLON-3.3] names
        "cells": len(cells),
        "cell1_mV": cells[0],
        "cell2_mV": cells[1],
        "cellM_mV": cells[-1],
        "temperature_count": len(wire),
        "temp1_C": wire[0],
        "tempN_C": wire[-1],
        "current": pack.current,
        "module_voltage_mV": round(pack.voltage * 1000),
        "remain_mAh": round(pack.remaining_capacity * 1000),
        "custom_quantity": pack.user_defined_count,
        "user_defined_number": pack.user_defined_count,
        "total_mAh": round(pack.full_capacity * 1000),
        "cycles": pack.cycles,
        "remain_capacity_1": f"{remain_1:04X}",
        "module_total_capacity_1": f"{total_1:04X}",
        "remain_capacity_2_Ah": big.get("remaining_capacity_2"),
        "module_total_capacity_2_Ah": big.get("total_capacity_2"),
        # decoded_per_layout names
        "infoflag": decoded.info_flag,
        "command_value": pack.address,
        "cells_mV": cells,
        "bms_board_temp_C": pack.mos_temperature,
        "cell_group_temps_C": list(pack.cell_temperatures),
        "current_A": pack.current,
        "module_voltage_V": pack.voltage,
        "remain_capacity_1_raw": remain_1,
        "user_defined_items": pack.user_defined_count,
        "total_capacity_1_raw": total_1,
        "total_capacity_2_Ah": big.get("total_capacity_2"),
        "remain_capacity_Ah": pack.remaining_capacity,
        "total_capacity_Ah": pack.full_capacity,
    }


@pytest.mark.parametrize("entry", RESPONSES, ids=entry_id)
def test_every_response_decodes_to_the_files_values(entry: Entry) -> None:
    assert decode_frame(entry["request"].encode()).cid2 == pylontech.ANALOG
    errata = {k: v for (c, k), v in ERRATA.items() if c == entry["command"]}
    view = _analog_view(entry)
    source = check_values(view, entry["decoded_by_source"], errata)
    layout = check_values(view, entry["decoded_per_layout"], errata)
    assert source and layout
    pack = pylontech.decode_analog(entry["response"]).packs[0]
    assert pack.soc_source == "computed" and pack.design_capacity == 0.0


def test_capacities_above_65_ah_come_from_the_24_bit_fields() -> None:
    small, big = (pylontech.decode_analog(e["response"]).packs[0] for e in RESPONSES)
    assert (small.remaining_capacity, small.full_capacity, small.soc) == (49.0, 50.0, 98.0)
    assert (big.remaining_capacity, big.full_capacity, big.soc) == (51.8, 74.0, 70.0)


def _block(entry: int = 0) -> bytes:
    """The one pack block of a file response (after INFOFLAG and COMMAND)."""
    return decode_frame(RESPONSES[entry]["response"].encode()).info[2:]


def test_a_whole_group_is_a_block_per_pack_from_the_masters_address() -> None:
    info = bytes((0x11, 3)) + _block(0) + _block(1) + _block(0)
    decoded = pylontech.decode_analog(reply(0x12, pylontech.CID1, info), pylontech.ALL_PACKS)
    assert [p.address for p in decoded.packs] == [0x12, 0x13, 0x14]
    assert [p.full_capacity for p in decoded.packs] == [50.0, 74.0, 50.0]
    for count in (0, 2, 4):
        with pytest.raises(DecodeError):
            pylontech.decode_analog(
                reply(0x12, pylontech.CID1, bytes((0x11, count)) + info[2:]), pylontech.ALL_PACKS
            )


def test_the_echoed_command_must_be_the_one_asked() -> None:
    raw = RESPONSES[1]["response"]
    assert pylontech.decode_analog(raw, 2).packs[0].address == 2
    with pytest.raises(DecodeError, match="asked for 03"):
        pylontech.decode_analog(raw, 3)


def _with_items(count: int, extra: bytes = b"") -> bytes:
    block = bytearray(_block(1))
    p_at = len(block) - 11  # P, total 1, cycles, remain 2 (3), total 2 (3)
    assert block[p_at] == 4
    block[p_at] = count
    body = bytes(block[: p_at + 1]) + bytes(block[p_at + 1 :])[: {2: 4, 3: 7, 4: 10}.get(count, 10)]
    return bytes((0x11, 2)) + body + extra


def test_the_user_defined_number_counts_the_items() -> None:
    three = pylontech.decode_analog(reply(2, pylontech.CID1, _with_items(3))).packs[0]
    assert (three.remaining_capacity, three.full_capacity) == (51.8, 65.535)
    two = pylontech.decode_analog(reply(2, pylontech.CID1, _with_items(2))).packs[0]
    assert two.remaining_capacity == two.full_capacity == 65.535
    for count in (0, 1, 5):
        with pytest.raises(DecodeError, match="user-defined number"):
            pylontech.decode_analog(reply(2, pylontech.CID1, _with_items(count)))
    with pytest.raises(DecodeError, match="left over"):
        pylontech.decode_analog(reply(2, pylontech.CID1, _with_items(4, b"\x00")))


def _analog_info(cells: int, temps: tuple[int, ...], command: int = 2) -> bytes:
    block = bytes((cells,)) + b"".join((3300 + i).to_bytes(2) for i in range(cells))
    block += bytes((len(temps),)) + b"".join(t.to_bytes(2, signed=True) for t in temps)
    block += (-42).to_bytes(2, signed=True) + (52800).to_bytes(2) + (40000).to_bytes(2)
    block += bytes((2,)) + (50000).to_bytes(2) + (17).to_bytes(2)
    return bytes((0x11, command)) + block


def test_units_and_signs_follow_the_documents() -> None:
    pack = pylontech.decode_analog(reply(2, pylontech.CID1, _analog_info(16, (3011,) * 5))).packs[0]
    assert pack.current == -4.2  # 100 mA, signed ([PYLON-3.3]: -4000 mA = 0xFFD8)
    assert pack.voltage == 52.8 and pack.remaining_capacity == 40.0 and pack.cycles == 17
    assert len(pack.cell_voltages) == 16 and pack.cell_voltages[-1] == 3.315
    assert pack.soc == 80.0 and pack.soc_source == "computed"


def test_a_sixth_temperature_is_the_mosfet_and_the_board_moves_to_environment() -> None:
    five = pylontech.decode_analog(
        reply(2, pylontech.CID1, _analog_info(15, (3011, 2981, 2991, 3001, 3021)))
    ).packs[0]
    assert five.cell_temperatures == (25.0, 26.0, 27.0, 29.0)
    assert (five.mos_temperature, five.environment_temperature) == (28.0, None)
    six = pylontech.decode_analog(
        reply(2, pylontech.CID1, _analog_info(16, (3011, 2981, 2991, 3001, 3021, 3131)))
    ).packs[0]
    assert six.cell_temperatures == (25.0, 26.0, 27.0, 29.0)
    assert (six.mos_temperature, six.environment_temperature) == (40.0, 28.0)
    cold = pylontech.decode_analog(reply(2, pylontech.CID1, _analog_info(4, (2631,)))).packs[0]
    # the board alone still takes the MOS slot: the cell slots before it are empty
    assert cold.cell_temperatures == (None,) * 4 and cold.mos_temperature == -10.0
    none = pylontech.decode_analog(reply(2, pylontech.CID1, _analog_info(4, ()))).packs[0]
    assert none.temperatures == ()


def test_the_itel_clone_decodes_by_the_documents_with_its_capacities_ten_times_low() -> None:
    """frames.json's Pylontech-like Itel Energy pack sends 10 mAh capacities (dialects.md 8.4)."""
    frames = json.loads((Path(__file__).parents[1] / "fixtures" / "frames.json").read_text())
    itel = next(f for f in frames["frames"] if f["device"] == "Itel Energy")
    pack = pylontech.decode_analog(itel["response"]).packs[0]
    assert len(pack.cell_voltages) == 16 and pack.voltage == 57.391
    assert (pack.remaining_capacity, pack.full_capacity, pack.cycles) == (9.994, 9.997, 407)


# -- 44H ([PYLON-3.3] 3.5) ----------------------------------------------------------------


def _status_block(
    cells: int = 15, temps: tuple[int, ...] = (0,) * 5, status: tuple[int, ...] = (0,) * 5
) -> bytes:
    return bytes((cells, *([0] * cells), len(temps), *temps, 0, 2, 1, *status))


def test_status_bits_map_to_shared_keys_and_keep_the_rest() -> None:
    info = bytes((0x11, 2)) + _status_block(
        cells=15, status=(0b1000_0001, 0b0000_1110, 0b1010_1001, 0b1000_0001, 0b1100_0000)
    )
    (decoded,) = pylontech.decode_status(reply(2, pylontech.CID1, info))
    status = decoded.status
    assert status.address == 2
    assert status.charge_mos and status.discharge_mos and status.heating
    assert status.flag("charging") and status.flag("fully_charged")
    assert status.protections == status.alarms == status.faults == ()
    assert decoded.extra == (
        "module_over_voltage", "module_under_voltage", "using_battery_power", "buzzer_on",
        "cell_error",
    )  # fmt: skip
    # status 5 bit 7 would be cell 16 of a 15-cell module: not a cell
    assert decoded.extra_cells == {"cell_error": (1, 8, 15)}
    assert (status.charge_current_code, status.voltage_code) == (0, 2)
    assert status.discharge_current_code == 1
    assert decoded.raw["data_flag"] == 0x11 and decoded.raw["status_3"] == 0b1010_1001


def test_status_of_a_whole_group_and_temperature_roles() -> None:
    blocks = _status_block(temps=(2, 0, 0xF0, 0, 0)) + _status_block(
        cells=16, temps=(0, 0, 0, 0, 0, 2)
    )
    packs = pylontech.decode_status(
        reply(0x22, pylontech.CID1, bytes((0x11, 2)) + blocks), pylontech.ALL_PACKS
    )
    assert [p.status.address for p in packs] == [0x22, 0x23]
    # five codes: board first on the wire, the MOS/board slot here
    assert packs[0].status.temperature_codes == (0, 0xF0, 0, 0, 2)
    assert packs[0].status.place(BITS_BY_KEY["ntc_fault"]).sensors == ("cell_temperature_2",)
    # six: the last is the MOSFET (US3000B), the board takes the environment slot
    assert packs[1].status.temperature_codes == (0, 0, 0, 0, 2, 0)
    with pytest.raises(DecodeError):
        pylontech.decode_status(reply(0x22, pylontech.CID1, bytes((0x11, 9)) + blocks), 0xFF)
    with pytest.raises(DecodeError):
        pylontech.decode_status(reply(0x22, pylontech.CID1, bytes((0x11, 1)) + blocks), 0xFF)
    with pytest.raises(DecodeError, match="asked for 22"):
        pylontech.decode_status(reply(0x22, pylontech.CID1, bytes((0x11, 2)) + blocks[:29]))


def test_undocumented_bytes_after_status_5_are_kept_the_same_in_every_block() -> None:
    """A US3000C's 44H carries one byte more than the documents (a public bridge's replay)."""
    one = _status_block(status=(0, 0x0E, 0x40, 0, 0)) + b"\x00"
    (single,) = pylontech.decode_status(reply(2, pylontech.CID1, bytes((0x00, 2)) + one))
    assert single.raw["trailing_1"] == 0 and single.status.charge_mos
    assert single.extra == ("using_battery_power", "discharging")
    two = _status_block(cells=16) + b"\xaa\xbb"
    packs = pylontech.decode_status(
        reply(2, pylontech.CID1, bytes((0x00, 2)) + _status_block() + b"\x01\x02" + two), 0xFF
    )
    assert [(p.raw["trailing_1"], p.raw["trailing_2"]) for p in packs] == [
        (1, 2),
        (0xAA, 0xBB),
    ]
    too_many = bytes((0x00, 2)) + _status_block() + bytes(pylontech.MAX_STATUS_TRAILER + 1)
    with pytest.raises(DecodeError, match="do not fill"):
        pylontech.decode_status(reply(2, pylontech.CID1, too_many))


def test_every_documented_status_bit_has_a_name() -> None:
    table = pylontech.STATUS_TABLE
    assert all(key in BITS_BY_KEY for key in table.shared_keys)
    assert not set(pylontech.OWN_BITS) & set(BITS_BY_KEY)
    assert len(table) == 7 + 4 + 5


# -- 47H, 92H, 93H, 96H, 51H, 4FH ---------------------------------------------------------


def _words(*values: int) -> bytes:
    return b"".join(v.to_bytes(2, signed=v < 0) for v in values)


def test_system_parameters() -> None:
    info = bytes((0x11,)) + _words(3650, 3050, 2900, 3231, 2731, 500, 54000, 48000, 46000)
    info += _words(3331, 2531, -1000)
    params = pylontech.decode_system_parameters(reply(2, pylontech.CID1, info))
    assert params == pylontech.SystemParameters(
        cell_high_voltage_limit=3.65,
        cell_low_voltage_limit=3.05,
        cell_under_voltage_limit=2.9,
        charge_high_temperature_limit=50.0,
        charge_low_temperature_limit=0.0,
        charge_current_limit=50.0,
        module_high_voltage_limit=54.0,
        module_low_voltage_limit=48.0,
        module_under_voltage_limit=46.0,
        discharge_high_temperature_limit=60.0,
        discharge_low_temperature_limit=-20.0,
        discharge_current_limit=-100.0,
    )
    with pytest.raises(DecodeError):
        pylontech.decode_system_parameters(reply(2, pylontech.CID1, info[:-1]))


def test_charge_management() -> None:
    info = bytes((2,)) + _words(53250, 44000, 500, -1000) + bytes((0b1100_1000,))
    mgmt = pylontech.decode_management(reply(2, pylontech.CID1, info))
    assert (mgmt.address, mgmt.charge_voltage_limit, mgmt.discharge_voltage_limit) == (
        2, 53.25, 44.0,
    )  # fmt: skip
    assert (mgmt.charge_current_limit, mgmt.discharge_current_limit) == (50.0, -100.0)
    assert mgmt.charge_enabled and mgmt.discharge_enabled and mgmt.full_charge_request
    assert not mgmt.charge_immediately_1 and not mgmt.charge_immediately_2
    stop = pylontech.decode_management(reply(2, pylontech.CID1, info[:-1] + b"\x30"))
    assert not stop.charge_enabled and stop.charge_immediately_1 and stop.charge_immediately_2


def test_serial_software_manufacturer_and_protocol_version() -> None:
    serial = pylontech.decode_serial_number(reply(2, pylontech.CID1, b"\x02HPTBH02240A01234"))
    assert serial == pylontech.ModuleSerial(2, "HPTBH02240A01234")
    version = pylontech.decode_software_version(reply(2, pylontech.CID1, bytes((2, 1, 2, 3, 4, 5))))
    assert (version.manufacturer, version.main_line) == ("1.2", "3.4.5")
    info = b"US2000C\x00\x00\x00" + bytes((2, 1)) + b"PYLON".ljust(20)
    maker = pylontech.decode_manufacturer_info(reply(2, pylontech.CID1, info))
    assert (maker.device_name, maker.version, maker.manufacturer) == ("US2000C", "2.1", "PYLON")
    assert pylontech.decode_protocol_version(reply(2, pylontech.CID1, b"", ver=0x35)) == 0x35
    for decode, size in (
        (pylontech.decode_serial_number, 17),
        (pylontech.decode_software_version, 6),
        (pylontech.decode_manufacturer_info, 32),
        (pylontech.decode_protocol_version, 0),
    ):
        with pytest.raises(DecodeError):
            decode(reply(2, pylontech.CID1, bytes(size + 1)))


def test_pylontech_return_codes_are_typed() -> None:
    with pytest.raises(ResponseError) as err:
        pylontech.decode_analog(reply(2, pylontech.CID1, b"", rtn=0x90))
    assert err.value.meaning == "ADR error"
    with pytest.raises(ResponseError) as err:
        pylontech.decode_status(reply(2, pylontech.CID1, b"", rtn=0x91))
    assert err.value.meaning == "communication error"
    with pytest.raises(DecodeError, match="CID1"):
        pylontech.decode_analog(reply(1, 0x4A, _block(0)))
    with pytest.raises(DecodeError, match="VER"):
        pylontech.decode_analog(reply(1, pylontech.CID1, _block(0), ver=0x25))


# -- requests and what the dialect says of itself -----------------------------------------


def test_only_reads_are_encoded() -> None:
    assert sorted(pylontech.READ_COMMANDS) == [0x42, 0x44, 0x47, 0x4F, 0x51, 0x92, 0x93, 0x96]
    for cid2 in (0x90, 0x91, 0x94, 0x95, 0x99):
        assert cid2 not in pylontech.READ_COMMANDS
        with pytest.raises(ForbiddenCommandError):
            ver20.encode_read(pylontech.READ_COMMANDS, pylontech.CID1, cid2, 2, b"\x02")
    group = decode_frame(pylontech.analog_request(0x12, pylontech.ALL_PACKS))
    assert (group.adr, group.cid2, group.info) == (0x12, pylontech.ANALOG, b"\xff")
    for encode in (*NO_INFO_ENCODERS.values(), *ADR_ENCODERS.values()):
        frame = decode_frame(encode(3))
        assert (frame.ver, frame.adr, frame.cid1) == (0x20, 3, pylontech.CID1)
        with pytest.raises(ValueError, match="out of range"):
            encode(0xFF)
    with pytest.raises(ValueError, match="COMMAND"):
        pylontech.status_request(2, 0x100)


def test_the_dialect_describes_itself() -> None:
    info = pylontech.INFO
    assert DIALECTS["pylontech"] is info
    assert info.baudrates == (9600, 115200)
    assert info.capabilities == {
        Capability.TELEMETRY, Capability.ALARMS, Capability.PARAMETERS_READ,
    }  # fmt: skip
    assert set(info.reasons) == set(Capability) - info.capabilities
    assert not info.can(Capability.PARAMETERS_WRITE) and not info.can(Capability.CONTROLS)
    assert any("US2000" in brand for brand in info.brands)


# -- fuzzing ------------------------------------------------------------------------------

SAMPLES = [
    *real_frames(PYLON),
    reply(0x12, pylontech.CID1, bytes((0x11, 2)) + _block(0) + _block(1)),
    reply(2, pylontech.CID1, bytes((0x11, 2)) + _status_block(status=(1, 2, 3, 4, 5))),
]


@FUZZ
@given(st.binary(max_size=200), st.integers(0, 0xFE))
def test_arbitrary_info_raises_only_typed_errors(info: bytes, adr: int) -> None:
    only_typed_errors(DECODERS, Frame(0x20, adr, pylontech.CID1, 0, info))


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
    only_typed_errors(DECODERS, Frame(0x20, decoded.adr, pylontech.CID1, 0, decoded.info))
