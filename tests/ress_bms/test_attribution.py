"""A value reaches a pack only when it is that pack's: checked against the simulator's truth.

Time stands still in these tests, so the truth of a pack is exactly the block it would send now
(``Pack.analog()``): every published block must be equal to its own pack's, whatever the line
did to the replies (late, dropped, another master's frames, a reset during the mode trial).
"""

from __future__ import annotations

import asyncio

import pytest

from ress_bms import client as client_module
from ress_bms.analog import PackAnalog, encode_analog
from ress_bms.attribution import RELEARN_AFTER, Attribution
from ress_bms.client import PollMode, StackClient, StackSample
from ress_bms.commands import Command
from ress_bms.errors import DecodeError
from ress_bms.frame import Frame
from ress_bms.link import Link
from ress_bms.simulator import Simulator
from ress_bms.simulator.gateway import Gateway
from ress_bms.status import PackStatus, encode_status, status_bytes

from .fakepeer import FakePeer, reply

pytestmark = pytest.mark.usefixtures("socket_enabled")

SOCS = {1: 20.0, 2: 55.0, 3: 90.0}
"""Far apart, so one pack's values can never pass for another's."""


def distinct(sim: Simulator) -> Simulator:
    for address, soc in SOCS.items():
        sim.pack(address).physics.soc = soc
    return sim


def wrong_values(sim: Simulator, sample: StackSample) -> list[str]:
    """Every published value that is not its own pack's."""
    wrong = []
    for address, got in sample.packs.items():
        if not got.online or got.analog is None:
            continue
        truth = sim.pack(address).analog()
        for name in ("voltage", "cell_voltages", "current", "remaining_capacity"):
            if getattr(got.analog, name) != getattr(truth, name):
                wrong.append(f"pack {address} {name}: {getattr(got.analog, name)}")
    return wrong


async def poll_many(sim: Simulator, client: StackClient, polls: int) -> tuple[list[str], int]:
    wrong, online = [], 0
    for _ in range(polls):
        sample = await client.poll()
        wrong += wrong_values(sim, sample)
        online += len(sample.online)
    return wrong, online


@pytest.mark.parametrize("mode", [PollMode.BROADCAST, PollMode.RELAY, PollMode.DIRECT])
async def test_late_replies_never_give_one_pack_anothers_values(
    simulator: Simulator, mode: PollMode
) -> None:
    sim = distinct(simulator)
    async with Link(sim.url, timeout=0.1, drain=0.02) as link:
        client = StackClient(link, poll_mode=mode)
        await client.discover(scan=mode is PollMode.DIRECT)
        sim.faults.set(late=0.3, late_delay=0.16)  # after the timeout, within the next exchange
        wrong, online = await poll_many(sim, client, 30)
    assert wrong == []
    assert sim.faults.injected["late"] >= 5
    assert online > 0  # the stack was read meanwhile
    assert link.stats.late_replies + link.stats.stale_frames > 0  # and late replies were dropped


async def test_a_late_reply_for_pack_1_is_not_pack_3s() -> None:
    """The soak's case: relay mode, pack 1's 42H answer comes while pack 3's is on the wire."""
    blocks = {n: PackAnalog(n, True, (3.0 + n / 10,) * 16, (20.0,) * 6, 1.0, 50.0 + n, 50,
                            100, 100, 1) for n in (1, 2, 3)}  # fmt: skip

    def answer(frame: Frame) -> bytes:
        number = frame.info[0]
        if frame.cid2 == Command.ANALOG:
            return reply(frame, encode_analog([blocks[number]], number))
        status = PackStatus(number, (0,) * 16, (0,) * 6, 0, 0, 0, status_bytes(()))
        return reply(frame, encode_status([status], number))

    held: list[bytes] = []

    async def late_for_pack_1(frame: Frame, writer: asyncio.StreamWriter) -> None:
        if frame.cid2 == Command.PACK_COUNT:
            writer.write(reply(frame, b"\x03"))
        elif frame.cid2 == Command.ANALOG and frame.info[0] == 1 and not held:
            held.append(answer(frame))  # past its timeout: pack 1 is owed
        elif frame.cid2 == Command.ANALOG and frame.info[0] == 3:
            writer.write(held.pop() + answer(frame))  # the late one first, then pack 3's
        else:
            writer.write(answer(frame))

    async with FakePeer(late_for_pack_1) as peer, Link(peer.url, timeout=0.1, retries=0) as link:
        client = StackClient(link, poll_mode=PollMode.RELAY)
        client.stack = client_module.StackInfo(
            1, tuple(client_module.PackInfo(n) for n in (1, 2, 3))
        )
        sample = await client.poll()
    assert not held  # pack 1's answer did arrive during pack 3's exchange
    assert not sample.packs[1].online
    for number in (2, 3):
        got = sample.packs[number].analog
        assert got is not None and got.voltage == blocks[number].voltage
    assert link.stats.stale_frames + link.stats.late_replies == 1


async def test_another_masters_exchanges_never_reach_a_pack(simulator: Simulator) -> None:
    sim = distinct(simulator)
    gateway = Gateway(sim.host, sim.port, packs=3, foreign_timeout=0.3)
    async with gateway, Link(gateway.url, timeout=0.1, drain=0.02) as link:
        client = StackClient(link, poll_mode=PollMode.RELAY)
        await client.discover()
        gateway.set(foreign=0.4)
        wrong, online = await poll_many(sim, client, 20)
        injected = gateway.injected["foreign"]
    assert wrong == []
    assert injected >= 5
    assert online > 0
    assert link.stats.foreign_requests >= injected


