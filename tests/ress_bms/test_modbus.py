"""The Modbus RTU framing against the public frames of the dialects reference, and fuzzed."""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import given, strategies as st
import pytest

from ress_bms.errors import BmsError, ChecksumError, DecodeError, FrameError
from ress_bms.modbus import (
    READ_COILS,
    READ_HOLDING,
    READ_INPUT,
    ModbusExceptionError,
    ReadRequest,
    ReplyCutter,
    crc16,
    decode_reply,
    decode_request,
    frame_gap,
    with_crc,
)

from .reference_frames import FRAMES

MODBUS = [f for f in FRAMES if "Modbus" in f["family"] and "negative" not in f["family"]]
REQUESTS_NOT_IN_THE_CAPTURE = {
    # The reference gives these replies without their request; the request is in its note.
    "EIB": ReadRequest(0x00, READ_INPUT, 0x2100, 22),
    "PIC": ReadRequest(0x01, READ_COILS, 0x1200, 0x90),
    "PCT": ReadRequest(0xE0, READ_INPUT, 0x1800, 0x24),
}


def request_of(entry: dict[str, Any]) -> ReadRequest:
    if entry["request"]:
        return decode_request(bytes.fromhex(entry["request"]))
    block = next(k for k in REQUESTS_NOT_IN_THE_CAPTURE if entry["command"].startswith(k))
    return REQUESTS_NOT_IN_THE_CAPTURE[block]


def test_the_reference_has_modbus_frames() -> None:
    assert len(MODBUS) >= 15


@pytest.mark.parametrize("entry", [f for f in MODBUS if f["request"]], ids=lambda f: f["command"])
def test_every_documented_request_encodes_byte_for_byte(entry: dict[str, Any]) -> None:
    raw = bytes.fromhex(entry["request"])
    assert request_of(entry).encode() == raw


@pytest.mark.parametrize("entry", [f for f in MODBUS if f["response"]], ids=lambda f: f["command"])
def test_every_documented_reply_decodes_or_is_its_exception(entry: dict[str, Any]) -> None:
    request = request_of(entry)
    raw = bytes.fromhex(entry["response"])
    if raw[1] & 0x80:
        with pytest.raises(ModbusExceptionError) as caught:
            decode_reply(raw, request)
        assert caught.value.code == raw[2]
        return
    reply = decode_reply(raw, request)
    assert len(reply.data) == request.reply_bytes
    assert ReplyCutter(request).feed(raw) == [raw]


def test_seplos_v3_bank_voltage_is_the_low_word_first() -> None:
    """EIA starts with the 32-bit pack voltage, low word first: 14CC 0000 = 53.24 V."""
    entry = next(f for f in MODBUS if f["command"].startswith("EIA"))
    reply = decode_reply(bytes.fromhex(entry["response"]), request_of(entry))
    low, high = reply.register(0x2000), reply.register(0x2001)
    assert (high << 16 | low) / 100 == 53.24


def test_coils_are_read_lsb_first() -> None:
    request = ReadRequest(1, READ_COILS, 0x1200, 10)
    reply = decode_reply(with_crc(bytes((1, READ_COILS, 2, 0b0000_0101, 0b10))), request)
    assert [reply.coil(0x1200 + i) for i in range(10)] == [
        True, False, True, False, False, False, False, False, False, True,
    ]  # fmt: skip
    with pytest.raises(DecodeError):
        reply.registers  # noqa: B018


def test_exception_reply_is_a_typed_error_with_its_meaning() -> None:
    request = ReadRequest(1, READ_INPUT, 0x1000, 17)
    with pytest.raises(ModbusExceptionError, match="illegal function") as caught:
        decode_reply(with_crc(bytes((1, READ_INPUT | 0x80, 0x01))), request)
    assert caught.value.unit == 1 and caught.value.function == READ_INPUT


