"""Modbus RTU replies that do not fit, bytes with no read in flight, and where each dialect's
reader says pack ``n`` answers; the 44H and PIB misfits that must be decode errors.
"""

from __future__ import annotations

import pytest

from ress_bms.dialects import READERS, pylontech, seplos_v3
from ress_bms.errors import DecodeError, FrameError
from ress_bms.framing import MODBUS
from ress_bms.modbus import (
    READ_COILS,
    READ_HOLDING,
    ModbusExceptionError,
    ReadRequest,
    ReplyCutter,
    decode_reply,
    with_crc,
)

from .test_dialect_pylontech import _status_block as pylontech_status_block
from .ver20_frames import reply

HOLDING = ReadRequest(1, READ_HOLDING, 0x0010, 2)
COILS = ReadRequest(1, READ_COILS, 0x1200, 16)


def test_a_register_outside_the_read_is_not_invented() -> None:
    answer = decode_reply(with_crc(bytes((1, READ_HOLDING, 4, 0x0C, 0xE4, 0x0C, 0xE5))), HOLDING)
    assert (answer.register(0x0010), answer.register(0x0011)) == (3300, 3301)
    for outside in (0x000F, 0x0012):
        with pytest.raises(DecodeError, match=f"register {outside} is not in this reply"):
            answer.register(outside)
    with pytest.raises(DecodeError, match="coil 16 is not in this reply"):
        answer.coil(0x0010)  # a register reply has no coils


def test_a_coil_reply_has_bits_not_registers() -> None:
    answer = decode_reply(with_crc(bytes((1, READ_COILS, 2, 0b0000_0101, 0x80))), COILS)
    assert [answer.coil(0x1200 + n) for n in (0, 1, 2, 15)] == [True, False, True, True]
    with pytest.raises(DecodeError, match="coil 4624 is not in this reply"):
        answer.coil(0x1210)
    with pytest.raises(DecodeError, match="register 4608 is not in this reply"):
        answer.register(0x1200)
    with pytest.raises(DecodeError, match="bits, not registers"):
        answer.registers  # noqa: B018


def test_an_exception_reply_of_the_wrong_length_or_unit_is_no_answer() -> None:
    with pytest.raises(ModbusExceptionError, match="exception 02H"):
        decode_reply(with_crc(bytes((1, 0x83, 0x02))), HOLDING)
    with pytest.raises(FrameError, match="an exception reply has 5 bytes, not 6"):
        decode_reply(with_crc(bytes((1, 0x83, 0x02, 0x00))), HOLDING)
    with pytest.raises(DecodeError, match="exception from unit 2, asked unit 1"):
        decode_reply(with_crc(bytes((2, 0x83, 0x02))), HOLDING)


def test_the_reply_cutter_drops_a_partial_reply_and_counts_it() -> None:
    cutter = ReplyCutter(HOLDING)
    full = with_crc(bytes((1, READ_HOLDING, 4, 0, 1, 0, 2)))
    assert cutter.feed(full[:4]) == []
    assert cutter.pending == 4
    assert cutter.clear() == 4
    assert (cutter.pending, cutter.discarded) == (0, 4)
    assert cutter.feed(full) == [full]


def test_bytes_with_no_read_in_flight_are_discarded() -> None:
    """RTU has no start marker: what comes while nothing was asked cannot be framed."""
    idle = MODBUS.extractor(None)
    assert idle.feed(with_crc(bytes((1, READ_HOLDING, 2, 0, 1)))) == []
    assert idle.feed(b"\x00\xff") == []
    assert idle.discarded == 9
    assert idle.clear() == 0


def test_fewer_than_five_bytes_are_no_modbus_reply() -> None:
    with pytest.raises(FrameError, match="4 bytes are not a Modbus reply"):
        MODBUS.parse(b"\x01\x03\x00\x00")
    frame = MODBUS.parse(with_crc(bytes((1, 0x83, 0x02))))
    assert (frame.adr, frame.function, frame.body) == (1, 0x83, b"\x02")


@pytest.mark.parametrize(
    ("dialect", "first"),
    [("seplos", 0), ("pylontech", 2), ("eg4", 1), ("pace_modbus", 1), ("seplos_v3", 1)],
)
def test_each_reader_asks_pack_n_where_its_document_puts_it(dialect: str, first: int) -> None:
    """dialects.md: Seplos V2 counts ADR from 0, Pylontech from 2, the others from 1."""
    reader = READERS[dialect]()
    assert [reader.bus_address(n) for n in (1, 2, 8)] == [first, first + 1, first + 7]


def test_a_group_44h_with_bytes_after_its_last_module_is_a_decode_error() -> None:
    blocks = pylontech_status_block() + pylontech_status_block()
    whole = reply(2, pylontech.CID1, bytes((0x11, 2)) + blocks)
    assert len(pylontech.decode_status(whole, pylontech.ALL_PACKS)) == 2
    cut = reply(2, pylontech.CID1, bytes((0x11, 2)) + blocks + bytes(pylontech.MAX_STATUS_TRAILER))
    with pytest.raises(DecodeError, match="44H: 2 blocks do not fill 70 bytes"):
        pylontech.decode_status(cut, pylontech.ALL_PACKS)


def test_a_pack_shape_outside_the_pib_block_is_refused() -> None:
    assert seplos_v3.PackShape(16, 4).cells == 16
    with pytest.raises(DecodeError, match=r"0 cells: PIB holds 1\.\."):
        seplos_v3.PackShape(0, 4)
    with pytest.raises(DecodeError, match="-1 cell temperature sensors"):
        seplos_v3.PackShape(16, -1)
