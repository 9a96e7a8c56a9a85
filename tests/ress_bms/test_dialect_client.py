"""Every dialect read as a stack: the dialect client on the simulator, value for value.

For each dialect with a reader, the client discovers a 4-pack stack from pack 1 up, polls it
and shows each pack's own values (the simulator's truth) under the pack's number; a pack that
is off is that pack's error only; what the dialect cannot do is refused before a byte is sent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
import re
from typing import Any

import pytest

from ress_bms.client import PollMode, StackClient
from ress_bms.dialect_client import DialectClient, dialect_info, make_client
from ress_bms.dialects import DIALECTS, READERS
from ress_bms.dialects.base import Capability
from ress_bms.errors import BmsTimeoutError, UnsupportedCapabilityError
from ress_bms.framing import MODBUS
from ress_bms.link import DEFAULT_FRAME_GAP, Link
from ress_bms.modbus import frame_gap as modbus_frame_gap
from ress_bms.simulator import Simulator
from ress_bms.status import BITS_BY_KEY
from tests.conftest import REPO_ROOT

from .test_simulator_dialects import PACKS, check_analog, drive

pytestmark = pytest.mark.usefixtures("socket_enabled")

TOLERANCE = {  # the resolution each dialect sends current and SOC in
    "seplos": (0.006, 0.051),
    "pylontech": (0.051, 0.11),
    "eg4": (0.006, 0.51),
    "pace_modbus": (0.006, 0.51),
    "seplos_v3": (0.006, 0.051),
}
PROTECTION = {
    "seplos": "cell_over_voltage_protection",
    "pylontech": "discharge_mos",  # Pylontech has no shared protection bit: its MOS state
    "eg4": "pack_under_voltage_protection",
    "pace_modbus": "charge_over_current_protection",
    "seplos_v3": "cell_over_voltage_protection",
}


def client(sim: Simulator, dialect: str) -> StackClient:
    return make_client(Link(sim.url, framing=DIALECTS[dialect].framing), dialect)


@pytest.mark.parametrize("dialect", sorted(READERS))
async def test_a_four_pack_stack_value_for_value(dialect: str) -> None:
    async with Simulator(PACKS, seed=7, dialect=dialect) as sim:
        stack = client(sim, dialect)
        try:
            info = await stack.discover()
            assert [p.address for p in info.packs] == [1, 2, 3, 4]
            assert isinstance(stack, DialectClient) and stack.dialect.name == dialect
            drive(sim)
            sample = await stack.poll()
            assert sample.mode is PollMode.DIRECT
            amps, soc = TOLERANCE[dialect]
            for n in range(1, PACKS + 1):
                got = sample.packs[n]
                assert got.online and got.analog is not None and got.status is not None
                assert got.analog.address == got.status.address == n
                check_analog(sim, n, got.analog, amps=amps, soc=soc, temps=4)
        finally:
            await stack.link.close()


@pytest.mark.parametrize("dialect", sorted(READERS))
async def test_a_raised_bit_shows_on_its_own_pack(dialect: str) -> None:
    key = PROTECTION[dialect]
    async with Simulator(PACKS, seed=8, dialect=dialect) as sim:
        stack = client(sim, dialect)
        try:
            await stack.discover()
            if dialect == "pylontech":
                sim.raise_protection(2, "cell_under_voltage_protection")
            else:
                sim.raise_protection(2, key)
            sim.advance(1)
            sample = await stack.poll()
            flags = {n: p.status.flag(key) for n, p in sample.packs.items() if p.status}
            expected = {n: (n != 2) if key == "discharge_mos" else (n == 2) for n in flags}
            assert flags == expected
            assert key in (stack.status_keys or ())
        finally:
            await stack.link.close()


@pytest.mark.parametrize("dialect", sorted(READERS))
def test_status_keys_are_shared_bits(dialect: str) -> None:
    keys = READERS[dialect]().status_keys
    assert keys - {"balancing"} <= set(BITS_BY_KEY)
    assert len(keys) >= 5


@pytest.mark.parametrize("dialect", ["seplos", "pace_modbus"])
async def test_a_pack_off_at_set_up_does_not_hide_the_next(dialect: str) -> None:
    async with Simulator(PACKS, seed=9, dialect=dialect) as sim:
        sim.pack(2).online = False
        stack = client(sim, dialect)
        try:
            info = await stack.discover()
            assert [p.address for p in info.packs] == [1, 3, 4]
            sim.pack(2).online = True
            sim.pack(3).online = False
            sample = await stack.poll()
            assert sorted(n for n, p in sample.packs.items() if p.online) == [1, 4]
            assert isinstance(sample.packs[3].error, BmsTimeoutError)
        finally:
            await stack.link.close()


async def test_the_first_pack_must_answer() -> None:
    async with Simulator(2, seed=1, dialect="eg4") as sim:
        sim.pack(1).online = False
        stack = client(sim, "eg4")
        try:
            with pytest.raises(BmsTimeoutError):
                await stack.discover()
        finally:
            await stack.link.close()


async def test_another_dialect_is_not_taken_for_this_one() -> None:
    async with Simulator(2, seed=1, dialect="pylontech") as sim:
        stack = client(sim, "seplos")
        try:
            with pytest.raises(BmsTimeoutError):  # Seplos asks ADR 0: no Pylontech there
                await stack.discover()
        finally:
            await stack.link.close()


@pytest.mark.parametrize("dialect", sorted(READERS))
async def test_what_the_dialect_cannot_do_sends_nothing(dialect: str) -> None:
    async with Simulator(1, dialect=dialect) as sim:
        stack = client(sim, dialect)
        try:
            await stack.discover()
            before = stack.link.stats.requests
            refused: list[Callable[[], Awaitable[Any]]] = [
                lambda: stack.write_parameters({"cell_over_voltage_alarm": 3.5}),
                lambda: stack.set_switch("buzzer", True),
                stack.shutdown,
                stack.read_history,
                lambda: stack.set_clock(datetime(2026, 1, 1)),
            ]
            title = re.escape(dialect_info(dialect).title)
            for call in refused:
                with pytest.raises(UnsupportedCapabilityError, match=title):
                    await call()
            assert stack.link.stats.requests == before
            assert not stack.dialect.can(Capability.PARAMETERS_WRITE)
        finally:
            await stack.link.close()


def test_make_client_asks_the_dialect() -> None:
    link = Link("socket://127.0.0.1:1")
    assert type(make_client(link, "pace", poll_mode=PollMode.RELAY)) is StackClient
    assert make_client(link, "pace").dialect is DIALECTS["pace"]
    assert isinstance(make_client(link, "eg4"), DialectClient)
    with pytest.raises(ValueError, match="no dialect 'nope'"):
        make_client(link, "nope")


def test_the_supported_batteries_table_lists_every_dialect_and_what_it_offers() -> None:
    """docs/batteries.md: one row per dialect; "yes" under thresholds only where writes are."""
    rows = {
        line.split("(`", 1)[1].split("`)", 1)[0]: line
        for line in (REPO_ROOT / "docs" / "batteries.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("| ") and "(`" in line
    }
    assert set(rows) == set(DIALECTS)
    link = Link("socket://127.0.0.1:1")
    for name, row in rows.items():
        cells = [c.strip() for c in row.strip("|").split("|")]
        offered = make_client(link, name).can(Capability.PARAMETERS_WRITE)
        assert cells[4].startswith("yes") is offered, name
        assert cells[3].startswith("yes"), name  # values and alarms everywhere


@pytest.mark.parametrize("dialect", sorted(READERS))
async def test_late_replies_never_give_one_pack_anothers_values(dialect: str) -> None:
    """Replies held back past the timeout, in every dialect: a pack shows its own values or
    none (the link drops what a request that timed out is owed)."""
    socs = {1: 20.0, 2: 55.0, 3: 90.0}  # far apart: one pack's values never pass for another's
    async with Simulator(3, seed=11, dialect=dialect) as sim:
        for number, soc in socs.items():
            sim.pack(number).physics.soc = soc
        link = Link(sim.url, framing=DIALECTS[dialect].framing, timeout=0.1, drain=0.02, retries=0)
        stack = make_client(link, dialect)
        try:
            await stack.discover()
            sim.faults.set(late=0.3, late_delay=0.16)  # after the timeout, within the next read
            wrong, online = [], 0
            for _ in range(20):
                sample = await stack.poll()
                for number, got in sample.packs.items():
                    if not got.online or got.analog is None:
                        continue
                    online += 1
                    truth = sim.pack(number).analog()
                    if (
                        got.analog.cell_voltages != truth.cell_voltages
                        or abs(got.analog.soc - socs[number]) > 1
                    ):
                        wrong.append(f"pack {number}: {got.analog.soc} % {got.analog.voltage} V")
        finally:
            await link.close()
    assert wrong == []
    assert sim.faults.injected["late"] >= 5
    assert online > 0
    stats = link.stats  # and the late replies were dropped (a Modbus one as bytes of no frame)
    assert stats.late_replies + stats.stale_frames + stats.noise_bytes > 0


def test_a_link_waits_the_quiet_line_its_framing_needs() -> None:
    """ASCII requests are spaced 10 ms; a Modbus RTU one waits its 3.5 character times only
    (10 ms cost Seplos V3 11 % of its bus time: docs/performance.md)."""
    url = "socket://127.0.0.1:1"
    assert Link(url).frame_gap == DEFAULT_FRAME_GAP == 0.010
    assert Link(url, framing=MODBUS, baudrate=19200).frame_gap == modbus_frame_gap(19200)
    assert Link(url, framing=MODBUS, baudrate=9600).frame_gap == pytest.approx(35 / 9600)
    assert Link(url, framing=MODBUS, frame_gap=0.02).frame_gap == 0.02
