"""Time to full and time to empty, from the current, the capacity and the pack's own thresholds.

A charge ends where the BMS calls the pack full: at its full-charge voltage (parameter
``full_charge_voltage``). A discharge ends where the BMS cuts it off: at the first of the cell
and pack under-voltage protections (``cell_under_voltage_protection``,
``pack_under_voltage_protection``). A voltage becomes a state of charge through the LiFePO4
curve (:mod:`.ress_bms.lifepo4`); the time is the capacity between here and there over the
present current. A threshold is known once the pack's parameters were read (the control side's
cache: a threshold number entity was enabled, or ``read_parameters`` ran); until then, and for
packs commands cannot reach, the estimate runs to 100 % / 0 % of the full capacity and says so.

While the current is below :data:`.const.IDLE_CURRENT` either way there is no estimate. The
stack's estimate takes the capacity every answering pack has left to its end over the stack's
current: packs in parallel share the current, and the stack is full (empty) when they all are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from .const import IDLE_CURRENT
from .ress_bms.analog import PackAnalog
from .ress_bms.lifepo4 import state_of_charge

FULL_CHARGE_VOLTAGE: Final = "full_charge_voltage"
CELL_UNDER_VOLTAGE: Final = "cell_under_voltage_protection"
PACK_UNDER_VOLTAGE: Final = "pack_under_voltage_protection"


class EndSource(StrEnum):
    """Where an estimate's end comes from (the ``end_source`` attribute)."""

    FULL_CHARGE_VOLTAGE = FULL_CHARGE_VOLTAGE
    CELL_UNDER_VOLTAGE = CELL_UNDER_VOLTAGE
    PACK_UNDER_VOLTAGE = PACK_UNDER_VOLTAGE
    CAPACITY = "capacity"
    """No threshold known: 100 % or 0 % of the full capacity."""
    THRESHOLDS = "thresholds"
    """The stack: every pack's own threshold."""
    PARTIAL = "partial"
    """The stack: some packs' thresholds, 100 % / 0 % for the others."""


@dataclass(frozen=True, slots=True)
class End:
    """Where a charge or a discharge ends: a share of the full capacity, and why there."""

    soc: float
    """0 to 1."""
    source: EndSource


def full_end(parameters: Mapping[str, float] | None, cells: int) -> End:
    """Where a charge of a pack with ``cells`` cells in series ends."""
    volts = (parameters or {}).get(FULL_CHARGE_VOLTAGE)
    if volts is None or cells <= 0:
        return End(1.0, EndSource.CAPACITY)
    return End(state_of_charge(volts / cells), EndSource.FULL_CHARGE_VOLTAGE)


def empty_end(parameters: Mapping[str, float] | None, cells: int) -> End:
    """Where a discharge ends: the under-voltage protection that trips first (the higher SOC)."""
    values = parameters or {}
    ends = []
    if (cell := values.get(CELL_UNDER_VOLTAGE)) is not None:
        ends.append(End(state_of_charge(cell), EndSource.CELL_UNDER_VOLTAGE))
    if (pack := values.get(PACK_UNDER_VOLTAGE)) is not None and cells > 0:
        ends.append(End(state_of_charge(pack / cells), EndSource.PACK_UNDER_VOLTAGE))
    if not ends:
        return End(0.0, EndSource.CAPACITY)
    return max(ends, key=lambda end: end.soc)


def _to_full(analog: PackAnalog, end: End) -> float:
    """Ah still to charge into a pack before its charge ends."""
    return max(0.0, analog.full_capacity * end.soc - analog.remaining_capacity)


def _to_empty(analog: PackAnalog, end: End) -> float:
    """Ah a pack can still give before its discharge ends."""
    return max(0.0, analog.remaining_capacity - analog.full_capacity * end.soc)


def _hours(ampere_hours: float, amperes: float) -> float:
    """Hours to two significant digits (1.3 h, 0.47 h, 12 h).

    The current an estimate divides by changes from one refresh to the next: a third digit
    would follow it at every refresh and say nothing.
    """
    return float(f"{ampere_hours / amperes:.2g}")


def time_to_full(analog: PackAnalog, end: End) -> float | None:
    """Hours until the charge ends at the present current; ``None`` unless charging."""
    if analog.current < IDLE_CURRENT:
        return None
    return _hours(_to_full(analog, end), analog.current)


def time_to_empty(analog: PackAnalog, end: End) -> float | None:
    """Hours until the discharge ends at the present current; ``None`` unless discharging."""
    if analog.current > -IDLE_CURRENT:
        return None
    return _hours(_to_empty(analog, end), -analog.current)


def stack_source(sources: Iterable[EndSource]) -> EndSource:
    """The stack's ``end_source``: every pack's threshold, none, or some."""
    known = [source is not EndSource.CAPACITY for source in sources]
    if known and all(known):
        return EndSource.THRESHOLDS
    return EndSource.PARTIAL if any(known) else EndSource.CAPACITY


def stack_time_to_full(packs: Iterable[tuple[PackAnalog, End]]) -> float | None:
    """Hours until every pack's charge has ended, at the stack's present current."""
    packs = list(packs)
    current = sum(analog.current for analog, _ in packs)
    if not packs or current < IDLE_CURRENT:
        return None
    return _hours(sum(_to_full(analog, end) for analog, end in packs), current)


def stack_time_to_empty(packs: Iterable[tuple[PackAnalog, End]]) -> float | None:
    """Hours until every pack's discharge has ended, at the stack's present current."""
    packs = list(packs)
    current = sum(analog.current for analog, _ in packs)
    if not packs or current > -IDLE_CURRENT:
        return None
    return _hours(sum(_to_empty(analog, end) for analog, end in packs), -current)
