"""Every protocol a rack battery of this kind may speak: one module per dialect.

Each module holds its commands and field tables and decodes into the library's shared typed
values; :mod:`.base` holds what they share. :data:`DIALECTS` lists them by name.
"""

from __future__ import annotations

from typing import Final

from . import pace
from .base import Capability, DialectInfo, MultiPack

DIALECTS: Final[dict[str, DialectInfo]] = {info.name: info for info in (pace.INFO,)}
"""Every dialect by name, in the order detection tries them."""

__all__ = ["DIALECTS", "Capability", "DialectInfo", "MultiPack"]
