"""Each simulated fault reaches the project's link as the right typed error, or is recovered."""

from __future__ import annotations

import pytest

from ress_bms import analog, device
from ress_bms.commands import Command, encode_request
from ress_bms.errors import (
    BmsTimeoutError,
    ChecksumError,
    CommandRefusedError,
    FrameError,
    LinkError,
    ResponseError,
)
from ress_bms.frame import Frame
from ress_bms.link import Link
from ress_bms.simulator import Simulator

pytestmark = pytest.mark.usefixtures("socket_enabled")

PACK_COUNT = encode_request(Command.PACK_COUNT, 1)
VERSION = encode_request(Command.VERSION, 1)


def count(frame: Frame) -> int:
    return device.decode_pack_count(frame.info)


def version(frame: Frame) -> str:
    return device.decode_version(frame.info)


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("corrupt_checksum", ChecksumError),
        ("truncate", FrameError),
        ("drop", BmsTimeoutError),
        ("late", BmsTimeoutError),
        ("disconnect", LinkError),
    ],
)
async def test_fault_without_retry_is_a_typed_error(
    simulator: Simulator, fault: str, error: type[Exception]
) -> None:
    async with Link(simulator.url, timeout=0.2, retries=0) as link:
        simulator.faults.set(late_delay=0.3)
        simulator.faults.once(fault)
        with pytest.raises(error):
            await link.exchange(PACK_COUNT, count)
        assert await link.exchange(PACK_COUNT, count) == 3  # and the link carries on


@pytest.mark.parametrize("fault", ["corrupt_checksum", "truncate", "drop", "garbage"])
async def test_fault_with_a_retry_is_recovered(simulator: Simulator, fault: str) -> None:
    async with Link(simulator.url, timeout=0.2, retries=1) as link:
        simulator.faults.once(fault)
        assert await link.exchange(PACK_COUNT, count) == 3
        if fault == "garbage":
            assert link.stats.noise_bytes > 0
        else:
            assert link.stats.retries == 1


async def test_glued_stale_reply_is_skipped(simulator: Simulator) -> None:
    async with Link(simulator.url, timeout=0.2, retries=0) as link:
        assert (await link.exchange(VERSION, version)).startswith("P16S")
        simulator.faults.once("glue")  # the version reply again, glued before the count
        assert await link.exchange(PACK_COUNT, count) == 3
        assert link.stats.stale_frames >= 1


async def test_late_reply_does_not_answer_the_next_request(simulator: Simulator) -> None:
    async with Link(simulator.url, timeout=0.15, retries=0) as link:
        simulator.faults.set(late_delay=0.2)
        simulator.faults.once("late")
        with pytest.raises(BmsTimeoutError):
            await link.exchange(VERSION, version)
        # The late version reply lands while the count is awaited: it must not be taken for it.
        assert await link.exchange(PACK_COUNT, count) == 3


async def test_offline_pack_times_out_and_is_zero_filled(simulator: Simulator) -> None:
    simulator.set_offline(3)
    async with Link(simulator.url, timeout=0.1, retries=0) as link:
        with pytest.raises(BmsTimeoutError):
            await link.exchange(encode_request(Command.VERSION, 3), version)
        reply = await link.exchange(
            encode_request(Command.ANALOG, 1, b"\xff"), lambda f: analog.decode_analog(f.info, 0xFF)
        )
        assert [p.online for p in reply.packs] == [True, True, False]


async def test_return_codes_are_typed(simulator: Simulator) -> None:
    simulator.pack(1).demand = -20
    simulator.advance(1)
    async with Link(simulator.url, timeout=0.2, retries=0) as link:
        with pytest.raises(CommandRefusedError):
            await link.exchange(encode_request(Command.DISCHARGE_MOS, 1, b"\x01"), lambda f: f)
        with pytest.raises(ResponseError) as raised:
            await link.exchange(encode_request(Command.CONTROL, 1, b"\x55"), lambda f: f)
        assert raised.value.code == 0x06


async def test_every_fault_at_once_is_survived_with_retries(simulator: Simulator) -> None:
    simulator.faults.set(
        corrupt_checksum=0.05, truncate=0.05, glue=0.05, garbage=0.05, drop=0.05, late=0.0
    )
    async with Link(simulator.url, timeout=0.1, retries=3) as link:
        for _ in range(30):
            reply = await link.exchange(
                encode_request(Command.STATUS, 1, b"\xff"), lambda f: f.info[1]
            )
            assert reply == 3
    assert sum(simulator.faults.injected.values()) > 0
