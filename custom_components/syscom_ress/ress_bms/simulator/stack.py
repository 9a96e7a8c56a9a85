"""A stack of 1-16 packs on one bus, the master at DIP address 1, and simulated time."""

from __future__ import annotations

from datetime import datetime, timedelta
import random
from typing import Final

from .firmware import DEFAULT_PROFILE, FirmwareProfile, profile as firmware_profile
from .pack import Pack
from .physics import LOAD_PROFILES, LoadProfile

MAX_PACKS: Final = 16
"""The 4-bit ADD switch: 16 addresses (the guide's table; address 0 is unused in a stack)."""
DEFAULT_START: Final = datetime(2024, 6, 21, 6, 0, 0)
"""Simulated time starts here unless told otherwise: deterministic, and a dawn for solar-day."""
CHARGE_VOLTS_PER_CELL: Final = 3.45
"""The inverter's constant-voltage charge (55.2 V for 16 cells), as LiFePO4 set-ups use; the
pack's ``full_charge_voltage`` when that is lower."""
DISCHARGE_CUTOFF_SOC: Final = 15.0
"""Below this state of charge the inverter takes the house from the grid, not the battery."""


class Stack:
    """Packs at addresses 1..N, stepped together in simulated time."""

    def __init__(
        self,
        packs: int = 1,
        *,
        cells: int = 16,
        firmware: str | FirmwareProfile = DEFAULT_PROFILE,
        profile: str = "idle",
        seed: int = 0,
        soc: float = 50.0,
        ambient: float = 25.0,
        design_capacity: float = 100.0,
        start: datetime = DEFAULT_START,
        step: float = 0.1,
    ) -> None:
        if not 1 <= packs <= MAX_PACKS:
            raise ValueError(f"a stack holds 1 to {MAX_PACKS} packs, not {packs}")
        if not 4 <= cells <= 16:
            raise ValueError(f"a pack holds 4 to 16 cells, not {cells}")
        if step <= 0:
            raise ValueError("the physics step must be positive")
        self.firmware = firmware_profile(firmware) if isinstance(firmware, str) else firmware
        self.cells = cells
        self.start = start
        self.step = step
        self.elapsed = 0.0
        """Simulated seconds since the start."""
        self.profile_name = profile
        self.load: LoadProfile = LOAD_PROFILES[profile]
        spread = random.Random(f"{seed}:stack")
        self.packs = [
            Pack(
                address,
                cells,
                # One generator per pack: adding a pack never changes the others.
                random.Random(f"{seed}:pack:{address}"),
                self.firmware,
                self.now,
                soc=min(100.0, max(0.0, soc + spread.uniform(-3, 3))),
                ambient=ambient,
                design_capacity=design_capacity,
            )
            for address in range(1, packs + 1)
        ]

    def __repr__(self) -> str:
        return f"Stack({len(self.packs)} packs, {self.firmware.name}, t={self.elapsed:.1f}s)"

    @property
    def master(self) -> Pack:
        """The pack at address 1: answers 42H/44H for the whole stack."""
        return self.packs[0]

    def pack(self, address: int) -> Pack:
        """The pack at a DIP address; raises ``KeyError`` when there is none."""
        for pack in self.packs:
            if pack.address == address:
                return pack
        raise KeyError(f"no pack at address {address}")

    def now(self) -> datetime:
        """Simulated wall-clock time (every pack's clock before a B2H write)."""
        return self.start + timedelta(seconds=self.elapsed)

    def set_profile(self, name: str) -> None:
        """Switch the load/charge profile (``idle``, ``solar-day``, ``stress``)."""
        self.load = LOAD_PROFILES[name]
        self.profile_name = name

    def bank(self) -> tuple[float, float]:
        """Remaining and full capacity of every reachable pack, Ah (the V3.1 summary fields)."""
        reachable = [p.physics for p in self.packs if p.answers]
        return (
            round(sum(p.remaining for p in reachable), 2),
            round(sum(p.full_capacity for p in reachable), 2),
        )

    def advance(self, seconds: float) -> None:
        """Step physics and every BMS by ``seconds`` of simulated time, deterministically."""
        remaining = seconds
        while remaining > 1e-9:
            dt = min(self.step, remaining)
            remaining -= dt
            self.elapsed += dt
            start = self.start
            time_of_day = start.hour * 3600 + start.minute * 60 + start.second + self.elapsed
            demand = self.load(time_of_day)
            for pack in self.packs:
                # What the inverter does with the profile's demand (a test's forced ``demand``
                # bypasses it): a constant-voltage charge that tapers as the pack fills, and no
                # discharge below its cut-off.
                wanted = demand
                if wanted > 0:
                    target = min(
                        pack.bms.value("full_charge_voltage"), CHARGE_VOLTS_PER_CELL * pack.cells
                    )
                    wanted = min(wanted, pack.physics.charge_acceptance(target))
                elif wanted < 0 and pack.physics.soc <= DISCHARGE_CUTOFF_SOC:
                    wanted = 0.0
                pack.step(dt, self.elapsed, wanted)
