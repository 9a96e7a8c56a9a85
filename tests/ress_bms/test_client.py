"""The stack client against the simulator: discovery, poll modes, isolation, writes, controls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from ress_bms.client import PollMode, StackClient, WriteNotKeptError
from ress_bms.commands import ALLOWED_COMMANDS, Command
from ress_bms.errors import (
    BmsTimeoutError,
    CommandRefusedError,
    UnsupportedProtocolError,
    ValidationError,
)
from ress_bms.frame import Frame, FrameExtractor, decode_frame
from ress_bms.link import Direction, Link
from ress_bms.simulator import Simulator

from .fakepeer import FakePeer, reply


class Wire:
    """Records the requests a link sends."""

    def __init__(self) -> None:
        self._extractor = FrameExtractor()
        self.sent: list[Frame] = []

    def __call__(self, direction: Direction, data: bytes) -> None:
        if direction == "tx":
            self.sent += [decode_frame(raw) for raw in self._extractor.feed(data)]

    def commands(self) -> list[int]:
        return [f.cid2 for f in self.sent]


pytestmark = pytest.mark.usefixtures("socket_enabled")


@pytest.fixture
def sim(simulator: Simulator) -> Simulator:
    """Three packs, stepped time, full-speed line (tests/ress_bms/conftest.py)."""
    return simulator


@pytest.fixture
def wire() -> Wire:
    return Wire()


@pytest.fixture
async def client(sim: Simulator, wire: Wire) -> AsyncIterator[StackClient]:
    async with Link(sim.url, timeout=0.3, recorder=wire) as link:
        yield StackClient(link)


async def test_discovery_finds_every_pack_with_version_and_serials(
    sim: Simulator, client: StackClient
) -> None:
    stack = await client.discover()
    assert [p.address for p in stack.packs] == [1, 2, 3]
    assert stack.master.bms_serial == sim.pack(1).bms_serial
    assert stack.master.version == sim.pack(1).version
    assert stack.pack(2) is not None
    assert stack.pack(2).pack_serial == sim.pack(2).pack_serial  # type: ignore[union-attr]


@pytest.mark.parametrize("mode", [PollMode.BROADCAST, PollMode.RELAY, PollMode.DIRECT])
async def test_every_poll_mode_reads_the_same_stack(
    sim: Simulator, wire: Wire, mode: PollMode
) -> None:
    async with Link(sim.url, timeout=0.3, recorder=wire) as link:
        client = StackClient(link, poll_mode=mode)
        await client.discover()
        wire.sent.clear()
        sample = await client.poll()
    assert sample.mode is mode
    assert [p.online for p in sample.packs.values()] == [True, True, True]
    for address, pack in sample.packs.items():
        assert pack.analog is not None
        assert pack.analog.voltage == pytest.approx(sim.pack(address).analog().voltage, abs=0.01)
    frames = len(wire.sent)
    assert frames == (2 if mode is PollMode.BROADCAST else 6)
    if mode is PollMode.DIRECT:
        assert {f.adr for f in wire.sent} == {1, 2, 3}
    else:
        assert {f.adr for f in wire.sent} == {1}


async def test_auto_keeps_broadcast_when_it_works(client: StackClient, wire: Wire) -> None:
    await client.discover()
    await client.poll()
    assert client.mode is PollMode.BROADCAST
    wire.sent.clear()
    await client.poll()
    assert wire.commands() == [Command.ANALOG, Command.STATUS]


async def test_offline_pack_is_isolated_in_broadcast(sim: Simulator, client: StackClient) -> None:
    await client.discover()
    sim.set_offline(2)
    sample = await client.poll()
    assert [p.online for p in sample.packs.values()] == [True, False, True]
    assert sample.packs[2].error is None  # the master reported it zero-filled
    sim.set_offline(2, False)
    assert (await client.poll()).packs[2].online


async def test_silent_pack_is_isolated_in_relay(sim: Simulator, wire: Wire) -> None:
    async with Link(sim.url, timeout=0.2, recorder=wire) as link:
        client = StackClient(link, poll_mode=PollMode.DIRECT)
        await client.discover()
        sim.set_offline(3)
        sample = await client.poll()
    assert sample.packs[1].online
    assert sample.packs[2].online
    assert isinstance(sample.packs[3].error, BmsTimeoutError)


async def test_write_is_validated_sent_and_read_back(sim: Simulator, client: StackClient) -> None:
    result = await client.write_parameters({"cell_over_voltage_alarm": 3.45})
    assert result.old["cell_over_voltage_alarm"] == 3.5
    assert result.new["cell_over_voltage_alarm"] == 3.45
    assert result.changed == {"cell_over_voltage_alarm": (3.5, 3.45)}
    assert sim.pack(1).bms.value("cell_over_voltage_alarm") == 3.45
    assert (await client.read_parameters(groups=None)).values["cell_over_voltage_alarm"] == 3.45


async def test_out_of_range_write_sends_nothing(client: StackClient, wire: Wire) -> None:
    with pytest.raises(ValidationError, match="outside"):
        await client.write_parameters({"cell_over_voltage_protection": 4.9})
    assert wire.sent == []


async def test_rule_breaking_write_reads_but_never_writes(client: StackClient, wire: Wire) -> None:
    with pytest.raises(ValidationError, match="must stay below"):
        await client.write_parameters({"cell_over_voltage_alarm": 3.7})
    assert wire.commands() == [Command.CELL_OV_READ]


async def test_dry_run_reads_and_plans_but_sends_no_write(client: StackClient, wire: Wire) -> None:
    result = await client.write_parameters({"low_soc_alarm": 10}, dry_run=True)
    assert result.dry_run
    assert [w.command for w in result.writes] == [Command.FULL_CHARGE_WRITE]
    assert Command.FULL_CHARGE_WRITE not in wire.commands()


async def test_write_not_kept_is_reported(
    sim: Simulator, client: StackClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = sim.pack(1).bms.settings
    monkeypatch.setattr(settings, "write", lambda group, payload: 0)  # acknowledges, keeps nothing
    with pytest.raises(WriteNotKeptError, match="did not keep"):
        await client.write_parameters({"sleep_delay": 30})


async def test_mos_refusal_is_a_typed_error(sim: Simulator, client: StackClient) -> None:
    sim.pack(1).demand = -20.0  # discharging: the discharge FET cannot be turned off
    sim.advance(1)
    with pytest.raises(CommandRefusedError):
        await client.set_mos(Command.DISCHARGE_MOS, on=False)


async def test_switches_report_the_control_status(client: StackClient) -> None:
    assert await client.set_switch("buzzer", on=True) == 0x01 | (
        await client.set_switch("buzzer", on=True) or 0
    )
    status = await client.set_switch("buzzer", on=False)
    assert status is not None
    assert not status & 0x01


async def test_shutdown_silences_the_pack(sim: Simulator, wire: Wire) -> None:
    async with Link(sim.url, timeout=0.2, recorder=wire) as link:
        client = StackClient(link, poll_mode=PollMode.DIRECT)
        await client.discover()
        await client.shutdown(2)
        sample = await client.poll()
        assert not sample.packs[2].online
        sim.wake(2)
        assert (await client.poll()).packs[2].online


async def test_history_newest_first_and_bounded(sim: Simulator, client: StackClient) -> None:
    sim.raise_protection(1, "cell_over_voltage")
    sim.advance(3)
    sim.clear_protection(1)
    sim.advance(3)
    records = await client.read_history(count=50)
    assert records
    assert [r.index for r in records] == list(range(len(records)))
    assert any("cell_over_voltage" in r.protections for r in records)
    times = [r.time for r in records if r.time]
    assert times == sorted(times, reverse=True)
    assert len(await client.read_history(count=1)) == 1


async def test_clock_and_capacities(sim: Simulator, client: StackClient) -> None:
    from datetime import datetime

    await client.set_clock(datetime(2026, 11, 24, 12, 0, 0))
    assert (await client.read_clock()).date().isoformat() == "2026-11-24"
    capacities = await client.read_capacities()
    assert capacities.design == sim.pack(1).capacities().design


async def test_every_public_operation_sends_only_allowed_commands(
    sim: Simulator, client: StackClient, wire: Wire
) -> None:
    from datetime import datetime

    await client.discover()
    await client.poll()
    await client.read_parameters()
    await client.write_parameters({"balance_delta": 40})
    for name in ("buzzer", "led_alarm", "current_limiter", "limiter_low_gear"):
        await client.set_switch(name, on=True)
    await client.set_mos(Command.CHARGE_MOS, on=True)
    await client.read_history(count=3)
    await client.set_clock(datetime(2026, 1, 1))
    await client.read_clock()
    await client.read_capacities()
    await client.shutdown(3)
    assert set(wire.commands()) <= ALLOWED_COMMANDS
    assert len(set(wire.commands())) > 20


async def test_ver20_device_is_reported_unsupported() -> None:
    async def pylon(frame: Frame, writer: asyncio.StreamWriter) -> None:
        if frame.ver == 0x20:
            writer.write(reply(frame, b"\x00\x01"))

    async with FakePeer(pylon) as peer, Link(peer.url, timeout=0.1, retries=0) as link:
        with pytest.raises(UnsupportedProtocolError, match="VER 0x20"):
            await StackClient(link).discover()


async def test_nothing_on_the_line_is_a_timeout() -> None:
    async def silent(frame: Frame, writer: asyncio.StreamWriter) -> None:
        return

    async with FakePeer(silent) as peer, Link(peer.url, timeout=0.05, retries=0) as link:
        with pytest.raises(BmsTimeoutError):
            await StackClient(link).discover()


async def test_multidrop_scan_finds_packs_by_address(sim: Simulator, client: StackClient) -> None:
    stack = await client.discover(scan=True)
    assert [p.address for p in stack.packs] == [1, 2, 3]
    assert client.mode is PollMode.DIRECT
