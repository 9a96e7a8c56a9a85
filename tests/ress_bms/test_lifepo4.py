"""The LiFePO4 curve: the simulator's cells and the time estimates read the same one."""

from __future__ import annotations

import itertools

import pytest

from ress_bms.lifepo4 import OCV_CURVE, open_circuit_voltage, state_of_charge
from ress_bms.simulator import physics


def test_the_simulator_uses_this_curve() -> None:
    assert physics.open_circuit_voltage is open_circuit_voltage


@pytest.mark.parametrize(("soc", "volts"), OCV_CURVE)
def test_points_read_both_ways(soc: float, volts: float) -> None:
    assert open_circuit_voltage(soc) == pytest.approx(volts)
    assert state_of_charge(volts) == pytest.approx(soc)


def test_between_points_and_beyond_the_ends() -> None:
    assert open_circuit_voltage(0.01) == pytest.approx(2.7)
    assert state_of_charge(2.7) == pytest.approx(0.01)
    assert state_of_charge(3.45) == pytest.approx(0.99)
    assert state_of_charge(2.0) == 0.0
    assert state_of_charge(3.65) == 1.0
    assert open_circuit_voltage(-1) == 2.5
    assert open_circuit_voltage(2) == 3.5
    for low, high in itertools.pairwise(OCV_CURVE):
        assert low[0] < high[0] and low[1] < high[1]
