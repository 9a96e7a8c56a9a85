"""The link against a scripted TCP peer: split, glued, garbage, silence, late replies, drops."""

from __future__ import annotations

import asyncio

import pytest

from ress_bms.commands import Command, encode_request
from ress_bms.device import decode_pack_count, decode_version
from ress_bms.errors import (
    BmsTimeoutError,
    BusContentionError,
    CommandRefusedError,
    DecodeError,
    LinkError,
    LinkUnavailableError,
)
from ress_bms.frame import Frame
from ress_bms.link import Link

from .fakepeer import FakePeer, reply

pytestmark = pytest.mark.usefixtures("socket_enabled")

PACK_COUNT = encode_request(Command.PACK_COUNT, 1)
VERSION = encode_request(Command.VERSION, 1)
VERSION_TEXT = b"P16S100A-1812-1.00  "


def count(frame: Frame) -> int:
    return decode_pack_count(frame.info)


async def answer_count(frame: Frame, writer: asyncio.StreamWriter) -> None:
    writer.write(reply(frame, b"\x03"))


async def test_exchange_returns_the_decoded_reply_and_counts_it() -> None:
    async with FakePeer(answer_count) as peer, Link(peer.url, timeout=0.5) as link:
        assert await link.exchange(PACK_COUNT, count) == 3
        assert link.stats.replies == 1
        assert link.stats.success_rate == 100.0
        assert link.stats.last_rtt is not None
        request, raw = link.stats.last_frames[Command.PACK_COUNT]
        assert request == PACK_COUNT
        assert raw == reply(peer.requests[0], b"\x03")


async def test_reply_split_across_reads() -> None:
    async def slow(frame: Frame, writer: asyncio.StreamWriter) -> None:
        data = reply(frame, b"\x02")
        for chunk in (data[:3], data[3:11], data[11:]):
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(0.02)

    async with FakePeer(slow) as peer, Link(peer.url, timeout=0.5) as link:
        assert await link.exchange(PACK_COUNT, count) == 2


async def test_garbage_before_the_reply_is_skipped() -> None:
    async def noisy(frame: Frame, writer: asyncio.StreamWriter) -> None:
        writer.write(b"\x00\xff\x13 noise" + reply(frame, b"\x01"))

    async with FakePeer(noisy) as peer, Link(peer.url, timeout=0.5) as link:
        assert await link.exchange(PACK_COUNT, count) == 1
        assert link.stats.noise_bytes == 9


async def test_glued_stale_frame_is_not_taken_as_the_answer() -> None:
    async def glued(frame: Frame, writer: asyncio.StreamWriter) -> None:
        stale = reply(frame, b"\x02")  # another exchange's 1-byte answer
        writer.write(stale + reply(frame, VERSION_TEXT))

    async with FakePeer(glued) as peer, Link(peer.url, timeout=0.5) as link:
        assert await link.exchange(VERSION, lambda f: decode_version(f.info)) == (
            "P16S100A-1812-1.00"
        )
        assert link.stats.stale_frames == 1


async def test_silence_times_out_after_one_retry() -> None:
    async def silent(frame: Frame, writer: asyncio.StreamWriter) -> None:
        return

    async with FakePeer(silent) as peer, Link(peer.url, timeout=0.1) as link:
        with pytest.raises(BmsTimeoutError, match="90H"):
            await link.exchange(PACK_COUNT, count)
        assert len(peer.requests) == 2
        assert link.stats.timeouts == 2
        assert link.stats.retries == 1
        assert link.stats.success_rate == 0.0


async def test_late_reply_is_never_the_answer_to_the_next_request() -> None:
    """The reply to pack 2 arrives after its timeout, while pack 3 is being asked."""
    from ress_bms.analog import PackAnalog, decode_analog, encode_analog

    def block(number: int) -> bytes:
        pack = PackAnalog(number, True, (3.3,) * 16, (20.0,) * 6, 1.0, 52.8, 50, 100, 100, 1)
        return encode_analog([pack], number)

    async def late_then_prompt(frame: Frame, writer: asyncio.StreamWriter) -> None:
        number = frame.info[0]
        if number == 2:
            await asyncio.sleep(0.15)  # past the client's 0.1 s timeout
        writer.write(reply(frame, block(number)))

    def ask(number: int) -> bytes:
        return encode_request(Command.ANALOG, 1, bytes([number]))

    async with FakePeer(late_then_prompt) as peer, Link(peer.url, timeout=0.1, retries=0) as link:
        with pytest.raises(BmsTimeoutError):
            await link.exchange(ask(2), lambda f: decode_analog(f.info, 2))
        three = await link.exchange(ask(3), lambda f: decode_analog(f.info, 3))
        assert three.packs[0].address == 3
        await asyncio.sleep(0.1)


