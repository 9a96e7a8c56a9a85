"""What the VER 0x20 dialect tests share: the reference frames, reply building and fuzzing.

The frames are tests/fixtures/frames-dialects.json (a copy of the team's reference set),
loaded once by :mod:`.reference_frames` (``FRAMES``, ``Entry`` and ``family`` are its). Each
entry's ``decoded_by_source`` holds values its source printed, ``decoded_per_layout`` values
decoded with the documented layouts; both are checked, the source's first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
import contextlib
import re
from typing import Any

from hypothesis import HealthCheck, settings, strategies as st
import pytest

from ress_bms.errors import BmsError
from ress_bms.frame import Frame, checksum, decode_frame

from .reference_frames import FRAMES, Entry, family

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def entry_id(entry: Entry) -> str:
    """A test id: the command, then the source's device or family."""
    return f"{entry['command']} ({entry['device'] or entry['family']})"


def reply(adr: int, cid1: int, info: bytes, *, ver: int = 0x20, rtn: int = 0) -> bytes:
    """A reply frame as a battery sends it (CR included)."""
    return Frame(ver, adr, cid1, rtn, info).encode()


def header(text: str) -> tuple[int, int, int, int, bytes]:
    """VER, ADR, CID1, CID2 and INFO of a frame read by hand (its checksum may be wrong)."""
    ver, adr, cid1, cid2 = (int(text[i : i + 2], 16) for i in range(1, 9, 2))
    return ver, adr, cid1, cid2, bytes.fromhex(text[13:-4])


def printed_and_correct(entry: Entry) -> tuple[str, str]:
    """The request as the source prints it, and as it must be on the wire.

    A request whose printed checksum is wrong (``checksum_ok`` false) must be refused by the
    codec; its note names the correct checksum, which our encoder must produce.
    """
    text: str = entry["request"]
    if entry.get("checksum_ok", True):
        decode_frame(text.encode())
        return text, text
    correct = re.search(r"correct (?:is )?([0-9A-F]{4})", entry["note"])
    assert correct, entry["note"]
    fixed = text[:-4] + correct[1]
    assert f"{checksum(fixed[1:-4].encode()):04X}" == correct[1]
    return text, fixed


def check_values(
    view: Mapping[str, Any], source: Mapping[str, Any], errata: Mapping[str, Any]
) -> int:
    """Compare every value of ``source`` to ``view``; return how many were compared.

    A key in ``errata`` is a value the source printed that its own bytes contradict: the
    decoder must give the erratum's value (what the bytes say), not the source's.
    """
    for key, expected in source.items():
        assert key in view, f"{key} is not checked"
        value = errata.get(key, expected)
        ours = view[key]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            assert ours == pytest.approx(value), key
        elif isinstance(value, list):
            assert list(ours) == pytest.approx(value), key
        else:
            assert ours == value, key
    return len(source)


def real_frames(entries: list[Entry]) -> list[bytes]:
    """Every request and response of ``entries`` whose checksum holds."""
    return [
        e[k].encode()
        for e in entries
        if e.get("checksum_ok", True)
        for k in ("request", "response")
        if e[k]
    ]


def mutated(raw: bytes, data: st.DataObject) -> bytes:
    """``raw`` with 1-4 hex digits changed and maybe a cut, reframed with a valid checksum."""
    body = bytearray(raw[1:-4])
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(body) - 1))
        body[index] = data.draw(st.sampled_from(b"0123456789ABCDEF"))
    if data.draw(st.booleans()):
        cut = data.draw(st.integers(0, len(body)))
        body = body[:cut] + body[cut + data.draw(st.integers(0, 6)) :]
    return b"~" + bytes(body) + b"%04X" % checksum(bytes(body))


def only_typed_errors(decoders: list[Callable[[Any], object]], reply_value: Any) -> None:
    """Every decoder either decodes ``reply_value`` or raises a :class:`BmsError`."""
    for decode in decoders:
        with contextlib.suppress(BmsError):
            decode(reply_value)


__all__ = [  # with the loader's names, which the dialect tests import from here
    "FRAMES",
    "FUZZ",
    "Entry",
    "check_values",
    "entry_id",
    "family",
    "header",
    "mutated",
    "only_typed_errors",
    "printed_and_correct",
    "real_frames",
    "reply",
]
