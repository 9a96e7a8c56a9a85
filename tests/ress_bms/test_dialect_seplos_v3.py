"""Seplos V3 (XZH BMS Modbus RTU) against every frame of its family in the reference.

Requests are built by the module and compared byte for byte; replies are decoded by the module
and compared with the values the reference gives (``decoded_per_layout``: no source of this
family prints decoded values, ``decoded_by_source`` is empty throughout). Where the document
and the bytes disagree the test says so and checks the bytes:

* EIB cell temperatures are typed "1 °C" in [XZH] but read 229/221/225: decoded as 0.1 °C;
* EIB words 0x210D-0x2115 do not follow the document's order: kept as read;
* SPA currents typed UINT16 arrive negative: decoded as signed;
* the SFA read of the capture asks 0x0500 coils (a client's byte-order slip): the module asks
  the document's 0x50.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from hypothesis import given, strategies as st
import pytest

from ress_bms.analog import PackAnalog
from ress_bms.dialects import DIALECTS, Capability, MultiPack, seplos_v3 as sv
from ress_bms.dialects.base import Threshold
from ress_bms.errors import BmsError, DecodeError
from ress_bms.framing import MODBUS
from ress_bms.modbus import (
    READ_COILS,
    READ_INPUT,
    ModbusExceptionError,
    ReadReply,
    ReadRequest,
    decode_reply,
    decode_request,
    with_crc,
)
from ress_bms.status import BITS_BY_KEY, CODE_ABOVE, CODE_BELOW

from .reference_frames import entry as reference_entry, family

FAMILY = family("Seplos V3 / XZH Modbus RTU")

VIA_SG16S200A = bytes.fromhex(
    "000466585A482D456C65635465636820436F2E2C4C74645347313653323030412D53503537422D4100000031"
    "3553503537422D41323530363132303032320000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000634B"
)
"""VIA of the SG16S200A-SP57B-A, from syssi/esphome-seplos-bms
docs/pdus/v3/SG16S200A-SP57B-A-all-frames.txt (commit d581cc1), the reply to
``000417000033B47A``; not in frames-dialects.json."""


def entry(prefix: str) -> dict[str, Any]:
    return reference_entry(prefix, FAMILY)


def reply_of(prefix: str, request: ReadRequest | None = None) -> ReadReply:
    """The reference's reply, decoded for ``request`` (its own request when it lists one)."""
    frame = entry(prefix)
    if request is None:
        request = decode_request(bytes.fromhex(frame["request"]))
    return decode_reply(bytes.fromhex(frame["response"]), request)


def spa_replies() -> list[ReadReply]:
    return [reply_of("SPA part 1"), reply_of("SPA part 2")]


def shape() -> sv.PackShape:
    """The SG16S200A's own cell and NTC counts, from its SPA."""
    return sv.decode_shape(spa_replies())


def value_at(params: sv.Parameters, address: int) -> float:
    """The decoded SPA value of one register, found through the table."""
    item = next(r for r in sv.SPA if r.address == address)
    limit, _, part = item.name.partition(".")
    value = getattr(params, limit)
    if part:
        value = getattr(value, part)
    assert isinstance(value, int | float)
    return value


# --- one check per frame of the family ---------------------------------------------------------


def check_eia(expected: dict[str, Any], reply: ReadReply) -> None:
    bank = sv.decode_bank([reply]).values
    assert {
        "pack_voltage_V": bank.voltage,
        "current_A": bank.current,
        "remaining_capacity_Ah": bank.remaining_capacity,
        "total_capacity_Ah": bank.total_capacity,
        "total_discharge_capacity_Ah": bank.total_discharge_capacity,
        "rated_capacity_Ah": bank.rated_capacity,
        "online_pack_flags": bank.online_pack_flags,
        "protected_pack_flags": bank.protected_pack_flags,
        "max_discharge_current_A": bank.max_discharge_current,
        "max_charge_current_A": bank.max_charge_current,
        "suggest_pack_ov_V": bank.suggested_pack_over_voltage,
        "suggest_pack_uv_V": bank.suggested_pack_under_voltage,
        "system_pack_count": bank.pack_count,
        "cycles": bank.cycles,
        "soc_pct": bank.soc,
        "soh_pct": bank.soh,
    } == {k: v for k, v in expected.items() if k != "word_order_note"}
    # "each 32-bit value arrives low word first: 14CC 0000 = 0x000014CC"
    assert (reply.register(0x2000), reply.register(0x2001)) == (0x14CC, 0x0000)