async def test_long_reply_that_keeps_arriving_does_not_time_out() -> None:
    async def trickle(frame: Frame, writer: asyncio.StreamWriter) -> None:
        data = reply(frame, VERSION_TEXT)
        for i in range(0, len(data), 10):
            writer.write(data[i : i + 10])
            await asyncio.sleep(0.03)  # 5 chunks: 0.15 s in all, more than the timeout

    async with FakePeer(trickle) as peer, Link(peer.url, timeout=0.1, retries=0) as link:
        assert await link.exchange(VERSION, lambda f: decode_version(f.info))


async def test_corrupt_reply_is_retried() -> None:
    calls = 0

    async def corrupt_once(frame: Frame, writer: asyncio.StreamWriter) -> None:
        nonlocal calls
        calls += 1
        data = reply(frame, b"\x04")
        writer.write(data[:-5] + b"0000\r" if calls == 1 else data)

    async with FakePeer(corrupt_once) as peer, Link(peer.url, timeout=0.3) as link:
        assert await link.exchange(PACK_COUNT, count) == 4
        assert link.stats.checksum_errors == 1
        assert link.stats.retries == 1


async def test_bms_checksum_complaint_is_retried_but_refusal_is_not() -> None:
    calls = 0

    async def rtn(frame: Frame, writer: asyncio.StreamWriter) -> None:
        nonlocal calls
        calls += 1
        if frame.cid2 == Command.PACK_COUNT:
            writer.write(reply(frame, rtn=0x02) if calls == 1 else reply(frame, b"\x01"))
        else:
            writer.write(reply(frame, b"\x04", rtn=0x09))

    async with FakePeer(rtn) as peer, Link(peer.url, timeout=0.3) as link:
        assert await link.exchange(PACK_COUNT, count) == 1
        mos_off = encode_request(Command.DISCHARGE_MOS, 1, b"\x01")
        with pytest.raises(CommandRefusedError):
            await link.exchange(mos_off, long_info)
        assert len(peer.requests) == 3


async def test_reply_from_another_address_is_accepted_and_counted() -> None:
    async def own_address(frame: Frame, writer: asyncio.StreamWriter) -> None:
        writer.write(reply(frame, b"\x01", adr=0))

    async with FakePeer(own_address) as peer, Link(peer.url, timeout=0.3) as link:
        assert await link.exchange(PACK_COUNT, count) == 1
        assert link.stats.address_mismatches == 1


async def test_own_echo_is_ignored_and_another_masters_request_means_asking_again() -> None:
    """Which reply answers whom is unknown once another master asked: none is taken."""
    calls = 0

    async def echo_and_foreign_once(frame: Frame, writer: asyncio.StreamWriter) -> None:
        nonlocal calls
        calls += 1
        other_master = encode_request(Command.ANALOG, 2, b"\x02")
        if calls == 1:  # the other master's answer could come first
            writer.write(frame.encode() + other_master + reply(frame, b"\x07"))
        else:
            writer.write(frame.encode() + reply(frame, b"\x05"))

    async with FakePeer(echo_and_foreign_once) as peer, Link(peer.url, timeout=0.3) as link:
        assert await link.exchange(PACK_COUNT, count) == 5
        assert link.stats.foreign_requests == 1
        assert link.stats.contended == 1
        assert link.stats.drains == 1  # the line went quiet before asking again
        assert len(peer.requests) == 2


async def test_a_bus_shared_with_another_master_gives_an_error_not_its_values() -> None:
    async def always_foreign(frame: Frame, writer: asyncio.StreamWriter) -> None:
        other_master = encode_request(Command.ANALOG, 1, b"\xff")
        writer.write(other_master + reply(frame, b"\x07"))

    async with FakePeer(always_foreign) as peer, Link(peer.url, timeout=0.3) as link:
        with pytest.raises(BusContentionError):
            await link.exchange(PACK_COUNT, count)
        assert link.stats.contended == 2
        assert link.stats.replies == 0


async def test_reconnects_after_the_gateway_drops_the_connection() -> None:
    async with FakePeer(answer_count) as peer, Link(peer.url, timeout=0.3) as link:
        assert await link.exchange(PACK_COUNT, count) == 3
        peer.drop()
        for _ in range(500):  # until the close reaches the link, however busy the machine
            if not link.connected:
                break
            await asyncio.sleep(0.01)
        assert not link.connected
        assert await link.exchange(PACK_COUNT, count) == 3
        assert peer.connections == 2
        assert link.stats.disconnects == 1


