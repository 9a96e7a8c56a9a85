"""One coordinator per stack: discover the packs, poll them, keep what the entities show.

A refresh polls every pack through :class:`~.ress_bms.client.StackClient`. A pack that misses a
refresh keeps its last values until it has missed :data:`MISSED_REFRESHES_UNAVAILABLE` in a
row, then only its entities turn unavailable; the whole update fails (``UpdateFailed``) only
when nothing on the bus has answered for as many refreshes. A silent bus is still asked at every
refresh interval, and the link waits at most one interval between reconnection attempts, so the
end of an outage is seen within two intervals plus the link timeout.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
import time
from typing import TYPE_CHECKING, Any, Final, Protocol

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryError
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from .const import (
    CONF_ADVANCED,
    CONF_BAUDRATE,
    CONF_DEVICE,
    CONF_DIALECT,
    CONF_MASTER_ADDRESS,
    CONF_POLL_MODE,
    CONF_SCAN_INTERVAL,
    CONF_TIMEOUT,
    DEFAULT_BAUD,
    DEFAULT_DIALECT,
    DEFAULT_LINK_TIMEOUT,
    DEFAULT_MASTER,
    DEFAULT_POLL_MODE,
    DEFAULT_SCAN_INTERVAL,
    DIALECT_CHECK_INTERVAL,
    DOMAIN,
    LOGGER,
    MANUFACTURER,
    MAX_INTEGRATION_GAP,
    MISSED_REFRESHES_UNAVAILABLE,
    PACK_MODEL,
    REDISCOVERY_INTERVAL,
    STACK_MODEL,
)
from .control import StackControl
from .history_cache import StackHistory
from .ress_bms.analog import PackAnalog
from .ress_bms.client import PackInfo, PollMode, StackClient, StackInfo, StackSample
from .ress_bms.detect import Detection, detect
from .ress_bms.dialect_client import dialect_info, make_client
from .ress_bms.errors import (
    BmsError,
    BmsTimeoutError,
    LinkError,
    UnsupportedProtocolError,
)
from .ress_bms.link import Link
from .ress_bms.status import PackStatus

if TYPE_CHECKING:
    from collections.abc import Iterable

type RessConfigEntry = ConfigEntry[StackCoordinator]

LINK_QUALITY_WINDOW: Final = 20
"""Link quality is the share of successful exchanges over this many refreshes."""


class HasIdentifiers(Protocol):
    """A device registry entry of any kind (child devices included)."""

    @property
    def identifiers(self) -> set[tuple[str, str]]:
        """The device's (domain, id) identifiers."""
        ...


# -- what the entities read ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PackState:
    """One pack as the entities see it: its last values and how many refreshes it missed."""

    address: int
    info: PackInfo
    analog: PackAnalog | None = None
    status: PackStatus | None = None
    missed: int = 0

    @property
    def available(self) -> bool:
        """Whether the pack's entities show values (it answered recently enough)."""
        return self.analog is not None and self.missed < MISSED_REFRESHES_UNAVAILABLE


@dataclass(frozen=True, slots=True)
class StackData:
    """The result of one refresh; equal results do not wake the entities."""

    packs: Mapping[int, PackState]
    energy_charged: float = 0.0
    """kWh, rounded to 1 Wh (the exact counter lives in :class:`EnergyCounter`)."""
    energy_discharged: float = 0.0
    link_quality: float | None = None
    """Share of exchanges that got their reply over the last refreshes, in %."""
    round_trip: float | None = None
    """Round-trip time of the last exchange, in ms."""

    @property
    def available_packs(self) -> list[PackState]:
        """Packs whose values are current enough to show."""
        return [p for p in self.packs.values() if p.available]

    def analogs(self) -> list[PackAnalog]:
        """Analog values of the available packs."""
        return [p.analog for p in self.available_packs if p.analog is not None]


