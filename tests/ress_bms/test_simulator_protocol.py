"""The simulator's replies, frame by frame: layouts of the real captures, addressing, RTNs."""

from __future__ import annotations

from datetime import datetime
import json
from pathlib import Path
from typing import Any

import pytest

from ress_bms import analog, control, device, history, params, status
from ress_bms.commands import Command, encode_request
from ress_bms.errors import RTN_NO_DATA, RTN_REFUSED
from ress_bms.frame import CID1_LFP, VER_PACE, Frame, decode_frame, encode_frame, length_field
from ress_bms.simulator import PROFILES, Stack, respond

FRAMES = json.loads((Path(__file__).parent.parent / "fixtures" / "frames.json").read_text())
PACE = [
    f for f in FRAMES["frames"]
    if f["request"] and f["response"] and f["request"].startswith("~25")
]  # fmt: skip


def ask(stack: Stack, command: int, adr: int = 1, info: bytes = b"") -> Frame | None:
    """One exchange straight through the responder (no sockets)."""
    raw = respond(stack, encode_request(command, adr, info))
    return None if raw is None else decode_frame(raw)


def ask_raw(stack: Stack, raw: bytes) -> Frame | None:
    reply = respond(stack, raw)
    return None if reply is None else decode_frame(reply)


def reply_of(stack: Stack, command: int, adr: int = 1, info: bytes = b"") -> Frame:
    frame = ask(stack, command, adr, info)
    assert frame is not None
    return frame


# ---------------------------------------------------------------- the public captures


def _stack_for(entry: dict[str, Any]) -> Stack:
    """A stack like the device of a capture: 2 packs for the EASUN pack-count pair."""
    stack = Stack(2 if "EASUN" in (entry["device"] or "") else 1, seed=3)
    cid2 = int(entry["request"][7:9], 16)
    if cid2 == Command.DISCHARGE_MOS:
        # The Jakiper was discharging 2.25 A (its 42H capture): 9B 01 is refused, 9B 00 is not.
        stack.master.demand = -2.25
        stack.advance(1)
    if cid2 == Command.HISTORY:
        while len(stack.master.bms.history) <= int(entry["request"][13:17], 16):
            stack.master.bms.log()
    return stack


@pytest.mark.parametrize("entry", PACE, ids=lambda e: f"{e['command']}|{e['request']}")
def test_reply_to_a_public_request_has_the_real_layout(entry: dict[str, Any]) -> None:
    real = decode_frame(entry["response"].encode())
    stack = _stack_for(entry)
    request = decode_frame(entry["request"].encode())
    reply = ask_raw(stack, entry["request"].encode() + b"\r")
    assert reply is not None
    assert (reply.ver, reply.cid1, reply.cid2) == (real.ver, real.cid1, real.cid2)
    assert len(reply.info) == len(real.info)
    # Replies carry the answering pack's own address: 1 for the master of a one-pack stack.
    assert reply.adr == (request.adr if request.adr in (1, 2) else 1)


@pytest.mark.parametrize(
    ("firmware", "command", "length"),
    [
        ("pace-2018", Command.ANALOG, 0xF07A),
        ("ext1", Command.ANALOG, length_field(0x07C)),
        ("ext10", Command.ANALOG, length_field(0x08E)),
        ("easun-p9", Command.ANALOG, 0x1096),  # the Easun capture (nkinnan issue #22)
        ("pace-2018", Command.STATUS, 0x004C),  # Jakiper
        ("easun-p9", Command.STATUS, 0xE04E),  # Easun, one V3.1 extra byte
        ("v3.1-full", Command.STATUS, length_field(0x056)),
    ],
)
def test_firmware_profiles_give_the_lengths_seen_in_the_field(
    firmware: str, command: int, length: int
) -> None:
    raw = respond(Stack(1, firmware=firmware), encode_request(command, 1, b"\x01"))
    assert raw is not None
    assert int(raw[9:13], 16) == length


