"""Every protocol a rack battery of this kind may speak: one module per dialect.

Each module holds its commands and field tables and decodes into the library's shared typed
values; :mod:`.base` holds what they share. :data:`DIALECTS` lists them by name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from . import eg4, pace, pace_modbus, pylontech, seplos, seplos_v3
from .base import Capability, DialectInfo, MultiPack, Reader

DIALECTS: Final[dict[str, DialectInfo]] = {
    info.name: info
    for info in (
        pace.INFO,
        seplos.INFO,
        pylontech.INFO,
        eg4.INFO,
        pace_modbus.INFO,
        seplos_v3.INFO,
    )
}
"""Every dialect by name, in the order detection tries them (dialects.md 7.2: at 9600 PACE,
Seplos V2, Pylontech, then EG4, whose slow reply needs the longest wait; then Modbus: PACE
Modbus at 9600, Seplos V3 at 19200)."""

READERS: Final[dict[str, Callable[[], Reader]]] = {
    seplos.INFO.name: seplos.SeplosReader,
    pylontech.INFO.name: pylontech.PylontechReader,
    eg4.INFO.name: eg4.Eg4Reader,
    pace_modbus.INFO.name: pace_modbus.PaceModbusReader,
    seplos_v3.INFO.name: seplos_v3.SeplosV3Reader,
}
"""A fresh reader per stack for the dialects read pack by pack through :mod:`.base`'s
:class:`~.base.Reader`. PACE 0x25 has none: :class:`~..client.StackClient` speaks it itself
(broadcast, relay and direct polls, parameters, controls, history)."""

__all__ = ["DIALECTS", "READERS", "Capability", "DialectInfo", "MultiPack", "Reader"]
