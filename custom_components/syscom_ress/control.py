"""The control side of a stack: parameters, switches, forced shutdown and protection events.

One :class:`StackControl` per stack (``coordinator.control``) holds what the numbers, switches,
event entities and actions share:

* the **parameter cache**: parameters are read from a pack when its first number entity is added
  or when the ``read_parameters`` action runs, never on a poll (17 exchanges per pack);
* **writes** through the library (validated as a set, read-modify-write, read back), with every
  library error turned into a translated Home Assistant error;
* the **forced-shutdown** bookkeeping that keeps the shutdown switch honest;
* the **protection tracker**, which compares each pack's protection, alarm and fault bits with
  the previous refresh and fires an event per transition (never for what was already active when
  the pack was first seen: the binary sensors show that). An alarm counts as cleared only once no
  refresh has seen it for :data:`~.const.ALARM_CLEAR_HOLD` (the BMS drops an alarm the moment
  its value is back inside the threshold, so a value at the threshold flips it at every poll);
  protections and faults have their own release rules in the BMS and follow it at once.
  The summaries and problem binary sensors show the tracker's view, so they and the events
  agree. Each transition names its place: the cells or temperature sensors the 44H per-value
  codes flag (:meth:`~.ress_bms.status.PackStatus.place`), in one translated line
  (:func:`describe`, "Pack 2 · Cell 12 · Cell over-voltage protection").

Addressing: only 42H/44H are relayed by the master. Every command used here acts on the pack the
link is wired to, or on a pack of a multi-drop bus that answers at its own address, so only packs
with ``PackInfo.direct`` can be read, written or switched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
import time
from typing import TYPE_CHECKING, Any, Final

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.event import async_call_later
from homeassistant.helpers.translation import async_get_cached_translations

from .const import ALARM_CLEAR_HOLD, DOMAIN, IDLE_CURRENT, LOGGER
from .ress_bms import params
from .ress_bms.client import StackClient, WriteNotKeptError, WriteResult
from .ress_bms.commands import Command
from .ress_bms.dialects.base import Capability
from .ress_bms.errors import (
    BmsError,
    CommandRefusedError,
    LinkError,
    ResponseError,
    ValidationError,
)
from .ress_bms.status import BITS_BY_KEY, STATUS_BITS, Kind, PackStatus, Place, StatusBit

if TYPE_CHECKING:
    from .coordinator import PackState, StackCoordinator

EVENT_PROTECTION: Final = f"{DOMAIN}_protection"
"""Bus event fired on every protection, alarm or fault transition of a pack."""

PROBLEM_BITS: Final[tuple[StatusBit, ...]] = tuple(
    bit for bit in STATUS_BITS if bit.kind in (Kind.PROTECTION, Kind.ALARM, Kind.FAULT)
)
"""The bits that raise and clear events: every protection, alarm and fault of the 44H table."""

RAISED: Final = "raised"
CLEARED: Final = "cleared"
EVENT_TYPES: Final[tuple[str, ...]] = tuple(
    f"{bit.key}_{change}" for bit in PROBLEM_BITS for change in (RAISED, CLEARED)
)

PARAMETER_RETRY: Final = 300.0
"""Seconds before a pack whose parameters could not be read is asked again."""


SEPARATOR: Final = " · "
"""Between the parts of a problem's line: pack, place, what."""


@dataclass(frozen=True, slots=True)
class Transition:
    """A protection, alarm or fault bit of one pack that changed between two refreshes."""

    address: int
    bit: StatusBit
    raised: bool
    place: Place = field(default_factory=Place)
    """Where it is (or was, for a cleared bit: the place last flagged while it was active)."""

    @property
    def change(self) -> str:
        """``raised`` or ``cleared``."""
        return RAISED if self.raised else CLEARED

    @property
    def event_type(self) -> str:
        """The event entity's event type, e.g. ``cell_over_voltage_protection_raised``."""
        return f"{self.bit.key}_{self.change}"


