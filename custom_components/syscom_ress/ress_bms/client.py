"""The stack client: discover the packs behind one link, poll them, read and write settings.

Addressing ([PACE-2018] §4-5, [PACE-V3.1] §4-5): only the pack at DIP address 1, acting as
master, answers 42H/44H for the other packs (COMMAND FF = all, n = pack n). Every other command
acts on the pack the wire is connected to, or on the addressed pack of a multi-drop bus where the
firmware lets slaves answer their own address.

A 42H/44H block is taken for a pack only when it agrees with what the stack has shown of that
pack (:mod:`.attribution`); the link drops late replies and replies to other masters
(:mod:`.link`). In ``auto`` the poll mode is chosen by trying the modes from the fewest bytes
on the wire, and a mode that fell back is tried again every :data:`MODE_RETRY_INTERVAL`.
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
from typing import Any, Final

from . import analog, control, device, history, params, status
from .attribution import Attribution, ShapeMismatchError, shape_of
from .commands import COMMAND_ALL_PACKS, Command, encode_request
from .dialects import pace
from .dialects.base import Capability, DialectInfo
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
MODE_RETRY_INTERVAL: Final = 600.0
"""In ``auto``, seconds between tries of the modes not in use, while the one in use is not the
first choice or misses packs: one trial poll per mode each time, so the cost is bounded."""


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
    model: str | None = None
    """The model the pack names itself (dialects that have such a read; PACE tells it by its
    version string)."""


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


def _reached(samples: Mapping[int, PackSample]) -> int:
    return sum(s.online for s in samples.values())


def _silent(samples: Mapping[int, PackSample]) -> bool:
    """Nothing answered at all: every pack timed out or the transport failed."""
    return all(isinstance(s.error, LinkError) for s in samples.values())


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
    """Everything the integration and the command-line tool do with one stack (PACE 0x25)."""

    dialect: DialectInfo = pace.INFO
    """The dialect spoken: what it can do (:meth:`DialectInfo.can`) decides what is offered."""
    status_keys: frozenset[str] | None = None
    """The status bits this dialect can set (``None``: every bit of the shared table)."""

    def can(self, capability: Capability) -> bool:
        """Whether this client does ``capability`` with its stack (what is offered)."""
        return self.dialect.can(capability)

    def why_not(self, capability: Capability) -> str:
        """Why ``capability`` is not offered (for a refusal's message)."""
        return self.dialect.reasons.get(capability, "no document defines it")

    def __init__(
        self,
        link: Link[Any],
        *,
        master_address: int = DEFAULT_MASTER_ADDRESS,
        poll_mode: PollMode = PollMode.AUTO,
    ) -> None:
        self.link = link
        self.master_address = master_address
        self.requested_mode = poll_mode
        self.mode: PollMode | None = None if poll_mode is PollMode.AUTO else poll_mode
        self.mode_reason: str = "chosen by the owner" if self.mode else "not chosen yet"
        """Why :attr:`mode` is the mode in use (diagnostics)."""
        self.stack: StackInfo | None = None
        self.attribution = Attribution()
        """What replies must agree with to be taken for a pack."""
        self._mode_tried_at = 0.0
        self._missed_last = False
        self._last_silent = False

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
        return await self.link.exchange(
            request,
            decode,
            timeout=timeout,
            retries=retries,
            expect_adr=self.attribution.reply_addresses.get(address),
        )

    # -- discovery -----------------------------------------------------------------------------

    async def detect_protocol(self) -> int:
        """Read the pack count at the master; tell the VER 0x20 family apart.

        Returns the pack count. Raises :class:`UnsupportedProtocolError` when the device answers
        only the VER 0x20 (Seplos / Pylontech / EG4) dialect, :class:`BmsTimeoutError` when
        nothing answers.
        """
        try:
            count, adr = await self._ask(
                Command.PACK_COUNT,
                self.master_address,
                _count_and_adr,
            )
        except ResponseError as err:
            if err.code == 0x01:  # VER error: the device speaks another version
                raise UnsupportedProtocolError(_VER20_MESSAGE) from err
            raise
        except BmsTimeoutError:
            if await self._answers_ver20():
                raise UnsupportedProtocolError(_VER20_MESSAGE) from None
            raise
        self.attribution.reply_addresses.setdefault(self.master_address, adr)
        return count

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
        What replies must agree with is learned again from scratch.
        """
        self.attribution.forget()
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
        if not scan and len(addresses) > 1:
            await self._learn_echo(addresses[-1])
        self.stack = StackInfo(self.master_address, tuple(packs))
        return self.stack

    async def _learn_echo(self, address: int) -> None:
        """Ask the master for one slave: firmware that echoes 01 for it is remembered."""
        try:
            echo = await self._ask(
                Command.ANALOG, self.master_address,
                lambda f: analog.decode_analog(f.info, address, {1}) and f.info[1],
                bytes([address]), timeout=self._probe_timeout, retries=0,
            )  # fmt: skip
        except BmsError as err:
            _LOGGER.debug("No relayed 42H for pack %s at discovery: %s", address, err)
            return
        self.attribution.echo_one = echo == 1
        if self.attribution.echo_one:
            _LOGGER.info("%s: the master echoes pack 01 for every pack", self.link.url)

    async def _scan(self) -> list[int]:
        found = []
        for address in range(MAX_PACKS):
            try:
                _, adr = await self._ask(
                    Command.PACK_COUNT, address, _count_and_adr,
                    timeout=self._probe_timeout, retries=0,
                )  # fmt: skip
            except BmsError:
                continue
            if adr == address:
                found.append(address)
                self.attribution.reply_addresses[address] = address
        return found

    async def _identify(self, address: int, *, probe: bool) -> PackInfo:
        """Version and serials of one pack; a slave that does not answer for itself is kept."""
        timeout, retries = (self._probe_timeout, 0) if probe else (None, None)
        try:
            version, adr = await self._ask(
                Command.VERSION, address, lambda f: (device.decode_version(f.info), f.adr),
                timeout=timeout, retries=retries,
            )  # fmt: skip
        except BmsError as err:
            if not probe:
                raise
            _LOGGER.debug("Pack %s does not answer at its own address: %s", address, err)
            return PackInfo(address)
        if probe and adr != address:
            return PackInfo(address)  # somebody else (the master) answered
        self.attribution.reply_addresses.setdefault(address, adr)
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
            mode, samples = await self._poll_in_mode()
        self._last_silent = _silent(samples)
        return StackSample(samples, mode, started, time.monotonic() - started)

    def _candidates(self) -> list[PollMode]:
        """AUTO's modes, from the fewest bytes on the wire."""
        return [PollMode.RELAY] if len(self._addresses()) == 1 else list(PollMode)[1:]

    async def _poll_in_mode(self) -> tuple[PollMode, dict[int, PackSample]]:
        """Poll in the mode in use; in AUTO, now and then try the others first."""
        assert self.mode is not None
        candidates = self._candidates()
        if (
            self.requested_mode is PollMode.AUTO
            and len(candidates) > 1
            and time.monotonic() - self._mode_tried_at >= MODE_RETRY_INTERVAL
            and (self.mode is not candidates[0] or self._missed_last)
        ):
            return await self._choose_mode(current=self.mode)
        samples = await self._poll(self.mode)
        self._missed_last = _reached(samples) < len(samples)
        return self.mode, samples

    async def _choose_mode(
        self, current: PollMode | None = None
    ) -> tuple[PollMode, dict[int, PackSample]]:
        """AUTO: try the modes from the fewest bytes on the wire; keep the first that works.

        When no mode reaches every pack, the one that reaches most wins (the fewest bytes on a
        tie): a pack that is off does not push the stack into a slower mode. A bus where
        nothing answers at all (not even the master to 90H) decides nothing: the mode stays as
        it was. ``current`` is the mode in use when this is a later re-try.
        """
        self._mode_tried_at = time.monotonic()
        best: tuple[int, PollMode, dict[int, PackSample]] | None = None
        for mode in self._candidates():
            samples = await self._poll(mode)
            online = _reached(samples)
            if best is None or online > best[0]:
                best = (online, mode, samples)
            if online == len(samples):
                break
            if online == 0 and _silent(samples) and not await self._master_answers():
                break  # a silent bus: the other modes would say nothing either
        assert best is not None
        online, mode, samples = best
        self._missed_last = online < len(samples)
        if online:
            if mode is not current:
                _LOGGER.debug("Poll mode %s reaches %s of %s packs", mode, online, len(samples))
            self.mode = mode
            self.mode_reason = f"{mode} reached {online} of {len(samples)} packs, " + (
                "the first mode tried" if mode is self._candidates()[0] else "the most"
            )
        elif current is not None:
            return current, samples
        return mode, samples

    async def _master_answers(self) -> bool:
        try:
            await self._ask(Command.PACK_COUNT, self.master_address,
                            lambda f: device.decode_pack_count(f.info),
                            timeout=self._probe_timeout, retries=0)  # fmt: skip
        except BmsError:
            return False
        return True

    async def _poll(self, mode: PollMode) -> dict[int, PackSample]:
        addresses = self._addresses()
        if mode is PollMode.BROADCAST:
            return await self._poll_broadcast(addresses)
        samples: dict[int, PackSample] = {}
        # After a silent poll, a pack that may not be there gets the probe timeout, no retry.
        probing = self._last_silent
        for address in addresses:
            sample = samples[address] = await self._poll_one(address, mode, probing=probing)
            if sample.online:
                probing = False
            elif _link_down(sample.error) or (
                mode is PollMode.RELAY
                and address == self.master_address
                and isinstance(sample.error, BmsTimeoutError)
                and not await self._master_answers()
            ):
                # The transport is gone, or the master relaying every pack is silent.
                for rest in addresses[len(samples) :]:
                    samples[rest] = PackSample(rest, error=sample.error)
                break
        return samples

    async def _poll_broadcast(self, addresses: list[int]) -> dict[int, PackSample]:
        first = self.master_address
        check = self.attribution.check_blocks

        def analogs_of(frame: Frame) -> analog.AnalogReply:
            reply = analog.decode_analog(frame.info, COMMAND_ALL_PACKS)
            check(addresses, reply.packs)
            return reply

        def statuses_of(frame: Frame) -> status.StatusReply:
            reply = status.decode_status(frame.info, COMMAND_ALL_PACKS)
            check(addresses, reply.packs)
            return reply

        try:
            all_packs = bytes([COMMAND_ALL_PACKS])
            analogs = await self._ask(Command.ANALOG, first, analogs_of, all_packs)
            statuses = await self._ask(Command.STATUS, first, statuses_of, all_packs)
        except BmsError as err:
            if isinstance(err, ShapeMismatchError):
                for address in err.addresses:  # a pack that was swapped is learned again
                    self.attribution.misfit(address)
            return {a: PackSample(a, error=err) for a in addresses}
        samples = {}
        for index, address in enumerate(addresses):
            if index < len(analogs.packs) and index < len(statuses.packs):
                samples[address] = self._attribute(
                    address, analogs.packs[index], statuses.packs[index]
                )
            else:
                samples[address] = PackSample(
                    address, error=DecodeError("the master's reply has no block for this pack")
                )
        return samples

    def _attribute(
        self, address: int, values: analog.PackAnalog, alarms: status.PackStatus
    ) -> PackSample:
        """The sample of a pack from its two blocks, if they have the pack's shape."""
        values, alarms = _renumber(values, address), _renumber(alarms, address)
        if not values.online:
            return PackSample(address, values, alarms)  # a zero-filled block: nothing to check
        try:
            self.attribution.check(address, values)
            self.attribution.check(address, alarms)
            if shape_of(values) != shape_of(alarms):
                raise DecodeError(f"pack {address}'s 42H and 44H blocks disagree")
        except DecodeError as err:
            self.attribution.misfit(address)
            return PackSample(address, error=err)
        self.attribution.learn(address, values)
        return PackSample(address, values, alarms)

    def _analog_of(self, address: int) -> Callable[[Frame], analog.PackAnalog]:
        """Decode a one-pack 42H reply for ``address``; refuse what cannot be that pack's."""
        echoes = self.attribution.echoes(address)

        def decode(frame: Frame) -> analog.PackAnalog:
            block = analog.decode_analog(frame.info, address, echoes).packs[0]
            if block.online:
                self.attribution.check(address, block)
            return block

        return decode

    def _status_of(self, address: int) -> Callable[[Frame], status.PackStatus]:
        """Decode a one-pack 44H reply for ``address``; refuse what cannot be that pack's."""
        echoes = self.attribution.echoes(address)

        def decode(frame: Frame) -> status.PackStatus:
            block = status.decode_status(frame.info, address, echoes).packs[0]
            self.attribution.check(address, block)
            return block

        return decode

    async def _poll_one(self, address: int, mode: PollMode, *, probing: bool) -> PackSample:
        target = address if mode is PollMode.DIRECT else self.master_address
        info = bytes([address])
        timeout, retries = (self._probe_timeout, 0) if probing else (None, None)
        try:
            values = await self._ask(Command.ANALOG, target, self._analog_of(address), info,
                                     timeout=timeout, retries=retries)  # fmt: skip
            if not values.online:
                return PackSample(address, _renumber(values, address))  # the master's zero block
            alarms = await self._ask(Command.STATUS, target, self._status_of(address), info,
                                     timeout=timeout, retries=retries)  # fmt: skip
        except BmsError as err:
            return PackSample(address, error=err)
        return self._attribute(address, values, alarms)

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

    async def read_serials(self, address: int | None = None) -> device.Serials:
        """C2H: the BMS and pack serials (who is answering on this link)."""
        return await self._ask(
            Command.SERIAL,
            self.master_address if address is None else address,
            lambda f: device.decode_serials(f.info),
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
    "the battery answers in the VER 0x20 protocol family (Seplos / Pylontech / EG4), not in "
    "PACE VER 0x25: choose that dialect, or let detection find it (ress-bms scan --detect)"
)


def _decode_history(frame: Frame, index: int) -> history.HistoryRecord | None:
    return history.decode_history(frame.info, index)


def _frame(frame: Frame) -> Frame:
    return frame


def _count_and_adr(frame: Frame) -> tuple[int, int]:
    return device.decode_pack_count(frame.info), frame.adr


def _link_down(error: BmsError | None) -> bool:
    """The transport failed (not a silent pack): every later exchange of the poll would too."""
    return isinstance(error, LinkError) and not isinstance(error, BmsTimeoutError)


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
