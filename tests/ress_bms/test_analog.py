"""42H analog values: block walking, extension lengths, offline packs, temperatures."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ress_bms.analog import PackAnalog, build_extension, decode_analog, encode_analog
from ress_bms.errors import DecodeError
from ress_bms.frame import decode_frame

JAKIPER = (
    b"~25014600F07A0001100CC70CC80CC70CC70CC70CC50CC60CC70CC70CC60CC70CC60CC60CC70CC60CC7060B9B"
    b"0B990B990B990BB30BBCFF1FCCCD12D303286A008C2710E1E4"
)


def _pack(address: int = 1, ext: bytes = b"", cells: int = 16, temps: int = 6) -> PackAnalog:
    return PackAnalog(
        address,
        online=True,
        cell_voltages=tuple(3.3 + i / 1000 for i in range(cells)),
        temperatures=tuple(20.0 + i for i in range(temps)),
        current=-12.34,
        voltage=52.8,
        remaining_capacity=80.0,
        full_capacity=100.0,
        design_capacity=100.0,
        cycles=42,
        extension=ext,
    )


def test_real_capture_decodes_to_the_reported_values() -> None:
    """nkinnan's Jakiper JK48V100 sample as the reference decodes it."""
    pack = decode_analog(decode_frame(JAKIPER).info, 1).packs[0]
    assert pack.online
    assert len(pack.cell_voltages) == 16
    assert pack.cell_voltages[0] == 3.271
    assert pack.cell_temperatures == (24.1, 23.9, 23.9, 23.9)
    assert pack.mos_temperature == 26.5
    assert pack.environment_temperature == 27.4
    assert pack.current == -2.25
    assert pack.voltage == 52.429
    assert pack.power == pytest.approx(-117.97)
    assert (pack.remaining_capacity, pack.full_capacity, pack.design_capacity) == (
        48.19, 103.46, 100.0,
    )  # fmt: skip
    assert pack.cycles == 140
    assert pack.soc_source == "computed"
    assert pack.soc == 46.6  # 48.19 / 103.46
    assert pack.soh == 100.0  # full above design is capped, as nkinnan does
    assert pack.soh_source == "computed"


@pytest.mark.parametrize("length", [0, 1, 10, 14, 22])
def test_every_extension_length_round_trips(length: int) -> None:
    ext = build_extension(length, soc=87, soh=95, voltage=52.8, current=-12.34)
    info = encode_analog([_pack(ext=ext)], 1)
    pack = decode_analog(info, 1).packs[0]
    assert pack.extension == ext
    assert pack.soc == (87 if length >= 1 else 80.0)
    assert pack.soc_source == ("bms" if length >= 1 else "computed")
    assert pack.soh == (95 if length >= 10 else 100.0)
    assert pack.soh_source == ("bms" if length >= 10 else "computed")


@pytest.mark.parametrize("length", [0, 1, 10, 14, 22, 5])
def test_broadcast_reply_is_walked_block_by_block(length: int) -> None:
    """One extension length fits all blocks; cell counts may differ between packs."""
    ext = build_extension(length, soc=50, soh=99)
    packs = [_pack(1, ext), _pack(2, ext, cells=15), _pack(3, ext, temps=4)]
    reply = decode_analog(encode_analog(packs, 0xFF), 0xFF)
    assert [p.address for p in reply.packs] == [1, 2, 3]
    assert [len(p.cell_voltages) for p in reply.packs] == [16, 15, 16]
    assert reply.packs[2].temperatures == (20.0, 21.0, 22.0, 23.0)
    assert all(p.extension == ext for p in reply.packs)


def test_offline_slave_is_zero_filled_and_reported_offline() -> None:
    ext = build_extension(14, soc=98, soh=100)
    packs = [_pack(1, ext), PackAnalog.offline(2), _pack(3, ext)]
    info = encode_analog(packs, 0xFF)
    assert b"\x0a\xaa" in info  # offline temperatures are 0x0AAA (0 °C)
    reply = decode_analog(info, 0xFF)
    assert [p.online for p in reply.packs] == [True, False, True]
    assert reply.packs[1].voltage == 0  # the block says 0 V; `online` tells not to publish it


def test_absent_temperature_sensor() -> None:
    pack = _pack()
    pack = replace(pack, temperatures=(20.0, None, 21.0, 22.0, 30.0, None))
    decoded = decode_analog(encode_analog([pack], 1), 1).packs[0]
    assert decoded.cell_temperatures == (20.0, None, 21.0, 22.0)
    assert decoded.environment_temperature is None


@pytest.mark.parametrize(
    ("count", "cells", "mos", "env"),
    [(4, 4, None, None), (5, 4, 24.0, None), (6, 4, 24.0, 25.0), (8, 6, 26.0, 27.0)],
)
def test_temperature_roles_by_count(count: int, cells: int, mos: float | None,
                                    env: float | None) -> None:  # fmt: skip
    pack = _pack(temps=count)
    assert len(pack.cell_temperatures) == cells
    assert pack.mos_temperature == mos
    assert pack.environment_temperature == env


def test_soc_from_extension_above_100_is_not_trusted() -> None:
    pack = _pack(ext=build_extension(1, soc=0xFF, soh=0))
    assert pack.soc_source == "computed"


@pytest.mark.parametrize(
    "info",
    [b"", b"\x00", b"\x00\x00", b"\x00\x01\x10", b"\x00\x02" + bytes(41)],
)
def test_malformed_payloads_raise_decode_error(info: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_analog(info, 0xFF)


def test_reply_for_another_pack_is_rejected() -> None:
    """A late reply to "pack 2" must not be taken as the answer for pack 3."""
    info = encode_analog([_pack(2)], 2)
    with pytest.raises(DecodeError, match="pack 2"):
        decode_analog(info, 3)


def test_mixed_extension_lengths_cannot_be_encoded() -> None:
    with pytest.raises(ValueError, match="extension"):
        encode_analog([_pack(1, b"\x01"), _pack(2)], 0xFF)
    with pytest.raises(ValueError, match="extension length"):
        build_extension(23, soc=1, soh=1)