@dataclass(slots=True)
class _Tracked:
    """The tracker's view of one pack."""

    status: PackStatus
    """The status this view was computed from (a new poll brings a new object)."""
    active: frozenset[str]
    """Keys of the active problem bits, an alarm until it has been clear for the hold time."""
    clearing: dict[str, CALLBACK_TYPE] = field(default_factory=dict)
    """Alarm key -> cancels the timer that ends its hold (it is clear, still counted active)."""
    places: dict[str, Place] = field(default_factory=dict)
    """Key -> the last non-empty place its codes flagged while active."""
    problems: dict[Kind, tuple[tuple[StatusBit, Place], ...]] = field(default_factory=dict)
    """Kind -> its active bits with their places, made once per change of the view (the
    summary binary sensors ask at every refresh); emptied whenever ``active`` changes."""


def describe(hass: HomeAssistant, address: int, bit: StatusBit, place: Place) -> str:
    """One line for a problem, in Home Assistant's language: "Pack 2 · Cell 12 · <bit name>".

    The bit's name is its binary sensor's translated name, a sensor's place its temperature
    sensor's name; the rest comes from the ``common`` strings. Missing translations fall back to
    English, then to the keys.
    """
    language = hass.config.language
    common = async_get_cached_translations(hass, language, "common", DOMAIN)
    entity = async_get_cached_translations(hass, language, "entity", DOMAIN)
    root = f"component.{DOMAIN}"

    def text(key: str, fallback: str, **values: Any) -> str:
        template = common.get(f"{root}.common.{key}", fallback)
        try:
            return template.format(**values)
        except KeyError, IndexError, ValueError:
            return fallback.format(**values)

    def sensor_name(name: str) -> str:
        if name.startswith("cell_temperature_"):
            number = name.removeprefix("cell_temperature_")
            template = entity.get(f"{root}.entity.sensor.cell_temperature.name", name)
            return template.replace("{sensor}", number)
        return entity.get(f"{root}.entity.sensor.{name}.name", name)

    parts = [text("place_pack", "Pack {pack}", pack=address)]
    cells = place.cells
    if len(cells) == 1:
        parts.append(text("place_cell", "Cell {cell}", cell=cells[0]))
    elif cells:
        parts.append(text("place_cells", "Cells {cells}", cells=", ".join(map(str, cells))))
    parts += [sensor_name(name) for name in place.sensors]
    parts.append(entity.get(f"{root}.entity.binary_sensor.{bit.key}.name", bit.key))
    return SEPARATOR.join(parts)


def event_place(hass: HomeAssistant, transition: Transition) -> dict[str, Any]:
    """What events add to say where: ``cells``, ``sensors`` and the translated ``message``."""
    place = transition.place
    return {
        "cells": list(place.cells),
        "sensors": list(place.sensors),
        "message": describe(hass, transition.address, transition.bit, place),
    }


def signal_parameters(entry_id: str) -> str:
    """Dispatcher signal: a pack's parameters were read or written (argument: address)."""
    return f"{DOMAIN}_{entry_id}_parameters"


def signal_protection(entry_id: str) -> str:
    """Dispatcher signal: a protection transition (argument: :class:`Transition`)."""
    return f"{DOMAIN}_{entry_id}_protection"


@contextmanager
def translate_errors(address: int, refused: str = "command_refused") -> Iterator[None]:
    """Turn library errors into translated Home Assistant errors.

    Bad input (a value or set of values the table refuses) is the caller's fault:
    ``ServiceValidationError``. Anything the pack or the bus did is ``HomeAssistantError``.
    """
    pack = {"pack": str(address)}
    try:
        yield
    except ValidationError as err:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="invalid_parameters",
            translation_placeholders={**pack, "problems": str(err)},
        ) from err
    except WriteNotKeptError as err:
        details = ", ".join(
            f"{key}: wrote {wrote:g}, reads {read:g}"
            for key, (wrote, read) in err.mismatches.items()
        )
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="write_not_kept",
            translation_placeholders={**pack, "details": details},
        ) from err
    except CommandRefusedError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN, translation_key=refused, translation_placeholders=pack
        ) from err
    except ResponseError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="command_failed",
            translation_placeholders={**pack, "error": str(err)},
        ) from err
    except LinkError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="pack_no_reply",
            translation_placeholders={**pack, "error": str(err)},
        ) from err
    except BmsError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="command_failed",
            translation_placeholders={**pack, "error": str(err)},
        ) from err


