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

INFO: Final = DialectInfo(
    name="pace",
    title="PACE VER 0x25",
    framing=ASCII,
    baudrates=(9600, 19200),
    capabilities=frozenset(Capability),
    multipack=MultiPack.MASTER_RELAY,
    brands=("Syscom RESS (most likely)", "Jakiper", "Easun", "PACE-BMS rack batteries"),
)