def test_every_reply_decodes_with_the_library_codecs() -> None:
    stack = Stack(2, firmware="easun-p9", seed=2)
    stack.advance(2)
    a = analog.decode_analog(reply_of(stack, Command.ANALOG, 1, b"\xff").info, 0xFF)
    assert [p.address for p in a.packs] == [1, 2]
    assert all(p.online and len(p.cell_voltages) == 16 for p in a.packs)
    assert a.packs[0].soc_source == "bms" and a.packs[0].soh_source == "bms"
    assert a.packs[0].voltage == pytest.approx(stack.master.physics.voltage, abs=0.002)
    s = status.decode_status(reply_of(stack, Command.STATUS, 1, b"\xff").info, 0xFF)
    assert s.packs[1].charge_mos and s.packs[1].discharge_mos and not s.packs[1].protections
    assert device.decode_pack_count(reply_of(stack, Command.PACK_COUNT).info) == 2
    assert device.decode_version(reply_of(stack, Command.VERSION).info) == "P16S100A-32117-1.00"
    serials = device.decode_serials(reply_of(stack, Command.SERIAL).info)
    assert serials.bms == stack.master.bms_serial and serials.pack == stack.master.pack_serial
    capacities = device.decode_capacities(reply_of(stack, Command.CAPACITY).info)
    assert capacities.full == stack.master.physics.full_capacity
    assert device.decode_clock(reply_of(stack, Command.CLOCK_READ).info) == stack.master.now()
    record = history.decode_history(reply_of(stack, Command.HISTORY, 1, b"\x00\x00").info, 0)
    assert record is not None and record.power_on
    for group in params.GROUPS:
        values = group.decode(reply_of(stack, group.read).info)
        assert set(values) == {p.key for p in group.parameters}
    reply = control.decode_control(reply_of(stack, Command.CONTROL, 1, b"\x0d").info)
    assert reply.code == 0x0D and reply.control_status is not None and reply.control_status & 1
    assert control.decode_mos(reply_of(stack, Command.CHARGE_MOS, 1, b"\x00").info) == 0x06


def test_parameter_defaults_are_the_user_guide_values() -> None:
    stack = Stack(1)
    for group in params.GROUPS:
        payload = reply_of(stack, group.read).info
        assert len(payload) == group.size
        for key, value in group.decode(payload).items():
            default = params.PARAMETERS_BY_KEY[key].default
            if default is not None:
                assert value == default, key
    # Discharge currents read back negative, as the Jakiper does (FF97 = -105 A).
    assert reply_of(stack, Command.DISCHARGE_OC_READ).info[1:3] == (-110).to_bytes(2, signed=True)


def test_a_15s_pack_scales_its_pack_thresholds() -> None:
    stack = Stack(1, cells=15)
    group = params.GROUPS_BY_KEY["pack_over_voltage"]
    values = group.decode(reply_of(stack, group.read).info)
    assert values == {
        **values,
        "pack_over_voltage_protection": 54.0,
        "pack_over_voltage_alarm": 52.5,
    }
    assert len(analog.decode_analog(reply_of(stack, Command.ANALOG, 1, b"\x01").info, 1)
               .packs[0].cell_voltages) == 15  # fmt: skip
    assert device.decode_version(reply_of(stack, Command.VERSION).info).startswith("P15S")


# ---------------------------------------------------------------- addressing


def test_multi_drop_addressing_and_master_relay() -> None:
    stack = Stack(3, seed=4)
    assert reply_of(stack, Command.VERSION, 2).adr == 2
    assert ask(stack, Command.VERSION, 5) is None  # nobody at address 5
    assert reply_of(stack, Command.VERSION, 0).adr == 1  # the master takes ADR 00 and FF
    everyone = analog.decode_analog(reply_of(stack, Command.ANALOG, 1, b"\xff").info, 0xFF)
    assert len(everyone.packs) == 3
    relay = reply_of(stack, Command.ANALOG, 1, b"\x03")
    assert relay.adr == 1
    relayed = analog.decode_analog(relay.info, 3).packs[0]
    assert relayed.voltage == pytest.approx(stack.pack(3).physics.voltage, abs=0.002)
    assert ask(stack, Command.ANALOG, 1, b"\x09") is None  # no pack 9 to relay to
    # A slave answers only for itself, whatever COMMAND asks for.
    slave = reply_of(stack, Command.STATUS, 2, b"\xff")
    assert slave.adr == 2 and status.decode_status(slave.info, 0xFF).packs[0].address == 1
    assert len(status.decode_status(slave.info, 0xFF).packs) == 1
    assert device.decode_pack_count(reply_of(stack, Command.PACK_COUNT, 1).info) == 3
    assert device.decode_pack_count(reply_of(stack, Command.PACK_COUNT, 3).info) == 1


