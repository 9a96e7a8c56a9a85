"""The stack client: discover the packs behind one link, poll them, read and write settings.

Addressing ([PACE-2018] §4-5, [PACE-V3.1] §4-5): only the pack at DIP address 1, acting as
master, answers 42H/44H for the other packs (COMMAND FF = all, n = pack n). Every other command
acts on the pack the wire is connected to, or on the addressed pack of a multi-drop bus where the
firmware lets slaves answer their own address.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from functools import partial
import logging
import time
from typing import Final

from . import analog, control, device, history, params, status
from .commands import COMMAND_ALL_PACKS, Command, encode_request
from .errors import (
    BmsError,
    BmsTimeoutError,
    DecodeError,
    LinkError,
    ResponseError,
    UnsupportedProtocolError,
)
from .frame import VER_PACE, VER_PYLON, Frame
from .link import Link

_LOGGER = logging.getLogger(__name__)

DEFAULT_MASTER_ADDRESS: Final = 1
MAX_PACKS: Final = 16
PROBE_TIMEOUT: Final = 0.5
"""Waiting for a pack that may not exist: the spec's 500 ms reply time, no retry."""


class PollMode(StrEnum):
    """How the analog and alarm values of every pack are fetched."""

    AUTO = "auto"
    BROADCAST = "broadcast"
    """42H/44H with COMMAND FF at the master: two exchanges for the whole stack."""
    RELAY = "relay"
    """42H/44H with COMMAND n at the master, pack by pack."""
    DIRECT = "direct"
    """42H/44H sent to each pack's own address (multi-drop bus)."""


@dataclass(frozen=True, slots=True)
class PackInfo:
    """What discovery learned about one pack."""

    address: int
    version: str | None = None
    bms_serial: str | None = None
    pack_serial: str | None = None
    direct: bool = False
    """Whether the pack answers commands at its own address (parameters, controls, history)."""


@dataclass(frozen=True, slots=True)
class StackInfo:
    """The stack behind one link."""

    master_address: int
    packs: tuple[PackInfo, ...]

    @property
    def master(self) -> PackInfo:
        """The pack the link talks to."""
        return next((p for p in self.packs if p.address == self.master_address), self.packs[0])

    def pack(self, address: int) -> PackInfo | None:
        """The pack at an address."""
        return next((p for p in self.packs if p.address == address), None)


@dataclass(frozen=True, slots=True)
class PackSample:
    """One pack's part of a poll: values, or the error that kept them away."""

    address: int
    analog: analog.PackAnalog | None = None
    status: status.PackStatus | None = None
    error: BmsError | None = None

    @property
    def online(self) -> bool:
        """Whether this pack answered with real values (a zero-filled block is offline)."""
        return self.error is None and self.analog is not None and self.analog.online


@dataclass(frozen=True, slots=True)
class StackSample:
    """The result of one poll."""

    packs: dict[int, PackSample]
    mode: PollMode
    started: float
    duration: float

    @property
    def online(self) -> list[PackSample]:
        """Packs that answered."""
        return [p for p in self.packs.values() if p.online]


@dataclass(frozen=True, slots=True)
class ParameterSet:
    """Parameters read from one pack: values by key and the raw payload of each group."""

    address: int
    values: dict[str, float]
    payloads: dict[str, bytes] = field(repr=False)


@dataclass(frozen=True, slots=True)
class PlannedWrite:
    """One write command a parameter change sends."""

    group: str
    command: int
    payload: bytes
    frame: bytes


@dataclass(frozen=True, slots=True)
class WriteResult:
    """The outcome of a parameter write: values before, the frames sent, values read back."""

    address: int
    old: dict[str, float]
    new: dict[str, float]
    writes: tuple[PlannedWrite, ...]
    dry_run: bool = False

    @property
    def changed(self) -> dict[str, tuple[float, float]]:
        """Keys whose value differs between before and after."""
        return {k: (self.old[k], v) for k, v in self.new.items() if self.old.get(k) != v}


class WriteNotKeptError(BmsError):
    """The BMS acknowledged a write but reads back other values."""

    def __init__(self, address: int, mismatches: Mapping[str, tuple[float, float]]) -> None:
        self.address = address
        self.mismatches = dict(mismatches)
        text = ", ".join(f"{k}: wrote {w:g}, reads {r:g}" for k, (w, r) in mismatches.items())
        super().__init__(f"pack {address} did not keep the written values ({text})")


def _expect_empty(frame: Frame) -> None:
    if frame.info:
        raise DecodeError(f"expected an empty OK reply, got {len(frame.info)} bytes")