def check_eic(expected: dict[str, Any], reply: ReadReply) -> None:
    assert list(reply.data) == expected["bytes"]
    status = sv.decode_bank([reply_of("EIA"), reply]).status
    assert status is not None
    assert status.raw["system_state"] == 0x01  # "0x01 discharge"
    assert status.extra == ("discharging",)
    assert status.raw["fet_event"] == 0x43  # bit0 discharge FET, bit1 charge FET, bit6 reserved
    assert status.status.discharge_mos and status.status.charge_mos
    assert not status.status.current_limit and not status.status.heating
    assert status.status.protections == status.status.alarms == status.status.faults == ()


def check_spa_1(expected: dict[str, Any], reply: ReadReply) -> None:
    params = sv.decode_parameters(spa_replies())

    def decoded(first: int, last: int, factor: float = 1) -> list[float]:
        return [round(value_at(params, a) * factor, 6) for a in range(first, last + 1)]

    assert (params.ntc_count, params.cell_count) == (expected["ntc_count"], expected["cell_count"])
    assert decoded(0x1302, 0x1309) == expected["pack_V_thresholds_1302_1309_V"]
    assert decoded(0x130A, 0x1313, 1000) == expected["cell_mV_thresholds_130A_1313"]
    assert reply.register(0x1314) == expected["1314_raw"]  # not decoded: unit unclear
    assert decoded(0x1315, 0x1317) == expected["charge_current_1315_1317_A"]
    assert params.charge_over_current.delay == expected["charge_oc_delay_s"]
    assert params.charge_over_current_2.protection == expected["charge_oc2_A"]
    assert params.charge_over_current_2.delay == expected["charge_oc2_delay_ms"] / 1000
    # Erratum: 0x131D is typed UINT16 but arrives negative, like the rest of the discharge side.
    assert decoded(0x131B, 0x131D) == expected["discharge_current_131B_131D_A"]
    assert params.discharge_over_current.delay == expected["discharge_oc_delay_s"]
    assert params.discharge_over_current_2.protection == expected["discharge_oc2_A"]
    assert params.discharge_over_current_2.delay == expected["discharge_oc2_delay_ms"] / 1000
    assert params.short_circuit.protection == expected["short_circuit_A"]
    assert params.short_circuit.delay == expected["short_circuit_delay_us"] / 1e6
    raw = [reply.register(a) for a in range(0x1328, 0x132F)]
    assert raw == expected["precharge_1328_132E_raw"]
    assert [params.precharge_short_percent, params.precharge_stop_percent] == [
        raw[3] / 10,
        raw[4] / 10,
    ]
    assert [params.precharge_fault_percent, params.precharge_over_time] == [raw[5] / 10, raw[6]]
    assert decoded(0x132F, 0x1334) == expected["charge_temp_thresholds_132F_1334_C"]
    assert params.charge_high_temperature == Threshold(
        protection=55.0, protection_release=50.0, alarm=50.0, alarm_release=47.0
    )


