"""LiFePO4 cells: the open-circuit voltage curve, both ways.

One curve for the whole project: the simulator's cells follow it, and the Home Assistant side
reads it backwards to put a pack's voltage thresholds (full charge, under-voltage) on the
state-of-charge scale for the time-to-full and time-to-empty estimates. Rest voltages of one
cell at 25 °C; under load a cell sits above its curve while charging and below it while
discharging, so a threshold reached under load is reached a little before (charging) or after
(discharging) the point the curve gives. The thresholds sit on the steep ends of the curve,
where that difference is a fraction of a percent.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Final

OCV_CURVE: Final = (
    (0.00, 2.500), (0.02, 2.900), (0.05, 3.050), (0.10, 3.180), (0.20, 3.240), (0.30, 3.270),
    (0.40, 3.290), (0.50, 3.300), (0.60, 3.310), (0.70, 3.320), (0.80, 3.330), (0.90, 3.340),
    (0.95, 3.360), (0.98, 3.400), (1.00, 3.500),
)  # fmt: skip
"""(state of charge, open-circuit volts) of a LiFePO4 cell at 25 °C: flat 3.27-3.34 V plateau.

Strictly increasing in both columns, so it reads both ways."""


def _interpolate(points: tuple[tuple[float, float], ...], x: float) -> float:
    """Piecewise-linear ``y(x)`` through ``points`` (sorted by x), flat beyond both ends."""
    if x <= points[0][0]:
        return points[0][1]
    if x >= points[-1][0]:
        return points[-1][1]
    index = bisect_left(points, (x, float("-inf")))
    (x0, y0), (x1, y1) = points[index - 1], points[index]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


_BY_VOLTAGE: Final = tuple((volts, soc) for soc, volts in OCV_CURVE)


def open_circuit_voltage(soc: float) -> float:
    """Open-circuit volts of one cell at a state of charge between 0 and 1 (clamped)."""
    return _interpolate(OCV_CURVE, soc)


def state_of_charge(volts: float) -> float:
    """The state of charge (0 to 1) at which a resting cell shows ``volts`` (clamped)."""
    return _interpolate(_BY_VOLTAGE, volts)
