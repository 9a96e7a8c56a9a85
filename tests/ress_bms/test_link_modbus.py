"""The same link in Modbus RTU framing: what it does for ASCII it does here, written once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from ress_bms.errors import BmsTimeoutError
from ress_bms.framing import MODBUS, ModbusFrame
from ress_bms.link import Link
from ress_bms.modbus import (
    READ_HOLDING,
    ModbusExceptionError,
    ReadReply,
    ReadRequest,
    decode_reply,
    with_crc,
)

from .fakepeer import BusPeer, rtu

pytestmark = pytest.mark.usefixtures("socket_enabled")


def registers_reply(request: ReadRequest, first: int = 0) -> bytes:
    data = b"".join((first + i).to_bytes(2) for i in range(request.count))
    return with_crc(bytes((request.unit, request.function, len(data))) + data)


def read(unit: int = 1, start: int = 0, count: int = 8) -> tuple[bytes, Callable[..., ReadReply]]:
    request = ReadRequest(unit, READ_HOLDING, start, count)

    def decode(frame: ModbusFrame) -> ReadReply:
        return decode_reply(frame.raw, request)

    return request.encode(), decode


async def test_a_read_split_and_after_noise() -> None:
    async def noisy_and_split(request: ReadRequest, writer: asyncio.StreamWriter) -> None:
        data = b"\xfe\x01\x03" + registers_reply(request, 100)
        for i in range(0, len(data), 4):
            writer.write(data[i : i + 4])
            await writer.drain()
            await asyncio.sleep(0.01)

    async with BusPeer(rtu(noisy_and_split)) as peer, Link(peer.url, framing=MODBUS) as link:
        raw, decode = read()
        reply = await link.exchange(raw, decode)
    assert reply.registers == tuple(range(100, 108))
    assert link.stats.noise_bytes == 3
    assert link.stats.replies == 1


async def test_an_exception_is_typed_and_not_retried() -> None:
    async def illegal(request: ReadRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(with_crc(bytes((request.unit, request.function | 0x80, 0x02))))

    async with BusPeer(rtu(illegal)) as peer, Link(peer.url, framing=MODBUS) as link:
        raw, decode = read()
        with pytest.raises(ModbusExceptionError, match="illegal data address"):
            await link.exchange(raw, decode)
    assert len(peer.requests) == 1
    assert link.stats.response_errors == 1


async def test_a_late_reply_is_owed_not_delivered_to_the_next_read() -> None:
    """The reply to unit 1 comes after its timeout, while unit 2 is asked: it is dropped."""
    held: list[bytes] = []

    async def late_for_unit_1(request: ReadRequest, writer: asyncio.StreamWriter) -> None:
        if request.unit == 1:
            held.append(registers_reply(request, 1000))
        else:
            writer.write(held.pop() + registers_reply(request, 2000))

    async with (
        BusPeer(rtu(late_for_unit_1)) as peer,
        Link(peer.url, framing=MODBUS, timeout=0.1, retries=0, drain=0.0) as link,
    ):
        raw, decode = read(unit=1)
        with pytest.raises(BmsTimeoutError):
            await link.exchange(raw, decode)
        raw, decode = read(unit=2)
        reply = await link.exchange(raw, decode)
    assert reply.registers[0] == 2000  # not unit 1's 1000
    assert not held


async def test_silence_is_retried_then_a_timeout() -> None:
    async def silent(request: ReadRequest, writer: asyncio.StreamWriter) -> None:
        return

    async with (
        BusPeer(rtu(silent)) as peer,
        Link(peer.url, framing=MODBUS, timeout=0.1, drain=0.0) as link,
    ):
        raw, decode = read()
        with pytest.raises(BmsTimeoutError, match="03H"):
            await link.exchange(raw, decode)
    assert len(peer.requests) == 2
    assert link.stats.timeouts == 2
