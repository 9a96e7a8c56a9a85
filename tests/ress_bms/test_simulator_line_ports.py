"""The simulated line refuses negative timing; a pseudo-terminal port that was closed reads
as gone and drops writes instead of failing on its closed descriptors."""

from __future__ import annotations

import asyncio
import os

import pytest

from ress_bms.simulator.line import Line, PtyPort


@pytest.mark.parametrize(("baud", "turnaround"), [(-9600, 0.0), (9600, -0.001)])
def test_negative_baud_or_turnaround_is_refused(baud: int, turnaround: float) -> None:
    with pytest.raises(ValueError, match="baud and turnaround cannot be negative"):
        Line(baud, turnaround)


async def test_a_pty_carries_bytes_until_closed_then_reads_as_gone() -> None:
    port = PtyPort()
    client = os.open(port.path, os.O_RDWR | os.O_NOCTTY)
    try:
        os.write(client, b"~25014642E00201FD35\r")
        assert await asyncio.wait_for(port.read(), 2.0) == b"~25014642E00201FD35\r"
        port.write(b"reply")
        assert os.read(client, 100) == b"reply"
    finally:
        os.close(client)
    port.close()
    port.close()  # twice: the descriptors are not closed again
    assert port.closed and not port.is_open()
    assert await asyncio.wait_for(port.read(), 1.0) == b""
    port.write(b"lost")  # on its closed descriptor this would raise EBADF