def check_spa_2(expected: dict[str, Any], reply: ReadReply) -> None:
    params = sv.decode_parameters(spa_replies())

    def decoded(first: int, last: int, factor: float = 1) -> list[float]:
        return [round(value_at(params, a) * factor, 6) for a in range(first, last + 1)]

    assert decoded(0x1335, 0x134E) == expected["temps_1335_134E_C"]
    assert params.static_balance_time == expected["static_balance_time_h"]
    assert params.balance_start_voltage * 1000 == expected["balance_open_mV"]
    assert round(params.balance_start_difference * 1000) == expected["balance_open_diff_mV"]
    assert round(params.balance_stop_difference * 1000) == expected["balance_stop_diff_mV"]
    assert decoded(0x1353, 0x1357) == expected["soc_1353_1357_pct"]
    assert params.low_soc == Threshold(
        protection=3.0, protection_release=5.0, alarm=5.0, alarm_release=8.0
    )
    assert params.rated_capacity == expected["rated_capacity_Ah"]
    assert params.total_capacity == expected["total_capacity_Ah"]
    assert params.residual_capacity == expected["residual_capacity_Ah"]
    assert params.standby_to_sleep_time == expected["standby_to_sleep_h"]
    assert round(params.cell_difference.alarm * 1000) == expected["cell_diff_alarm_mV"]
    assert round(params.cell_difference.alarm_release * 1000) == expected["cell_diff_recover_mV"]
    assert params.pcs_charge_voltage == expected["pcs_charge_limit_V"]
    assert params.pcs_charge_current == expected["pcs_charge_limit_A"]
    assert params.pcs_discharge_current == expected["pcs_discharge_limit_A"]
    # 0x1368-0x1369 are past the documented table: syssi reads them, the module does not.
    assert [reply.register(0x1368), reply.register(0x1369)] == expected["extra_1368_1369_raw"]
    assert sv.SPA[-1].last == 0x1367


def check_pia(expected: dict[str, Any], reply: ReadReply) -> None:
    pack = sv.decode_analog(1, [reply, reply_of("PIB")], shape())
    info = sv.decode_pack_info(1, [reply])
    assert {
        "pack_voltage_V": pack.voltage,
        "current_A": pack.current,
        "remaining_capacity_Ah": pack.remaining_capacity,
        "total_capacity_Ah": pack.full_capacity,
        "total_discharge_capacity_Ah": info.total_discharge_capacity,
        "soc_pct": pack.soc,
        "soh_pct": pack.soh,
        "cycles": pack.cycles,
        "avg_cell_mV": round(info.average_cell_voltage * 1000),
        "avg_cell_temp_C": info.average_cell_temperature,
        "max_cell_mV": round(info.max_cell_voltage * 1000),
        "min_cell_mV": round(info.min_cell_voltage * 1000),
        "max_cell_temp_C": info.max_cell_temperature,
        "min_cell_temp_C": info.min_cell_temperature,
        "reserved_100E": reply.register(0x100E),
        "max_discharge_current_A": info.max_discharge_current,
        "max_charge_current_A": info.max_charge_current,
    } == expected
    assert (pack.soc_source, pack.soh_source) == ("bms", "bms")


def check_pib(expected: dict[str, Any], reply: ReadReply) -> None:
    pack = sv.decode_analog(1, [reply_of("PIA"), reply], shape())
    assert [round(v * 1000) for v in pack.cell_voltages] == expected["cells_mV"]
    assert list(pack.cell_temperatures) == expected["cell_temps_C"]
    assert [reply.register(a) for a in range(0x1114, 0x1118)] == expected["reserved_1114_1117_raw"]
    assert pack.environment_temperature == expected["environment_temp_C"]
    assert pack.mos_temperature == expected["power_temp_C"]  # the document's power temperature


def check_pic(expected: dict[str, Any], reply: ReadReply) -> None:
    assert list(reply.data) == expected["bytes"]
    found = sv.decode_status(1, [reply], shape())
    assert found.raw["system_state"] == 0x10  # "0x10 standby"
    assert found.extra == ("standby",)
    assert found.raw["fet_event"] == 0x03  # "0x03 discharge + charge FET on"
    assert found.status.charge_mos and found.status.discharge_mos
    assert found.status.balancing == ()
    assert found.status.cell_codes == (0,) * 16


def check_pct(expected: dict[str, Any], reply: ReadReply) -> None:
    pcs = sv.decode_pcs([reply], 0xE0)
    assert {
        "protocol_type_switch_raw": pcs.protocol_type,
        "pcs_baud_raw": pcs.baud_rate,
        "pcs_name": pcs.pcs_name,
        "protocol_name": pcs.protocol_name,
        "protocol_version": pcs.protocol_version,
        "pre_switch_raw": pcs.protocol_pre_switch,
    } == expected


