"""Detection meets answers test_detect does not send: a bad checksum, a connection lost while
confirming, a capture recorder on the link, and the Modbus reads detection may send.

The peers and the battery answers are test_detect's.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ress_bms.detect import UnrecognisedDeviceError, check_read, detect
from ress_bms.errors import BmsTimeoutError, ForbiddenCommandError, LinkError
from ress_bms.framing import Framing
from ress_bms.link import Link
from ress_bms.modbus import READ_COILS, READ_HOLDING, READ_INPUT, ReadRequest

from .fakepeer import BusPeer, answering
from .test_detect import SCALE, Bus, pace_answer, run_detect, silent

pytestmark = pytest.mark.usefixtures("socket_enabled")


def bad_checksum(frame: bytes) -> bytes:
    """``frame`` (CR included) with its CHKSUM's last digit changed."""
    return frame[:-2] + (b"0" if frame[-2:-1] != b"0" else b"1") + b"\r"


async def test_a_bad_checksum_is_a_device_at_this_baud_rate_not_a_detection() -> None:
    def corrupt_pace(raw: bytes) -> bytes | None:
        answer = pace_answer(raw)
        return None if answer is None else bad_checksum(answer)

    log: list[bytes] = []
    async with (
        BusPeer(answering(corrupt_pace), log) as battery,
        BusPeer(answering(silent), log) as quiet,
    ):
        with pytest.raises(UnrecognisedDeviceError) as caught:
            await run_detect(Bus(battery, quiet, 9600), baudrates=[9600])
    first = caught.value.evidence[0]
    assert first.startswith("9600 ascii: PACE 0x25 C1H to ADR 1: a frame with a bad checksum")
    assert "CHKSUM" in first


async def test_a_connection_lost_while_confirming_is_raised_not_noted() -> None:
    """The PACE probe is answered, then the gateway drops the line at the serial read."""

    async def answer_then_drop(raw: bytes, writer: asyncio.StreamWriter) -> None:
        if raw.startswith(b"~250146C1"):
            writer.write(pace_answer(raw) or b"")
            await writer.drain()
        else:
            writer.transport.abort()

    log: list[bytes] = []
    async with BusPeer(answer_then_drop, log) as battery, BusPeer(answering(silent), log) as quiet:
        with pytest.raises(LinkError) as caught:
            await run_detect(Bus(battery, quiet, 9600), baudrates=[9600])
    assert not isinstance(caught.value, BmsTimeoutError)
    assert len(log) == 2  # the probe and the serial read: nothing after the line dropped


async def test_a_capture_recorder_on_the_link_still_gets_every_byte() -> None:
    recorded: list[tuple[str, bytes]] = []
    log: list[bytes] = []
    async with BusPeer(answering(pace_answer), log) as battery:

        def factory(url: str, baudrate: int, framing: Framing[Any]) -> Link[Any]:
            link: Link[Any] = Link(battery.url, baudrate=baudrate, framing=framing, retries=0)
            link.recorder = lambda direction, data: recorded.append((direction, data))
            return link

        found = await detect(
            "socket://gateway", link_factory=factory, wait_scale=SCALE, baudrates=[9600]
        )
    assert (found.dialect, found.address_or_unit, found.packs) == ("pace", 1, 3)
    sent = b"".join(data for direction, data in recorded if direction == "tx")
    assert sent == b"".join(log)
    received = b"".join(data for direction, data in recorded if direction == "rx")
    assert received == b"".join(pace_answer(raw) or b"" for raw in log)


def test_only_unicast_register_reads_may_probe_modbus() -> None:
    """dialects.md 7: fc 03/04 only, never a broadcast; Seplos V3's unit 0 is its system
    unit (the bank), not a broadcast."""
    read = ReadRequest(1, READ_HOLDING, 0, 8).encode()
    assert check_read("pace_modbus", read) == read
    for refused in (ReadRequest(0, READ_HOLDING, 0, 8), ReadRequest(1, READ_COILS, 0, 8)):
        with pytest.raises(ForbiddenCommandError, match="is not a fc 03/04 read"):
            check_read("pace_modbus", refused.encode())
    system = ReadRequest(0, READ_INPUT, 0x2000, 26).encode()
    assert check_read("seplos_v3", system) == system
