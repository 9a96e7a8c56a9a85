"""The BMS of the Syscom user guide: alarms and protections, MOSFETs, controls, balancing, log.

Every alarm and protection of the guide's parameter table is one row of :data:`LIMITS`: what it
measures, its thresholds and delay (keys of the parameter table, so a write changes behaviour),
which MOSFET it opens, and its release rules beyond the release threshold:

* cell/pack over-voltage: release below the release voltage, or on a discharge of more than 1 A;
* cell/pack under-voltage: release above the release voltage, or on a charge of more than 1 A
  ("connect to charger");
* charge over-current: released automatically after 1 min, or by a discharge of more than 1 A;
* discharge over-current (OC1 and OC2): released automatically after 1 min; the 10th trigger in a
  row locks it until a charge of more than 1 A;
* short circuit: released by charging, or by removing the load;
* temperatures: release at their release temperature.

The guide gives no delay for temperatures and the low-SOC alarm: they use one second. Alarms use
their group's delay, and clear as soon as the value is back inside the alarm threshold.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntFlag, StrEnum
from typing import Final

from ..control import Control
from ..history import MAX_RECORDS, HistoryRecord
from ..params import PARAMETERS_BY_KEY
from ..status import (
    BASE_BYTES,
    BITS_BY_KEY,
    CODE_ABOVE,
    CODE_BELOW,
    EXTRA_BYTES,
    PLACES,
    Kind,
    PackStatus,
    StatusByte,
    Where,
    balance_bytes,
    status_bytes,
)
from .physics import CELL_SENSORS, PackPhysics
from .settings import Settings

IDLE_CURRENT: Final = 1.0
"""Amperes below which the pack counts as idle ("discharge current > 1A" releases)."""
AUTO_RELEASE: Final = 60.0
"""Seconds after which an over-current protection releases by itself ("1min")."""
LOCK_REPEATS: Final = 10
"""Discharge over-current: "If it repeat 10 times, the state will be locked"."""
FIXED_DELAY: Final = 1.0
"""Seconds of delay for the limits the guide gives none (temperatures, low SOC)."""
SHORT_CIRCUIT_CURRENT: Final = 400.0
"""Discharge amperes the hardware short-circuit comparator trips at (not a parameter)."""
_EPSILON: Final = 1e-9


class Path(IntFlag):
    """The current paths a protection opens."""

    NONE = 0
    CHARGE = 1
    DISCHARGE = 2
    BOTH = 3


class Release(StrEnum):
    """Release rules besides going back past the release threshold."""

    DISCHARGING = "discharging"
    CHARGING = "charging"
    AUTO = "auto"
    LOAD_REMOVED = "load_removed"


type Measure = Callable[[PackPhysics], float]


def _max_cell(p: PackPhysics) -> float:
    return p.highest_cell


def _min_cell(p: PackPhysics) -> float:
    return p.lowest_cell


def _pack_voltage(p: PackPhysics) -> float:
    return p.voltage


def _charge_current(p: PackPhysics) -> float:
    return p.current


def _discharge_current(p: PackPhysics) -> float:
    return -p.current


def _max_cell_temperature(p: PackPhysics) -> float:
    return max(p.temperatures[:CELL_SENSORS])


def _min_cell_temperature(p: PackPhysics) -> float:
    return min(p.temperatures[:CELL_SENSORS])


def _mos_temperature(p: PackPhysics) -> float:
    return p.temperatures[CELL_SENSORS]


def _environment_temperature(p: PackPhysics) -> float:
    return p.temperatures[CELL_SENSORS + 1]


def _soc(p: PackPhysics) -> float:
    return p.soc


@dataclass(frozen=True, slots=True)
class Limit:
    """One alarm/protection of the user guide."""

    name: str
    """The status-bit name: ``{name}_alarm`` and ``{name}_protection`` in :mod:`..status`."""
    group: str
    """Parameter group whose enable flag switches this limit on and off."""
    measure: Measure
    over: bool
    """True: trips at or above the threshold; False: at or below."""
    alarm: str | None
    protection: str | float | None
    """A parameter key, or a fixed value the guide does not make adjustable."""
    release: str | None
    delay: str | float
    blocks: Path
    releases: tuple[Release, ...] = ()
    locks: bool = False
    """Counts towards the discharge over-current lock."""


def _voltage_limit(name: str, measure: Measure, over: bool) -> Limit:
    blocks, rule = (
        (Path.CHARGE, Release.DISCHARGING) if over else (Path.DISCHARGE, Release.CHARGING)
    )
    return Limit(name, name, measure, over, f"{name}_alarm", f"{name}_protection",
                 f"{name}_release", f"{name}_delay", blocks, (rule,))  # fmt: skip


def _temperature_limit(name: str, group: str, measure: Measure, over: bool, blocks: Path) -> Limit:
    return Limit(name, group, measure, over, f"{name}_alarm", f"{name}_protection",
                 f"{name}_release", FIXED_DELAY, blocks)  # fmt: skip


LIMITS: Final[tuple[Limit, ...]] = (
    _voltage_limit("cell_over_voltage", _max_cell, over=True),
    _voltage_limit("cell_under_voltage", _min_cell, over=False),
    _voltage_limit("pack_over_voltage", _pack_voltage, over=True),
    _voltage_limit("pack_under_voltage", _pack_voltage, over=False),
    Limit("charge_over_current", "charge_over_current", _charge_current, True,
          "charge_over_current_alarm", "charge_over_current_protection", None,
          "charge_over_current_delay", Path.CHARGE, (Release.AUTO, Release.DISCHARGING)),
    Limit("discharge_over_current", "discharge_over_current", _discharge_current, True,
          "discharge_over_current_alarm", "discharge_over_current_protection", None,
          "discharge_over_current_delay", Path.DISCHARGE, (Release.AUTO, Release.CHARGING),
          locks=True),
    Limit("discharge_over_current", "discharge_over_current_2", _discharge_current, True, None,
          "discharge_over_current_2_protection", None, "discharge_over_current_2_delay",
          Path.DISCHARGE, (Release.AUTO, Release.CHARGING), locks=True),
    Limit("short_circuit", "short_circuit", _discharge_current, True, None,
          SHORT_CIRCUIT_CURRENT, None, "short_circuit_delay", Path.DISCHARGE,
          (Release.CHARGING, Release.LOAD_REMOVED)),
    _temperature_limit("charge_high_temperature", "cell_high_temperature",
                       _max_cell_temperature, True, Path.CHARGE),
    _temperature_limit("discharge_high_temperature", "cell_high_temperature",
                       _max_cell_temperature, True, Path.DISCHARGE),
    _temperature_limit("charge_low_temperature", "cell_low_temperature",
                       _min_cell_temperature, False, Path.CHARGE),
    _temperature_limit("discharge_low_temperature", "cell_low_temperature",
                       _min_cell_temperature, False, Path.DISCHARGE),
    _temperature_limit("mos_high_temperature", "mos_high_temperature", _mos_temperature,
                       True, Path.BOTH),
    _temperature_limit("environment_high_temperature", "environment_temperature",
                       _environment_temperature, True, Path.BOTH),
    _temperature_limit("environment_low_temperature", "environment_temperature",
                       _environment_temperature, False, Path.BOTH),
    Limit("low_soc", "full_charge", _soc, False, "low_soc_alarm", None, None, FIXED_DELAY,
          Path.NONE),
)  # fmt: skip
"""The user guide's parameter table, one row per limit (OC1 and OC2 share one bit)."""