def check_eib(expected: dict[str, Any], reply: ReadReply) -> None:
    assert list(reply.registers) == expected["registers_2100_2115"]
    extremes = sv.decode_bank([reply_of("EIA"), reply]).extremes
    assert extremes is not None
    doc = expected["as_doc_2100_210C"]
    assert {
        "max_cell_mV": round(extremes.max_cell_voltage * 1000),
        "min_cell_mV": round(extremes.min_cell_voltage * 1000),
        "max_cell_id": extremes.max_cell_voltage_id,
        "min_cell_id": extremes.min_cell_voltage_id,
        "max_pack_V": extremes.max_pack_voltage,
        "min_pack_V": extremes.min_pack_voltage,
        "max_pack_id": extremes.max_pack_voltage_id,
        "min_pack_id": extremes.min_pack_voltage_id,
        "max_temp_id": extremes.max_cell_temperature_id,
        "min_temp_id": extremes.min_cell_temperature_id,
    } == {k: v for k, v in doc.items() if not k.endswith("_temp_raw")}
    # Erratum: [XZH] types 0x2108-0x210A "1 °C"; 229 only makes sense as 22.9 °C.
    assert (
        extremes.max_cell_temperature,
        extremes.min_cell_temperature,
        extremes.average_cell_temperature,
    ) == (
        doc["max_cell_temp_raw"] / 10,
        doc["min_cell_temp_raw"] / 10,
        doc["avg_cell_temp_raw"] / 10,
    )
    # Erratum: words 13-21 do not follow the document's order; kept as read, not named.
    assert extremes.unconfirmed == tuple(expected["registers_2100_2115"][13:])


@dataclass(frozen=True)
class Case:
    """One frame of the family: the module's request for it, and the check of its reply."""

    ours: Callable[[], ReadRequest]
    check: Callable[[dict[str, Any], ReadReply], None] | None = None
    not_ours: str = ""
    """Why the reference's request is not the module's (then the module's is checked apart)."""


CASES: dict[str, Case] = {
    "EIA": Case(lambda: sv.bank_requests()[0], check_eia),
    "EIC": Case(lambda: sv.bank_requests()[2], check_eic),
    "read coils 0x1400": Case(
        lambda: sv.function_switch_requests()[0],
        not_ours="the capture asks 0x0500 coils; SFA is 0x50 coils",
    ),
    "SPA part 1": Case(
        lambda: sv.parameter_requests()[0],
        check_spa_1,
        not_ours="syssi reads SPA in two BLE-sized halves; the module reads 0x1300-0x1367 at once",
    ),
    "SPA part 2": Case(
        lambda: sv.parameter_requests()[0],
        check_spa_2,
        not_ours="syssi reads SPA in two BLE-sized halves; the module reads 0x1300-0x1367 at once",
    ),
    "PIA": Case(lambda: sv.pack_requests(1)[0], check_pia),
    "PIB": Case(lambda: sv.pack_requests(1)[1], check_pib),
    "PIC": Case(lambda: sv.pack_requests(1)[2], check_pic),
    "PCT": Case(lambda: sv.pcs_requests(0xE0)[0], check_pct),
    "EIB": Case(lambda: sv.bank_requests()[1], check_eib),
    "VIA factory name": Case(sv.probe_request),
}


def case_of(frame: dict[str, Any]) -> Case:
    found = [c for prefix, c in CASES.items() if frame["command"].startswith(prefix)]
    assert len(found) == 1, frame["command"]
    return found[0]


def test_every_frame_of_the_family_has_a_case() -> None:
    assert len(FAMILY) == 11
    assert all(case_of(frame) for frame in FAMILY)
    assert all(frame["decoded_by_source"] is None for frame in FAMILY)


@pytest.mark.parametrize("frame", FAMILY, ids=lambda f: f["command"])
def test_requests(frame: dict[str, Any]) -> None:
    case = case_of(frame)
    ours = case.ours()
    assert ours.function in (READ_INPUT, READ_COILS)
    if frame["request"] and not case.not_ours:
        assert ours.encode() == bytes.fromhex(frame["request"])
    elif frame["request"]:
        theirs = decode_request(bytes.fromhex(frame["request"]))
        assert ours != theirs
        assert (ours.unit, ours.function) == (theirs.unit, theirs.function)
        if ours.function == READ_COILS:  # SFA
            assert (theirs.start, theirs.count) == (ours.start, 0x0500)
            assert ours.count == 0x50
        else:  # an SPA half: the module's one read holds every documented register of it
            documented = {a for r in sv.SPA for a in range(r.address, r.last + 1)}
            asked = set(range(theirs.start, theirs.start + theirs.count))
            assert asked & documented <= set(range(ours.start, ours.start + ours.count))
    if frame["response"] and not case.not_ours:
        # The reply is the one the module's request asks for (unit, function, byte count).
        decode_reply(bytes.fromhex(frame["response"]), ours)


