"""Every adjustable BMS parameter, as one table.

The table is the single source of truth for validation, the command-line tool, Home Assistant's
number entities and the parameter actions.

Each group is one read/write command pair. A write sends exactly the bytes the read returned, with
the edited fields re-encoded ([PACE-V3.1] A.129 ff.): the leading "function control" enable byte
of D0-E7 is kept as read, and discharge over-current, which the BMS reads back as a negative
int16 (FF97 = -105 A), is written as a positive value as PbmsTools does. Ranges and steps are
PbmsTools' own limits (copied by nkinnan); defaults are the Syscom user guide's for 16S packs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
import math
from typing import Final

from .commands import Command
from .errors import DecodeError, ValidationError


@dataclass(frozen=True, slots=True)
class Parameter:
    """One adjustable value inside a group's payload."""

    key: str
    group: str
    offset: int
    size: int
    unit: str
    scale: float
    minimum: float
    maximum: float
    step: float
    default: float | None = None
    """The user guide's default for a 16S pack (``None`` where the guide gives none)."""
    base: float = 0.0
    """value = raw * scale + base (temperatures: 0.1 K with 0 °C = 2730, so base -273)."""
    magnitude: bool = False
    """Read as a signed word and reported as its magnitude; written positive."""
    pack_level: bool = False
    """Scales with the number of cells in series (pack voltages)."""
    threshold: bool = True
    """An owner-adjustable threshold of the user guide (a number entity)."""

    def decode(self, payload: bytes) -> float:
        """This parameter's value from a read payload."""
        raw = int.from_bytes(payload[self.offset : self.offset + self.size], signed=self.magnitude)
        if self.magnitude:
            raw = abs(raw)
        return _tidy(raw * self.scale + self.base)

    def encode(self, value: float) -> bytes:
        """The raw bytes for a value (call :func:`validate` first)."""
        return self.raw(value).to_bytes(self.size)

    def raw(self, value: float) -> int:
        """The raw integer for a value."""
        return round((value - self.base) / self.scale)

    def check(self, value: float) -> str | None:
        """Why this value cannot be written, or ``None`` when it can."""
        problem = self.problem(value)
        return None if problem is None else problem.text

    def problem(self, value: float) -> Problem | None:
        """Why this value cannot be written (see :class:`Problem`), or ``None`` when it can."""
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return Problem(self.key, "not_a_number", f"{self.key}: {value!r} is not a number")
        if not self.minimum <= value <= self.maximum:
            return Problem(
                self.key,
                "range",
                f"{self.key}: {value:g} {self.unit} is outside "
                f"{self.minimum:g}..{self.maximum:g} {self.unit}",
                value,
            )
        if not self.on_step(value):
            return Problem(
                self.key,
                "step",
                f"{self.key}: {value:g} {self.unit} is not a multiple of {self.step:g}",
                value,
            )
        raw = self.raw(value)
        if not 0 <= raw < 1 << (8 * self.size) or abs(self.decode_raw(raw) - value) > 1e-6:
            return Problem(
                self.key,
                "representation",
                f"{self.key}: {value:g} {self.unit} cannot be represented by the BMS",
                value,
            )
        return None

    def on_step(self, value: float) -> bool:
        """Whether ``value`` is a step of the table from the minimum (to float noise)."""
        steps = (value - self.minimum) / self.step
        return abs(steps - round(steps)) <= 1e-6

    def snap(self, value: float) -> float:
        """``value`` on the step (for float noise, e.g. from a unit conversion)."""
        return _tidy(self.minimum + round((value - self.minimum) / self.step) * self.step)

    def neighbours(self, value: float) -> tuple[float, float]:
        """The steps just below and just above an off-step ``value``, within the range."""
        below = _tidy(self.minimum + math.floor((value - self.minimum) / self.step) * self.step)
        above = _tidy(below + self.step)
        return max(below, self.minimum), min(above, self.maximum)

    def decode_raw(self, raw: int) -> float:
        """The value of a raw integer."""
        return _tidy(raw * self.scale + self.base)


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason a set of values cannot be written, for callers that explain it their way.

    ``reason``: ``unknown`` (no such parameter), ``not_a_number``, ``range``, ``step`` (not a
    multiple of the step), ``representation`` (the BMS's encoding cannot hold it) or ``order``
    (a rule of :data:`RULES`: ``key`` must stay below ``other`` when ``below``, else above it).
    ``text`` is the English line :class:`ParameterValidationError` lists.
    """

    key: str
    reason: str
    text: str
    value: float | None = None
    other: str | None = None
    other_value: float | None = None
    below: bool = True


class ParameterValidationError(ValidationError):
    """A set of values the table refuses, with each :class:`Problem` for callers to explain."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(p.text for p in self.problems))


def _tidy(value: float) -> float:
    """Drop binary noise from scaled values (3.6500000000000004 -> 3.65)."""
    return round(value, 6)


@dataclass(frozen=True, slots=True)
class ParameterGroup:
    """One read/write command pair and its payload."""

    key: str
    read: Command
    write: Command
    size: int
    """Bytes of a read reply."""
    write_size: int | None = None
    """Bytes a write sends, when fewer than a read returns (E2H: PbmsTools sends 3 of 6)."""

    @property
    def parameters(self) -> tuple[Parameter, ...]:
        """The parameters of this group, in payload order."""
        return tuple(p for p in PARAMETERS if p.group == self.key)

    def decode(self, payload: bytes) -> dict[str, float]:
        """Every parameter of this group from a read reply."""
        if len(payload) < self.size:
            raise DecodeError(f"{self.key}: {len(payload)} bytes, expected {self.size}")
        return {p.key: p.decode(payload) for p in self.parameters}

    def encode_write(self, payload: bytes, values: Mapping[str, float]) -> bytes:
        """The write payload: the read bytes with every field re-encoded from ``values``."""
        data = bytearray(payload[: self.size])
        for param in self.parameters:
            data[param.offset : param.offset + param.size] = param.encode(values[param.key])
        return bytes(data[: self.write_size or self.size])


@dataclass(frozen=True, slots=True)
class Rule:
    """``lower`` must stay strictly below ``upper`` (alarm < protection, safe-side release)."""

    lower: str
    upper: str


def _p(
    key: str,
    group: str,
    offset: int,
    size: int,
    unit: str,
    scale: float,
    lo: float,
    hi: float,
    step: float,
    default: float | None = None,
    **kw: object,
) -> Parameter:
    return Parameter(key, group, offset, size, unit, scale, lo, hi, step, default, **kw)  # type: ignore[arg-type]  # fmt: skip


def _limit_group(
    group: str,
    unit: str,
    scale: float,
    lo: float,
    hi: float,
    step: float,
    defaults: tuple[float, float, float],
    **kw: object,
) -> list[Parameter]:
    """en(1), alarm(2), protection(2), release(2), delay(1, 100 ms): D0-D7."""
    alarm, protection, release = defaults
    return [
        _p(f"{group}_alarm", group, 1, 2, unit, scale, lo, hi, step, alarm, **kw),
        _p(f"{group}_protection", group, 3, 2, unit, scale, lo, hi, step, protection, **kw),
        _p(f"{group}_release", group, 5, 2, unit, scale, lo, hi, step, release, **kw),
        _p(f"{group}_delay", group, 7, 1, "s", 0.1, 1.0, 20.0, 0.5, 1.0),
    ]  # fmt: skip


def _temperature(
    key: str, group: str, offset: int, lo: float, hi: float, default: float | None
) -> Parameter:
    return _p(key, group, offset, 2, "°C", 0.1, lo, hi, 1.0, default, base=-273.0)  # fmt: skip


def _temperature_triplet(
    group: str, prefix: str, offset: int, lo: float, hi: float, defaults: tuple[float, float, float]
) -> list[Parameter]:
    """alarm, protection, release: three 0.1 K words."""
    suffixes = ("alarm", "protection", "release")
    return [
        _temperature(f"{prefix}_{suffix}", group, offset + 2 * i, lo, hi, default)
        for i, (suffix, default) in enumerate(zip(suffixes, defaults, strict=True))
    ]


HIGH_TEMPERATURE: Final = (20.0, 100.0)
LOW_TEMPERATURE: Final = (-35.0, 30.0)

GROUPS: Final[tuple[ParameterGroup, ...]] = (
    ParameterGroup("cell_over_voltage", Command.CELL_OV_READ, Command.CELL_OV_WRITE, 8),
    ParameterGroup("cell_under_voltage", Command.CELL_UV_READ, Command.CELL_UV_WRITE, 8),
    ParameterGroup("pack_over_voltage", Command.PACK_OV_READ, Command.PACK_OV_WRITE, 8),
    ParameterGroup("pack_under_voltage", Command.PACK_UV_READ, Command.PACK_UV_WRITE, 8),
    ParameterGroup("charge_over_current", Command.CHARGE_OC_READ, Command.CHARGE_OC_WRITE, 6),
    ParameterGroup(
        "discharge_over_current", Command.DISCHARGE_OC_READ, Command.DISCHARGE_OC_WRITE, 6
    ),
    ParameterGroup(
        "discharge_over_current_2",
        Command.DISCHARGE_OC2_READ,
        Command.DISCHARGE_OC2_WRITE,
        6,
        write_size=3,
    ),
    ParameterGroup("short_circuit", Command.SHORT_CIRCUIT_READ, Command.SHORT_CIRCUIT_WRITE, 1),
    ParameterGroup(
        "cell_high_temperature", Command.CELL_HIGH_TEMP_READ, Command.CELL_HIGH_TEMP_WRITE, 13
    ),
    ParameterGroup(
        "cell_low_temperature", Command.CELL_LOW_TEMP_READ, Command.CELL_LOW_TEMP_WRITE, 13
    ),
    ParameterGroup("mos_high_temperature", Command.MOS_TEMP_READ, Command.MOS_TEMP_WRITE, 7),
    ParameterGroup("environment_temperature", Command.ENV_TEMP_READ, Command.ENV_TEMP_WRITE, 13),
    ParameterGroup("balance", Command.BALANCE_READ, Command.BALANCE_WRITE, 4),
    ParameterGroup("sleep", Command.SLEEP_READ, Command.SLEEP_WRITE, 4),
    ParameterGroup("full_charge", Command.FULL_CHARGE_READ, Command.FULL_CHARGE_WRITE, 5),
    ParameterGroup("current_limit", Command.CURRENT_LIMIT_READ, Command.CURRENT_LIMIT_WRITE, 2),
    ParameterGroup(
        "inverter_protocol", Command.INVERTER_PROTOCOL_READ, Command.INVERTER_PROTOCOL_WRITE, 3
    ),
)
"""Read/write pairs of [PACE-V3.1] A.129 ff.; sizes are the read payloads of real captures."""

PARAMETERS: Final[tuple[Parameter, ...]] = (
    *_limit_group("cell_over_voltage", "V", 0.001, 2.5, 4.5, 0.01, (3.5, 3.65, 3.38)),
    *_limit_group("cell_under_voltage", "V", 0.001, 2.5, 4.5, 0.01, (2.8, 2.5, 2.9)),
    *_limit_group("pack_over_voltage", "V", 0.001, 20.0, 65.0, 0.01, (56.0, 57.6, 54.08),
                  pack_level=True),
    *_limit_group("pack_under_voltage", "V", 0.001, 20.0, 65.0, 0.01, (46.4, 44.8, 46.4),
                  pack_level=True),
    # en(1), alarm(2), protection(2), delay(1); V3.1 lists a recovery word PbmsTools never sends.
    _p("charge_over_current_alarm", "charge_over_current", 1, 2, "A", 1, 1, 220, 1, 105),
    _p("charge_over_current_protection", "charge_over_current", 3, 2, "A", 1, 1, 220, 1, 110),
    _p("charge_over_current_delay", "charge_over_current", 5, 1, "s", 0.1, 1.0, 20.0, 0.5, 1.0),
    _p("discharge_over_current_alarm", "discharge_over_current", 1, 2, "A", 1, 1, 220, 1, 110,
       magnitude=True),
    _p("discharge_over_current_protection", "discharge_over_current", 3, 2, "A", 1, 1, 220, 1,
       120, magnitude=True),
    _p("discharge_over_current_delay", "discharge_over_current", 5, 1, "s", 0.1, 1.0, 20.0, 0.5,
       1.0),
    # E3H: discharge OC2 (2), delay (1, 25 ms) [+ charge OC2 and delay, which are not written].
    _p("discharge_over_current_2_protection", "discharge_over_current_2", 0, 2, "A", 1, 5, 300,
       1),
    _p("discharge_over_current_2_delay", "discharge_over_current_2", 2, 1, "s", 0.025, 0.1, 2.0,
       0.025),
    _p("short_circuit_delay", "short_circuit", 0, 1, "µs", 25, 100, 500, 25),
    # DC/DD: en, charge alarm/protection/release, discharge alarm/protection/release.
    *_temperature_triplet("cell_high_temperature", "charge_high_temperature", 1,
                          *HIGH_TEMPERATURE, (60, 65, 60)),
    *_temperature_triplet("cell_high_temperature", "discharge_high_temperature", 7,
                          *HIGH_TEMPERATURE, (65, 70, 60)),
    *_temperature_triplet("cell_low_temperature", "charge_low_temperature", 1,
                          *LOW_TEMPERATURE, (0, -5, 0)),
    *_temperature_triplet("cell_low_temperature", "discharge_low_temperature", 7,
                          *LOW_TEMPERATURE, (-15, -20, -15)),
    *_temperature_triplet("mos_high_temperature", "mos_high_temperature", 1, 30.0, 120.0,
                          (90, 110, 90)),
    # E6/E7: en, low alarm/protection/release, high alarm/protection/release.
    *_temperature_triplet("environment_temperature", "environment_low_temperature", 1,
                          *LOW_TEMPERATURE, (-20, -25, -20)),
    *_temperature_triplet("environment_temperature", "environment_high_temperature", 7,
                          *HIGH_TEMPERATURE, (65, 70, 65)),
    _p("balance_start_voltage", "balance", 0, 2, "V", 0.001, 3.3, 4.5, 0.01),
    _p("balance_delta", "balance", 2, 2, "mV", 1, 20, 500, 1),
    _p("sleep_voltage", "sleep", 0, 2, "V", 0.001, 2.0, 4.0, 0.01),
    _p("sleep_delay", "sleep", 2, 2, "min", 1, 1, 120, 1),
    _p("full_charge_voltage", "full_charge", 0, 2, "V", 0.001, 20.0, 65.0, 0.01,
       pack_level=True),
    _p("full_charge_current", "full_charge", 2, 2, "A", 0.001, 0.5, 5.0, 0.01),
    _p("low_soc_alarm", "full_charge", 4, 1, "%", 1, 0, 100, 1),
    _p("current_limit_start", "current_limit", 0, 2, "A", 1, 5, 150, 1),
    # EB/EC: inverter protocol numbers from the BMS's own list; FF = leave unchanged.
    _p("inverter_protocol_can", "inverter_protocol", 0, 1, "", 1, 0, 255, 1, threshold=False),
    _p("inverter_protocol_rs485", "inverter_protocol", 1, 1, "", 1, 0, 255, 1, threshold=False),
    _p("inverter_protocol_manual", "inverter_protocol", 2, 1, "", 1, 0, 1, 1, threshold=False),
)  # fmt: skip

PARAMETERS_BY_KEY: Final = {p.key: p for p in PARAMETERS}
GROUPS_BY_KEY: Final = {g.key: g for g in GROUPS}


def _over(prefix: str) -> tuple[Rule, ...]:
    """An upper limit: alarm below protection, release below protection."""
    return Rule(f"{prefix}_alarm", f"{prefix}_protection"), Rule(
        f"{prefix}_release", f"{prefix}_protection"
    )


def _under(prefix: str) -> tuple[Rule, ...]:
    """A lower limit: protection below alarm, protection below release."""
    return Rule(f"{prefix}_protection", f"{prefix}_alarm"), Rule(
        f"{prefix}_protection", f"{prefix}_release"
    )


RULES: Final[tuple[Rule, ...]] = (
    *_over("cell_over_voltage"),
    *_under("cell_under_voltage"),
    *_over("pack_over_voltage"),
    *_under("pack_under_voltage"),
    Rule("charge_over_current_alarm", "charge_over_current_protection"),
    Rule("discharge_over_current_alarm", "discharge_over_current_protection"),
    Rule("discharge_over_current_protection", "discharge_over_current_2_protection"),
    *_over("charge_high_temperature"),
    *_over("discharge_high_temperature"),
    *_under("charge_low_temperature"),
    *_under("discharge_low_temperature"),
    *_over("mos_high_temperature"),
    *_under("environment_low_temperature"),
    *_over("environment_high_temperature"),
    Rule("cell_under_voltage_protection", "cell_over_voltage_protection"),
    Rule("pack_under_voltage_protection", "pack_over_voltage_protection"),
)
"""Cross-field rules checked on the whole set of values a write would leave in the BMS."""


def groups_for(keys: Iterable[str]) -> tuple[ParameterGroup, ...]:
    """The groups to read before writing ``keys``: their own and their rule partners'."""
    keys = set(keys)
    partners = {
        key for rule in RULES if rule.lower in keys or rule.upper in keys
        for key in (rule.lower, rule.upper)
    }  # fmt: skip
    wanted = {PARAMETERS_BY_KEY[k].group for k in keys | partners if k in PARAMETERS_BY_KEY}
    return tuple(g for g in GROUPS if g.key in wanted)


def validate(changes: Mapping[str, float], current: Mapping[str, float]) -> dict[str, float]:
    """Check a set of changes against the table and the values they leave in the BMS.

    Returns the merged values. Raises :class:`ParameterValidationError` (a
    :class:`ValidationError`) listing every problem, so that nothing is sent unless the whole set
    is valid.
    """
    problems = [
        Problem(key, "unknown", f"{key}: unknown parameter")
        for key in changes
        if key not in PARAMETERS_BY_KEY
    ]
    problems += [
        problem
        for key, value in changes.items()
        if key in PARAMETERS_BY_KEY and (problem := PARAMETERS_BY_KEY[key].problem(value))
    ]
    if problems:
        raise ParameterValidationError(problems)
    merged = {**current, **changes}
    for rule in RULES:
        if (
            rule.lower in merged
            and rule.upper in merged
            and (rule.lower in changes or rule.upper in changes)
        ):
            lower, upper = merged[rule.lower], merged[rule.upper]
            if not lower < upper:
                text = f"{rule.lower} ({lower:g}) must stay below {rule.upper} ({upper:g})"
                if rule.lower in changes:
                    problems.append(
                        Problem(rule.lower, "order", text, lower, rule.upper, upper, below=True)
                    )
                else:
                    problems.append(
                        Problem(rule.upper, "order", text, upper, rule.lower, lower, below=False)
                    )
    if problems:
        raise ParameterValidationError(problems)
    return merged


def default_values(cells: int = 16) -> dict[str, float]:
    """The user guide's defaults, pack thresholds scaled to ``cells`` in series."""
    values = {}
    for param in PARAMETERS:
        if param.default is None:
            continue
        value = param.default * cells / 16 if param.pack_level else param.default
        values[param.key] = round(value, 2)
    return values