def test_a_lone_pack_answers_any_address() -> None:
    stack = Stack(1)
    assert reply_of(stack, Command.PACK_COUNT, 7).adr == 1


def test_an_offline_pack_is_silent_and_zero_filled_by_the_master() -> None:
    stack = Stack(3)
    stack.pack(2).online = False
    assert ask(stack, Command.VERSION, 2) is None
    packs = analog.decode_analog(reply_of(stack, Command.ANALOG, 1, b"\xff").info, 0xFF).packs
    assert [p.online for p in packs] == [True, False, True]
    assert packs[1].voltage == 0 and set(packs[1].temperatures) == {0.0}
    blocks = status.decode_status(reply_of(stack, Command.STATUS, 1, b"\xff").info, 0xFF).packs
    assert blocks[1].bytes_[status.StatusByte.INDICATION] == 0
    relayed = analog.decode_analog(reply_of(stack, Command.ANALOG, 1, b"\x02").info, 2)
    assert not relayed.packs[0].online


# ---------------------------------------------------------------- return codes


def _request(cid2: int, info: bytes = b"", *, ver: int = VER_PACE, adr: int = 1) -> bytes:
    return encode_frame(ver, adr, CID1_LFP, cid2, info)


def test_return_codes_for_bad_requests() -> None:
    stack = Stack(1)
    good = encode_request(Command.VERSION, 1)
    damaged = good[:-5] + b"0000\r"
    assert reply_of_raw(stack, damaged).cid2 == 0x02
    assert reply_of_raw(stack, _request(Command.VERSION, ver=0x20)).cid2 == 0x01
    wrong_lchksum = bytearray(_request(Command.ANALOG, b"\x01"))
    wrong_lchksum[9:10] = b"0"
    body = bytes(wrong_lchksum[1:-5])
    fixed = b"~" + body + b"%04X\r" % (-sum(body) & 0xFFFF)
    assert reply_of_raw(stack, fixed).cid2 == 0x03
    assert reply_of_raw(stack, _request(0x4F)).cid2 == 0x04  # unknown
    for forbidden in (0xA4, 0xB3, 0xA9, 0x7E):  # restore defaults, clear history, calibration
        assert reply_of_raw(stack, _request(forbidden)).cid2 == 0x04
    assert reply_of_raw(stack, _request(Command.ANALOG)).cid2 == 0x05  # COMMAND missing
    assert reply_of_raw(stack, _request(Command.CELL_OV_WRITE, b"\x01\x0e")).cid2 == 0x05
    assert reply_of_raw(stack, _request(Command.CONTROL, b"\x55")).cid2 == 0x06
    assert respond(stack, b"~not a frame\r") is None


def reply_of_raw(stack: Stack, raw: bytes) -> Frame:
    frame = ask_raw(stack, raw)
    assert frame is not None
    return frame


def test_lchksum_bug_profile() -> None:
    stack = Stack(1, firmware=PROFILES["pace-2018"].with_changes(lchksum_bug=True))
    for command, info in ((Command.ANALOG, b"\x01"), (Command.VERSION, b""), (0xD1, b"")):
        frame = reply_of(stack, command, 1, info)
        assert not frame.lchksum_ok  # CHKSUM is still right: decode_frame accepted it


# ---------------------------------------------------------------- parameters and history