async def test_a_reply_from_another_address_is_not_the_addressed_packs() -> None:
    """Direct mode: pack 2 is asked, pack 1 answers (a late or misrouted reply)."""
    one = PackAnalog(1, True, (3.3,) * 16, (20.0,) * 6, 1.0, 52.8, 50, 100, 100, 1)

    async def pack_1_answers_everything(frame: Frame, writer: asyncio.StreamWriter) -> None:
        if frame.cid2 == Command.ANALOG:
            writer.write(reply(frame, encode_analog([one], frame.info[0]), adr=1))
        else:
            status = PackStatus(1, (0,) * 16, (0,) * 6, 0, 0, 0, status_bytes(()))
            writer.write(reply(frame, encode_status([status], frame.info[0]), adr=1))

    async with FakePeer(pack_1_answers_everything) as peer, Link(peer.url, timeout=0.1) as link:
        client = StackClient(link, poll_mode=PollMode.DIRECT)
        client.attribution.reply_addresses.update({1: 1, 2: 2})
        client.stack = client_module.StackInfo(1, tuple(client_module.PackInfo(n) for n in (1, 2)))
        sample = await client.poll()
    assert sample.packs[1].online
    assert not sample.packs[2].online
    assert link.stats.address_mismatches >= 1


@pytest.mark.simulator(firmware="pace-2018")
async def test_firmware_that_echoes_01_is_learned_at_discovery(simulator: Simulator) -> None:
    sim = distinct(simulator)
    sim.stack.firmware = sim.stack.firmware.with_changes(echo_one=True)
    async with Link(sim.url, timeout=0.2) as link:
        client = StackClient(link, poll_mode=PollMode.RELAY)
        await client.discover()
        assert client.attribution.echo_one
        sample = await client.poll()
    assert len(sample.online) == 3
    assert wrong_values(sim, sample) == []


async def test_strict_echo_on_firmware_that_echoes_the_pack(simulator: Simulator) -> None:
    async with Link(simulator.url, timeout=0.2) as link:
        client = StackClient(link, poll_mode=PollMode.RELAY)
        await client.discover()
    assert not client.attribution.echo_one
    assert client.attribution.echoes(3) == {3}


def test_a_block_of_another_shape_is_refused_and_relearned_after_a_few_polls() -> None:
    attribution = Attribution()
    sixteen = PackAnalog(2, True, (3.3,) * 16, (20.0,) * 6, 1.0, 52.8, 50, 100, 100, 1)
    fifteen = PackAnalog(2, True, (3.3,) * 15, (20.0,) * 6, 1.0, 49.5, 50, 100, 100, 1)
    attribution.check(2, sixteen)
    attribution.learn(2, sixteen)
    status15 = PackStatus(2, (0,) * 15, (0,) * 6, 0, 0, 0, status_bytes(()))
    with pytest.raises(DecodeError, match="not pack 2's"):
        attribution.check(2, status15)  # 44H blocks must agree too
    for _ in range(RELEARN_AFTER):
        with pytest.raises(DecodeError):
            attribution.check(2, fifteen)
        attribution.misfit(2)
    attribution.check(2, fifteen)  # a swapped pack is learned again


async def test_a_reset_during_the_broadcast_trial_does_not_keep_relay_for_good(
    simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with Link(simulator.url, timeout=0.2, retries=0) as link:
        client = StackClient(link)
        await client.discover()
        simulator.faults.once("disconnect")  # the broadcast trial's 42H FF
        assert len((await client.poll()).online) == 3
        assert client.mode is PollMode.RELAY
        assert (await client.poll()).mode is PollMode.RELAY  # not re-tried on every refresh
        monkeypatch.setattr(client_module, "MODE_RETRY_INTERVAL", 0.0)
        sample = await client.poll()
    assert sample.mode is PollMode.BROADCAST
    assert client.mode is PollMode.BROADCAST
    assert "broadcast reached 3 of 3" in client.mode_reason


async def test_a_silent_bus_costs_one_exchange_per_poll_in_relay(simulator: Simulator) -> None:
    async with Link(simulator.url, timeout=0.1, retries=0, drain=0.0) as link:
        client = StackClient(link, poll_mode=PollMode.RELAY)
        await client.discover()
        for address in (1, 2, 3):
            simulator.set_offline(address)
        before = link.stats.requests
        assert (await client.poll()).online == []
        # The master's own 42H and one 90H to be sure it is silent: nobody else is asked.
        assert link.stats.requests - before == 2
        for address in (1, 2, 3):
            simulator.set_offline(address, offline=False)
        assert len((await client.poll()).online) == 3  # and the next poll reads everything


async def test_a_glued_status_reply_is_not_taken_for_the_analog_one(simulator: Simulator) -> None:
    """Broadcast: the previous 44H FF glued before the 42H FF reply is skipped, not decoded.

    Once a pack charges, a 44H FF payload happens to fit a 42H FF layout (the soak's finding:
    pack 1 at 4.096 V); the packs' shapes refuse it and the real reply is read.
    """
    sim = distinct(simulator)
    for address, current in ((1, 10.0), (2, -2.5), (3, -15.0)):
        sim.pack(address).demand = current
    sim.advance(5)
    async with Link(sim.url, timeout=0.2) as link:
        client = StackClient(link, poll_mode=PollMode.BROADCAST)
        await client.discover()
        assert len((await client.poll()).online) == 3  # learns the shapes
        sim.faults.once("glue")  # the 44H FF reply just sent, glued before the next 42H FF
        sample = await client.poll()
    assert len(sample.online) == 3
    assert wrong_values(sim, sample) == []
    assert link.stats.stale_frames >= 1