class StackClient:
    """Everything the integration and the command-line tool do with one stack."""

    def __init__(
        self,
        link: Link,
        *,
        master_address: int = DEFAULT_MASTER_ADDRESS,
        poll_mode: PollMode = PollMode.AUTO,
    ) -> None:
        self.link = link
        self.master_address = master_address
        self.requested_mode = poll_mode
        self.mode: PollMode | None = None if poll_mode is PollMode.AUTO else poll_mode
        self.stack: StackInfo | None = None

    # -- low level -----------------------------------------------------------------------------

    @property
    def _probe_timeout(self) -> float:
        """Timeout for a pack that may not exist: never longer than the link's own."""
        return min(PROBE_TIMEOUT, self.link.timeout)

    async def _ask[T](
        self,
        command: Command,
        address: int,
        decode: Callable[[Frame], T],
        info: bytes = b"",
        *,
        timeout: float | None = None,
        retries: int | None = None,
    ) -> T:
        request = encode_request(command, address, info)
        return await self.link.exchange(request, decode, timeout=timeout, retries=retries)

    # -- discovery -----------------------------------------------------------------------------

    async def detect_protocol(self) -> int:
        """Read the pack count at the master; tell the VER 0x20 family apart.

        Returns the pack count. Raises :class:`UnsupportedProtocolError` when the device answers
        only the VER 0x20 (Seplos / Pylontech / EG4) dialect, :class:`BmsTimeoutError` when
        nothing answers.
        """
        try:
            return await self._ask(
                Command.PACK_COUNT,
                self.master_address,
                lambda f: device.decode_pack_count(f.info),
            )
        except ResponseError as err:
            if err.code == 0x01:  # VER error: the device speaks another version
                raise UnsupportedProtocolError(_VER20_MESSAGE) from err
            raise
        except BmsTimeoutError:
            if await self._answers_ver20():
                raise UnsupportedProtocolError(_VER20_MESSAGE) from None
            raise

    async def _answers_ver20(self) -> bool:
        probe = encode_request(
            Command.ANALOG, self.master_address, bytes([self.master_address]), ver=VER_PYLON
        )

        def accept(frame: Frame) -> Frame:
            if frame.ver != VER_PYLON:
                raise DecodeError("not a VER 0x20 reply")
            return frame

        try:
            await self.link.exchange(probe, accept, timeout=self._probe_timeout, retries=0)
        except ResponseError, LinkError, DecodeError:
            return False
        return True

    async def discover(self, *, scan: bool = False) -> StackInfo:
        """Find the packs: the master's count, then version and serials where reachable.

        With ``scan`` every address 0-15 is probed on its own (a multi-drop bus without master).
        """
        if scan:
            addresses = await self._scan()
            if not addresses:
                raise BmsTimeoutError(f"no pack answered on {self.link.url}")
            if self.requested_mode is PollMode.AUTO:
                self.mode = PollMode.DIRECT
        else:
            count = await self.detect_protocol()
            if not 1 <= count <= MAX_PACKS:
                raise DecodeError(f"master reports {count} packs")
            addresses = list(range(self.master_address, self.master_address + count))
        packs = [await self._identify(a, probe=a != self.master_address) for a in addresses]
        self.stack = StackInfo(self.master_address, tuple(packs))
        return self.stack

    async def _scan(self) -> list[int]:
        found = []
        for address in range(MAX_PACKS):
            try:
                frame = await self._ask(
                    Command.PACK_COUNT, address, _frame, timeout=self._probe_timeout, retries=0
                )
            except BmsError:
                continue
            if frame.adr == address:
                found.append(address)
        return found

    async def _identify(self, address: int, *, probe: bool) -> PackInfo:
        """Version and serials of one pack; a slave that does not answer for itself is kept."""
        timeout, retries = (self._probe_timeout, 0) if probe else (None, None)
        try:
            reply = await self._ask(Command.VERSION, address, _frame, timeout=timeout,
                                    retries=retries)  # fmt: skip
        except BmsError as err:
            if not probe:
                raise
            _LOGGER.debug("Pack %s does not answer at its own address: %s", address, err)
            return PackInfo(address)
        if probe and reply.adr != address:
            return PackInfo(address)  # somebody else (the master) answered
        version = device.decode_version(reply.info)
        serials = await self._ask(
            Command.SERIAL, address, lambda f: device.decode_serials(f.info),
            timeout=timeout, retries=retries,
        )  # fmt: skip
        return PackInfo(address, version, serials.bms, serials.pack, direct=True)

    # -- polling -------------------------------------------------------------------------------

    def _addresses(self) -> list[int]:
        if self.stack is None:
            return [self.master_address]
        return [p.address for p in self.stack.packs]

    async def poll(self) -> StackSample:
        """Analog values and alarms of every pack; one pack's failure stays its own."""
        started = time.monotonic()
        if self.mode is None:
            mode, samples = await self._choose_mode()
        else:
            mode = self.mode
            samples = await self._poll(mode)
            if self.requested_mode is PollMode.AUTO and not any(s.online for s in samples.values()):
                self.mode = None  # nothing answered: choose again next time
        return StackSample(samples, mode, started, time.monotonic() - started)

    async def _choose_mode(self) -> tuple[PollMode, dict[int, PackSample]]:
        """AUTO: try the modes from the fewest bytes on the wire; keep the first that works.

        When no mode reaches every pack, the one that reaches most wins (the fewest bytes on a
        tie): a pack that is off does not push the stack into a slower mode.
        """
        candidates = [PollMode.RELAY] if len(self._addresses()) == 1 else list(PollMode)[1:]
        best: tuple[int, PollMode, dict[int, PackSample]] | None = None
        for mode in candidates:
            samples = await self._poll(mode)
            online = sum(s.online for s in samples.values())
            if best is None or online > best[0]:
                best = (online, mode, samples)
            if online == len(samples):
                break
        assert best is not None
        online, mode, samples = best
        if online:
            self.mode = mode
            _LOGGER.debug("Poll mode %s reaches %s of %s packs", mode, online, len(samples))
        return mode, samples

    async def _poll(self, mode: PollMode) -> dict[int, PackSample]:
        addresses = self._addresses()
        if mode is PollMode.BROADCAST:
            return await self._poll_broadcast(addresses)
        samples = {}
        for address in addresses:
            samples[address] = await self._poll_one(address, mode)
        return samples

    async def _poll_broadcast(self, addresses: list[int]) -> dict[int, PackSample]:
        first = self.master_address
        try:
            analogs = await self._ask(
                Command.ANALOG, first, lambda f: analog.decode_analog(f.info, COMMAND_ALL_PACKS),
                bytes([COMMAND_ALL_PACKS]),
            )  # fmt: skip
            statuses = await self._ask(
                Command.STATUS, first, lambda f: status.decode_status(f.info, COMMAND_ALL_PACKS),
                bytes([COMMAND_ALL_PACKS]),
            )  # fmt: skip
        except BmsError as err:
            return {a: PackSample(a, error=err) for a in addresses}
        samples = {}
        for index, address in enumerate(addresses):
            if index < len(analogs.packs) and index < len(statuses.packs):
                samples[address] = PackSample(
                    address,
                    _renumber(analogs.packs[index], address),
                    _renumber(statuses.packs[index], address),
                )
            else:
                samples[address] = PackSample(
                    address, error=DecodeError("the master's reply has no block for this pack")
                )
        return samples

    async def _poll_one(self, address: int, mode: PollMode) -> PackSample:
        target = address if mode is PollMode.DIRECT else self.master_address
        info = bytes([address])
        try:
            values = await self._ask(
                Command.ANALOG, target, lambda f: analog.decode_analog(f.info, address), info
            )
            alarms = await self._ask(
                Command.STATUS, target, lambda f: status.decode_status(f.info, address), info
            )
        except BmsError as err:
            return PackSample(address, error=err)
        return PackSample(
            address, _renumber(values.packs[0], address), _renumber(alarms.packs[0], address)
        )

    # -- parameters ----------------------------------------------------------------------------

    async def read_parameters(
        self, address: int | None = None, groups: Iterable[params.ParameterGroup] | None = None
    ) -> ParameterSet:
        """Read parameter groups (all of them by default) from one pack."""
        address = self.master_address if address is None else address
        values: dict[str, float] = {}
        payloads: dict[str, bytes] = {}
        for group in params.GROUPS if groups is None else groups:
            payload = await self._ask(group.read, address, _info_of_size(group.size))
            payloads[group.key] = payload
            values.update(group.decode(payload))
        return ParameterSet(address, values, payloads)

    def plan_write(
        self, current: ParameterSet, changes: Mapping[str, float]
    ) -> tuple[PlannedWrite, ...]:
        """Validate a set of changes against what the pack holds; return the frames to send."""
        merged = params.validate(changes, current.values)
        touched = {params.PARAMETERS_BY_KEY[k].group for k in changes}
        writes = []
        for group in params.GROUPS:
            if group.key not in touched:
                continue
            payload = group.encode_write(current.payloads[group.key], merged)
            frame = encode_request(group.write, current.address, payload)
            writes.append(PlannedWrite(group.key, group.write, payload, frame))
        return tuple(writes)

    async def write_parameters(
        self, changes: Mapping[str, float], address: int | None = None, *, dry_run: bool = False
    ) -> WriteResult:
        """Validate, write by read-modify-write, and read back.

        Unknown keys and values out of range are refused before anything is read. The groups
        involved (and those of cross-field rule partners) are then read, the whole set is
        validated, and only then written. Raises :class:`WriteNotKeptError` when the read-back
        differs from what was written.
        """
        address = self.master_address if address is None else address
        params.validate(changes, {})  # ranges, steps and rules among the changes: nothing sent yet
        groups = params.groups_for(changes)
        current = await self.read_parameters(address, groups)
        writes = self.plan_write(current, changes)
        if dry_run:
            new = {**current.values, **changes}
            return WriteResult(address, current.values, new, writes, dry_run=True)
        for write in writes:
            await self.link.exchange(write.frame, _expect_empty)
        touched = [params.GROUPS_BY_KEY[w.group] for w in writes]
        after = await self.read_parameters(address, touched)
        mismatches = {
            k: (v, after.values[k]) for k, v in changes.items() if abs(after.values[k] - v) > 1e-6
        }
        if mismatches:
            raise WriteNotKeptError(address, mismatches)
        return WriteResult(address, current.values, {**current.values, **after.values}, writes)

    # -- controls ------------------------------------------------------------------------------

    async def set_switch(self, name: str, on: bool, address: int | None = None) -> int | None:
        """99H: buzzer, LED alarm, current limiter or limiter gear; returns the control byte."""
        on_code, off_code = control.SWITCHES[name]
        code = on_code if on else off_code
        reply = await self._ask(
            Command.CONTROL,
            self.master_address if address is None else address,
            lambda f: control.decode_control(f.info),
            bytes([code]),
            retries=0,
        )
        return reply.control_status

    async def set_mos(self, which: Command, on: bool, address: int | None = None) -> int | None:
        """9AH (charge) or 9BH (discharge); RTN 09 refusal raises CommandRefusedError."""
        if which not in (Command.CHARGE_MOS, Command.DISCHARGE_MOS):
            raise ValueError(f"{which!r} is not a MOSFET command")
        return await self._ask(
            which,
            self.master_address if address is None else address,
            lambda f: control.decode_mos(f.info),
            bytes([control.MOS_ON if on else control.MOS_OFF]),
            retries=0,
        )

    async def shutdown(self, address: int | None = None) -> None:
        """9CH forced shutdown: the pack stops answering until woken by key or charger."""
        await self._ask(
            Command.SHUTDOWN,
            self.master_address if address is None else address,
            _expect_empty,
            control.SHUTDOWN_INFO,
            retries=0,
        )

    # -- clock, capacities, history ------------------------------------------------------------

    async def read_clock(self, address: int | None = None) -> datetime:
        """B1H: the BMS clock (local time, naive)."""
        return await self._ask(
            Command.CLOCK_READ,
            self.master_address if address is None else address,
            lambda f: device.decode_clock(f.info),
        )

    async def set_clock(self, value: datetime, address: int | None = None) -> None:
        """B2H: set the BMS clock."""
        await self._ask(
            Command.CLOCK_WRITE,
            self.master_address if address is None else address,
            _expect_empty,
            device.encode_clock(value),
        )

    async def read_capacities(self, address: int | None = None) -> device.Capacities:
        """A6H: remaining, full and design capacity."""
        return await self._ask(
            Command.CAPACITY,
            self.master_address if address is None else address,
            lambda f: device.decode_capacities(f.info),
        )

    async def read_history(
        self, address: int | None = None, count: int = history.MAX_RECORDS
    ) -> list[history.HistoryRecord]:
        """A1H records, newest first, until the BMS says there are no more."""
        address = self.master_address if address is None else address
        records = []
        for index in range(min(count, history.MAX_RECORDS)):
            try:
                record = await self._ask(
                    Command.HISTORY,
                    address,
                    partial(_decode_history, index=index),
                    history.encode_history_request(index),
                )
            except ResponseError as err:
                if err.code == 0x07:  # no data: past the last record
                    break
                raise
            if record is None:
                break
            records.append(record)
            await asyncio.sleep(0)
        return records


_VER20_MESSAGE: Final = (
    "the battery answers the VER 0x20 protocol (Seplos / Pylontech / EG4 family), which is "
    "not supported yet; only PACE VER 0x25 is"
)


def _decode_history(frame: Frame, index: int) -> history.HistoryRecord | None:
    return history.decode_history(frame.info, index)


def _frame(frame: Frame) -> Frame:
    return frame


def _info_of_size(size: int) -> Callable[[Frame], bytes]:
    def decode(frame: Frame) -> bytes:
        if len(frame.info) < size:
            raise DecodeError(f"{len(frame.info)} bytes, expected at least {size}")
        return frame.info

    return decode


def _renumber[T: (analog.PackAnalog, status.PackStatus)](value: T, address: int) -> T:
    """Give a block the pack address it belongs to."""
    return value if value.address == address else replace(value, address=address)


__all__ = [
    "VER_PACE",
    "PackInfo",
    "PackSample",
    "ParameterSet",
    "PollMode",
    "StackClient",
    "StackInfo",
    "StackSample",
    "WriteNotKeptError",
    "WriteResult",
]