def test_write_is_acknowledged_empty_and_read_back() -> None:
    stack = Stack(1)
    group = params.GROUPS_BY_KEY["cell_over_voltage"]
    payload = reply_of(stack, group.read).info
    new = group.encode_write(payload, {**group.decode(payload), "cell_over_voltage_alarm": 3.55})
    ack = respond(stack, encode_request(group.write, 1, new))
    assert ack == b"~250146000000FDAE\r"
    assert group.decode(reply_of(stack, group.read).info)["cell_over_voltage_alarm"] == 3.55
    # Discharge OC is written positive (as PbmsTools does) and read back negative.
    oc = params.GROUPS_BY_KEY["discharge_over_current"]
    payload = reply_of(stack, oc.read).info
    write = oc.encode_write(payload, {**oc.decode(payload), "discharge_over_current_alarm": 105})
    assert write[1:3] == b"\x00\x69"
    assert reply_of(stack, oc.write, 1, write).cid2 == 0
    assert reply_of(stack, oc.read).info[1:3] == b"\xff\x97"
    # Out of range (cell OV protection 5.0 V): the firmware refuses with RTN 06.
    bad = bytearray(reply_of(stack, group.read).info)
    bad[3:5] = (5000).to_bytes(2)
    assert reply_of(stack, group.write, 1, bytes(bad)).cid2 == 0x06
    # EC "FF FF 00": FF leaves a protocol unchanged.
    assert reply_of(stack, Command.INVERTER_PROTOCOL_WRITE, 1, b"\xff\xff\x00").cid2 == 0
    assert reply_of(stack, Command.INVERTER_PROTOCOL_READ).info == b"\x13\x14\x00"
    # E2H writes 3 bytes; E3H still reads 6.
    assert reply_of(stack, Command.DISCHARGE_OC2_WRITE, 1, b"\x00\xa0\x04").cid2 == 0
    assert reply_of(stack, Command.DISCHARGE_OC2_READ).info == bytes.fromhex("00A004009604")


def test_clock_write_and_read() -> None:
    stack = Stack(1)
    when = datetime(2024, 8, 20, 14, 15, 37)
    assert reply_of(stack, Command.CLOCK_WRITE, 1, device.encode_clock(when)).cid2 == 0
    stack.advance(3)
    assert device.decode_clock(reply_of(stack, Command.CLOCK_READ).info) == datetime(
        2024, 8, 20, 14, 15, 40
    )
    assert reply_of(stack, Command.CLOCK_WRITE, 1, b"\x18\x0d\x01\x00\x00\x00").cid2 == 0x06


@pytest.mark.parametrize(("firmware", "rtn"), [("pace-2018", 0), ("easun-p9", RTN_NO_DATA)])
def test_history_newest_first_and_its_end(firmware: str, rtn: int) -> None:
    stack = Stack(1, firmware=firmware)
    stack.master.bms.raise_bit("cell_over_voltage")
    newest = history.decode_history(reply_of(stack, Command.HISTORY, 1, b"\x00\x00").info, 0)
    oldest = history.decode_history(reply_of(stack, Command.HISTORY, 1, b"\x00\x01").info, 1)
    assert newest is not None and newest.protections == ("cell_over_voltage",)
    assert oldest is not None and oldest.power_on
    end = reply_of(stack, Command.HISTORY, 1, b"\x00\x02")
    assert (end.cid2, end.info) == (rtn, b"")


def test_history_keeps_500_records() -> None:
    stack = Stack(1)
    for _ in range(600):
        stack.master.bms.log()
    assert len(stack.master.bms.history) == history.MAX_RECORDS
    assert reply_of(stack, Command.HISTORY, 1, (499).to_bytes(2)).info
    assert not reply_of(stack, Command.HISTORY, 1, (500).to_bytes(2)).info


# ---------------------------------------------------------------- controls and MOSFETs


