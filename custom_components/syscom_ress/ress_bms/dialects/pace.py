"""PACE "paceic" VER 0x25: the dialect the integration was built on.

Its codecs are the library's own modules (:mod:`..analog` 42H, :mod:`..status` 44H,
:mod:`..device`, :mod:`..params`, :mod:`..control`, :mod:`..history`), used by
:class:`~..client.StackClient` as they are; this module says what the dialect is and can do.
"""

from __future__ import annotations

from typing import Final

from ..frame import VER_PACE
from ..framing import ASCII
from .base import Capability, DialectInfo, MultiPack

VER: Final = VER_PACE

READ_COMMANDS: Final = frozenset({0x42, 0x44, 0x90, 0xC1, 0xC2})
"""The reads detection may send a device that may not be PACE (dialects.md 7.1: 42H and 44H
read in every ASCII dialect; 90H, C1H and C2H are PACE-only reads and no write anywhere)."""

INFO: Final = DialectInfo(
    name="pace",
    title="PACE VER 0x25",
    framing=ASCII,
    baudrates=(9600, 19200),
    capabilities=frozenset(Capability),
    multipack=MultiPack.MASTER_RELAY,
    brands=("Syscom RESS (most likely)", "Jakiper", "Easun", "PACE-BMS rack batteries"),
    version=VER,
    reads=READ_COMMANDS,
)
