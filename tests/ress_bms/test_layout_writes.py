"""write_fields and encode_registers (what the simulator answers with) refuse a value that does
not fit its layout instead of sending it wrapped or cut: a simulated reply is always one the
documents allow, and a slip in the simulator fails loud.
"""

from __future__ import annotations

from typing import Any

import pytest

from ress_bms.dialects.base import Field, Register, encode_registers, read_fields, write_fields

LAYOUT = (
    Field("cells", "u8"),
    Field("cell_voltages", "u16", scale=0.001, count="cells", digits=3),
    Field("current", "i16", scale=0.01, digits=2),
    Field("pair", "u8", count=2),
    Field("name", "text", size=4),
    Field("tag", "raw", size=2),
)
GOOD: dict[str, Any] = {
    "cell_voltages": (3.3, 3.301),
    "current": -1.5,
    "pair": (1, 2),
    "name": "AB",
    "tag": b"\x01\x02",
}


def test_the_count_comes_from_the_run_and_reads_back() -> None:
    data = write_fields(LAYOUT, GOOD)
    values, end = read_fields(LAYOUT, data)
    assert values == GOOD | {"cells": 2}
    assert end == len(data) == 1 + 4 + 2 + 2 + 4 + 2


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"current": 400.0}, ValueError, "current: 40000 does not fit i16"),
        ({"pair": (1, 256)}, ValueError, "pair: 256 does not fit u8"),
        ({"current": "1.5"}, TypeError, "current: '1.5' is not a number"),
        ({"name": "ABCDE"}, ValueError, "name: 'ABCDE' does not fit 4 bytes"),
        ({"tag": b"\x01"}, ValueError, "tag: 1 bytes, the layout has 2"),
        ({"pair": 1}, TypeError, "pair: a counted field takes a tuple"),
        ({"pair": (1, 2, 3)}, ValueError, "pair: 3 values, the layout has 2"),
        ({"cell_voltages": 3.3}, TypeError, "cell_voltages: not a counted run"),
    ],
)
def test_a_value_that_does_not_fit_is_refused(
    change: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        write_fields(LAYOUT, GOOD | change)


def test_a_missing_value_is_named() -> None:
    with pytest.raises(KeyError, match="current"):
        write_fields(LAYOUT, {k: v for k, v in GOOD.items() if k != "current"})


TABLE = (
    Register("voltage", 0x10, "u32", scale=0.01, word_order="low_first"),
    Register("cells", 0x12, count=2),
    Register("name", 0x14, "text", count=2),
    Register("current", 0x16, "i16", scale=0.01),
)


def test_only_the_values_named_are_encoded() -> None:
    words = encode_registers(TABLE, {"voltage": 53.24, "name": "SP"})
    assert words == {0x10: 5324, 0x11: 0, 0x14: int.from_bytes(b"SP"), 0x15: 0}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"name": "SEPLOS"}, "name: 'SEPLOS' does not fit 4 bytes"),
        ({"cells": (3300,)}, r"cells: \(3300,\) is not 2 values"),
        ({"cells": 3300}, "cells: 3300 is not 2 values"),
        ({"current": 400.0}, "current: 40000 does not fit i16"),
    ],
)
def test_a_register_value_that_does_not_fit_is_refused(
    values: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        encode_registers(TABLE, values)
