"""Frame codec: checksums, lengths, validation, and cutting frames out of a byte stream."""

from __future__ import annotations

import pytest

from ress_bms.errors import ChecksumError, FrameError, ResponseError
from ress_bms.frame import Frame, FrameExtractor, checksum, decode_frame, encode_frame, length_field

ANALOG_REQUEST = b"~25014642E00201FD30\r"
OK_REPLY = b"~250046000000FDAF\r"


def test_checksum_matches_the_specification_example() -> None:
    # [PACE-2018] §2.4: the characters of "1203400456ABCEFE" give FC72 once corrected.
    assert checksum(b"1203400356ABCEFE") == 0xFC72


def test_length_checksum_matches_the_specification_example() -> None:
    assert length_field(0x012) == 0xD012  # [PACE-2018] §2.3.4
    assert length_field(0x04C) == 0x004C  # nibbles sum to 16: LCHKSUM 0, not a firmware bug
    assert length_field(0) == 0


@pytest.mark.parametrize("lenid", [-2, 3, 0x1000])
def test_length_field_rejects_impossible_lengths(lenid: int) -> None:
    with pytest.raises(FrameError):
        length_field(lenid)


def test_encode_request_as_sniffed_on_the_wire() -> None:
    assert encode_frame(0x25, 0x01, 0x46, 0x42, b"\x01") == ANALOG_REQUEST


def test_decode_fields_and_round_trip() -> None:
    frame = decode_frame(ANALOG_REQUEST)
    assert frame == Frame(0x25, 0x01, 0x46, 0x42, b"\x01")
    assert frame.encode() == ANALOG_REQUEST


def test_lower_case_hex_is_accepted() -> None:
    assert decode_frame(b"~25014642e00201fd30") == decode_frame(ANALOG_REQUEST)


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"25014642E00201FD30", FrameError),  # no SOI
        (b"~2501", FrameError),  # too short
        (b"~25014642E00201FD3G", FrameError),  # not hex
        (b"~25014642E00201FD300", FrameError),  # odd number of characters
        (b"~25014642E00201FD31", ChecksumError),
        (b"~25014642E0040100FD2D", ChecksumError),
    ],
)
def test_decode_rejects_malformed_frames(raw: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode_frame(raw)


def test_lenid_must_match_the_real_length() -> None:
    body = b"25014642E004" + b"01"  # LENID says 4 characters, INFO has 2
    raw = b"~" + body + b"%04X" % checksum(body)
    with pytest.raises(FrameError, match="LENID"):
        decode_frame(raw)


def test_wrong_lchksum_is_tolerated_and_reported() -> None:
    body = b"250146000002" + b"05"  # LENGTH 0002: LCHKSUM should be E
    frame = decode_frame(b"~" + body + b"%04X" % checksum(body))
    assert frame.info == b"\x05"
    assert frame.lchksum_ok is False


def test_return_code_is_a_typed_error() -> None:
    frame = decode_frame(b"~25004604" + b"0000" + b"%04X" % checksum(b"250046040000"))
    with pytest.raises(ResponseError, match="CID2 invalid") as err:
        frame.raise_for_rtn(0x42)
    assert err.value.code == 0x04
    decode_frame(OK_REPLY).raise_for_rtn()  # RTN 00 raises nothing


def test_extractor_skips_garbage_and_keeps_split_frames() -> None:
    extractor = FrameExtractor()
    assert extractor.feed(b"\x00\xffjunk~2501") == []
    assert extractor.pending == 5
    assert extractor.feed(b"4642E00201FD30\r") == [ANALOG_REQUEST]
    assert extractor.discarded == 6


def test_extractor_splits_glued_frames() -> None:
    extractor = FrameExtractor()
    assert extractor.feed(OK_REPLY + ANALOG_REQUEST + b"~25") == [OK_REPLY, ANALOG_REQUEST]
    assert extractor.pending == 3


def test_extractor_restarts_on_a_new_start_of_frame() -> None:
    """A truncated frame followed by a complete one: the complete one survives."""
    extractor = FrameExtractor()
    assert extractor.feed(b"~250146000" + OK_REPLY) == [OK_REPLY]
    assert extractor.discarded == 10


def test_extractor_drops_an_endless_frame() -> None:
    extractor = FrameExtractor()
    assert extractor.feed(b"~" + b"0" * 5000) == []
    assert extractor.pending == 0
    assert extractor.feed(OK_REPLY) == [OK_REPLY]


def test_extractor_clear_drops_a_partial_frame() -> None:
    extractor = FrameExtractor()
    extractor.feed(b"~2501")
    assert extractor.clear() == 5
    assert extractor.feed(b"4642E00201FD30\r") == []


def test_extractor_counts_what_a_begun_frame_still_needs() -> None:
    """From the header on, the LENGTH says how many characters are still to come."""
    frame = encode_frame(0x25, 1, 0x46, 0x00, b"AB" * 40)  # 80 INFO characters
    extractor = FrameExtractor()
    extractor.feed(frame[:12])
    assert extractor.awaited == 0  # LENGTH not complete yet: unknown
    extractor.feed(frame[12:30])
    assert extractor.awaited == len(frame) - 30
    assert extractor.feed(frame[30:]) == [frame]
    assert extractor.awaited == 0
    extractor.feed(b"~25014600ZZZZ")  # a header whose LENGTH is not hex: garbage, unknown
    assert extractor.awaited == 0