async def test_drop_during_a_request_is_a_link_error_then_recovers() -> None:
    calls = 0

    async def vanish_once(frame: Frame, writer: asyncio.StreamWriter) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            writer.close()
        else:
            writer.write(reply(frame, b"\x02"))

    async with FakePeer(vanish_once) as peer, Link(peer.url, timeout=0.3, retries=0) as link:
        with pytest.raises(LinkError):
            await link.exchange(PACK_COUNT, count)
        assert await link.exchange(PACK_COUNT, count) == 2


async def test_vanished_gateway_backs_off() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    link = Link(f"socket://127.0.0.1:{port}", timeout=0.1)
    with pytest.raises(LinkError, match="cannot open"):
        await link.exchange(PACK_COUNT, count)
    with pytest.raises(LinkUnavailableError, match="reconnecting"):
        await link.exchange(PACK_COUNT, count)
    await link.close()


async def test_recorder_sees_both_directions() -> None:
    seen: list[tuple[str, bytes]] = []
    async with FakePeer(answer_count) as peer:
        link = Link(peer.url, timeout=0.3, recorder=lambda d, b: seen.append((d, b)))
        async with link:
            await link.exchange(PACK_COUNT, count)
    assert seen[0] == ("tx", PACK_COUNT)
    assert b"".join(b for d, b in seen if d == "rx").startswith(b"~25014600")


async def test_reconnection_back_off_never_outgrows_its_cap() -> None:
    """However long a gateway was gone, the link tries again within ``backoff_max``."""
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    link = Link(f"socket://127.0.0.1:{port}", timeout=0.5, backoff_max=0.05)
    for _ in range(8):  # uncapped, the wait would have grown to 128 s
        with pytest.raises(LinkError):
            await link.open()
        await asyncio.sleep(0.06)  # a sleep lasts at least this long: past the cap
    async with FakePeer(answer_count) as peer:
        link.url = peer.url  # the gateway is back (on this test's port)
        await asyncio.sleep(0.06)
        assert await link.exchange(PACK_COUNT, count) == 3
    await link.close()


LONG_INFO = bytes(range(256)) * 2  # 1,024 INFO characters: a 16-cell pack's analog reply is 150


def long_info(frame: Frame) -> bytes:
    if frame.info != LONG_INFO:
        raise DecodeError("not the long reply")
    return frame.info


async def at_line_rate(data: bytes, writer: asyncio.StreamWriter) -> None:
    """Send ``data`` as a 9600-baud line hands it over: 16 characters every 16.7 ms."""
    for i in range(0, len(data), 16):
        writer.write(data[i : i + 16])
        await writer.drain()
        await asyncio.sleep(16 * 10 / 9600)


async def long_reply_at_line_rate(frame: Frame, writer: asyncio.StreamWriter) -> None:
    await at_line_rate(reply(frame, LONG_INFO), writer)


async def test_a_long_reply_gathers_instead_of_waking_the_link_for_each_piece() -> None:
    """1,042 characters in 66 pieces reach the link in a handful of reads, whole and in time."""
    chunks: list[bytes] = []

    async with FakePeer(long_reply_at_line_rate) as peer:
        link = Link(peer.url, timeout=0.3, retries=0, recorder=lambda d, b: chunks.append(b))
        async with link:
            assert await link.exchange(VERSION, long_info) == LONG_INFO
            assert await link.exchange(PACK_COUNT, long_info) == LONG_INFO  # reads again
    reads = len(chunks) - 2  # less the two requests
    assert reads <= 2 * 12  # without gathering: 2 * 66
    assert link.stats.timeouts == 0


async def test_a_reply_cut_short_while_gathering_times_out_and_the_link_recovers() -> None:
    calls = 0

    async def cut_short_once(frame: Frame, writer: asyncio.StreamWriter) -> None:
        nonlocal calls
        calls += 1
        data = reply(frame, LONG_INFO if calls == 1 else b"\x03")
        await at_line_rate(data[:200] if calls == 1 else data, writer)

    async with FakePeer(cut_short_once) as peer, Link(peer.url, timeout=0.2, retries=0) as link:
        with pytest.raises(BmsTimeoutError):
            await link.exchange(VERSION, long_info)
        assert await link.exchange(PACK_COUNT, count) == 3


async def test_a_transport_that_cannot_pause_still_gets_long_replies() -> None:
    """ESPHome's serial proxy has no pause_reading: the link reads each piece as it comes."""

    def cannot_pause() -> None:
        raise NotImplementedError

    peer = FakePeer(long_reply_at_line_rate)
    async with peer, Link(peer.url, timeout=0.3, retries=0) as link:
        await link.open()
        link._transport.pause_reading = cannot_pause  # type: ignore[union-attr]
        assert await link.exchange(VERSION, long_info) == LONG_INFO
        assert await link.exchange(VERSION, long_info) == LONG_INFO
