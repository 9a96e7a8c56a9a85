"""The electrochemistry and heat of one pack, simple enough to reason about in tests.

Cell voltage = LiFePO4 open-circuit voltage (the curve of :mod:`..lifepo4`) at the cell's own
state of charge + current x internal resistance + a fixed per-cell reading offset + small noise.
Each cell carries a charge offset against the pack (the imbalance passive balancing works on).
Temperatures relax exponentially towards ambient plus a heating term in current squared. Load
profiles say what the inverter would draw or push; the BMS decides what actually flows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
import math
import random
from typing import Final

from ..lifepo4 import open_circuit_voltage

CELL_RESISTANCE: Final = 0.0008
"""Ohms per cell (a 100 Ah prismatic cell plus its busbar): 100 A moves a cell by 80 mV."""
NOISE_VOLTS: Final = 0.0006
BALANCE_CURRENT: Final = 0.1
"""Amperes bled through a balancing resistor."""
CELL_HEATING: Final = 6e-4
"""Kelvin of steady-state cell rise per A² (100 A: +6 K)."""
MOS_HEATING: Final = 1.5e-3
"""Kelvin of steady-state MOSFET rise per A² (100 A: +15 K)."""
CELL_TAU: Final = 900.0
MOS_TAU: Final = 60.0
ENVIRONMENT_TAU: Final = 300.0
CELL_SENSORS: Final = 4
"""T1-T4 are cell sensors; T5 is the MOSFET, T6 the environment ([PACE-2018] A.12)."""


def _relax(value: float, target: float, dt: float, tau: float) -> float:
    return target + (value - target) * math.exp(-dt / tau)


@dataclass(slots=True)
class Cell:
    """One cell: its imbalance, its resistance, and what the BMS last measured."""

    charge_offset: float
    """Ampere-hours above (+) or below (-) the pack's remaining capacity."""
    resistance: float
    reading_offset: float
    """A fixed error of this cell's voltage channel, in volts."""
    voltage: float = 0.0


class PackPhysics:
    """Charge, cell voltages and temperatures of one pack."""

    def __init__(
        self,
        cells: int,
        rng: random.Random,
        *,
        design_capacity: float = 100.0,
        soc: float = 50.0,
        ambient: float = 25.0,
    ) -> None:
        self.rng = rng
        self.design_capacity = design_capacity
        self.full_capacity = round(design_capacity * rng.uniform(0.97, 1.0), 2)
        self.remaining = self.full_capacity * soc / 100
        self.cycles_at_start = rng.randrange(0, 200)
        self.discharged = 0.0
        """Ah discharged since start (cycle count and the V3.1 cumulative counters)."""
        self.charged = 0.0
        self.current = 0.0
        """Amperes flowing now, positive while charging (the BMS's convention)."""
        self.ambient = ambient
        self.cells = [
            Cell(rng.uniform(-0.4, 0.4), CELL_RESISTANCE * rng.uniform(0.95, 1.05),
                 rng.uniform(-0.002, 0.002))
            for _ in range(cells)
        ]  # fmt: skip
        self.sensor_offsets = [rng.uniform(-0.3, 0.3) for _ in range(CELL_SENSORS + 2)]
        self.cell_temperatures = [ambient + o for o in self.sensor_offsets[:CELL_SENSORS]]
        self.mos_temperature = ambient + 2.0
        self.environment_temperature = ambient + 1.0
        self.forced_temperatures: dict[int, float] = {}
        """Sensor index -> °C held there by a test (0-3 cells, 4 MOS, 5 environment)."""
        self.measure(0.0)

    @property
    def soc(self) -> float:
        """State of charge in percent."""
        return 100 * self.remaining / self.full_capacity if self.full_capacity else 0.0

    @soc.setter
    def soc(self, percent: float) -> None:
        self.remaining = self.full_capacity * min(max(percent, 0.0), 100.0) / 100
        self.measure(self.current)

    @property
    def soh(self) -> float:
        """State of health in percent: full over design capacity."""
        return min(100.0, 100 * self.full_capacity / self.design_capacity)

    @property
    def cycles(self) -> int:
        """Cycle count: the start value plus one per full capacity discharged."""
        return self.cycles_at_start + int(self.discharged / self.full_capacity)

    @property
    def voltage(self) -> float:
        """Pack voltage: the sum of the measured cell voltages."""
        return self._voltage

    @property
    def highest_cell(self) -> float:
        """The highest measured cell voltage."""
        return self._highest

    @property
    def lowest_cell(self) -> float:
        """The lowest measured cell voltage."""
        return self._lowest

    @property
    def cell_voltages(self) -> list[float]:
        """Measured cell voltages (a copy)."""
        return list(self._cell_voltages)

    @property
    def temperatures(self) -> list[float]:
        """T1-T4 cells, T5 MOSFET, T6 environment, °C."""
        values = [*self.cell_temperatures, self.mos_temperature, self.environment_temperature]
        for index, value in self.forced_temperatures.items():
            values[index] = value
        return values

    def open_circuit_voltage(self) -> float:
        """The pack's voltage with no current flowing."""
        return sum(open_circuit_voltage(self._cell_soc(cell)) for cell in self.cells)

    def charge_acceptance(self, target_voltage: float) -> float:
        """Largest charge current a constant-voltage charger at ``target_voltage`` would push."""
        resistance = sum(cell.resistance for cell in self.cells)
        return max(0.0, (target_voltage - self.open_circuit_voltage()) / resistance)

    def _cell_soc(self, cell: Cell) -> float:
        return (self.remaining + cell.charge_offset) / self.full_capacity

    def step(self, dt: float, current: float, balancing: Sequence[int] = ()) -> None:
        """Let ``current`` flow for ``dt`` seconds with ``balancing`` cells (1-based) bleeding."""
        ah = current * dt / 3600
        self.remaining = min(max(self.remaining + ah, 0.0), self.full_capacity)
        if ah > 0:
            self.charged += ah
        else:
            self.discharged -= ah
        for number in balancing:
            self.cells[number - 1].charge_offset -= BALANCE_CURRENT * dt / 3600
        square = current * current
        self.cell_temperatures = [
            _relax(t, self.ambient + offset + CELL_HEATING * square, dt, CELL_TAU)
            for t, offset in zip(self.cell_temperatures, self.sensor_offsets, strict=False)
        ]
        self.mos_temperature = _relax(
            self.mos_temperature, self.ambient + 2.0 + MOS_HEATING * square, dt, MOS_TAU
        )
        self.environment_temperature = _relax(
            self.environment_temperature, self.ambient + 1.0, dt, ENVIRONMENT_TAU
        )
        self.measure(current)

    def measure(self, current: float) -> None:
        """Sample the cell voltages as the BMS would, with ``current`` flowing."""
        self.current = current
        gauss = self.rng.gauss
        for cell in self.cells:
            cell.voltage = (
                open_circuit_voltage(self._cell_soc(cell))
                + current * cell.resistance
                + cell.reading_offset
                + gauss(0.0, NOISE_VOLTS)
            )
        voltages = self._cell_voltages = [cell.voltage for cell in self.cells]
        self._voltage = sum(voltages)
        self._highest, self._lowest = max(voltages), min(voltages)