def _same_if_equal[T](new: T, old: T | None) -> T:
    """The previous object when a new sample equals it: entities tell "unchanged" by identity.

    One comparison per pack and refresh, instead of one per entity (or a recomputed state);
    the protection tracker (:class:`StackControl`) and the sensors' readings key on it.
    """
    return old if old is not None and new == old else new


def soc_weighted(analogs: Iterable[PackAnalog]) -> float | None:
    """Capacity-weighted state of charge: each pack counts by its full capacity."""
    values = list(analogs)
    weight = sum(a.full_capacity for a in values)
    if not values:
        return None
    if not weight:
        return round(sum(a.soc for a in values) / len(values), 1)
    return round(sum(a.soc * a.full_capacity for a in values) / weight, 1)


# -- energy ----------------------------------------------------------------------------------


@dataclass(slots=True)
class EnergyCounter:
    """Energy charged and discharged, integrated from each pack's power on every refresh.

    Trapezoids between consecutive readings of the same pack; a sign change is split at the
    zero crossing. A gap longer than :data:`MAX_INTEGRATION_GAP` (the bus was down) is not
    bridged. The totals only grow: a restored value is added once as a baseline. Each pack's
    share is counted too (``address`` in :meth:`total` and :meth:`restore`): the stack's totals
    are the sum of what every pack added since the start, plus their own restored baseline.
    """

    charged: float = 0.0
    """kWh."""
    discharged: float = 0.0
    packs: dict[int, dict[str, float]] = field(default_factory=dict)
    """Per pack address: ``energy_charged`` and ``energy_discharged`` in kWh."""
    _last: dict[int, tuple[float, float]] = field(default_factory=dict)
    _restored: set[tuple[str, int | None]] = field(default_factory=set)

    def add(self, address: int, moment: float, power: float) -> None:
        """Account a reading of ``power`` W (+ = charging) taken at ``moment`` (s)."""
        last = self._last.get(address)
        self._last[address] = (moment, power)
        if last is None:
            return
        then, before = last
        span = moment - then
        if not 0 < span <= MAX_INTEGRATION_GAP:
            return
        if before * power >= 0:
            self._book(address, (before + power) / 2 * span)
        else:
            crossing = span * abs(before) / (abs(before) + abs(power))
            self._book(address, before / 2 * crossing)
            self._book(address, power / 2 * (span - crossing))

    def _book(self, address: int, joules: float) -> None:
        kwh = abs(joules) / 3_600_000
        pack = self._pack(address)
        if joules > 0:
            self.charged += kwh
            pack["energy_charged"] += kwh
        else:
            self.discharged += kwh
            pack["energy_discharged"] += kwh

    def _pack(self, address: int) -> dict[str, float]:
        return self.packs.setdefault(address, {"energy_charged": 0.0, "energy_discharged": 0.0})

    def forget(self, address: int) -> None:
        """Stop integrating a pack until its next reading (it stopped answering)."""
        self._last.pop(address, None)

    def restore(self, key: str, value: float, address: int | None = None) -> None:
        """Add a total restored from before a restart, once per counter (a pack's with address)."""
        if (key, address) in self._restored or value < 0:
            return
        if key not in ("energy_charged", "energy_discharged"):
            return
        self._restored.add((key, address))
        if address is not None:
            self._pack(address)[key] += value
        elif key == "energy_charged":
            self.charged += value
        else:
            self.discharged += value

    def total(self, key: str, address: int | None = None) -> float:
        """The counter named by an entity key: the stack's, or one pack's with ``address``."""
        if address is not None:
            return self._pack(address).get(key, 0.0)
        return self.charged if key == "energy_charged" else self.discharged


# -- the coordinator -------------------------------------------------------------------------


def dialect_of_entry_data(data: Mapping[str, Any]) -> str:
    """The dialect an entry's stack speaks (entries made before dialects: PACE 0x25)."""
    return str(data.get(CONF_DIALECT, DEFAULT_DIALECT))


