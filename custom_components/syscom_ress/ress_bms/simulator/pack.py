"""One simulated pack: identity (address, version, serials, clock), physics and BMS together."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
import random
from typing import Final

from ..analog import PackAnalog, build_extension
from ..device import Capacities
from ..status import PackStatus, status_bytes
from .bms import IDLE_CURRENT, Bms
from .firmware import FirmwareProfile
from .physics import CELL_SENSORS, PackPhysics

TEMPERATURE_SENSORS: Final = CELL_SENSORS + 2


class Pack:
    """A pack at one DIP address: what the tests drive and the protocol layer reads."""

    def __init__(
        self,
        address: int,
        cells: int,
        rng: random.Random,
        firmware: FirmwareProfile,
        clock: Callable[[], datetime],
        *,
        soc: float = 50.0,
        ambient: float = 25.0,
        design_capacity: float = 100.0,
    ) -> None:
        self.address = address
        self.cells = cells
        self.firmware = firmware
        self.physics = PackPhysics(
            cells, rng, design_capacity=design_capacity, soc=soc, ambient=ambient
        )
        self.bms = Bms(self.physics, cells, self.now, firmware.status_extras)
        self.version = firmware.version.format(cells=cells)
        self.bms_serial = f"{rng.randrange(10**14, 10**15)}"
        self.pack_serial = (
            f"RESS{'51' if cells == 16 else '48'}V{design_capacity:.0f}A{address:02d}"
        )
        self.online = True
        """False: the pack is unreachable (fault "offline"): silent, zero-filled by the master."""
        self.demand: float | None = None
        """Amperes forced by a test (+ charge, - discharge) instead of the load profile."""
        self.clock_offset = timedelta()
        self._stack_clock = clock
        self.bms.log(power_on=True)

    def __repr__(self) -> str:
        return f"Pack({self.address}, soc={self.physics.soc:.1f}, current={self.physics.current})"

    @property
    def answers(self) -> bool:
        """Whether the pack is on the bus: online and not shut down."""
        return self.online and not self.bms.shutdown

    def now(self) -> datetime:
        """This pack's real-time clock (B1H)."""
        return (self._stack_clock() + self.clock_offset).replace(microsecond=0)

    def set_clock(self, value: datetime) -> None:
        """B2H: set this pack's clock."""
        self.clock_offset = value - self._stack_clock()

    def step(self, dt: float, now: float, demand: float) -> None:
        """One physics and BMS cycle; ``demand`` is what the load or charger asks for."""
        if self.demand is not None:
            demand = self.demand
        current = 0.0 if self.bms.shutdown else self.bms.allowed_current(demand)
        self.physics.step(dt, current, self.bms.balancing)
        self.bms.evaluate(dt, now, demand)
        after = 0.0 if self.bms.shutdown else self.bms.allowed_current(demand)
        if after != current:
            # A MOSFET opened (or closed) in this cycle: what is read now flows after the switch.
            self.physics.measure(after)

    def shutdown(self) -> bool:
        """9CH: sleep until woken; under load the firmware reboots instead (returns False)."""
        if abs(self.physics.current) > IDLE_CURRENT:
            self.bms.log(power_on=True)
            return False
        self.bms.shutdown = True
        self.physics.measure(0.0)
        return True

    def wake(self) -> None:
        """The key, or a charger: leave shutdown and log a power-on record."""
        if self.bms.shutdown:
            self.bms.shutdown = False
            self.bms.log(power_on=True)

    # ------------------------------------------------------------------ wire blocks

    def analog(self, bank: tuple[float, float] = (0.0, 0.0)) -> PackAnalog:
        """The 42H block; ``bank`` is (remaining, full) of the whole stack for the master."""
        p = self.physics
        extension = build_extension(
            self.firmware.extension,
            soc=round(p.soc),
            soh=round(p.soh),
            voltage=p.voltage,
            current=p.current,
            cumulative_charge=int(p.charged),
            cumulative_discharge=int(p.discharged),
            bank_remaining=bank[0],
            bank_full=bank[1],
        )
        return PackAnalog(
            self.address,
            True,
            tuple(round(v, 3) for v in p.cell_voltages),
            tuple(round(t, 1) for t in p.temperatures),
            round(p.current, 2),
            round(p.voltage, 3),
            round(p.remaining, 2),
            p.full_capacity,
            p.design_capacity,
            p.cycles,
            self.firmware.user_defined_count,
            extension,
        )

    def offline_analog(self) -> PackAnalog:
        """The zero-filled 42H block the master sends for this pack when it cannot reach it."""
        return PackAnalog.offline(self.address, self.cells, TEMPERATURE_SENSORS)

    def status(self) -> PackStatus:
        """The 44H block."""
        return self.bms.status(self.address)

    def offline_status(self) -> PackStatus:
        """The zero-filled 44H block for an unreachable pack."""
        zeros = status_bytes((), self.firmware.status_extras)
        return PackStatus(
            self.address, (0,) * self.cells, (0,) * TEMPERATURE_SENSORS, 0, 0, 0, zeros
        )

    def capacities(self) -> Capacities:
        """A6H: remaining, full and design capacity."""
        p = self.physics
        return Capacities(round(p.remaining, 2), p.full_capacity, p.design_capacity)
