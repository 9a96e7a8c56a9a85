"""The fault-injecting gateway (ress_bms.simulator.gateway) in front of the simulator.

No wall-clock upper bounds: waits are on frames or on the gateway's counters, and a hang is
caught by the per-test time limit of script/test. Lower bounds (a late reply is late) are fine.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import contextlib
import time

import pytest

from ress_bms import analog, device
from ress_bms.commands import Command, encode_request
from ress_bms.errors import ChecksumError, FrameError
from ress_bms.frame import FrameExtractor, decode_frame
from ress_bms.simulator import Simulator
from ress_bms.simulator.gateway import Gateway, GatewaySettings

ALL_ANALOG = encode_request(Command.ANALOG, 1, b"\xff")
PACK_COUNT = encode_request(Command.PACK_COUNT, 1)


def relay(command: Command, pack: int) -> bytes:
    return encode_request(command, 1, bytes([pack]))


class Client:
    """A bare TCP client of the gateway."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.extractor = FrameExtractor()
        self.frames: list[bytes] = []

    @classmethod
    async def connect(cls, gateway: Gateway) -> Client:
        return cls(*await asyncio.open_connection(gateway.host, gateway.port))

    async def send(self, raw: bytes) -> None:
        self.writer.write(raw)
        await self.writer.drain()

    async def frame(self) -> bytes:
        """The next complete frame (``~`` .. CR) from the gateway."""
        while not self.frames:
            data = await self.reader.read(4096)
            if not data:
                raise ConnectionError("the gateway closed the connection")
            self.frames += self.extractor.feed(data)
        return self.frames.pop(0)

    async def ask(self, raw: bytes) -> bytes:
        await self.send(raw)
        return await self.frame()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


@pytest.fixture
async def gateway(simulator: Simulator) -> AsyncIterator[Gateway]:
    async with Gateway(simulator.host, simulator.port, packs=3, seed=1) as gw:
        yield gw


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[Client]:
    bus = await Client.connect(gateway)
    yield bus
    await bus.close()


async def test_clean_replies_pass_unchanged(
    simulator: Simulator, gateway: Gateway, client: Client
) -> None:
    assert gateway.url == f"socket://127.0.0.1:{gateway.port}"
    raw = await client.ask(ALL_ANALOG)
    packs = analog.decode_analog(decode_frame(raw).info, 0xFF).packs
    assert [p.address for p in packs] == [1, 2, 3]
    assert device.decode_pack_count(decode_frame(await client.ask(PACK_COUNT)).info) == 3
    assert gateway.traffic["requests"] == 2
    assert gateway.traffic["replies"] == 2
    assert gateway.traffic["connections"] == 1
    assert sum(gateway.injected.values()) == 0
    assert simulator.line.traffic.requests == 2


async def test_corrupt_reply_has_a_wrong_checksum(gateway: Gateway, client: Client) -> None:
    gateway.once("corrupt")
    raw = await client.ask(PACK_COUNT)
    assert raw.endswith(b"\r")
    with pytest.raises(ChecksumError):
        decode_frame(raw)
    assert gateway.injected["corrupt"] == 1
    decode_frame(await client.ask(PACK_COUNT))  # the next one is clean
    assert gateway.injected["corrupt"] == 1
    assert [kind for _when, kind in gateway.events] == ["corrupt"]


async def test_truncated_reply_keeps_its_cr(gateway: Gateway, client: Client) -> None:
    clean = await client.ask(ALL_ANALOG)
    gateway.once("truncate")
    raw = await client.ask(ALL_ANALOG)
    assert raw.endswith(b"\r")
    assert len(raw) < len(clean)
    assert clean.startswith(raw[:-1])
    with pytest.raises(FrameError):
        decode_frame(raw)
    assert gateway.injected["truncate"] == 1


async def test_glue_puts_the_previous_reply_in_front(gateway: Gateway, client: Client) -> None:
    previous = await client.ask(PACK_COUNT)
    gateway.once("glue")
    first = await client.ask(relay(Command.ANALOG, 2))
    second = await client.frame()
    assert first == previous
    assert analog.decode_analog(decode_frame(second).info, 2).packs[0].address == 2
    assert gateway.injected["glue"] == 1


async def test_glue_without_a_previous_reply_is_not_counted(
    gateway: Gateway, client: Client
) -> None:
    gateway.once("glue")
    raw = await client.ask(PACK_COUNT)
    assert device.decode_pack_count(decode_frame(raw).info) == 3
    assert gateway.injected["glue"] == 0


async def test_late_reply_is_held_back(gateway: Gateway, client: Client) -> None:
    gateway.set(late_min=0.3, late_max=0.4)
    gateway.once("late")
    started = time.monotonic()
    raw = await client.ask(PACK_COUNT)
    assert time.monotonic() - started >= 0.3
    assert device.decode_pack_count(decode_frame(raw).info) == 3  # late, but intact
    assert gateway.injected["late"] == 1
    assert len(gateway.late_delays) == 1
    assert 0.3 <= gateway.late_delays[0] <= 0.4


def test_late_delays_are_drawn_between_the_bounds() -> None:
    gateway = Gateway("127.0.0.1", 9, seed=3)
    assert (gateway.settings.late_min, gateway.settings.late_max) == (1.5, 4.5)
    delays = [gateway._late_delay() for _ in range(2000)]
    assert min(delays) >= 1.5
    assert max(delays) <= 4.5
    assert max(delays) - min(delays) > 2.5  # spread over the range, not one value