def link_for_entry_data(data: Mapping[str, Any], reconnect_max: float | None = None) -> Link[Any]:
    """The link config entry data describe; ``reconnect_max`` caps its reconnection back-off."""
    advanced = data.get(CONF_ADVANCED, {})
    link: Link[Any] = Link(
        data[CONF_DEVICE],
        baudrate=int(data.get(CONF_BAUDRATE, DEFAULT_BAUD)),
        timeout=float(advanced.get(CONF_TIMEOUT, DEFAULT_LINK_TIMEOUT)),
        framing=dialect_info(dialect_of_entry_data(data)).framing,
    )
    if reconnect_max is not None:
        link.backoff_max = min(link.backoff_max, reconnect_max)
    return link


def client_for_entry_data(data: Mapping[str, Any], link: Link[Any]) -> StackClient:
    """The stack client config entry data describe, for the dialect they name."""
    advanced = data.get(CONF_ADVANCED, {})
    return make_client(
        link,
        dialect_of_entry_data(data),
        master_address=int(advanced.get(CONF_MASTER_ADDRESS, DEFAULT_MASTER)),
        poll_mode=PollMode(advanced.get(CONF_POLL_MODE, DEFAULT_POLL_MODE)),
    )


def error_key(err: BaseException) -> str:
    """Translation key for a library error (config flow errors and exceptions share them)."""
    if isinstance(err, UnsupportedProtocolError):
        return "ver20_unsupported"
    if isinstance(err, BmsTimeoutError):
        return "no_reply"
    if isinstance(err, LinkError):
        return "cannot_connect"
    return "not_pace"