def test_a_reply_to_another_request_is_refused() -> None:
    asked = ReadRequest(1, READ_HOLDING, 0, 8)
    other_unit = with_crc(bytes((2, READ_HOLDING, 16)) + bytes(16))
    other_count = with_crc(bytes((1, READ_HOLDING, 4)) + bytes(4))
    for raw in (other_unit, other_count):
        with pytest.raises(DecodeError):
            decode_reply(raw, asked)
    with pytest.raises(ChecksumError):
        decode_reply(other_unit[:-1] + bytes([other_unit[-1] ^ 1]), asked)


def test_the_negative_example_is_noise() -> None:
    entry = next(f for f in FRAMES if "negative" in f["family"])
    request = decode_request(bytes.fromhex(entry["request"]))
    raw = bytes.fromhex(entry["response"])
    with pytest.raises((FrameError, DecodeError)):
        decode_reply(raw, request)
    cutter = ReplyCutter(request)
    assert cutter.feed(raw) == []


def test_cutter_finds_a_split_reply_after_noise_and_a_glued_second_one() -> None:
    request = ReadRequest(1, READ_HOLDING, 0, 8)
    reply = with_crc(bytes((1, READ_HOLDING, 16)) + bytes(range(16)))
    cutter = ReplyCutter(request)
    stream = b"\x00\xfe\x01\x03" + reply + reply  # noise that even starts like a reply
    found = []
    for i in range(0, len(stream), 5):
        found += cutter.feed(stream[i : i + 5])
    assert found == [reply, reply]
    assert cutter.discarded == 4
    assert cutter.pending == 0


def test_requests_refuse_what_is_not_a_read() -> None:
    for bad in (
        {"unit": 1, "function": 0x10, "start": 0, "count": 1},  # a write
        {"unit": 1, "function": READ_HOLDING, "start": 0, "count": 0x7E},
        {"unit": 256, "function": READ_HOLDING, "start": 0, "count": 1},
        {"unit": 1, "function": READ_HOLDING, "start": 0xFFFF, "count": 2},
    ):
        with pytest.raises(ValueError, match=r"outside|not a read"):
            ReadRequest(**bad)
    with pytest.raises(FrameError):
        decode_request(with_crc(bytes((1, 0x10, 0, 0, 0, 1))))


def test_crc_and_frame_gap() -> None:
    assert crc16(b"123456789") == 0x4B37  # the Modbus check value
    assert frame_gap(9600) == pytest.approx(3.5 * 10 / 9600)
    assert frame_gap(115200) == 0.00175


REQUEST = ReadRequest(1, READ_INPUT, 0x1000, 17)


@given(st.binary(max_size=64))
def test_fuzz_decode_raises_only_typed_errors(data: bytes) -> None:
    with contextlib.suppress(BmsError):  # anything else fails the test
        decode_reply(data, REQUEST)


@given(st.lists(st.binary(max_size=40), max_size=8))
def test_fuzz_cutter_only_returns_frames_with_a_good_crc(chunks: list[bytes]) -> None:
    cutter = ReplyCutter(REQUEST)
    for chunk in chunks:
        for frame in cutter.feed(chunk):
            assert crc16(frame[:-2]) == int.from_bytes(frame[-2:], "little")
            assert frame[0] == REQUEST.unit


@given(st.binary(min_size=34, max_size=34), st.binary(max_size=12))
def test_fuzz_a_real_reply_survives_noise_before_it(data: bytes, noise: bytes) -> None:
    reply = with_crc(bytes((1, READ_INPUT, 34)) + data)
    found = ReplyCutter(REQUEST).feed(noise + reply)
    assert found and found[-1] == reply


def test_cutter_counts_what_a_begun_reply_still_needs() -> None:
    request = ReadRequest(1, READ_HOLDING, 0, 8)
    reply = with_crc(bytes((1, READ_HOLDING, 16)) + bytes(range(16)))
    cutter = ReplyCutter(request)
    assert cutter.awaited == 0
    cutter.feed(reply[:6])
    assert cutter.awaited == len(reply) - 6
    assert cutter.feed(reply[6:]) == [reply]
    assert cutter.awaited == 0
    cutter.feed(b"\x07\x03")  # another unit's bytes: no reply begun
    assert cutter.awaited == 0
