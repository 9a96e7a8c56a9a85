"""Client and link behaviour on firmware the simulator does not imitate (a scripted peer)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from ress_bms.analog import PackAnalog, encode_analog
from ress_bms.client import PollMode, StackClient
from ress_bms.commands import Command, encode_request
from ress_bms.device import encode_text
from ress_bms.errors import BmsTimeoutError, DecodeError, UnsupportedProtocolError
from ress_bms.frame import Frame, checksum
from ress_bms.link import Link
from ress_bms.status import PackStatus, encode_status, status_bytes

from .fakepeer import FakePeer, reply

pytestmark = pytest.mark.usefixtures("socket_enabled")

Answer = Callable[[Frame], bytes | None]


def peer(answer: Answer) -> FakePeer:
    async def script(frame: Frame, writer: asyncio.StreamWriter) -> None:
        data = answer(frame)
        if data is not None:
            writer.write(data)

    return FakePeer(script)


def analog_block(address: int) -> PackAnalog:
    return PackAnalog(address, True, (3.3,) * 16, (25.0,) * 6, 0, 52.8, 50, 100, 100, 1)


def status_block(address: int) -> PackStatus:
    return PackStatus(address, (0,) * 16, (0,) * 6, 0, 0, 0, status_bytes(["charge_mos"]))


async def test_ver_error_means_another_protocol_version() -> None:
    async with peer(lambda f: reply(f, rtn=0x01)) as p, Link(p.url, timeout=0.1) as link:
        with pytest.raises(UnsupportedProtocolError, match="not in PACE VER 0x25"):
            await StackClient(link).discover()


@pytest.mark.parametrize("count", [0, 17])
async def test_impossible_pack_count_is_refused(count: int) -> None:
    async with peer(lambda f: reply(f, bytes([count]))) as p, Link(p.url, timeout=0.1) as link:
        with pytest.raises(DecodeError, match="master reports"):
            await StackClient(link).discover()


async def test_slaves_that_do_not_answer_for_themselves_are_kept_without_serials() -> None:
    """Only the master answers C1H/C2H (here: for every address, with its own ADR)."""

    def master_only(frame: Frame) -> bytes | None:
        if frame.cid2 == Command.PACK_COUNT:
            return reply(frame, b"\x03")
        if frame.cid2 == Command.VERSION:
            return reply(frame, encode_text("P16S100A-1.0"), adr=1)
        if frame.cid2 == Command.SERIAL and frame.adr == 1:
            return reply(frame, encode_text("SN1") + encode_text("PACK1"))
        return None

    async with peer(master_only) as p, Link(p.url, timeout=0.1) as link:
        stack = await StackClient(link).discover()
    assert [(x.address, x.bms_serial, x.direct) for x in stack.packs] == [
        (1, "SN1", True), (2, None, False), (3, None, False),
    ]  # fmt: skip


async def test_empty_bus_scan_is_a_timeout() -> None:
    async with peer(lambda f: None) as p, Link(p.url, timeout=0.02, retries=0) as link:
        with pytest.raises(BmsTimeoutError, match="no pack answered"):
            await StackClient(link).discover(scan=True)


async def test_broadcast_reply_missing_a_pack_marks_only_that_pack() -> None:
    def two_of_three(frame: Frame) -> bytes | None:
        if frame.cid2 == Command.ANALOG:
            return reply(frame, encode_analog([analog_block(1), analog_block(2)], 0xFF))
        return reply(frame, encode_status([status_block(1), status_block(2)], 0xFF))

    async with peer(two_of_three) as p, Link(p.url, timeout=0.1) as link:
        client = StackClient(link, poll_mode=PollMode.BROADCAST)
        client.stack = None
        client.master_address = 1
        sample = await client.poll()  # before discovery: the master alone
        assert list(sample.packs) == [1]
        from ress_bms.client import PackInfo, StackInfo

        client.stack = StackInfo(1, tuple(PackInfo(a) for a in (1, 2, 3)))
        sample = await client.poll()
    assert [s.online for s in sample.packs.values()] == [True, True, False]
    assert isinstance(sample.packs[3].error, DecodeError)


async def test_a_silent_bus_keeps_the_mode_that_worked() -> None:
    """Silence says nothing about modes: no re-choosing (three modes of timeouts) per refresh."""
    answering = True

    def flaky(frame: Frame) -> bytes | None:
        if not answering:
            return None
        if frame.cid2 == Command.ANALOG:
            return reply(frame, encode_analog([analog_block(1)], frame.info[0]))
        return reply(frame, encode_status([status_block(1)], frame.info[0]))

    async with peer(flaky) as p, Link(p.url, timeout=0.05, retries=0) as link:
        client = StackClient(link)
        assert (await client.poll()).packs[1].online
        assert client.mode is PollMode.RELAY  # one pack: COMMAND 01 at the master
        answering = False
        before = len(p.requests)
        assert not (await client.poll()).packs[1].online
        assert client.mode is PollMode.RELAY
        # The master's 42H and a 90H to be sure it is silent, not a trial of every mode.
        assert [f.cid2 for f in p.requests[before:]] == [Command.ANALOG, Command.PACK_COUNT]
        answering = True
        assert (await client.poll()).packs[1].online


async def test_history_ends_at_no_data() -> None:
    def one_record_then_rtn07(frame: Frame) -> bytes | None:
        if int.from_bytes(frame.info) == 0:
            from datetime import datetime

            from ress_bms.history import HistoryRecord, encode_history

            record = HistoryRecord(
                0, datetime(2026, 1, 2, 3, 4, 5), (3.3,) * 16, (20.0,) * 6, 0, 52.8, 50, 100, 7,
                status_block(1), 0xFFFE,
            )  # fmt: skip
            return reply(frame, encode_history(record))
        return reply(frame, rtn=0x07)

    async with peer(one_record_then_rtn07) as p, Link(p.url, timeout=0.1) as link:
        records = await StackClient(link).read_history()
    assert len(records) == 1
    assert records[0].cycles == 7


async def test_mos_command_must_be_a_mos_command() -> None:
    async with peer(lambda f: None) as p, Link(p.url) as link:
        with pytest.raises(ValueError, match="not a MOSFET command"):
            await StackClient(link).set_mos(Command.SHUTDOWN, on=True)


async def test_link_counts_lchksum_unsolicited_and_undecodable_replies() -> None:
    def odd(frame: Frame) -> bytes | None:
        body = b"250146000002" + b"03"  # LENGTH 0002 carries a wrong LCHKSUM
        return b"~" + body + b"%04X\r" % checksum(body)

    async with peer(odd) as p, Link(p.url, timeout=0.1, retries=0) as link:
        count = await link.exchange(encode_request(Command.PACK_COUNT, 1), lambda f: f.info[0])
        assert count == 3
        assert link.stats.lchksum_errors == 1

        def never(frame: Frame) -> None:
            raise DecodeError("not this one")

        with pytest.raises(DecodeError, match="not this one"):
            await link.exchange(encode_request(Command.PACK_COUNT, 1), never)
        assert link.stats.decode_errors == 1
        assert p.requests
        p_writer_data = reply(p.requests[0], b"\x01")
        link._on_data(p_writer_data)  # nothing is owed: the refused request was answered
        assert link.stats.unsolicited_frames == 1