class StackCoordinator(DataUpdateCoordinator[StackData]):
    """Polls one stack of packs behind one link."""

    config_entry: RessConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: RessConfigEntry,
        client: StackClient | None = None,
    ) -> None:
        interval = entry.options.get(CONF_SCAN_INTERVAL, DEFAULT_SCAN_INTERVAL)
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} {entry.title}",
            update_interval=timedelta(seconds=interval),
            always_update=False,
        )
        self.client = client or client_for_entry_data(
            entry.data, link_for_entry_data(entry.data, reconnect_max=interval)
        )
        self.stack_id: str = entry.unique_id or entry.entry_id
        """Root of every unique id: the master pack's BMS serial (the entry's unique id)."""
        self.stack_device_id: str | None = None
        self.energy = EnergyCounter()
        self.last_sample: StackSample | None = None
        self._packs: dict[int, PackState] = {}
        self._silent = 0
        self._master_serial: str | None = None
        """The master's BMS serial as first discovered: the battery this entry is about."""
        self._stranger: str | None = None
        """The serial of another battery that answers on the link instead (None: ours)."""
        self._discovered_at = 0.0
        self._reported: set[int] = set()
        """Packs whose silence was logged (logged again once when they are back)."""
        self._quality: deque[tuple[int, int]] = deque(maxlen=LINK_QUALITY_WINDOW + 1)
        self.control = StackControl(self)
        """Parameters, switches, forced shutdown and protection events (control.py)."""
        self.refreshing = False
        """Whether a refresh runs now (the history reader keeps off the bus meanwhile)."""
        self._refresh_listeners: list[Callable[[], None]] = []
        self.history = StackHistory(self)
        """The BMS history log of each pack, cached and filled between refreshes."""
        self.found_dialect: Detection | None = None
        """Another dialect or baud rate the silent stack answers in (a repair offers it)."""
        self._dialect_checked_at: float | None = None

    @property
    def link(self) -> Link[Any]:
        """The byte link to the bus."""
        return self.client.link

    @property
    def stack(self) -> StackInfo | None:
        """What discovery found."""
        return self.client.stack

    # -- set-up and discovery ------------------------------------------------------------------

    async def _async_setup(self) -> None:
        """Discover the packs once, before the first poll."""
        try:
            stack = await self._discover()
        except UnsupportedProtocolError as err:
            raise ConfigEntryError(
                translation_domain=DOMAIN, translation_key="ver20_unsupported"
            ) from err
        except BmsError as err:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key=error_key(err),
                translation_placeholders={"error": str(err)},
            ) from err
        self._adopt(stack)

    async def _discover(self) -> StackInfo:
        stack = await self.client.discover(scan=self.client.requested_mode is PollMode.DIRECT)
        self._discovered_at = time.monotonic()
        return stack

    async def async_rediscover(self) -> bool:
        """Ask the stack again for its packs; register those that are new. True if any."""
        self._discovered_at = time.monotonic()  # tried now, whatever comes of it
        try:
            if not await self._same_master():
                return False
            if self.client.requested_mode is not PollMode.DIRECT:
                count = await self.client.detect_protocol()
                if count <= len(self._packs):
                    return False
            known = self.client.stack
            stack = await self._discover()
        except BmsError as err:
            LOGGER.debug("Looking for new packs on %s failed: %s", self.link.url, err)
            return False
        missing = [p for p in known.packs if stack.pack(p.address) is None] if known else []
        if missing:
            # A pack that is off for a while is not forgotten: keep polling what we knew.
            stack = self.client.stack = replace(
                stack, packs=tuple(sorted((*stack.packs, *missing), key=lambda p: p.address))
            )
        return self._adopt(stack)

    async def _same_master(self) -> bool:
        """Whether the battery at the link's end is still the one first discovered.

        A swapped gateway or cable would otherwise show another stack's values as this one's.
        """
        if self._master_serial is None:
            return True
        found = (await self.client.read_serials()).bms
        if found and found != self._master_serial:
            if self._stranger != found:
                LOGGER.warning(
                    "%s: battery %s answers instead of %s; its values are not shown",
                    self.link.url,
                    found,
                    self._master_serial,
                )
            self._stranger = found
            return False
        if self._stranger is not None:
            LOGGER.info("%s: battery %s answers again", self.link.url, self._master_serial)
        self._stranger = None
        return True

    def _adopt(self, stack: StackInfo) -> bool:
        """Register the stack and any new pack as devices; True when packs were added."""
        if self._master_serial is None:
            self._master_serial = stack.master.bms_serial
        new = [p for p in stack.packs if p.address not in self._packs]
        for pack in stack.packs:
            old = self._packs.get(pack.address)
            self._packs[pack.address] = (
                PackState(pack.address, pack) if old is None else replace(old, info=pack)
            )
        self._register_devices(stack)
        if new and self.data is not None:
            LOGGER.info(
                "Found %s new pack(s) on %s: %s",
                len(new),
                self.link.url,
                ", ".join(str(p.address) for p in new),
            )
        return bool(new)

    def _register_devices(self, stack: StackInfo) -> None:
        registry = dr.async_get(self.hass)
        master = stack.master
        stack_device = registry.async_get_or_create(
            config_entry_id=self.config_entry.entry_id,
            identifiers={(DOMAIN, self.stack_id)},
            manufacturer=MANUFACTURER,
            model=STACK_MODEL,
            serial_number=master.bms_serial,
            sw_version=master.version,
            translation_key="stack",
            translation_placeholders={"name": self.config_entry.title},
        )
        self.stack_device_id = stack_device.id
        for pack in stack.packs:
            registry.async_get_or_create(
                config_entry_id=self.config_entry.entry_id,
                identifiers={(DOMAIN, self.pack_identifier(pack.address))},
                manufacturer=MANUFACTURER,
                model=pack.model or PACK_MODEL,
                model_id=None if pack.model else model_id(pack.version),
                serial_number=pack.bms_serial,
                sw_version=pack.version,
                translation_key="pack",
                translation_placeholders={
                    "name": self.config_entry.title,
                    "address": str(pack.address),
                },
                via_device_id=stack_device.id,
            )

    @callback
    def async_rename_devices(self) -> None:
        """The entry was renamed: the stack and its packs take the new name (``<name> pack 2``).

        Entity ids stay as they are (Home Assistant keeps them when a device is renamed).
        """
        if self.stack is not None:
            self._register_devices(self.stack)

    def pack_identifier(self, address: int) -> str:
        """Device identifier and unique-id root of a pack: stack serial and DIP address.

        Slave packs of a PACE stack often answer nothing but the master's relayed 42H/44H, so
        they have no serial of their own to build on; the address set on the ADD switch is
        stable for as long as the pack keeps its place in the stack.
        """
        return f"{self.stack_id}_pack{address}"

    def address_of_device(self, device: HasIdentifiers) -> int | None:
        """The pack address a device stands for (``None`` for the stack or a foreign device)."""
        prefix = f"{self.stack_id}_pack"
        for domain, identifier in device.identifiers:
            if domain == DOMAIN and identifier.startswith(prefix):
                suffix = identifier.removeprefix(prefix)
                if suffix.isdigit():
                    return int(suffix)
        return None

    # -- polling -------------------------------------------------------------------------------

    async def _async_update_data(self) -> StackData:
        if (
            self._stranger is not None
            or time.monotonic() - self._discovered_at > REDISCOVERY_INTERVAL.total_seconds()
        ):
            await self.async_rediscover()
        if self._stranger is not None:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="other_battery",
                translation_placeholders={
                    "url": self.link.url,
                    "found": self._stranger,
                    "expected": self._master_serial or "",
                },
            )
        sample = await self.client.poll()
        self.last_sample = sample
        answered = [
            a
            for a, p in sample.packs.items()
            if a in self._packs and p.online and p.analog is not None
        ]
        for address, state in list(self._packs.items()):
            got = sample.packs.get(address)
            if address in answered and got is not None and got.analog is not None:
                self.energy.add(address, sample.started, got.analog.power)
                if address in self._reported:
                    self._reported.discard(address)
                    LOGGER.info("Pack %s on %s answers again", address, self.link.url)
                self._packs[address] = replace(
                    state,
                    analog=_same_if_equal(got.analog, state.analog),
                    status=_same_if_equal(got.status, state.status),
                    missed=0,
                )
                continue
            self.energy.forget(address)
            silent = self._packs[address] = replace(state, missed=state.missed + 1)
            if answered and not silent.available and address not in self._reported:
                # Only when others answer: a silent bus is the coordinator's to report.
                self._reported.add(address)
                LOGGER.warning(
                    "Pack %s on %s stopped answering (%s refreshes): %s",
                    address,
                    self.link.url,
                    silent.missed,
                    got.error if got is not None and got.error else "offline",
                )
        if answered:
            self._silent = 0
            self.found_dialect = None
        else:
            self._silent += 1
            if self._silent >= MISSED_REFRESHES_UNAVAILABLE:
                await self._check_dialect()
            if self.data is None or self._silent >= MISSED_REFRESHES_UNAVAILABLE:
                raise self._silent_error(sample)
        self._quality.append((self.link.stats.exchanges, self.link.stats.replies))
        return self._snapshot()

    async def _check_dialect(self) -> None:
        """The stack is silent: check whether it answers in another dialect or baud rate.

        A firmware update or a changed protocol setting does that. Read-only probes (the
        config flow's detection) on the entry's connection, at most once per
        :data:`DIALECT_CHECK_INTERVAL`; the link is closed meanwhile (a serial port opens once).
        """
        now = time.monotonic()
        checked = self._dialect_checked_at
        if checked is not None and now - checked < DIALECT_CHECK_INTERVAL.total_seconds():
            return
        self._dialect_checked_at = now
        await self.link.close()
        try:
            found = await detect(self.link.url)
        except BmsError as err:
            LOGGER.debug("%s answers in no dialect either: %s", self.link.url, err)
            return
        if (found.dialect, found.baudrate) == (self.client.dialect.name, self.link.baudrate):
            return
        LOGGER.warning(
            "%s is silent in %s at %s baud but answers in %s at %s baud",
            self.link.url,
            self.client.dialect.title,
            self.link.baudrate,
            found.title,
            found.baudrate,
        )
        self.found_dialect = found

    def _silent_error(self, sample: StackSample) -> UpdateFailed:
        """Nothing answered. No ``retry_after``: the bus is asked again at the next interval."""
        errors = [p.error for p in sample.packs.values() if p.error is not None]
        err = errors[0] if errors else None
        failure = UpdateFailed(
            translation_domain=DOMAIN,
            translation_key="stack_silent",
            translation_placeholders={
                "url": self.link.url,
                "error": str(err) if err else "offline",
            },
        )
        failure.__cause__ = err
        return failure

    def _snapshot(self) -> StackData:
        return StackData(
            packs=dict(self._packs),
            energy_charged=round(self.energy.charged, 3),
            energy_discharged=round(self.energy.discharged, 3),
            link_quality=self._link_quality(),
            round_trip=(
                round(self.link.stats.last_rtt * 1000)
                if self.link.stats.last_rtt is not None
                else None
            ),
        )

    def _link_quality(self) -> float | None:
        stats = self.link.stats
        if not self._quality:
            return None
        (first_tries, first_replies), (tries, replies) = self._quality[0], self._quality[-1]
        if len(self._quality) > 1 and tries > first_tries:
            return round(100 * (replies - first_replies) / (tries - first_tries))
        return round(stats.success_rate) if stats.success_rate is not None else None

    # -- helpers for entities and the control side ---------------------------------------------

    def pack(self, address: int) -> PackState | None:
        """The current state of one pack."""
        return self.data.packs.get(address) if self.data is not None else None

    @callback
    def forget_pack(self, address: int) -> None:
        """Stop polling a pack the owner removed; rediscovery brings it back if it returns."""
        self._packs.pop(address, None)
        self._reported.discard(address)
        self.energy.forget(address)
        if (stack := self.client.stack) is not None:
            self.client.stack = replace(
                stack, packs=tuple(p for p in stack.packs if p.address != address)
            )
        if self.data is not None:
            self.async_set_pack_updated()

    @callback
    def async_set_pack_updated(self) -> None:
        """Push the current pack states to the entities without polling (after a write)."""
        self.async_set_updated_data(self._snapshot())

    @callback
    def async_mark_pack_silent(self, address: int) -> None:
        """A pack acknowledged a forced shutdown (9CH): unavailable now, not in 3 refreshes.

        If it rebooted instead (current was flowing), its next reply makes it available again
        and is logged as "answers again".
        """
        state = self._packs.get(address)
        if state is None:
            return
        self._packs[address] = replace(
            state, missed=max(state.missed, MISSED_REFRESHES_UNAVAILABLE)
        )
        self._reported.add(address)
        self.energy.forget(address)
        LOGGER.info("Pack %s on %s was shut down by command", address, self.link.url)
        if self.data is not None:
            self.async_set_pack_updated()

    async def _async_refresh(self, *args: Any, **kwargs: Any) -> None:
        """Refresh as Home Assistant does, with :attr:`refreshing` set; tell the listeners."""
        self.refreshing = True
        try:
            await super()._async_refresh(*args, **kwargs)
        finally:
            self.refreshing = False
        for listener in list(self._refresh_listeners):
            listener()

    @callback
    def async_add_refresh_listener(self, listener: Callable[[], None]) -> CALLBACK_TYPE:
        """Call ``listener`` after every refresh, whether or not the values changed."""
        self._refresh_listeners.append(listener)

        def remove() -> None:
            self._refresh_listeners.remove(listener)

        return remove

    async def async_shutdown(self) -> None:
        """Stop polling and close the link."""
        await super().async_shutdown()
        await self.client.link.close()


def model_id(version: str | None) -> str | None:
    """The model part of a C1H version string: ``P16S100A`` of ``P16S100A-1812-1.00``."""
    if not version:
        return None
    return version.split("-", 1)[0].strip() or None
