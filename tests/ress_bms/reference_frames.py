"""The team's reference frames of the dialects other than PACE, loaded once for every test.

tests/fixtures/frames-dialects.json is a copy of the reference set (``meta`` says how it was
made). Each entry has ``family``, ``command``, ``request`` and ``response`` (ASCII text from
``~`` to the checksum, or Modbus hex with its CRC), ``decoded_by_source`` (values its source
printed) and ``decoded_per_layout`` (values decoded with the layouts of dialects.md).
"""

from __future__ import annotations

from collections.abc import Sequence
import json
from pathlib import Path
from typing import Any

type Entry = dict[str, Any]

PATH = Path(__file__).parents[1] / "fixtures" / "frames-dialects.json"
FRAMES: list[Entry] = json.loads(PATH.read_text())["frames"]


def family(prefix: str) -> list[Entry]:
    """Every entry of the families whose name starts with ``prefix``, in file order."""
    return [f for f in FRAMES if f["family"].startswith(prefix)]


def entry(prefix: str, entries: Sequence[Entry] = FRAMES) -> Entry:
    """The one entry of ``entries`` whose command starts with ``prefix``."""
    found = [f for f in entries if f["command"].startswith(prefix)]
    assert len(found) == 1, (prefix, [f["command"] for f in found])
    return found[0]