class StackControl:
    """What the control side of one stack shares (see the module docstring)."""

    def __init__(self, coordinator: StackCoordinator) -> None:
        self.coordinator = coordinator
        self._parameters: dict[int, dict[str, float]] = {}
        self._wanted: set[int] = set()
        self._loading: dict[int, asyncio.Task[None]] = {}
        self._failed_at: dict[int, float] = {}
        self._shutdown: set[int] = set()
        self._tracked: dict[int, _Tracked] = {}
        self._pending: list[Transition] = []

    @property
    def _entry_id(self) -> str:
        return self.coordinator.config_entry.entry_id

    @property
    def _client(self) -> StackClient:
        return self.coordinator.client

    # -- lifecycle -----------------------------------------------------------------------------

    @callback
    def async_start(self) -> CALLBACK_TYPE:
        """Follow the coordinator's refreshes; returns the function that stops it."""
        for tracked in self._tracked.values():
            for cancel in tracked.clearing.values():
                cancel()
        self._tracked.clear()
        self._pending.clear()
        self.async_update()  # what is active now is the start-up state, not an event
        remove = self.coordinator.async_add_listener(self.async_update)

        def stop() -> None:
            remove()
            for task in self._loading.values():
                task.cancel()
            self._loading.clear()
            for tracked in self._tracked.values():
                for cancel in tracked.clearing.values():
                    cancel()
                tracked.clearing.clear()

        return stop

    @callback
    def async_update(self) -> None:
        """After a refresh: protection transitions, shutdown state, pending parameter reads."""
        for address, pack in self.coordinator.data.packs.items():
            if pack.available and pack.missed == 0:
                self._shutdown.discard(address)  # it answers: woken (or it rebooted instead)
            self._follow(pack)
        pending, self._pending = self._pending, []
        for transition in pending:
            self._fire(transition)
        now = time.monotonic()
        for address in self._wanted - self._parameters.keys() - self._loading.keys():
            if now - self._failed_at.get(address, -PARAMETER_RETRY) >= PARAMETER_RETRY:
                self.async_request_parameters(address)

    # -- addressing ----------------------------------------------------------------------------

    def reachable(self, address: int, capability: Capability) -> bool:
        """Whether ``capability`` reaches this pack.

        The stack's dialect must do it, and the pack answer at its own address.
        """
        if not self.coordinator.client.can(capability):
            return False
        stack = self.coordinator.stack
        pack = stack.pack(address) if stack is not None else None
        return pack is not None and pack.direct

    # -- protection events ---------------------------------------------------------------------

    def active_keys(self, pack: PackState) -> frozenset[str] | None:
        """Keys of the pack's active protections, alarms and faults (``None``: no status yet)."""
        tracked = self._follow(pack)
        return tracked.active if tracked is not None else None

    def problems(self, pack: PackState, kind: Kind) -> tuple[tuple[StatusBit, Place], ...]:
        """The pack's active bits of one kind, in table order, each with its place."""
        tracked = self._follow(pack)
        if tracked is None:
            return ()
        if (found := tracked.problems.get(kind)) is None:
            found = tracked.problems[kind] = tuple(
                (bit, tracked.places.get(bit.key, Place()))
                for bit in PROBLEM_BITS
                if bit.kind is kind and bit.key in tracked.active
            )
        return found

    def _follow(self, pack: PackState) -> _Tracked | None:
        """Bring the pack's view up to its last status, once per status (whoever asks first).

        Entities may ask before this class's own listener runs in a refresh; the transitions
        are queued and fired by :meth:`async_update`, never from inside an entity's state.
        """
        tracked = self._tracked.get(pack.address)
        status = pack.status
        if not pack.available or status is None or (tracked and tracked.status is status):
            return tracked
        raw = frozenset(bit.key for bit in PROBLEM_BITS if status.is_set(bit))
        if tracked is None:
            # First sight (start-up, or a pack found later): the state, not an event.
            tracked = self._tracked[pack.address] = _Tracked(status, raw)
            self._remember_places(tracked)
            return tracked
        before = tracked.active
        held: set[str] = set()
        for key in before - raw:
            if BITS_BY_KEY[key].kind is Kind.ALARM:
                held.add(key)
                if key not in tracked.clearing:
                    tracked.clearing[key] = async_call_later(
                        self.coordinator.hass,
                        ALARM_CLEAR_HOLD,
                        partial(self._alarm_cleared, pack.address, key),
                    )
        for key in raw & tracked.clearing.keys():
            tracked.clearing.pop(key)()  # back before its hold ended: still the same alarm
        tracked.status, tracked.active = status, raw | held
        tracked.problems.clear()
        self._remember_places(tracked)
        self._queue(pack.address, tracked, before)
        return tracked

    def _queue(self, address: int, tracked: _Tracked, before: frozenset[str]) -> None:
        for bit in PROBLEM_BITS:
            if (bit.key in tracked.active) == (bit.key in before):
                continue
            if bit.key in tracked.active:
                place = tracked.places.get(bit.key, Place())
                self._pending.append(Transition(address, bit, True, place))
            else:
                place = tracked.places.pop(bit.key, Place())
                self._pending.append(Transition(address, bit, False, place))

    @callback
    def _alarm_cleared(self, address: int, key: str, _now: datetime) -> None:
        """An alarm's hold ended without a refresh seeing it again: it is cleared now."""
        tracked = self._tracked.get(address)
        if tracked is None or tracked.clearing.pop(key, None) is None:
            return
        before = tracked.active
        tracked.active = before - {key}
        tracked.problems.clear()
        self._queue(address, tracked, before)
        self.coordinator.async_update_listeners()  # the entities, and async_update fires it

    @staticmethod
    def _remember_places(tracked: _Tracked) -> None:
        for key in tracked.active:
            if place := tracked.status.place(BITS_BY_KEY[key]):
                tracked.places[key] = place

    def _fire(self, transition: Transition) -> None:
        coordinator = self.coordinator
        hass = coordinator.hass
        place = transition.place
        LOGGER.info(
            "Pack %s on %s: %s %s%s",
            transition.address,
            coordinator.link.url,
            transition.bit.key,
            transition.change,
            f" ({', '.join([*(f'cell {n}' for n in place.cells), *place.sensors])})"
            if place
            else "",
        )
        hass.bus.async_fire(
            EVENT_PROTECTION,
            {
                "config_entry_id": self._entry_id,
                "device_id": self._device_id(transition.address),
                "pack": transition.address,
                "name": transition.bit.name,
                "key": transition.bit.key,
                "kind": str(transition.bit.kind),
                "state": transition.change,
                **event_place(hass, transition),
            },
        )
        async_dispatcher_send(hass, signal_protection(self._entry_id), transition)

    def _device_id(self, address: int) -> str | None:
        device = dr.async_get(self.coordinator.hass).async_get_device_by_identifier(
            (DOMAIN, self.coordinator.pack_identifier(address)), self._entry_id
        )
        return device.id if device is not None else None

    # -- parameters ----------------------------------------------------------------------------

    def parameters(self, address: int) -> Mapping[str, float] | None:
        """The last parameters read from a pack (``None`` before the first read)."""
        return self._parameters.get(address)

    @callback
    def async_request_parameters(self, address: int) -> None:
        """Read a pack's parameters in the background, once (number entities call this)."""
        self._wanted.add(address)
        if address in self._parameters or address in self._loading:
            return
        self._loading[address] = self.coordinator.config_entry.async_create_background_task(
            self.coordinator.hass,
            self._load(address),
            f"{DOMAIN} read parameters of pack {address}",
        )

    async def _load(self, address: int) -> None:
        try:
            await self.async_read_parameters(address)
        except HomeAssistantError as err:
            self._failed_at[address] = time.monotonic()
            LOGGER.warning("Could not read the parameters of pack %s: %s", address, err)
        finally:
            self._loading.pop(address, None)

    async def async_read_parameters(self, address: int) -> dict[str, float]:
        """Read every parameter group of a pack now and keep the values."""
        with translate_errors(address):
            result = await self._client.read_parameters(address)
        values: dict[str, float] = dict(result.values)
        self._store(address, values)
        return values

    async def async_write_parameters(
        self, address: int, changes: Mapping[str, float], *, dry_run: bool = False
    ) -> WriteResult:
        """Validate, write (read-modify-write) and read back; refresh the pack afterwards."""
        try:
            with translate_errors(address):
                params.validate(changes, {})  # refused before any byte goes out
                result = await self._client.write_parameters(changes, address, dry_run=dry_run)
        except HomeAssistantError as err:
            if isinstance(kept := err.__cause__, WriteNotKeptError):
                # What the pack holds now: the values it kept, the others as read back.
                read = {key: value for key, (_wrote, value) in kept.mismatches.items()}
                self._store(address, {**self._parameters.get(address, {}), **changes, **read})
            raise
        if not dry_run:
            self._store(address, {**self._parameters.get(address, {}), **result.new})
            await self.coordinator.async_request_refresh()
        return result

    def _store(self, address: int, values: dict[str, float]) -> None:
        self._parameters[address] = values
        self._failed_at.pop(address, None)
        async_dispatcher_send(self.coordinator.hass, signal_parameters(self._entry_id), address)

    # -- switches ------------------------------------------------------------------------------

    async def _command(
        self, address: int, command: Callable[[], Awaitable[object]], refused: str
    ) -> None:
        with translate_errors(address, refused):
            await command()
        await self.coordinator.async_request_refresh()

    async def async_set_switch(self, address: int, name: str, on: bool) -> None:
        """99H: buzzer, LED alarm, current limiter or limiter gear."""
        await self._command(
            address, lambda: self._client.set_switch(name, on, address), "command_refused"
        )

    async def async_set_mos(self, address: int, which: Command, on: bool) -> None:
        """9AH / 9BH; the firmware's refusal (current flowing, the other MOS off) is translated."""
        await self._command(
            address, lambda: self._client.set_mos(which, on, address), "mos_refused"
        )

    # -- forced shutdown -----------------------------------------------------------------------

    def shut_down(self, address: int) -> bool:
        """Whether a pack is shut down: by our 9CH until it answers again, or by its own bit."""
        pack = self.coordinator.pack(address)
        if pack is None:
            return address in self._shutdown
        if address in self._shutdown and pack.missed > 0:
            return True  # silent since the command (a reply resets ``missed``)
        return pack.available and pack.status is not None and pack.status.flag("shutdown")

    async def async_shutdown(self, address: int) -> None:
        """9CH: the pack goes silent until its key or a charger wakes it."""
        pack = self.coordinator.pack(address)
        if pack is not None and pack.analog is not None and abs(pack.analog.current) > IDLE_CURRENT:
            # The firmware reboots instead of sleeping when current flows: the inverter would
            # see the battery drop out for nothing.
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="shutdown_under_load",
                translation_placeholders={
                    "pack": str(address),
                    "current": f"{pack.analog.current:g}",
                },
            )
        with translate_errors(address):
            await self._client.shutdown(address)
        self._shutdown.add(address)
        self.coordinator.async_mark_pack_silent(address)

    # -- clock (the history log is read by history_cache.py) -----------------------------------

    async def async_read_clock(self, address: int) -> datetime:
        """B1H: a pack's clock (local time, naive)."""
        with translate_errors(address):
            return await self._client.read_clock(address)

    async def async_set_clock(self, address: int, value: datetime) -> None:
        """B2H: set a pack's clock."""
        with translate_errors(address):
            await self._client.set_clock(value, address)