@pytest.mark.parametrize(
    ("code", "key", "on"),
    [
        (0x0D, "buzzer_enabled", True),
        (0x0C, "buzzer_enabled", False),
        (0x07, "led_alarm_disabled", True),
        (0x06, "led_alarm_disabled", False),
        (0x0B, "current_limit_disabled", True),
        (0x0A, "current_limit_disabled", False),
        (0x09, "limiter_low_gear", True),
        (0x08, "limiter_low_gear", False),
    ],
)
def test_controls_are_reflected_in_the_control_status(code: int, key: str, on: bool) -> None:
    stack = Stack(1)
    bit = status.BITS_BY_KEY[key]
    for first in (0x0D, 0x07, 0x0B, 0x09) if not on else ():
        ask(stack, Command.CONTROL, 1, bytes((first,)))
    reply = control.decode_control(reply_of(stack, Command.CONTROL, 1, bytes((code,))).info)
    assert reply.code == code
    assert reply.control_status is not None
    assert bool(reply.control_status >> bit.bit & 1) is on
    polled = status.decode_status(reply_of(stack, Command.STATUS, 1, b"\x01").info, 1).packs[0]
    assert polled.flag(key) is on


def test_mos_refusal_rules() -> None:
    stack = Stack(1)
    pack = stack.master
    pack.demand = -20.0
    stack.advance(1)
    refused = reply_of(stack, Command.DISCHARGE_MOS, 1, b"\x01")
    assert refused.cid2 == RTN_REFUSED and refused.info == bytes((pack.bms.indication(),))
    off = reply_of(stack, Command.CHARGE_MOS, 1, b"\x01")  # no current flows into the pack
    assert off.cid2 == 0 and not off.info[0] & 0x02
    assert (
        status.decode_status(reply_of(stack, Command.STATUS, 1, b"\x01").info, 1)
        .packs[0]
        .flag("charge_mos_control")
    )
    pack.demand = 0.0
    stack.advance(1)
    # Idle now, but the charge MOSFET is off: both may never be off.
    assert reply_of(stack, Command.DISCHARGE_MOS, 1, b"\x01").cid2 == RTN_REFUSED
    assert reply_of(stack, Command.CHARGE_MOS, 1, b"\x00").info[0] & 0x06 == 0x06
    assert reply_of(stack, Command.DISCHARGE_MOS, 1, b"\x01").cid2 == 0
    pack.demand = 30.0
    stack.advance(1)
    assert pack.physics.current == 30.0  # charging still flows with the discharge MOSFET off
    assert reply_of(stack, Command.CHARGE_MOS, 1, b"\x01").cid2 == RTN_REFUSED
    pack.demand = -30.0
    stack.advance(1)
    assert pack.physics.current == 0.0  # the discharge MOSFET is off


def test_forced_shutdown_silences_the_pack_until_woken() -> None:
    stack = Stack(2)
    assert reply_of(stack, Command.SHUTDOWN, 2, b"\x01").info == b""
    assert ask(stack, Command.VERSION, 2) is None
    assert ask(stack, Command.STATUS, 2, b"\x02") is None
    packs = analog.decode_analog(reply_of(stack, Command.ANALOG, 1, b"\xff").info, 0xFF).packs
    assert not packs[1].online
    stack.pack(2).wake()
    assert reply_of(stack, Command.VERSION, 2).adr == 2
    record = history.decode_history(reply_of(stack, Command.HISTORY, 2, b"\x00\x00").info, 0)
    assert record is not None and record.power_on


def test_shutdown_under_load_reboots_instead() -> None:
    stack = Stack(1)
    stack.master.demand = -10
    stack.advance(1)
    assert reply_of(stack, Command.SHUTDOWN, 1, b"\x01").cid2 == 0
    assert ask(stack, Command.VERSION) is not None


# ---------------------------------------------------------------- determinism


def test_same_seed_same_replies_other_seed_other_replies() -> None:
    def run(seed: int) -> list[bytes | None]:
        stack = Stack(3, seed=seed, profile="stress")
        replies = []
        for _ in range(5):
            stack.advance(7)
            replies.append(respond(stack, encode_request(Command.ANALOG, 1, b"\xff")))
            replies.append(respond(stack, encode_request(Command.STATUS, 1, b"\xff")))
        return replies

    assert run(5) == run(5)
    assert run(5) != run(6)