BLOCKS_BY_PROTECTION: Final[dict[str, Path]] = {"charger_over_voltage_protection": Path.CHARGE}
for _limit in LIMITS:
    _key = f"{_limit.name}_protection"
    BLOCKS_BY_PROTECTION[_key] = BLOCKS_BY_PROTECTION.get(_key, Path.NONE) | _limit.blocks

CONTROL_EFFECTS: Final[dict[int, tuple[str, bool]]] = {
    Control.LED_ALARM_ON: ("led_alarm_disabled", False),
    Control.LED_ALARM_OFF: ("led_alarm_disabled", True),
    Control.LIMITER_HIGH_GEAR: ("limiter_low_gear", False),
    Control.LIMITER_LOW_GEAR: ("limiter_low_gear", True),
    Control.CURRENT_LIMITER_ON: ("current_limit_disabled", False),
    Control.CURRENT_LIMITER_OFF: ("current_limit_disabled", True),
    Control.BUZZER_OFF: ("buzzer_enabled", False),
    Control.BUZZER_ON: ("buzzer_enabled", True),
}
"""99H code -> (control status bit, value): the spec's polarity, as :mod:`..control` follows."""


def status_key(name: str) -> str:
    """A status-bit key from a key or a bare name (a protection first: ``cell_over_voltage``)."""
    for key in (name, f"{name}_protection", f"{name}_alarm", f"{name}_fault"):
        if key in BITS_BY_KEY:
            return key
    raise KeyError(f"unknown protection, alarm or fault {name!r}")


