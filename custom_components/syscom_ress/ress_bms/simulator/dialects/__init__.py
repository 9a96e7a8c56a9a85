"""The dialects the simulator speaks, one responder module each, chosen by name.

``Simulator(dialect=NAME)`` and ``ress-bms simulate --dialect NAME`` look the name up in
:data:`RESPONDERS`: the same stack, physics, faults and control socket answer that dialect's
read requests as its document lays them out. PACE (``pace``, the default) is
:func:`..protocol.respond`, unchanged; the others are built from the dialect modules' own
field and register tables (:mod:`...dialects`), so simulator and decoders share the layouts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from ...frame import FrameExtractor
from ...framing import Extractor
from ..protocol import respond as respond_pace
from ..stack import Stack
from . import eg4, pace_modbus, pylontech, seplos, seplos_v3
from .modbus import RequestCutter

type Framing = Literal["ascii", "modbus"]


@dataclass(frozen=True, slots=True)
class Responder:
    """How the simulator speaks one dialect."""

    name: str
    framing: Framing
    respond: Callable[[Stack, bytes], bytes | None]
    """The reply to one request frame (as the extractor cut it), or ``None`` for silence."""
    max_packs: int
    """The largest stack the dialect's documents address."""
    bus_address: Callable[[int], int]
    """A pack's DIP address (1..N) -> its ADR or unit id on the bus."""

    def extractor(self) -> Extractor:
        """A fresh cutter for requests: ``~...CR`` frames, or 8-byte Modbus reads."""
        return FrameExtractor() if self.framing == "ascii" else RequestCutter()


def _same(address: int) -> int:
    return address


RESPONDERS: Final[dict[str, Responder]] = {
    r.name: r
    for r in (
        Responder("pace", "ascii", respond_pace, 16, _same),
        Responder("seplos", "ascii", seplos.DIALECT.respond, seplos.MAX_PACKS, seplos.bus_address),
        Responder(
            "pylontech", "ascii", pylontech.DIALECT.respond, pylontech.MAX_PACKS,
            pylontech.bus_address,
        ),
        Responder("eg4", "ascii", eg4.DIALECT.respond, eg4.MAX_PACKS, eg4.bus_address),
        Responder(
            "pace_modbus", "modbus", pace_modbus.DIALECT.respond, pace_modbus.MAX_PACKS, _same
        ),
        Responder("seplos_v3", "modbus", seplos_v3.respond, seplos_v3.MAX_PACKS, _same),
    )
}  # fmt: skip
"""Dialect name (the :data:`...dialects.DIALECTS` keys) -> its responder."""
DEFAULT_DIALECT: Final = "pace"


def responder(name: str) -> Responder:
    """The responder of dialect ``name``; :class:`ValueError` for one the simulator lacks."""
    try:
        return RESPONDERS[name]
    except KeyError:
        raise ValueError(
            f"the simulator speaks no dialect {name!r}; it speaks {', '.join(RESPONDERS)}"
        ) from None
