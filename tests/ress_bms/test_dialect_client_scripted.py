"""DialectClient against a scripted reader: discovery's stopping rules, a lost connection in a
poll, a pack whose block changes shape, and the refusals no dialect reader can serve.

The readings are the Seplos V2.0 42H replies of the reference (16 and 15 cells): the client
only routes them, so one dialect stands for all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
import re
from typing import Any

import pytest

from ress_bms.client import MAX_PACKS, PollMode
from ress_bms.dialect_client import DialectClient
from ress_bms.dialects import DIALECTS, Capability, seplos
from ress_bms.dialects.base import DialectInfo, Identity, Reading, reading
from ress_bms.errors import (
    BmsError,
    BmsTimeoutError,
    ConnectionLostError,
    DecodeError,
    ResponseError,
    UnsupportedCapabilityError,
)
from ress_bms.frame import decode_frame
from ress_bms.link import Link

from .test_dialect_seplos import _status_info as seplos_status_info
from .ver20_frames import family, reply

SEPLOS = family("Seplos V2.0")


def _reading(number: int, cells: int = 16) -> Reading:
    entry = next(e for e in SEPLOS if e["command"] == f"42H telemetry response, {cells} cells")
    analog = seplos.decode_analog(decode_frame(entry["response"].encode())).pack
    status = seplos.decode_status(decode_frame(reply(0, seplos.CID1, seplos_status_info())))
    return reading(number, analog, status)


type Outcome = Reading | BmsError


@dataclass
class ScriptedReader:
    """A reader whose packs answer as ``reads`` says (a list: one outcome per read)."""

    reads: Mapping[int, list[Outcome]]
    identities: Mapping[int, Identity | BmsError] = field(default_factory=dict)
    info: DialectInfo = DIALECTS["seplos"]
    status_keys: frozenset[str] = frozenset({"charge_mos"})
    asked: list[int] = field(default_factory=list)

    def bus_address(self, number: int) -> int:
        return number - 1

    async def identify(self, ask: Any, number: int) -> Identity:
        identity = self.identities.get(number, Identity(model="SP16", serial=f"S{number}"))
        if isinstance(identity, BmsError):
            raise identity
        return identity

    async def read(self, ask: Any, number: int) -> Reading:
        self.asked.append(number)
        outcomes = self.reads.get(number) or [BmsTimeoutError(f"pack {number} silent")]
        outcome = outcomes.pop(0) if len(outcomes) > 1 else outcomes[0]
        if isinstance(outcome, BmsError):
            raise outcome
        return outcome


def client(reader: ScriptedReader) -> DialectClient:
    return DialectClient(Link("socket://127.0.0.1:1"), reader)


async def test_discovery_skips_one_silent_pack_and_stops_after_two() -> None:
    reader = ScriptedReader({1: [_reading(1)], 3: [_reading(3)], 6: [_reading(6)]})
    stack = client(reader)
    info = await stack.discover()
    assert [p.address for p in info.packs] == [1, 3]  # 2 silent, then 4 and 5: the end
    assert reader.asked == [1, 2, 3, 4, 5]
    assert await stack.detect_protocol() == 2
    assert str(stack) == "seplos on socket://127.0.0.1:1"


async def test_a_full_stack_ends_discovery_without_asking_beyond_the_last_pack() -> None:
    reader = ScriptedReader({n: [_reading(n)] for n in range(1, MAX_PACKS + 1)})
    info = await client(reader).discover()
    assert [p.address for p in info.packs] == list(range(1, MAX_PACKS + 1))
    assert reader.asked == list(range(1, MAX_PACKS + 1))


async def test_discovery_stops_at_a_pack_answering_something_else() -> None:
    not_a_reading = DecodeError("a reply of another command")
    reader = ScriptedReader({1: [_reading(1)], 2: [not_a_reading], 3: [_reading(3)]})
    info = await client(reader).discover()
    assert [p.address for p in info.packs] == [1]
    assert reader.asked == [1, 2]


async def test_a_lost_connection_during_discovery_is_raised_not_taken_for_silence() -> None:
    reader = ScriptedReader({1: [_reading(1)], 2: [ConnectionLostError("gateway closed")]})
    with pytest.raises(ConnectionLostError, match="gateway closed"):
        await client(reader).discover()


async def test_a_pack_that_tells_nothing_of_itself_is_still_found() -> None:
    reader = ScriptedReader(
        {1: [_reading(1)], 2: [_reading(2)]},
        identities={2: ResponseError(0x04, 0x51)},
    )
    stack = client(reader)
    first, second = (await stack.discover()).packs
    assert (first.bms_serial, first.model) == ("S1", "SP16")
    assert (second.address, second.bms_serial, second.model, second.version) == (
        2,
        None,
        None,
        None,
    )
    assert (await stack.read_serials()).bms == "S1"
    with pytest.raises(ResponseError, match="RTN 04H"):  # asked directly, the error is told
        await stack.read_serials(2)


async def test_a_lost_connection_fails_the_rest_of_the_poll_without_asking() -> None:
    lost = ConnectionLostError("gateway closed")
    reader = ScriptedReader({1: [_reading(1), lost], 2: [_reading(2)], 3: [_reading(3)]})
    stack = client(reader)
    await stack.discover()
    reader.asked.clear()
    sample = await stack.poll()
    assert reader.asked == [1]
    assert sample.mode is PollMode.DIRECT
    assert [sample.packs[n].error for n in (1, 2, 3)] == [lost, lost, lost]
    assert not sample.online


async def test_a_block_of_another_shape_is_that_packs_error_not_its_values() -> None:
    reader = ScriptedReader({1: [_reading(1), _reading(1, cells=15)], 2: [_reading(2)]})
    stack = client(reader)
    await stack.discover()
    sample = await stack.poll()
    assert isinstance(sample.packs[1].error, DecodeError)
    assert "16 cells" in str(sample.packs[1].error)
    assert sample.packs[1].analog is None
    assert sample.packs[2].online and sample.packs[2].analog.address == 2  # type: ignore[union-attr]


async def test_every_write_and_the_pace_only_reads_are_refused_with_the_dialect() -> None:
    stack = client(ScriptedReader({1: [_reading(1)]}))
    title = re.escape(DIALECTS["seplos"].title)
    for call in (
        stack.read_parameters,
        lambda: stack.write_parameters({"cell_over_voltage_alarm": 3.5}),
        lambda: stack.set_mos(charge=False),
        stack.shutdown,
        stack.read_clock,
        lambda: stack.set_clock(datetime(2026, 1, 1)),
        stack.read_capacities,
        stack.read_history,
    ):
        with pytest.raises(UnsupportedCapabilityError, match=f"^{title}: no "):
            await call()
    assert stack.can(Capability.TELEMETRY) and stack.can(Capability.ALARMS)
    assert not stack.can(Capability.PARAMETERS_WRITE)


async def test_a_parameter_read_the_dialect_has_is_refused_as_not_mapped() -> None:
    """Seplos V3 reads its own parameters (SPA), but not into PACE's shared table."""
    info = DIALECTS["seplos_v3"]
    assert info.can(Capability.PARAMETERS_READ)
    stack = client(ScriptedReader({1: [_reading(1)]}, info=info))
    assert not stack.can(Capability.PARAMETERS_READ)
    with pytest.raises(UnsupportedCapabilityError, match="not mapped to the shared parameter"):
        await stack.read_parameters()
