"""The simulated stack refuses shapes no rack has, names a missing pack, and never discharges
a pack below its cut-off: what a test building a stack can rely on."""

from __future__ import annotations

import pytest

from ress_bms.simulator.stack import DISCHARGE_CUTOFF_SOC, MAX_PACKS, Stack


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"packs": 0}, f"a stack holds 1 to {MAX_PACKS} packs, not 0"),
        ({"packs": MAX_PACKS + 1}, f"a stack holds 1 to {MAX_PACKS} packs, not {MAX_PACKS + 1}"),
        ({"packs": 1, "cells": 3}, "a pack holds 4 to 16 cells, not 3"),
        ({"packs": 1, "cells": 17}, "a pack holds 4 to 16 cells, not 17"),
        ({"packs": 1, "step": 0.0}, "the physics step must be positive"),
    ],
)
def test_a_stack_no_rack_has_is_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Stack(**kwargs)  # type: ignore[arg-type]


def test_a_missing_pack_is_named() -> None:
    stack = Stack(2)
    assert stack.pack(2).address == 2
    with pytest.raises(KeyError, match="no pack at address 3"):
        stack.pack(3)
    assert repr(stack).startswith("Stack(2 packs, ")


def test_a_pack_at_its_cut_off_is_not_discharged_the_others_are() -> None:
    stack = Stack(2)
    stack.load = lambda time_of_day: -40.0
    stack.pack(1).physics.soc = DISCHARGE_CUTOFF_SOC - 5
    stack.pack(2).physics.soc = 60.0
    stack.advance(5)
    assert stack.pack(1).physics.current == pytest.approx(0.0, abs=0.05)
    assert stack.pack(1).physics.soc == pytest.approx(DISCHARGE_CUTOFF_SOC - 5, abs=0.01)
    assert stack.pack(2).physics.current < -1
    assert stack.pack(2).physics.soc < 60.0
