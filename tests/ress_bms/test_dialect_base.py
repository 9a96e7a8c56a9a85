"""The field tables every dialect's layouts are written in."""

from __future__ import annotations

import pytest

from ress_bms.dialects import DIALECTS, Capability
from ress_bms.dialects.base import Field, Register, read_fields, read_registers
from ress_bms.errors import DecodeError
from ress_bms.modbus import READ_INPUT, ReadRequest, decode_reply, with_crc

LAYOUT = (
    Field("flag", "u8"),
    Field("cells", "u8"),
    Field("cell_voltages", "u16", scale=0.001, count="cells", digits=3),
    Field("current", "i16", scale=0.01, digits=2),
    Field("name", "text", size=4),
)


def test_a_counted_layout_reads_in_order() -> None:
    data = bytes([0, 2]) + (3300).to_bytes(2) + (3301).to_bytes(2) + (-150).to_bytes(2, signed=True)
    values, end = read_fields(LAYOUT, data + b"AB\x00 rest")
    assert values == {
        "flag": 0,
        "cells": 2,
        "cell_voltages": (3.3, 3.301),
        "current": -1.5,
        "name": "AB",
    }
    assert end == len(data) + 4


def test_a_layout_that_runs_out_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="cell_voltages"):
        read_fields(LAYOUT, bytes([0, 16, 0x0C]))
    with pytest.raises(DecodeError, match="count field"):
        read_fields((Field("x", count="missing"),), b"\x00\x01")


def test_registers_low_word_first_and_signed() -> None:
    table = (
        Register("voltage", 0x2000, "u32", scale=0.01, word_order="low_first", digits=2),
        Register("current", 0x2002, "i16", scale=0.01, digits=2),
        Register("cells", 0x2003, count=2),
        Register("outside", 0x2010),
    )
    request = ReadRequest(0, READ_INPUT, 0x2000, 5)
    words = (0x14CC, 0x0000, 0xFFF3, 3300, 3301)
    data = b"".join(w.to_bytes(2) for w in words)
    reply = decode_reply(with_crc(bytes((0, READ_INPUT, len(data))) + data), request)
    assert read_registers(table, reply) == {
        "voltage": 53.24,
        "current": -0.13,
        "cells": (3300, 3301),
    }


def test_dialects_say_what_they_can_do() -> None:
    pace = DIALECTS["pace"]
    assert pace.can(Capability.PARAMETERS_WRITE)
    assert pace.baudrates[0] == 9600