type LoadProfile = Callable[[float], float]
"""Seconds since midnight -> amperes one pack is asked for (+ charge, - discharge)."""


def idle_profile(_time_of_day: float) -> float:
    """Nothing connected: no current at all."""
    return 0.0


SOLAR_PEAK: Final = 26.0
"""Amperes per pack the panels push at solar noon on a clear day (3 packs: about 4 kW)."""
HOUSE_LOAD: Final = (
    (0.0, 2.5),  # the night: fridge, router, standby (about 130 W per pack)
    (6.5, 5.0),  # breakfast, showers
    (8.5, 3.0),  # the day
    (12.0, 4.5),  # lunch
    (13.5, 3.0),
    (17.5, 7.5),  # cooking, lights, the television
    (21.0, 4.5),
    (23.0, 2.5),
)
"""(hour, amperes per pack) from that hour on: what a household draws through the day."""


def solar_day_profile(time_of_day: float) -> float:
    """A house with solar on a fair day: panels from 7 to 19 h, a few clouds, a household load.

    Over a day the panels bring about twice what the house uses, so the packs fill by early
    afternoon (the inverter's charge then tapers), carry the evening and the night, and are
    still near half full when the sun comes back: a day that repeats, never near a protection.
    """
    hour = time_of_day / 3600 % 24
    solar = 0.0
    if 7 <= hour <= 19:
        clear = SOLAR_PEAK * math.sin(math.pi * (hour - 7) / 12)
        # Passing clouds: a few dips in the afternoon, the same every day (deterministic).
        clouds = 1.0 - 0.35 * max(0.0, math.sin(math.pi * hour * 1.7)) * (hour > 11.5)
        solar = clear * clouds
    load = next(amps for start, amps in reversed(HOUSE_LOAD) if hour >= start)
    return round(solar - load, 2)


STRESS_CYCLE: Final = (
    (60, -95.0),
    (10, -115.0),
    (60, 95.0),
    (10, 0.0),
    (60, -60.0),
    (60, 60.0),
    (40, 0.0),
)
"""(seconds, amperes): hard discharge, a spike past the discharge alarm, hard charge, rests."""


def stress_profile(time_of_day: float) -> float:
    """Hard charge and discharge with a spike past the discharge over-current alarm."""
    period = sum(seconds for seconds, _ in STRESS_CYCLE)
    position = time_of_day % period
    for seconds, amperes in STRESS_CYCLE:
        if position < seconds:
            return amperes
        position -= seconds
    return 0.0


LOAD_PROFILES: Final[dict[str, LoadProfile]] = {
    "idle": idle_profile,
    "solar-day": solar_day_profile,
    "stress": stress_profile,
}