def _beyond(value: float, threshold: float, over: bool) -> bool:
    return value >= threshold if over else value <= threshold


@dataclass(slots=True)
class LimitState:
    """Timers and latches of one limit."""

    alarm_timer: float = 0.0
    alarm: bool = False
    protect_timer: float = 0.0
    protected: bool = False
    since: float = 0.0


@dataclass(slots=True)
class Bms:
    """The protection board of one pack."""

    physics: PackPhysics
    cells: int
    clock: Callable[[], datetime]
    status_extras: int = 0
    settings: Settings = field(init=False)
    """The parameter memory (read and written over the wire)."""
    states: list[LimitState] = field(init=False)
    forced: set[str] = field(default_factory=set)
    """Status-bit keys held on by a test or the control socket ("raise protection X")."""
    forced_codes: dict[str, tuple[bool, int, int]] = field(default_factory=dict)
    """Held key -> (a cell, else a temperature sensor; its 0-based index; the code it shows)."""
    controls: set[str] = field(default_factory=set)
    """Control-status bits that are set (``buzzer_enabled``, ``current_limit_disabled`` ...)."""
    charge_forced_off: bool = False
    discharge_forced_off: bool = False
    discharge_repeats: int = 0
    locked: bool = False
    balancing: tuple[int, ...] = ()
    fully_charged: bool = False
    limiting: bool = False
    shutdown: bool = False
    history: deque[HistoryRecord] = field(default_factory=lambda: deque(maxlen=MAX_RECORDS))
    """Newest first, at most 500 ("The BMS can restore 500 logs")."""

    def __post_init__(self) -> None:
        self.settings = Settings(self.cells)
        self.states = [LimitState() for _ in LIMITS]

    # ------------------------------------------------------------------ values and states

    def value(self, key: str) -> float:
        """The current value of a parameter."""
        return self.settings.values[key]

    def _delay(self, limit: Limit) -> float:
        if isinstance(limit.delay, float):
            return limit.delay
        seconds = self.value(limit.delay)
        return seconds * 1e-6 if PARAMETERS_BY_KEY[limit.delay].unit == "µs" else seconds

    def _threshold(self, key: str | float) -> float:
        return key if isinstance(key, float) else self.value(key)

    @property
    def blocked(self) -> Path:
        """Paths opened by active protections."""
        path = Path.NONE
        for limit, state in zip(LIMITS, self.states, strict=True):
            if state.protected:
                path |= limit.blocks
        for key in self.forced:
            path |= BLOCKS_BY_PROTECTION.get(key, Path.NONE)
        return path

    @property
    def charge_mos(self) -> bool:
        """Charge MOSFET closed (current can charge the pack)."""
        return not (self.shutdown or self.charge_forced_off or self.blocked & Path.CHARGE)

    @property
    def discharge_mos(self) -> bool:
        """Discharge MOSFET closed."""
        return not (self.shutdown or self.discharge_forced_off or self.blocked & Path.DISCHARGE)

    def active_keys(self) -> set[str]:
        """Every status-bit key that is set now."""
        keys = set(self.forced) | self.controls
        for limit, state in zip(LIMITS, self.states, strict=True):
            if state.protected:
                keys.add(f"{limit.name}_protection")
            if state.alarm:
                keys.add(f"{limit.name}_alarm")
        current = self.physics.current
        flags = {
            "charge_mos": self.charge_mos,
            "discharge_mos": self.discharge_mos,
            "current_limit": self.limiting,
            "charging": current > IDLE_CURRENT,
            "pack_power_supply": current < -IDLE_CURRENT,
            "fully_charged": self.fully_charged,
            "shutdown": self.shutdown,
            "charge_mos_control": self.charge_forced_off,
            "discharge_mos_control": self.discharge_forced_off,
        }
        keys |= {key for key, on in flags.items() if on}
        return keys

    def active(self, kind: Kind) -> tuple[str, ...]:
        """Names of the active bits of one kind (``protection``, ``alarm``, ``fault``)."""
        return tuple(sorted(k.removesuffix(f"_{kind}") for k in self.active_keys()
                            if BITS_BY_KEY[k].kind is kind))  # fmt: skip

    @property
    def protections(self) -> tuple[str, ...]:
        """Active protections, e.g. ``("cell_over_voltage",)``."""
        return self.active(Kind.PROTECTION)

    @property
    def alarms(self) -> tuple[str, ...]:
        """Active alarms."""
        return self.active(Kind.ALARM)

    # ------------------------------------------------------------------ the control loop

    def allowed_current(self, demand: float) -> float:
        """What flows when the load or charger asks for ``demand`` amperes."""
        self.limiting = False
        if demand > 0:
            if not self.charge_mos:
                return 0.0
            limit = self.value("current_limit_start")
            if "current_limit_disabled" not in self.controls and demand > limit:
                # The limiter MOS takes over and holds the charge at the start current.
                self.limiting = True
                return limit
            return demand
        if demand < 0 and not self.discharge_mos:
            return 0.0
        return demand

    def evaluate(self, dt: float, now: float, demand: float) -> None:
        """Run one BMS cycle after ``dt`` seconds at simulated time ``now``."""
        events = False
        physics = self.physics
        for limit, state in zip(LIMITS, self.states, strict=True):
            if not self.settings.enabled(limit.group):
                state.alarm = state.protected = False
                state.alarm_timer = state.protect_timer = 0.0
                continue
            value = limit.measure(physics)
            delay = self._delay(limit)
            if limit.alarm is not None:
                if _beyond(value, self.value(limit.alarm), limit.over):
                    state.alarm_timer += dt
                    if not state.alarm and state.alarm_timer >= delay - _EPSILON:
                        state.alarm = events = True
                else:
                    state.alarm_timer, state.alarm = 0.0, False
            if limit.protection is None:
                continue
            if not state.protected:
                if _beyond(value, self._threshold(limit.protection), limit.over):
                    state.protect_timer += dt
                    if state.protect_timer >= delay - _EPSILON:
                        state.protected = events = True
                        state.since = now
                        if limit.locks:
                            self.discharge_repeats += 1
                            self.locked = self.discharge_repeats >= LOCK_REPEATS
                else:
                    state.protect_timer = 0.0
            elif self._released(limit, state, value, now, demand):
                state.protected, state.protect_timer = False, 0.0
        self._balance()
        self._full_charge()
        if events:
            self.log()

    def _released(
        self, limit: Limit, state: LimitState, value: float, now: float, demand: float
    ) -> bool:
        if limit.release is not None and not _beyond(value, self.value(limit.release), limit.over):
            return True
        current = self.physics.current
        for rule in limit.releases:
            if rule is Release.CHARGING and current > IDLE_CURRENT:
                if limit.locks:
                    self.discharge_repeats, self.locked = 0, False
                return True
            if (
                (rule is Release.DISCHARGING and current < -IDLE_CURRENT)
                or (rule is Release.AUTO and not self.locked and now - state.since >= AUTO_RELEASE)
                or (rule is Release.LOAD_REMOVED and demand > -IDLE_CURRENT)
            ):
                return True
        return False

    def _balance(self) -> None:
        physics = self.physics
        lowest, highest = physics.lowest_cell, physics.highest_cell
        delta = self.value("balance_delta") / 1000
        if highest >= self.value("balance_start_voltage") and highest - lowest > delta:
            cells = physics.cell_voltages
            self.balancing = tuple(i + 1 for i, v in enumerate(cells) if v - lowest > delta)
        else:
            self.balancing = ()

    def _full_charge(self) -> None:
        physics = self.physics
        if physics.current < -IDLE_CURRENT:
            self.fully_charged = False
        elif not self.fully_charged and (
            physics.remaining >= physics.full_capacity
            or (
                0 < physics.current <= self.value("full_charge_current")
                and physics.voltage >= self.value("full_charge_voltage")
            )
        ):
            # End of charge recalibrates the coulomb counter to 100 %.
            self.fully_charged = True
            physics.remaining = physics.full_capacity

    # ------------------------------------------------------------------ commands

    def set_mos(self, path: Path, on: bool) -> bool:
        """9AH/9BH: switch one MOSFET; False when the firmware refuses (RTN 09)."""
        charge = path is Path.CHARGE
        if on:
            if charge:
                self.charge_forced_off = False
            else:
                self.discharge_forced_off = False
            return True
        current = self.physics.current
        # Not against current flowing through it, and never both MOSFETs off.
        flowing = current > IDLE_CURRENT if charge else current < -IDLE_CURRENT
        other_on = self.discharge_mos if charge else self.charge_mos
        if flowing or not other_on:
            return False
        if charge:
            self.charge_forced_off = True
        else:
            self.discharge_forced_off = True
        return True

    def apply_control(self, code: int) -> bool:
        """99H: apply a control code; False for a code this firmware does not know."""
        effect = CONTROL_EFFECTS.get(code)
        if effect is None:
            return False
        key, on = effect
        if on:
            self.controls.add(key)
        else:
            self.controls.discard(key)
        return True

    def raise_bit(self, name: str, *, cell: int | None = None, sensor: int | None = None) -> str:
        """Hold a protection, alarm or fault bit on until cleared; logs the event.

        A bit that concerns one cell or temperature sensor (:data:`..status.PLACES`) also shows
        on that value's 44H code, as the firmware does: ``cell`` or ``sensor`` (1-based, T1 =
        1) chooses it, else the cell or cell sensor the condition fits best (the highest cell
        for an over-voltage, the coldest sensor for a low temperature, the first for a fault).
        """
        key = status_key(name)
        self.forced.add(key)
        if (place := PLACES.get(BITS_BY_KEY[key].name)) is not None:
            self.forced_codes[key] = self._forced_code(*place, cell, sensor)
        self.log()
        return key

    def _forced_code(
        self, where: Where, code: int, cell: int | None, sensor: int | None
    ) -> tuple[bool, int, int]:
        physics = self.physics
        if where is Where.CELL:
            values = physics.cell_voltages
            chosen = cell
        else:
            values = physics.temperatures[:CELL_SENSORS]
            chosen = sensor
        if chosen is not None:
            index = chosen - 1
        elif code == CODE_ABOVE:
            index = max(range(len(values)), key=values.__getitem__)
        elif code == CODE_BELOW:
            index = min(range(len(values)), key=values.__getitem__)
        else:
            index = 0
        return where is Where.CELL, index, code

    def clear_bit(self, name: str | None = None) -> None:
        """Drop a held bit (every one for ``None``) and reset that limit's latches."""
        keys = set(self.forced) if name is None else {status_key(name)}
        self.forced -= keys
        for key in keys:
            self.forced_codes.pop(key, None)
        for limit, state in zip(LIMITS, self.states, strict=True):
            if name is None or f"{limit.name}_protection" in keys or f"{limit.name}_alarm" in keys:
                state.protected = state.alarm = False
                state.protect_timer = state.alarm_timer = 0.0
                if limit.locks:
                    self.discharge_repeats, self.locked = 0, False

    # ------------------------------------------------------------------ what goes on the wire

    def status_bytes(self) -> dict[StatusByte, int]:
        """The 9 base status bytes plus this firmware's V3.1 extras."""
        layout = BASE_BYTES + EXTRA_BYTES[: self.status_extras]
        keys = [k for k in self.active_keys() if BITS_BY_KEY[k].byte in layout]
        values = status_bytes(keys, self.status_extras)
        values[StatusByte.BALANCE_1], values[StatusByte.BALANCE_2] = balance_bytes(self.balancing)
        return values

    def status(self, address: int) -> PackStatus:
        """The 44H block of this pack."""
        physics = self.physics
        ov, uv = self.value("cell_over_voltage_alarm"), self.value("cell_under_voltage_alarm")
        cell_codes = tuple(_code(v, uv, ov) for v in physics.cell_voltages)
        temps = physics.temperatures
        cell_high = min(self.value("charge_high_temperature_alarm"),
                        self.value("discharge_high_temperature_alarm"))  # fmt: skip
        cell_low = max(self.value("charge_low_temperature_alarm"),
                       self.value("discharge_low_temperature_alarm"))  # fmt: skip
        temperature_codes = (
            *(_code(t, cell_low, cell_high) for t in temps[:CELL_SENSORS]),
            _code(temps[CELL_SENSORS], -273.0, self.value("mos_high_temperature_alarm")),
            _code(temps[CELL_SENSORS + 1], self.value("environment_low_temperature_alarm"),
                  self.value("environment_high_temperature_alarm")),
        )  # fmt: skip
        for is_cell, index, code in self.forced_codes.values():
            if is_cell:
                cell_codes = (*cell_codes[:index], code, *cell_codes[index + 1 :])
            else:
                temperature_codes = (
                    *temperature_codes[:index], code, *temperature_codes[index + 1 :]
                )  # fmt: skip
        alarms = self.alarms
        return PackStatus(
            address,
            cell_codes,
            temperature_codes,
            0x02 if "charge_over_current" in alarms else 0,
            _code(physics.voltage, self.value("pack_under_voltage_alarm"),
                  self.value("pack_over_voltage_alarm")),
            0x02 if "discharge_over_current" in alarms else 0,
            self.status_bytes(),
        )  # fmt: skip

    def indication(self) -> int:
        """The indication status byte (the 9AH/9BH reply)."""
        return self.status_bytes()[StatusByte.INDICATION]

    def control_status(self) -> int:
        """The control status byte (second byte of the 99H reply)."""
        return self.status_bytes()[StatusByte.CONTROL]

    def log(self, *, power_on: bool = False) -> None:
        """Append a history record of the present state (newest first)."""
        physics = self.physics
        self.history.appendleft(
            HistoryRecord(
                0,
                self.clock(),
                tuple(round(v, 3) for v in physics.cell_voltages),
                tuple(round(t, 1) for t in physics.temperatures),
                round(physics.current, 2),
                round(physics.voltage, 3),
                round(physics.remaining, 2),
                physics.full_capacity,
                physics.cycles,
                PackStatus(0, (), (), 0, 0, 0, self.status_bytes()),
                1 if power_on else 0,
            )
        )


def _code(value: float, low: float, high: float) -> int:
    """Per-value alarm code: 02 above the upper limit, 01 below the lower, 00 normal."""
    if value >= high:
        return 0x02
    if value <= low:
        return 0x01
    return 0x00
