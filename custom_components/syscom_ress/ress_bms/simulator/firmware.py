"""Firmware profiles: the ways real PACE firmware differs on the wire.

Every difference the reference documents (docs/protocol.md, "42H" and "44H") is one field here:
the length of the 42H extension after the design capacity, the "P" byte, how many V3.1 trailing
status bytes a 44H block carries, how A1H says "no more records", and the LCHKSUM bug.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final, Literal

type HistoryEnd = Literal["empty", "rtn07"]


@dataclass(frozen=True, slots=True)
class FirmwareProfile:
    """What one firmware sends: sizes and quirks, not behaviour."""

    name: str
    extension: int
    """Bytes after the design capacity in a 42H block: 0, 1, 10, 14 (or 22, the full V3.1)."""
    user_defined_count: int
    """The 42H "P" byte this firmware sends (never trusted by the decoder)."""
    status_extras: int
    """V3.1 trailing status bytes per 44H block (0..5)."""
    history_end: HistoryEnd
    """A1H past the last record: an empty OK reply, or RTN 07 "no data"."""
    version: str
    """C1H software/hardware version, ``{cells}`` replaced by the cell count."""
    lchksum_bug: bool = False
    """Send a wrong LCHKSUM nibble (the "forgot the +1" bug) on every reply; CHKSUM stays right."""
    echo_one: bool = False
    """One-pack 42H/44H replies echo pack 01 whatever pack was asked for ("01 or FF both work"
    for a pack that answers for itself, [PACE-2018] §4.2): the client must learn it, not assume."""

    def with_changes(self, **changes: object) -> FirmwareProfile:
        """A copy with some fields changed (command-line overrides)."""
        return replace(self, **changes)  # type: ignore[arg-type]


PROFILES: Final[dict[str, FirmwareProfile]] = {
    profile.name: profile
    for profile in (
        # The 2018 specification and the Jakiper capture: no extension, P=3, 9 status bytes.
        FirmwareProfile("pace-2018", 0, 3, 0, "empty", "P{cells}S100A-1812-1.00"),
        # Easun P=9 firmware (LENID 0x096, 44H LENID 0x04E): 14-byte extension, one extra byte.
        FirmwareProfile("easun-p9", 14, 9, 1, "rtn07", "P{cells}S100A-32117-1.00"),
        # nkinnan issue #30 packs: SOC byte only, one extra status byte.
        FirmwareProfile("ext1", 1, 2, 1, "empty", "P{cells}S100A-21606-1.01"),
        # bmspace issue #23: SOC, cumulative capacities, SOH.
        FirmwareProfile("ext10", 10, 2, 0, "rtn07", "P{cells}S100A-11570-2.00"),
        # The whole V3.1 layout: seen in the specification only.
        FirmwareProfile("v3.1-full", 22, 9, 5, "rtn07", "P{cells}S100A-24617-3.10"),
    )
}
DEFAULT_PROFILE: Final = "pace-2018"


def profile(name: str) -> FirmwareProfile:
    """The named profile; raises ``KeyError`` listing the known names."""
    try:
        return PROFILES[name]
    except KeyError:
        raise KeyError(f"unknown firmware profile {name!r}; known: {', '.join(PROFILES)}") from None