@pytest.mark.parametrize("frame", [f for f in FAMILY if f["response"]], ids=lambda f: f["command"])
def test_replies_decode_to_the_reference_values(frame: dict[str, Any]) -> None:
    case = case_of(frame)
    raw = bytes.fromhex(frame["response"])
    request = decode_request(bytes.fromhex(frame["request"])) if frame["request"] else case.ours()
    if raw[1] & 0x80:
        with pytest.raises(ModbusExceptionError) as caught:
            decode_reply(raw, request)
        assert caught.value.code == 0x02  # "02 illegal data address"
        assert caught.value.function == READ_COILS
        return
    assert case.check is not None
    case.check(frame["decoded_per_layout"], decode_reply(raw, request))


def test_the_probe_and_the_identity() -> None:
    """dialects.md 7.2 step 3, and a real VIA (SG16S200A) as dbus-serialbattery identifies it."""
    assert sv.probe_request().encode().hex().upper() == "00041700000A7468"
    assert sv.probe_request(1).encode().hex().upper() == "01041700000A75B9"
    request = sv.device_info_requests()[0]
    assert request.encode().hex().upper() == "000417000033B47A"
    info = sv.decode_device_info([decode_reply(VIA_SG16S200A, request)])
    assert info == sv.DeviceInfo(
        factory_name=sv.FACTORY_NAME,
        device_name="SG16S200A-SP57B-A",
        firmware_version="15",
        bms_serial="SP57B-A2506120022",
        pack_serial=None,
    )
    probe = coil_reply(sv.probe_request(), VIA_SG16S200A[3:23])
    assert sv.decode_device_info([probe]).factory_name == "XZH-ElecTech Co.,Ltd"


def test_one_spa_read_decodes_like_the_two_halves() -> None:
    halves = spa_replies()
    words = {r.request.start + i: w for r in halves for i, w in enumerate(r.registers)}
    request = sv.parameter_requests()[0]
    assert (request.unit, request.start, request.count) == (0xE0, 0x1300, 0x68)
    data = b"".join(words[request.start + i].to_bytes(2) for i in range(request.count))
    one = decode_reply(with_crc(bytes((0xE0, READ_INPUT, len(data))) + data), request)
    assert sv.decode_parameters([one]) == sv.decode_parameters(halves)
    assert sv.decode_shape([one]) == sv.PackShape(16, 4, 330.0)


# --- what the dialect is -----------------------------------------------------------------------


def test_info_is_registered_and_read_only() -> None:
    info = DIALECTS["seplos_v3"]
    assert info is sv.INFO
    assert info.framing is MODBUS
    assert info.baudrates == (19200,)
    assert info.multipack is MultiPack.SYSTEM_UNIT
    assert info.capabilities == {
        Capability.TELEMETRY,
        Capability.ALARMS,
        Capability.PARAMETERS_READ,
    }
    for capability in set(Capability) - info.capabilities:
        assert info.reasons[capability]


def test_every_request_is_a_read_of_a_documented_block() -> None:
    requests = [
        *sv.pack_requests(1),
        *sv.bank_requests(),
        *sv.parameter_requests(),
        *sv.device_info_requests(),
        *sv.pcs_requests(),
        *sv.function_switch_requests(),
        sv.probe_request(),
    ]
    assert {r.function for r in requests} == {READ_INPUT, READ_COILS}
    assert [(r.function, r.start, r.count) for r in requests[:6]] == [
        (READ_INPUT, 0x1000, 0x11),
        (READ_INPUT, 0x1100, 0x1A),
        (READ_COILS, 0x1200, 0x90),
        (READ_INPUT, 0x2000, 0x1A),
        (READ_INPUT, 0x2100, 0x16),
        (READ_COILS, 0x2200, 0x50),
    ]
    for unit in (0x80, 0xB0, 0xFF):
        with pytest.raises(ValueError, match="device ids"):
            sv.pack_requests(unit)
    assert sv.bank_requests(0xC0)[0].unit == 0xC0