async def test_foreign_master_exchange_comes_before_the_answer(
    simulator: Simulator, gateway: Gateway, client: Client
) -> None:
    gateway.once("foreign")
    await client.send(relay(Command.ANALOG, 3))
    foreign_request = decode_frame(await client.frame())
    foreign_reply = decode_frame(await client.frame())
    answer = decode_frame(await client.frame())
    other = foreign_request.info[0]
    assert foreign_request.cid2 == Command.ANALOG  # a request, not a reply (CID2 is no RTN)
    assert other in (1, 2)
    assert foreign_reply.cid2 == 0
    assert analog.decode_analog(foreign_reply.info, other).packs[0].address == other
    assert foreign_reply.info[1] == other  # a valid reply, for the other pack
    assert answer.info[1] == 3
    assert gateway.injected["foreign"] == 1
    assert gateway.injected["foreign_replies"] == 1
    assert simulator.line.traffic.requests == 2


async def test_foreign_exchange_for_a_broadcast_names_one_pack(
    gateway: Gateway, client: Client
) -> None:
    gateway.once("foreign")
    await client.send(encode_request(Command.STATUS, 1, b"\xff"))
    foreign_request = decode_frame(await client.frame())
    assert foreign_request.cid2 == Command.STATUS
    assert foreign_request.info[0] in (1, 2, 3)
    decode_frame(await client.frame())  # the other master's answer
    answer = decode_frame(await client.frame())
    assert answer.info[1] == 3  # the stack's FF answer: three packs
    assert gateway.injected["foreign_replies"] == 1


async def test_foreign_waits_for_a_request_that_names_a_pack(
    gateway: Gateway, client: Client
) -> None:
    gateway.once("foreign")
    assert device.decode_pack_count(decode_frame(await client.ask(PACK_COUNT)).info) == 3
    assert gateway.injected["foreign"] == 0
    await client.send(relay(Command.STATUS, 2))
    assert decode_frame(await client.frame()).cid2 == Command.STATUS
    assert gateway.injected["foreign"] == 1


async def test_half_open_forwards_nothing_and_keeps_the_connection(
    simulator: Simulator, gateway: Gateway, client: Client
) -> None:
    gateway.half_open = True
    await client.send(PACK_COUNT)
    await gateway.wait_for(lambda: gateway.injected["half_open_requests"] == 1)
    assert gateway.injected["half_open_bytes"] == len(PACK_COUNT)
    assert simulator.line.traffic.requests == 0  # nothing reached the battery
    assert gateway.traffic["requests"] == 0
    assert gateway.connections == 1
    assert not client.writer.is_closing()
    gateway.half_open = False
    # The same connection works again, and the first answer to arrive is the new request's:
    # the swallowed one was never forwarded.
    raw = await client.ask(relay(Command.ANALOG, 2))
    assert decode_frame(raw).cid2 == 0
    assert analog.decode_analog(decode_frame(raw).info, 2).packs[0].address == 2
    assert simulator.line.traffic.requests == 1


async def test_half_open_drops_a_late_reply(gateway: Gateway, client: Client) -> None:
    gateway.set(late_min=1.0, late_max=1.0)
    gateway.once("late")
    await client.send(PACK_COUNT)
    await gateway.wait_for(lambda: gateway.injected["late"] == 1)
    gateway.half_open = True
    await gateway.wait_for(lambda: gateway.injected["half_open_replies"] == 1)
    gateway.half_open = False
    raw = await client.ask(relay(Command.ANALOG, 1))
    assert decode_frame(raw).info[1] == 1  # not the late 90H reply


async def test_reset_closes_every_connection(gateway: Gateway) -> None:
    first, second = await Client.connect(gateway), await Client.connect(gateway)
    try:
        await first.ask(PACK_COUNT)
        await second.ask(PACK_COUNT)
        assert gateway.connections == 2
        assert gateway.reset() == 2
        assert await first.reader.read() == b""
        assert await second.reader.read() == b""
        assert gateway.injected["reset"] == 1
        assert gateway.injected["reset_connections"] == 2
    finally:
        await first.close()
        await second.close()
    third = await Client.connect(gateway)  # still listening
    try:
        assert device.decode_pack_count(decode_frame(await third.ask(PACK_COUNT)).info) == 3
    finally:
        await third.close()
    assert gateway.traffic["connections"] == 3


async def test_probabilities_are_rolled_per_reply(gateway: Gateway, client: Client) -> None:
    gateway.set(corrupt=1.0)
    for _ in range(3):
        with pytest.raises(ChecksumError):
            decode_frame(await client.ask(PACK_COUNT))
    gateway.clear()
    decode_frame(await client.ask(PACK_COUNT))
    assert gateway.injected["corrupt"] == 3
    assert gateway.traffic["replies"] == 4


def test_settings_are_checked() -> None:
    settings = GatewaySettings()
    with pytest.raises(KeyError):
        settings.update(drop=0.1)
    with pytest.raises(ValueError, match="outside"):
        settings.update(late=1.5)
    with pytest.raises(ValueError, match="above"):
        settings.update(late_min=5.0)
    gateway = Gateway("127.0.0.1", 9)
    with pytest.raises(KeyError):
        gateway.once("drop")


async def test_an_unreachable_upstream_closes_the_client(simulator: Simulator) -> None:
    async with Gateway("127.0.0.1", simulator.port, packs=3) as gateway:
        await simulator.stop()
        bus = await Client.connect(gateway)
        try:
            assert await bus.reader.read() == b""
        finally:
            await bus.close()
        assert gateway.traffic["upstream_errors"] == 1
