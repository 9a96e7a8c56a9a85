"""Arbitrary bytes and mutations of real frames raise only the library's typed errors."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st

from ress_bms import analog, control, device, history, params, status
from ress_bms.cli import CliError, decode_text
from ress_bms.errors import BmsError
from ress_bms.frame import FrameExtractor, checksum, decode_frame

FRAMES = json.loads((Path(__file__).parent.parent / "fixtures" / "frames.json").read_text())
REAL = [
    f[k].encode()
    for f in FRAMES["frames"]
    if not f["family"].startswith("NOT")
    for k in ("request", "response")
    if f[k]
]
DECODERS = [
    lambda i: analog.decode_analog(i, 0xFF),
    lambda i: analog.decode_analog(i, 1),
    lambda i: status.decode_status(i, 0xFF),
    lambda i: status.decode_status(i, 2),
    device.decode_pack_count,
    device.decode_version,
    device.decode_serials,
    device.decode_capacities,
    device.decode_clock,
    lambda i: history.decode_history(i, 0),
    control.decode_control,
    control.decode_mos,
    *(group.decode for group in params.GROUPS),
]
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _reframe(body: bytes) -> bytes:
    """A frame with a valid checksum around a mutated body, so decoders see the mutation."""
    return b"~" + body + b"%04X" % checksum(body.upper())


@FUZZ
@given(st.binary(max_size=400))
def test_arbitrary_bytes(data: bytes) -> None:
    extractor = FrameExtractor()
    for raw in extractor.feed(data):
        with contextlib.suppress(BmsError):
            decode_frame(raw)
    for decode in DECODERS:
        with contextlib.suppress(BmsError):
            decode(data)


@FUZZ
@given(st.sampled_from(REAL), st.data())
def test_mutated_real_frames(raw: bytes, data: st.DataObject) -> None:
    body = bytearray(raw[1:-4])
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(body) - 1))
        body[index] = data.draw(st.sampled_from(b"0123456789ABCDEF"))
    if data.draw(st.booleans()):
        cut = data.draw(st.integers(0, len(body)))
        body = body[:cut] + body[cut + data.draw(st.integers(0, 6)) :]
    mutated = _reframe(bytes(body))
    try:
        frame = decode_frame(mutated)
    except BmsError:
        return
    for decode in DECODERS:
        with contextlib.suppress(BmsError):
            decode(frame.info)
    for command in (0x42, 0x44, 0x90, 0xC1, 0xC2, 0xA6, 0xB1, 0xA1, 0x99, 0x9A, 0xD1, 0xE3):
        with contextlib.suppress(BmsError, CliError):
            decode_text(mutated.decode(), command)