def test_flag_tables_use_shared_keys_only_where_they_exist() -> None:
    tables = [flags for _, flags in sv.EVENTS] + [item.flags for item in sv.SFA]
    for flags in tables:
        bits = [f.bit for f in flags]
        assert len(bits) == len(set(bits)) and all(0 <= b <= 7 for b in bits)
        for flag in flags:
            assert flag.key is None or flag.key in BITS_BY_KEY
            assert flag.key is not None or flag.name not in BITS_BY_KEY
    names = [f.name for item in sv.SFA for f in item.flags]
    assert len(names) == len(set(names))
    assert 6 not in {f.bit for f in sv.TB07_FET}  # reserved, although set in the SG16S200A


def coil_reply(request: ReadRequest, data: bytes) -> ReadReply:
    """The reply of ``data`` (coil bytes, or register bytes) to ``request``."""
    return decode_reply(
        with_crc(bytes((request.unit, request.function, len(data))) + data), request
    )


def register_reply(request: ReadRequest, image: Mapping[int, int]) -> ReadReply:
    data = b"".join(image.get(request.start + i, 0).to_bytes(2) for i in range(request.count))
    return decode_reply(with_crc(bytes((request.unit, READ_INPUT, len(data))) + data), request)


def test_per_cell_bits_become_codes_and_balancing() -> None:
    request = sv.pack_requests(2)[2]
    data = bytearray(18)
    data[0] = 0b0000_0100  # cell 3 low
    data[3] = 0b1000_0000  # cell 16 high
    data[4] = 0b0000_0010  # cell temperature 2 low
    data[5] = 0b0000_1000  # cell temperature 4 high
    data[6], data[7] = 0b0000_0001, 0b0100_0000  # balancing cells 1 and 15
    data[9] = 0b0000_0100  # TB02 cell low-voltage alarm
    data[15] = 0b0000_1100  # TB07 current limiting FET, heating
    data[17] = 0b1010_0010  # TB15 AFE fault, break line, aerosol
    found = sv.decode_status(2, [coil_reply(request, bytes(data))], sv.PackShape(16, 4))
    codes = found.status.cell_codes
    assert codes[2] == CODE_BELOW and codes[15] == CODE_ABOVE
    assert sum(1 for c in codes if c) == 2
    assert found.status.temperature_codes == (0, CODE_BELOW, 0, CODE_ABOVE, 0, 0)
    assert found.status.balancing == (1, 15)
    assert found.status.alarms == ("cell_under_voltage",)
    assert found.status.faults == ("sampling",)
    assert found.status.current_limit and found.status.heating
    assert found.extra == ("break_line_fault", "aerosol_alarm")
    place = found.status.place(BITS_BY_KEY["cell_under_voltage_alarm"])
    assert place.cells == (3,)
    fewer = sv.decode_status(2, [coil_reply(request, bytes(data))], sv.PackShape(15, 2))
    assert len(fewer.status.cell_codes) == 15 and fewer.status.balancing == (1, 15)
    assert fewer.status.temperature_codes == (0, CODE_BELOW, 0, 0, 0, 0)


def test_cell_and_ntc_counts_come_from_spa() -> None:
    pia, pib = reply_of("PIA"), reply_of("PIB")
    pack = sv.decode_analog(1, [pia, pib], sv.PackShape(15, 2, 280.0))
    assert isinstance(pack, PackAnalog)
    assert len(pack.cell_voltages) == 15
    assert pack.temperatures == (21.5, 21.2, None, None, 21.2, 22.5)
    assert pack.cell_temperatures == (21.5, 21.2, None, None)
    assert (pack.mos_temperature, pack.environment_temperature) == (21.2, 22.5)
    assert pack.design_capacity == 280.0
    for bad in (0, 17):
        with pytest.raises(DecodeError, match="cells"):
            sv.PackShape(bad, 4)
    image = {0x1300: 6, 0x1301: 16}
    spa = register_reply(sv.parameter_requests()[0], image)
    assert sv.decode_shape([spa]) == sv.PackShape(16, 4, 0.0)  # PIB has four cell slots


