"""Which pack a 42H/44H block belongs to: what discovery and the first replies taught us.

A reply frame carries no request id. What it does carry is checked against what the stack has
shown before (docs/protocol.md, "Which reply belongs to which request"):

* the ADR the target answers with (learned from its discovery reply, see :class:`~.link.Link`);
* the echoed pack number of a one-pack reply: the number asked for, and 01 only on firmware
  that was seen echoing 01 for another pack (:attr:`Attribution.echo_one`, learned once at
  discovery, never assumed);
* the pack's own shape: its cell and temperature counts, learned from its first block and
  required of every 42H and 44H block from then on.

A pack whose blocks keep failing the shape check for :data:`RELEARN_AFTER` polls in a row is
learned again (a pack was swapped for another model): one wrong block cannot teach it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from .analog import PackAnalog
from .errors import DecodeError
from .status import PackStatus

RELEARN_AFTER: Final = 3
"""Polls in a row whose block for a pack failed its shape before the shape is learned again."""


class ShapeMismatchError(DecodeError):
    """Blocks of a reply that cannot be their packs' (a glued reply to another command)."""

    def __init__(self, addresses: tuple[int, ...], detail: str) -> None:
        self.addresses = addresses
        super().__init__(detail)


@dataclass(frozen=True, slots=True)
class Shape:
    """What every block of one pack has."""

    cells: int
    temperatures: int

    def __str__(self) -> str:
        return f"{self.cells} cells and {self.temperatures} sensors"


def _carries_values(block: PackAnalog | PackStatus) -> bool:
    if isinstance(block, PackAnalog):
        return block.online
    return any(block.cell_codes) or any(block.temperature_codes) or any(block.bytes_.values())


def shape_of(block: PackAnalog | PackStatus) -> Shape:
    """The shape of a decoded 42H or 44H block."""
    if isinstance(block, PackAnalog):
        return Shape(len(block.cell_voltages), len(block.temperatures))
    return Shape(len(block.cell_codes), len(block.temperature_codes))


@dataclass(slots=True)
class Attribution:
    """What replies of one stack must agree with; filled in as the stack is discovered."""

    echo_one: bool = False
    """This firmware echoes 01 in one-pack replies whatever pack was asked for."""
    reply_addresses: dict[int, int] = field(default_factory=dict)
    """Request ADR -> the ADR its replies carry (a BMS answers with its own DIP address)."""
    shapes: dict[int, Shape] = field(default_factory=dict)
    misfits: dict[int, int] = field(default_factory=dict)

    def echoes(self, pack: int) -> frozenset[int]:
        """The pack numbers a one-pack reply for ``pack`` may echo."""
        return frozenset({pack, 1}) if self.echo_one else frozenset({pack})

    def check(self, address: int, block: PackAnalog | PackStatus) -> None:
        """Raise :class:`DecodeError` when ``block`` cannot be pack ``address``'s."""
        known = self.shapes.get(address)
        shape = shape_of(block)
        if known is not None and shape != known:
            raise DecodeError(f"a block of {shape} is not pack {address}'s ({known})")

    def check_blocks(
        self, addresses: Sequence[int], blocks: Sequence[PackAnalog | PackStatus]
    ) -> None:
        """Check every block of an FF reply that carries values against its pack's shape.

        Zero-filled blocks (a pack the master cannot reach) carry nothing to check. Raises
        :class:`ShapeMismatchError` naming every pack whose block does not fit, so the link
        skips the frame and waits for the real reply.
        """
        misfits = []
        for address, block in zip(addresses, blocks, strict=False):
            if not _carries_values(block):
                continue
            try:
                self.check(address, block)
            except DecodeError:
                misfits.append(address)
        if misfits:
            packs = ", ".join(map(str, misfits))
            raise ShapeMismatchError(tuple(misfits), f"blocks for packs {packs} are not theirs")

    def learn(self, address: int, block: PackAnalog | PackStatus) -> None:
        """Remember the shape of an accepted block; the pack's misfits start again."""
        self.shapes.setdefault(address, shape_of(block))
        self.misfits.pop(address, None)

    def misfit(self, address: int) -> None:
        """A poll found no block of the pack's shape: after a few in a row, learn it again."""
        self.misfits[address] = self.misfits.get(address, 0) + 1
        if self.misfits[address] >= RELEARN_AFTER:
            self.shapes.pop(address, None)
            self.misfits.pop(address)

    def forget(self) -> None:
        """Start over (a new discovery)."""
        self.echo_one = False
        self.reply_addresses.clear()
        self.shapes.clear()
        self.misfits.clear()
