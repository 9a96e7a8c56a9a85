"""What the simulated VER 0x20 dialects (Seplos V2, Pylontech, EG4) share.

The frame is PACE's ``~...CR`` with VER 0x20 and the dialect's CID1 (dialects.md 1): a request
is checked like PACE checks it (CHKSUM, VER, LCHKSUM, CID1), then its CID2 is looked up in the
dialect's table of reads. Anything else, writes included, gets RTN 04: no write is ever
answered with success. Status bits are set from the pack's shared
:data:`~...status.STATUS_BITS` through the dialect's own :class:`~...dialects.ver20.BitTable`,
the inverse of the decoders' mapping.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from ...dialects.ver20 import VER, BitTable
from ...errors import ChecksumError, FrameError
from ...frame import decode_frame, encode_frame
from ...status import PackStatus
from ..pack import Pack
from ..stack import Stack

RTN_OK: Final = 0x00
RTN_VER: Final = 0x01
RTN_CHKSUM: Final = 0x02
RTN_LCHKSUM: Final = 0x03
RTN_CID2: Final = 0x04
RTN_FORMAT: Final = 0x05

type Answer = tuple[int, bytes] | None
"""(RTN, INFO) of the reply, or ``None`` for silence."""
type Handler = Callable[[Stack, Pack, int, bytes], Answer]
"""(stack, addressed pack, request ADR, request INFO) -> answer."""


@dataclass(frozen=True, slots=True)
class Ver20Dialect:
    """One VER 0x20 dialect as the simulator speaks it."""

    cid1: int
    handlers: Mapping[int, Handler]
    """CID2 -> handler, reads only."""
    bus_address: Callable[[int], int]
    """A pack's DIP address (1..N) -> its ADR on this dialect's bus."""
    cid1_rtn: int = RTN_CID2
    """RTN for a frame of another CID1 (Seplos documents E1)."""

    def pack_at(self, stack: Stack, adr: int) -> Pack | None:
        """The pack at bus ADR ``adr`` that answers, if any (no broadcast in these dialects)."""
        pack = next((p for p in stack.packs if self.bus_address(p.address) == adr), None)
        return pack if pack is not None and pack.answers else None

    def respond(self, stack: Stack, raw: bytes) -> bytes | None:
        """The reply to one raw request frame, or ``None`` for silence."""
        try:
            frame = decode_frame(raw)
        except ChecksumError:
            try:
                pack = self.pack_at(stack, int(raw[3:5], 16))
            except ValueError:
                return None
            return None if pack is None else self.reply(pack, RTN_CHKSUM)
        except FrameError:
            return None
        pack = self.pack_at(stack, frame.adr)
        if pack is None:
            return None
        if frame.ver != VER:
            return self.reply(pack, RTN_VER)
        if not frame.lchksum_ok:
            return self.reply(pack, RTN_LCHKSUM)
        if frame.cid1 != self.cid1:
            return self.reply(pack, self.cid1_rtn)
        handler = self.handlers.get(frame.cid2)
        if handler is None:
            return self.reply(pack, RTN_CID2)
        answer = handler(stack, pack, frame.adr, frame.info)
        if answer is None:
            return None
        return self.reply(pack, *answer)

    def reply(self, pack: Pack, rtn: int, info: bytes = b"") -> bytes:
        """A reply frame from ``pack`` at its bus ADR."""
        return encode_frame(VER, self.bus_address(pack.address), self.cid1, rtn, info)


def status_fields(table: BitTable, status: PackStatus) -> dict[str, int]:
    """Every field of ``table`` with the bits whose shared key ``status`` has set.

    Dialect-only bits stay clear (the simulated BMS has no such state), except where the
    caller sets them. The balancing cells fill the table's ``balancing`` cell fields.
    """
    fields = dict.fromkeys(table.field_names, 0)
    for name, flags in table.flags.items():
        for flag in flags:
            if flag.key is not None and status.flag(flag.key):
                fields[name] |= 1 << flag.bit
    word = sum(1 << (cell - 1) for cell in status.balancing)
    shift = 0
    for name in table.cell_fields.get("balancing", ()):
        width = table.widths.get(name, 8)
        fields[name] = word >> shift & ((1 << width) - 1)
        shift += width
    return fields


def set_own(table: BitTable, fields: dict[str, int], name: str, on: bool = True) -> None:
    """Set a dialect-only bit of ``table`` by its own name (``discharging``, ``standby`` ...)."""
    for field_name, flags in table.flags.items():
        for flag in flags:
            if flag.key is None and flag.name == name and on:
                fields[field_name] |= 1 << flag.bit


def roles[T](values: Sequence[T]) -> tuple[tuple[T, ...], T, T]:
    """The simulator's six temperatures (T1-T4 cells, MOS, environment) as three roles."""
    return tuple(values[:4]), values[4], values[5]


def temperatures(pack: Pack) -> tuple[float, ...]:
    """The pack's six temperatures in °C, to 0.1 (PACE order)."""
    return tuple(round(t, 1) for t in pack.physics.temperatures)