def test_eia_is_low_word_first() -> None:
    request = sv.bank_requests()[0]
    image = {0x2000: 0x0000, 0x2001: 0x0001, 0x2002: 0xFFF6, 0x2003: 0xFFFF, 0x2018: 1000}
    values = sv.decode_bank([register_reply(request, image)]).values
    assert values.voltage == 655.36
    assert values.current == -1.0
    assert values.soc == 100.0


def test_what_the_tables_need_is_checked() -> None:
    pia = reply_of("PIA")
    with pytest.raises(DecodeError, match="cell_voltages"):
        sv.decode_analog(1, [pia], shape())
    with pytest.raises(DecodeError, match="unit 1 given for unit 2"):
        sv.decode_analog(2, [pia, reply_of("PIB")], shape())
    with pytest.raises(DecodeError, match="coils"):
        sv.decode_status(1, [pia], shape())
    with pytest.raises(DecodeError, match="voltage"):
        sv.decode_bank([reply_of("EIC")])
    with pytest.raises(DecodeError, match="factory name"):
        sv.decode_device_info([reply_of("EIA")])
    half = spa_replies()[:1]
    with pytest.raises(DecodeError, match="low_soc"):
        sv.decode_parameters(half)
    assert sv.decode_shape(half) == sv.PackShape(16, 4, 0.0)
    for image, name in (({0x1005: 1001}, "soc"), ({0x1006: 0xFFFF}, "soh")):
        bad = register_reply(sv.pack_requests(1)[0], {0x1000: 5324, **image})
        with pytest.raises(DecodeError, match=name):
            sv.decode_analog(1, [bad, reply_of("PIB")], shape())


def test_a_refused_eib_leaves_the_bank_without_extremes() -> None:
    """The SG16S200A answers EIB with exception 02 (`00 84 02 93 01`)."""
    with pytest.raises(ModbusExceptionError) as caught:
        decode_reply(bytes.fromhex("0084029301"), ReadRequest(0, READ_INPUT, 0x2100, 0x1A))
    assert caught.value.code == 2
    bank = sv.decode_bank([reply_of("EIA"), reply_of("EIC")])
    assert bank.extremes is None and bank.status is not None


def test_function_switches() -> None:
    request = sv.function_switch_requests()[0]
    data = bytearray(10)
    data[0] = 0b0000_0011  # cell high-voltage alarm, cell over-voltage protection
    data[2] = 0b1000_0000  # TB10 bit 7
    data[8] = 0b0000_0001  # buzzer indicator
    switches = sv.decode_function_switches([coil_reply(request, bytes(data))])
    assert switches.enabled == (
        "cell_high_voltage_alarm",
        "cell_over_voltage_protection",
        "cell_voltage_fault",
        "buzzer_indicator",
    )
    assert switches.raw["indicator_functions"] == 1


# --- any register and coil contents ------------------------------------------------------------


def words(count: int) -> st.SearchStrategy[list[int]]:
    return st.lists(st.integers(0, 0xFFFF) | st.integers(0, 1000), min_size=count, max_size=count)


def image(request: ReadRequest, block: list[int]) -> dict[int, int]:
    return {request.start + i: w for i, w in enumerate(block)}


SHAPES = st.builds(sv.PackShape, st.integers(1, 16), st.integers(0, 4))


@given(words(0x11), words(0x1A), st.binary(min_size=18, max_size=18), SHAPES)
def test_any_pack_decodes_in_range_or_is_a_decode_error(
    pia: list[int], pib: list[int], pic: bytes, pack_shape: sv.PackShape
) -> None:
    requests = sv.pack_requests(3)
    replies = [
        register_reply(requests[0], image(requests[0], pia)),
        register_reply(requests[1], image(requests[1], pib)),
        coil_reply(requests[2], pic),
    ]
    try:
        pack = sv.decode_analog(3, replies, pack_shape)
    except DecodeError:
        assert pia[5] > 1000 or pia[6] > 1000
    else:
        assert 0 <= pack.soc <= 100 and 0 <= pack.soh <= 100
        assert -327.68 <= pack.current <= 327.67 and 0 <= pack.voltage <= 655.35
        assert len(pack.cell_voltages) == pack_shape.cells
        assert len(pack.temperatures) == 6
        assert all(t is None or -273.1 <= t <= 6280.4 for t in pack.temperatures)
        assert sum(t is None for t in pack.temperatures) == 4 - pack_shape.cell_sensors
    found = sv.decode_status(3, replies, pack_shape)
    assert set(found.status.cell_codes) <= {0, CODE_BELOW, CODE_ABOVE}
    assert len(found.status.temperature_codes) == 6
    assert all(0 < cell <= pack_shape.cells for cell in found.status.balancing)
    extras = {f.name for _, flags in sv.EVENTS for f in flags if f.key is None}
    assert set(found.extra) <= extras


