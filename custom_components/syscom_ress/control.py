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
  the pack was first seen: the binary sensors show that).

Addressing: only 42H/44H are relayed by the master. Every command used here acts on the pack the
link is wired to, or on a pack of a multi-drop bus that answers at its own address, so only packs
with ``PackInfo.direct`` can be read, written or switched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
import time
from typing import TYPE_CHECKING, Final

from homeassistant.core import CALLBACK_TYPE, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.dispatcher import async_dispatcher_send

from .const import DOMAIN, IDLE_CURRENT, LOGGER
from .ress_bms import params
from .ress_bms.client import StackClient, WriteNotKeptError, WriteResult
from .ress_bms.commands import Command
from .ress_bms.errors import (
    BmsError,
    CommandRefusedError,
    LinkError,
    ResponseError,
    ValidationError,
)
from .ress_bms.history import HistoryRecord
from .ress_bms.status import STATUS_BITS, Kind, StatusBit

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


@dataclass(frozen=True, slots=True)
class Transition:
    """A protection, alarm or fault bit of one pack that changed between two refreshes."""

    address: int
    bit: StatusBit
    raised: bool

    @property
    def change(self) -> str:
        """``raised`` or ``cleared``."""
        return RAISED if self.raised else CLEARED

    @property
    def event_type(self) -> str:
        """The event entity's event type, e.g. ``cell_over_voltage_protection_raised``."""
        return f"{self.bit.key}_{self.change}"


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
        self._known: dict[int, frozenset[str]] = {}

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
        self._known.clear()
        self.async_update()  # what is active now is the start-up state, not an event
        remove = self.coordinator.async_add_listener(self.async_update)

        def stop() -> None:
            remove()
            for task in self._loading.values():
                task.cancel()
            self._loading.clear()

        return stop

    @callback
    def async_update(self) -> None:
        """After a refresh: protection transitions, shutdown state, pending parameter reads."""
        for address, pack in self.coordinator.data.packs.items():
            if pack.available and pack.missed == 0:
                self._shutdown.discard(address)  # it answers: woken (or it rebooted instead)
            self._track(pack)
        now = time.monotonic()
        for address in self._wanted - self._parameters.keys() - self._loading.keys():
            if now - self._failed_at.get(address, -PARAMETER_RETRY) >= PARAMETER_RETRY:
                self.async_request_parameters(address)

    # -- addressing ----------------------------------------------------------------------------

    def reachable(self, address: int) -> bool:
        """Whether commands reach this pack (it answers at its own address)."""
        stack = self.coordinator.stack
        pack = stack.pack(address) if stack is not None else None
        return pack is not None and pack.direct

    # -- protection events ---------------------------------------------------------------------

    def _track(self, pack: PackState) -> None:
        if not pack.available or pack.status is None:
            return
        status = pack.status
        active = frozenset(bit.key for bit in PROBLEM_BITS if status.is_set(bit))
        before = self._known.get(pack.address)
        self._known[pack.address] = active
        if before is None or before == active:
            return  # first sight (start-up, or a pack found later), or nothing changed
        for bit in PROBLEM_BITS:
            if (bit.key in active) != (bit.key in before):
                self._fire(Transition(pack.address, bit, bit.key in active))

    def _fire(self, transition: Transition) -> None:
        coordinator = self.coordinator
        hass = coordinator.hass
        LOGGER.info(
            "Pack %s on %s: %s %s",
            transition.address,
            coordinator.link.url,
            transition.bit.key,
            transition.change,
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

    # -- clock and history ---------------------------------------------------------------------

    async def async_set_clock(self, address: int, value: datetime) -> None:
        """B2H: set a pack's clock."""
        with translate_errors(address):
            await self._client.set_clock(value, address)

    async def async_read_history(self, address: int, count: int) -> list[HistoryRecord]:
        """A1H: the newest ``count`` records of a pack, newest first."""
        with translate_errors(address):
            return await self._client.read_history(address, count)
