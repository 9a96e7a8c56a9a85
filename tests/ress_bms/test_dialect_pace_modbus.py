"""PACE BMS Modbus RTU V1.3: requests against the reference frames, decoders against the document.

The reference (frames-dialects.json) has the requests of syssi's ESPHome configuration and one
constructed from the document, but no reply of a PACE Modbus pack (none was found public,
dialects.md 9). Replies here are built register by register from [PACE-MODBUS] 4.1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from hypothesis import given, strategies as st
import pytest

from ress_bms.analog import PackAnalog
from ress_bms.dialects import DIALECTS, Capability, MultiPack, pace_modbus as pm
from ress_bms.dialects.base import Threshold
from ress_bms.errors import ChecksumError, DecodeError, FrameError
from ress_bms.framing import MODBUS
from ress_bms.modbus import (
    READ_HOLDING,
    READ_INPUT,
    ModbusExceptionError,
    ReadReply,
    ReadRequest,
    ReplyCutter,
    decode_reply,
    decode_request,
    with_crc,
)
from ress_bms.status import BITS_BY_KEY, CODE_NORMAL

from .reference_frames import family

FAMILY = family("PACE BMS Modbus RTU V1.3")
RESERVED = {8, 13, 14, *range(37, 60), *range(115, 150)}


def reply_to(request: ReadRequest, image: Mapping[int, int]) -> ReadReply:
    """The reply a pack holding ``image`` (register -> word, 0 elsewhere) sends to ``request``."""
    data = b"".join(image.get(request.start + i, 0).to_bytes(2) for i in range(request.count))
    raw = with_crc(bytes((request.unit, request.function, len(data))) + data)
    return decode_reply(raw, request)


def text(first: int, value: str, registers: int = 10) -> dict[int, int]:
    raw = value.encode("ascii").ljust(2 * registers, b"\x00")
    return {first + i: int.from_bytes(raw[2 * i : 2 * i + 2]) for i in range(registers)}


def s16(value: int) -> int:
    return value & 0xFFFF


# A pack as [PACE-MODBUS] 4.1 lays it out: -1.37 A, 53.24 V, SOC 83 %, ...
PACK_IMAGE: dict[int, int] = {
    0: s16(-137), 1: 5324, 2: 83, 3: 99, 4: 27456, 5: 33000, 6: 34000, 7: 10,
    9: 1 << 0 | 1 << 15,  # cell over-voltage alarm, SOC low alarm
    10: 1 << 6 | 1 << 13,  # short circuit, environment high temperature protection
    11: 1 << 2 | 1 << 9 | 1 << 10 | 1 << 11 | 1 << 14,  # NTC fault, discharging, both MOS, reversed
    12: 1 << 0 | 1 << 15,  # balancing cells 1 and 16
    **{15 + i: 3300 + i for i in range(16)},
    31: 215, 32: 212, 33: s16(-50), 34: 210, 35: 300, 36: s16(-10),
}  # fmt: skip

PARAMETER_IMAGE: dict[int, int] = {
    60: 57600, 61: 58400, 62: 54400, 63: 10,
    64: 3600, 65: 3650, 66: 3380, 67: 10,
    68: 48000, 69: 44800, 70: 49600, 71: 20,
    72: 3000, 73: 2800, 74: 3100, 75: 20,
    76: 105, 77: 110, 78: 10,
    79: 105, 80: 110, 81: 10,
    82: 150, 83: 4,
    84: 500, 85: 550, 86: 500,
    87: 550, 88: 600, 89: 550,
    90: 20, 91: 0, 92: 50,
    93: s16(-100), 94: s16(-200), 95: s16(-100),
    96: 900, 97: 1000, 98: 850,
    99: 600, 100: 650, 101: 550,
    102: s16(-200), 103: s16(-250), 104: s16(-150),
    105: 3400, 106: 30, 107: 57600, 108: 2000, 109: 3100, 110: 60, 111: 12, 112: 10,
    113: 150, 114: 4,
}  # fmt: skip

DEVICE_IMAGE = {
    **text(150, "P16S100A-1.3"),
    **text(160, "BMS0123456789"),
    **text(170, "PACK9876543210"),
}


def telemetry(image: Mapping[int, int] = PACK_IMAGE, unit: int = 1) -> list[ReadReply]:
    return [reply_to(r, image) for r in pm.telemetry_requests(unit)]


# --- every frame of the family in the reference ------------------------------------------------

BUILDERS: dict[str, Callable[[], ReadRequest]] = {
    "read holding registers 0..7": pm.probe_request,
    "read holding registers 15..36": lambda: pm.telemetry_requests(1)[2],
    "read holding registers 60..114": lambda: pm.parameter_requests(1)[0],
    "read holding registers 150..159": pm.confirm_request,
    "garbage received while polling": lambda: pm.parameter_requests(1)[0],
}


def builder_of(entry: dict[str, Any]) -> Callable[[], ReadRequest]:
    found = [b for prefix, b in BUILDERS.items() if entry["command"].startswith(prefix)]
    assert len(found) == 1, entry["command"]
    return found[0]


def test_the_family_is_in_the_reference() -> None:
    assert len(FAMILY) == 5
    for entry in FAMILY:
        builder_of(entry)


@pytest.mark.parametrize("entry", FAMILY, ids=lambda f: f["command"])
def test_every_request_of_the_reference_is_built_byte_for_byte(entry: dict[str, Any]) -> None:
    request = builder_of(entry)()
    assert request.encode() == bytes.fromhex(entry["request"])
    assert decode_request(bytes.fromhex(entry["request"])) == request
    assert request.function == READ_HOLDING


@pytest.mark.parametrize("entry", [f for f in FAMILY if f["response"]], ids=lambda f: f["command"])
def test_the_only_reply_of_the_reference_is_noise_and_refused(entry: dict[str, Any]) -> None:
    """The negative example (bus chatter of a PACE master): no frame, no values."""
    assert entry.get("checksum_ok") is False
    request = builder_of(entry)()
    raw = bytes.fromhex(entry["response"])
    with pytest.raises((FrameError, ChecksumError, DecodeError)):
        decode_reply(raw, request)
    assert ReplyCutter(request).feed(raw) == []


def test_the_probe_of_the_detection_sequence() -> None:
    """dialects.md 7.2 step 2: the probe and its optional confirmation."""
    assert pm.probe_request().encode().hex().upper() == "010300000008440C"
    assert pm.confirm_request().encode().hex().upper() == "01030096000A25E1"


# --- what the dialect is -----------------------------------------------------------------------


def test_info_is_registered_and_read_only() -> None:
    info = DIALECTS["pace_modbus"]
    assert info is pm.INFO
    assert info.framing is MODBUS
    assert info.baudrates == (9600,)
    assert info.multipack is MultiPack.PER_ADDRESS
    assert info.capabilities == {
        Capability.TELEMETRY,
        Capability.ALARMS,
        Capability.PARAMETERS_READ,
    }
    assert not info.can(Capability.PARAMETERS_WRITE)
    assert not info.can(Capability.CONTROLS)
    for capability in set(Capability) - info.capabilities:
        assert info.reasons[capability]
    assert list(DIALECTS).index("pace_modbus") < list(DIALECTS).index("seplos_v3")


def test_reads_cover_documented_registers_only_and_never_write() -> None:
    requests = [
        *pm.telemetry_requests(1),
        *pm.parameter_requests(1),
        *pm.parameter_requests(1, "1.2"),
        *pm.parameter_requests(1, "1.0"),
        *pm.device_info_requests(1),
        *pm.device_info_requests(1, "1.2"),
        pm.probe_request(),
        pm.confirm_request(),
    ]
    for request in requests:
        assert request.function == READ_HOLDING
        assert not RESERVED & set(range(request.start, request.start + request.count))
    assert [(r.start, r.count) for r in pm.telemetry_requests(1)] == [(0, 8), (9, 4), (15, 22)]
    assert [(r.start, r.count) for r in pm.parameter_requests(1, "1.0")] == [(60, 47)]
    assert [(r.start, r.count) for r in pm.parameter_requests(1, "1.2")] == [(60, 53)]
    assert [(r.start, r.count) for r in pm.device_info_requests(1)] == [(150, 30)]
    assert [(r.start, r.count) for r in pm.device_info_requests(1, "1.0")] == [(150, 20)]


def test_tables_do_not_overlap() -> None:
    tables = (pm.PACK, pm.FLAGS, pm.CELL_BLOCK, pm.PARAMETERS, pm.DEVICE)
    used: list[int] = []
    for table in tables:
        for item in table:
            used += range(item.address, item.last + 1)
    assert len(used) == len(set(used))
    assert not RESERVED & set(used)


def test_units_are_the_documents() -> None:
    assert pm.probe_request(0x10).unit == 0x10
    for unit in (0, 0x11, 0xFF):
        with pytest.raises(ValueError, match="unit"):
            pm.telemetry_requests(unit)


def test_flag_tables_use_shared_keys_only_where_they_exist() -> None:
    for flags in pm.FLAG_TABLES.values():
        bits = [f.bit for f in flags]
        assert len(bits) == len(set(bits)) and all(0 <= b <= 15 for b in bits)
        for flag in flags:
            if flag.key is not None:
                assert flag.key in BITS_BY_KEY
            else:
                assert flag.name not in BITS_BY_KEY
    reserved = {"warning": {6, 7}, "protection": {15}, "status": {3, 6, 7, 13}}
    for name, flags in pm.FLAG_TABLES.items():
        assert not reserved[name] & {f.bit for f in flags}


# --- decoding ----------------------------------------------------------------------------------


def test_analog_values_in_si_units_and_shared_roles() -> None:
    pack = pm.decode_analog(1, telemetry())
    assert isinstance(pack, PackAnalog)
    assert pack.address == 1 and pack.online
    assert pack.current == -1.37
    assert pack.voltage == 53.24
    assert (pack.remaining_capacity, pack.full_capacity, pack.design_capacity) == (
        274.56,
        330.0,
        340.0,
    )
    assert pack.cycles == 10
    assert (pack.soc, pack.soc_source, pack.soh, pack.soh_source) == (83.0, "bms", 99.0, "bms")
    assert pack.cell_voltages == tuple(round(3.3 + i / 1000, 3) for i in range(16))
    assert pack.cell_temperatures == (21.5, 21.2, -5.0, 21.0)
    assert pack.mos_temperature == 30.0
    assert pack.environment_temperature == -1.0


def test_a_uint8_register_is_its_low_byte() -> None:
    """[PACE-MODBUS] 4.1 remark: a UINT8 sits in the low byte, the high byte is 00."""
    pack = pm.decode_analog(1, telemetry({**PACK_IMAGE, 2: 0x0153}))
    assert pack.soc == 0x53


def test_status_maps_documented_bits_to_shared_keys_and_keeps_the_rest() -> None:
    found = pm.decode_status(1, telemetry())
    status = found.status
    assert status.alarms == ("cell_over_voltage", "low_soc")
    assert status.protections == ("short_circuit", "environment_high_temperature")
    assert status.faults == ("ntc",)
    assert status.charge_mos and status.discharge_mos
    assert not status.flag("charging")
    assert found.extra == ("discharging", "charger_reversed")
    assert status.balancing == (1, 16)
    assert status.cell_codes == (CODE_NORMAL,) * 16
    assert len(status.temperature_codes) == 6
    assert found.raw == {
        "warning": PACK_IMAGE[9],
        "protection": PACK_IMAGE[10],
        "status": PACK_IMAGE[11],
        "balance": PACK_IMAGE[12],
    }


@pytest.mark.parametrize(
    ("register", "bit", "key"),
    [(9, f.bit, f.key) for f in pm.WARNING_FLAGS]
    + [(10, f.bit, f.key) for f in pm.PROTECTION_FLAGS]
    + [(11, f.bit, f.key or f.name) for f in pm.STATUS_FLAGS],
)
def test_each_flag_alone(register: int, bit: int, key: str) -> None:
    image = {**PACK_IMAGE, 9: 0, 10: 0, 11: 0, 12: 0, register: 1 << bit}
    found = pm.decode_status(1, telemetry(image))
    set_keys = [b.key for b in BITS_BY_KEY.values() if found.status.is_set(b)]
    assert set_keys == ([key] if key in BITS_BY_KEY else [])
    assert found.extra == (() if key in BITS_BY_KEY else (key,))


def test_parameters_read_only_in_si_units() -> None:
    params = pm.decode_parameters(1, [reply_to(pm.parameter_requests(1)[0], PARAMETER_IMAGE)])
    assert params.pack_over_voltage == Threshold(
        protection=58.4, protection_release=54.4, alarm=57.6, delay=1.0
    )
    assert params.cell_under_voltage == Threshold(
        protection=2.8, protection_release=3.1, alarm=3.0, delay=2.0
    )
    assert params.charge_over_current == Threshold(protection=110, alarm=105, delay=1.0)
    assert params.discharge_over_current_2 == Threshold(protection=150, delay=0.1)
    assert params.discharge_low_temperature == Threshold(
        protection=-20.0, protection_release=-10.0, alarm=-10.0
    )
    assert params.environment_low_temperature.protection == -25.0
    assert (params.balance_start_voltage, params.balance_start_delta) == (3.4, 0.03)
    assert (params.full_charge_voltage, params.full_charge_current) == (57.6, 2.0)
    assert (params.sleep_voltage, params.sleep_delay) == (3.1, 60)
    assert params.short_circuit_delay == 0.0003
    assert params.soc_alarm == 10
    assert params.charge_over_current_2 == Threshold(protection=150, delay=0.1)


def test_parameters_of_an_older_revision_leave_the_later_registers_none() -> None:
    older = [reply_to(pm.parameter_requests(1, "1.0")[0], PARAMETER_IMAGE)]
    params = pm.decode_parameters(1, older)
    assert params.full_charge_voltage is None and params.soc_alarm is None
    assert params.charge_over_current_2 is None
    assert params.balance_start_delta == 0.03
    v12 = pm.decode_parameters(1, [reply_to(pm.parameter_requests(1, "1.2")[0], PARAMETER_IMAGE)])
    assert v12.soc_alarm == 10 and v12.charge_over_current_2 is None


def test_device_info() -> None:
    info = pm.decode_device_info(1, [reply_to(pm.device_info_requests(1)[0], DEVICE_IMAGE)])
    assert info == pm.DeviceInfo("P16S100A-1.3", "BMS0123456789", "PACK9876543210")
    older = [reply_to(pm.device_info_requests(1, "1.2")[0], DEVICE_IMAGE)]
    assert pm.decode_device_info(1, older).pack_serial is None
    confirm = [reply_to(pm.confirm_request(), DEVICE_IMAGE)]
    assert pm.decode_device_info(1, confirm) == pm.DeviceInfo("P16S100A-1.3", None, None)
    blank = [reply_to(pm.device_info_requests(1)[0], {})]
    assert pm.decode_device_info(1, blank) == pm.DeviceInfo(None, None, None)


def test_a_register_a_pack_refuses_is_the_framings_typed_exception() -> None:
    """A pre-V1.3 pack may refuse 170-179 with exception 02 (illegal data address)."""
    request = pm.device_info_requests(1)[0]
    with pytest.raises(ModbusExceptionError) as caught:
        decode_reply(with_crc(bytes((1, READ_HOLDING | 0x80, 0x02))), request)
    assert caught.value.code == 2


def test_what_the_tables_need_is_checked() -> None:
    pack, _flags, cells = telemetry()
    with pytest.raises(DecodeError, match="cell_voltages"):
        pm.decode_analog(1, [pack])
    with pytest.raises(DecodeError, match="warning"):
        pm.decode_status(1, [pack, cells])
    with pytest.raises(DecodeError, match="unit 1"):
        pm.decode_analog(2, [pack, cells])
    other = ReadRequest(1, READ_INPUT, 0, 8)
    input_reply = decode_reply(with_crc(bytes((1, READ_INPUT, 16)) + bytes(16)), other)
    with pytest.raises(DecodeError, match="not a PACE Modbus read"):
        pm.decode_analog(1, [input_reply, cells])
    with pytest.raises(DecodeError, match="pack_over_voltage"):
        pm.decode_parameters(1, [reply_to(ReadRequest(1, READ_HOLDING, 60, 3), {})])
    with pytest.raises(DecodeError, match="150-179"):
        pm.decode_device_info(1, [pack])


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ({**PACK_IMAGE, 2: 101}, "soc"),
        ({**PACK_IMAGE, 3: 0xFF}, "soh"),
    ],
)
def test_values_outside_their_documented_range_are_refused(
    image: dict[int, int], message: str
) -> None:
    with pytest.raises(DecodeError, match=message):
        pm.decode_analog(1, telemetry(image))


@pytest.mark.parametrize(
    ("register", "word", "message"),
    [(63, 0, "pack_over_voltage.delay"), (83, 0, "discharge_over_current_2.delay"),
     (111, 21, "short_circuit_delay"), (112, 101, "soc_alarm")],
)  # fmt: skip
def test_parameters_outside_their_documented_range_are_refused(
    register: int, word: int, message: str
) -> None:
    image = {**PARAMETER_IMAGE, register: word}
    with pytest.raises(DecodeError, match=message):
        pm.decode_parameters(1, [reply_to(pm.parameter_requests(1)[0], image)])


# --- any register contents ---------------------------------------------------------------------


def words(count: int) -> st.SearchStrategy[list[int]]:
    return st.lists(st.integers(0, 0xFFFF), min_size=count, max_size=count)


def image_of(requests: tuple[ReadRequest, ...], contents: list[list[int]]) -> dict[int, int]:
    return {r.start + i: w for r, block in zip(requests, contents, strict=True) for i, w in
            enumerate(block)}  # fmt: skip


@given(st.tuples(words(8), words(4), words(22)))
def test_any_telemetry_decodes_in_range_or_is_a_decode_error(
    contents: tuple[list[int], list[int], list[int]],
) -> None:
    replies = telemetry(image_of(pm.telemetry_requests(1), list(contents)))
    try:
        pack = pm.decode_analog(1, replies)
    except DecodeError:
        assert (contents[0][2] & 0xFF) > 100 or (contents[0][3] & 0xFF) > 100
    else:
        assert 0 <= pack.soc <= 100 and 0 <= pack.soh <= 100
        assert -327.68 <= pack.current <= 327.67 and 0 <= pack.voltage <= 655.35
        assert len(pack.cell_voltages) == 16 and all(0 <= v <= 65.535 for v in pack.cell_voltages)
        assert len(pack.temperatures) == 6
        assert all(t is not None and -3276.8 <= t <= 3276.7 for t in pack.temperatures)
        assert 0 <= pack.cycles <= 0xFFFF
    found = pm.decode_status(1, replies)
    assert found.raw["balance"] == contents[1][3]
    assert set(found.extra) <= {f.name for f in pm.STATUS_FLAGS if f.key is None}
    assert all(0 < cell <= 16 for cell in found.status.balancing)


DELAYS = (63, 67, 71, 75, 78, 81, 83, 114)


@given(st.lists(st.integers(0, 0xFFFF) | st.integers(0, 24), min_size=55, max_size=55))
def test_any_parameters_decode_in_range_or_are_a_decode_error(block: list[int]) -> None:
    request = pm.parameter_requests(1)[0]
    low = {60 + i: word & 0xFF for i, word in enumerate(block)}
    valid = all(low[r] >= 1 for r in DELAYS) and low[111] <= 20 and low[112] <= 100
    try:
        params = pm.decode_parameters(1, [reply_to(request, image_of((request,), [block]))])
    except DecodeError:
        assert not valid
        return
    assert valid
    for limit in ("pack_over_voltage", "cell_over_voltage", "charge_over_current"):
        delay = getattr(params, limit).delay
        assert delay is not None and 0.1 <= delay <= 25.5
    assert params.discharge_over_current_2.delay is not None
    assert 0.025 <= params.discharge_over_current_2.delay <= 6.375
    assert params.soc_alarm is not None and 0 <= params.soc_alarm <= 100
    assert params.short_circuit_delay is not None and 0 <= params.short_circuit_delay <= 0.0005


@given(st.binary(min_size=60, max_size=60))
def test_any_device_bytes_decode_to_text(data: bytes) -> None:
    request = pm.device_info_requests(1)[0]
    raw = with_crc(bytes((1, READ_HOLDING, 60)) + data)
    info = pm.decode_device_info(1, [decode_reply(raw, request)])
    for value in (info.version, info.model_serial, info.pack_serial):
        assert value is None or (isinstance(value, str) and len(value) <= 20)