@given(words(0x1A), words(0x16), st.binary(min_size=10, max_size=10))
def test_any_bank_decodes_in_range_or_is_a_decode_error(
    eia: list[int], eib: list[int], eic: bytes
) -> None:
    requests = sv.bank_requests()
    replies = [
        register_reply(requests[0], image(requests[0], eia)),
        register_reply(requests[1], image(requests[1], eib)),
        coil_reply(requests[2], eic),
    ]
    try:
        bank = sv.decode_bank(replies)
    except DecodeError:
        assert eia[0x18] > 1000 or eia[0x19] > 1000
        return
    assert 0 <= bank.values.soc <= 100 and 0 <= bank.values.soh <= 100
    assert 0 <= bank.values.voltage <= 0xFFFFFFFF / 100
    assert -(2**31) / 10 <= bank.values.current < 2**31 / 10
    assert bank.extremes is not None and len(bank.extremes.unconfirmed) == 9
    assert -3276.8 <= bank.extremes.max_cell_temperature <= 3276.7
    assert bank.status is not None and set(bank.status.raw.values()) <= set(range(256))


@given(words(0x68))
def test_any_parameters_decode_in_range_or_are_a_decode_error(block: list[int]) -> None:
    request = sv.parameter_requests()[0]
    try:
        params = sv.decode_parameters([register_reply(request, image(request, block))])
    except DecodeError:
        assert any(block[a - 0x1300] > 1000 for a in range(0x1353, 0x1358))
        return
    for field in fields(sv.Parameters):
        value = getattr(params, field.name)
        assert isinstance(value, int | float | Threshold)
    assert params.low_soc.alarm is not None and 0 <= params.low_soc.alarm <= 100
    assert -32768 <= params.discharge_over_current.protection <= 32767


@given(st.binary(min_size=0x33 * 2, max_size=0x33 * 2), st.binary(min_size=72, max_size=72))
def test_any_text_blocks_decode(via: bytes, pct: bytes) -> None:
    request = sv.device_info_requests()[0]
    info = sv.decode_device_info([coil_reply(request, via)])
    assert all(v is None or isinstance(v, str) for v in vars_of(info))
    pcs_request = sv.pcs_requests()[0]
    pcs = sv.decode_pcs([coil_reply(pcs_request, pct)])
    assert isinstance(pcs.pcs_name, str) and 0 <= pcs.baud_rate <= 0xFFFF


@given(st.binary(min_size=10, max_size=10))
def test_any_switches_decode(data: bytes) -> None:
    switches = sv.decode_function_switches([coil_reply(sv.function_switch_requests()[0], data)])
    assert len(switches.enabled) == len(set(switches.enabled))


def vars_of(info: sv.DeviceInfo) -> list[object]:
    return [getattr(info, f.name) for f in fields(info)]


def test_only_library_errors_escape_for_foreign_replies() -> None:
    """A reply of another block given to a decoder is a DecodeError, never another exception."""
    foreign = [reply_of("PCT", sv.pcs_requests(0xE0)[0])]
    for decode in (
        lambda: sv.decode_bank(foreign, 0xE0),
        lambda: sv.decode_parameters(foreign),
        lambda: sv.decode_analog(0xE0, foreign, shape()),
        lambda: sv.decode_status(0xE0, foreign, shape()),
        lambda: sv.decode_function_switches(foreign, 0xE0),
        lambda: sv.decode_shape(foreign),
    ):
        with pytest.raises(BmsError):
            decode()
