"""The BMS history log of each pack, cached: filled in the background, kept across restarts.

The BMS keeps its last 500 alarm, protection and power-on records (A1H, index 0 the newest).
Reading all of them takes close to two minutes at 9600 baud, so nothing that answers an owner
(diagnostics, the ``read_history`` action) reads the bus: they answer from this cache and say
how fresh it is. :class:`StackHistory` fills it a few records at a time after a refresh:

* **new records**: index 0 is read; while it is not the newest record already cached, the next
  indexes are read until a cached record comes (then the new ones are prepended), on every
  :data:`CHECK_INTERVAL` and after a protection, alarm or fault changed on the pack;
* **the rest of the log** on a fresh install, slowly, from the oldest record cached towards the
  end of the log (a cached record found there means new ones were logged meanwhile: new records
  are looked for first).

Each exchange goes over the link like any other (under its lock), only between refreshes: never
while a refresh runs, and never when the next one is due before a slow exchange could end, so a
poll is never delayed. At most :data:`RECORDS_PER_REFRESH` exchanges per refresh. Only packs that
answer at their own address have a history (``PackInfo.direct``, see control.py).

Records learned by the new-record check are fired as ``syscom_ress_history`` bus events (the
record's JSON of :func:`~.ress_bms.report.history_json`, described for the logbook by logbook.py)
and shown by each pack's "Last BMS record" sensor; the records of a first fill are not events.
The cache is stored with :class:`~homeassistant.helpers.storage.Store`, the records as the bytes
the BMS sent.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
import time
from typing import TYPE_CHECKING, Any, Final

from homeassistant.components.sensor import SensorDeviceClass, SensorEntityDescription
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.dispatcher import async_dispatcher_connect, async_dispatcher_send
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from .const import DOMAIN, LOGGER
from .control import signal_protection
from .ress_bms.commands import Command, encode_request
from .ress_bms.dialects.base import Capability
from .ress_bms.errors import BmsError, DecodeError, ResponseError
from .ress_bms.frame import Frame
from .ress_bms.history import MAX_RECORDS, HistoryRecord, decode_history, encode_history_request
from .ress_bms.report import history_json
from .ress_bms.status import STATUS_BITS, Kind, StatusBit

if TYPE_CHECKING:
    from .control import Transition
    from .coordinator import PackState, StackCoordinator
    from .entity import PackEntity

EVENT_HISTORY: Final = f"{DOMAIN}_history"
"""Bus event fired for each history record the cache learns (not those of a first fill)."""
RECORDS_PER_REFRESH: Final = 4
"""History exchanges after one refresh (about 0.2 s each at 9600 baud): 500 records take about
an hour and a half at the default 30 s interval."""
CHECK_EXTRA: Final = 4
"""Exchanges a look for new records may use on top (new records are events: sooner is better)."""
CHECK_INTERVAL: Final = timedelta(minutes=5)
"""How often index 0 is read to see whether the BMS logged something new."""
RETRY_AFTER: Final = 300.0
"""Seconds before a pack whose history could not be read is asked again."""
SAVE_DELAY: Final = 30.0
STORAGE_VERSION: Final = 1
NO_DATA: Final = 0x07
"""RTN 07: past the last record (other firmware answers an empty OK)."""

KIND_ORDER: Final = ("fault", "protection", "alarm", "power_on", "record")
"""A record's kind: the most serious of what it holds."""
_PROBLEM_BITS: Final[tuple[StatusBit, ...]] = tuple(
    bit for bit in STATUS_BITS if bit.kind in (Kind.PROTECTION, Kind.ALARM, Kind.FAULT)
)


def signal_history(entry_id: str) -> str:
    """Dispatcher signal: a pack's cached history changed (argument: address)."""
    return f"{DOMAIN}_{entry_id}_history"


def storage_key(entry_id: str) -> str:
    """The ``.storage`` file of a stack's history cache."""
    return f"{DOMAIN}.history.{entry_id}"


def record_kind(record: HistoryRecord) -> str:
    """``fault``, ``protection``, ``alarm``, ``power_on`` or ``record`` (nothing of those)."""
    if record.faults:
        return "fault"
    if record.protections:
        return "protection"
    if record.alarms:
        return "alarm"
    return "power_on" if record.power_on else "record"


def problem_keys(record: HistoryRecord) -> list[str]:
    """The binary-sensor keys of the protections, alarms and faults a record holds."""
    return [bit.key for bit in _PROBLEM_BITS if record.status.is_set(bit)]


def record_time(record: HistoryRecord) -> datetime | None:
    """When the BMS logged the record, in Home Assistant's time zone (the BMS keeps local time)."""
    if record.time is None:
        return None
    return record.time.replace(tzinfo=dt_util.get_default_time_zone())


@dataclass(frozen=True, slots=True)
class Entry:
    """One cached record: the bytes the BMS sent (its identity) and what they decode to."""

    raw: bytes
    record: HistoryRecord


@dataclass(slots=True)
class PackHistory:
    """The cached log of one pack, newest first, and what is left to read."""

    entries: list[Entry] = field(default_factory=list)
    complete: bool = False
    """The end of the log was reached (or 500 records are cached)."""
    checked_at: datetime | None = None
    """When index 0 was last found to be the newest cached record (UTC)."""
    check_wanted: bool = True
    pending: list[Entry] = field(default_factory=list)
    """New records of an unfinished check, newest first."""
    scan_index: int = 0
    """The next index the unfinished check reads."""
    error: str | None = None
    failed_at: float | None = None

    @property
    def records(self) -> list[HistoryRecord]:
        """The cached records, newest first, each with its index in the log as last checked."""
        return [replace(e.record, index=i) for i, e in enumerate(self.entries)]

    def freshness(self) -> dict[str, Any]:
        """How fresh the cache is: for diagnostics and the ``read_history`` action."""
        return {
            "checked_at": self.checked_at.isoformat() if self.checked_at else None,
            "cached": len(self.entries),
            "complete": self.complete,
            "error": self.error,
        }

    def as_stored(self) -> dict[str, Any]:
        """What is kept across restarts."""
        return {
            "records": [e.raw.hex() for e in self.entries],
            "complete": self.complete,
            "checked_at": self.checked_at.isoformat() if self.checked_at else None,
        }

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> PackHistory:
        """A cache as stored; a record that no longer decodes is dropped with those after it."""
        entries = []
        for index, text in enumerate(data.get("records", [])):
            try:
                raw = bytes.fromhex(text)
                record = decode_history(raw, index)
            except ValueError, DecodeError:
                break
            if record is None:
                break
            entries.append(Entry(raw, record))
        checked = data.get("checked_at")
        return cls(
            entries=entries,
            complete=bool(data.get("complete")) and len(entries) == len(data.get("records", [])),
            checked_at=dt_util.parse_datetime(checked) if isinstance(checked, str) else None,
        )


class StackHistory:
    """The history cache of one stack's packs, and the background reader that fills it."""

    def __init__(self, coordinator: StackCoordinator) -> None:
        self.coordinator = coordinator
        self.packs: dict[int, PackHistory] = {}
        self._store: Store[dict[str, Any]] = Store(
            coordinator.hass, STORAGE_VERSION, storage_key(coordinator.config_entry.entry_id)
        )
        self._task: asyncio.Task[None] | None = None
        self._next_refresh = 0.0
        self._dirty = False
        self._round = 0

    @property
    def hass(self) -> HomeAssistant:
        """Home Assistant."""
        return self.coordinator.hass

    @property
    def _entry_id(self) -> str:
        return self.coordinator.config_entry.entry_id

    def pack(self, address: int) -> PackHistory | None:
        """The cache of a pack that has a history (``None`` for the others)."""
        if not self.coordinator.control.reachable(address, Capability.HISTORY):
            return None
        return self.packs.setdefault(address, PackHistory())

    # -- lifecycle -----------------------------------------------------------------------------

    async def async_load(self) -> None:
        """Take the cache kept from before the restart."""
        stored = await self._store.async_load() or {}
        for address, data in stored.get("packs", {}).items():
            if isinstance(data, dict) and str(address).isdigit():
                self.packs[int(address)] = PackHistory.from_stored(data)

    @callback
    def async_start(self) -> CALLBACK_TYPE:
        """Read after each refresh and after each protection change; returns the stop function."""
        remove_refresh = self.coordinator.async_add_refresh_listener(self._refreshed)
        remove_protection = async_dispatcher_connect(
            self.hass, signal_protection(self._entry_id), self._protection_changed
        )
        self._refreshed()  # the first refresh is over: a first step now

        def stop() -> None:
            remove_refresh()
            remove_protection()
            if self._task is not None:
                self._task.cancel()
                self._task = None

        return stop

    async def async_unload(self) -> None:
        """Write what changed now (the delayed write would come after the entry is gone)."""
        if self._dirty:
            await self._store.async_save(self._stored())
            self._dirty = False

    @callback
    def _refreshed(self) -> None:
        interval = self.coordinator.update_interval
        self._next_refresh = time.monotonic() + (interval.total_seconds() if interval else 0.0)
        if (self._task is None or self._task.done()) and (due := self._due()):
            self._task = self.coordinator.config_entry.async_create_background_task(
                self.hass, self._step(due), f"{DOMAIN} history of {self.coordinator.link.url}"
            )

    @callback
    def _protection_changed(self, transition: Transition) -> None:
        if (pack := self.packs.get(transition.address)) is not None:
            pack.check_wanted = True  # the BMS logs a record for each alarm or protection

    # -- the background reader -----------------------------------------------------------------

    def _may_exchange(self) -> bool:
        """Not while a refresh runs, nor when the next is due before a slow exchange ends."""
        if self.coordinator.refreshing:
            return False
        link = self.coordinator.link
        worst = link.timeout * (link.retries + 1) + 0.5
        return time.monotonic() + worst < self._next_refresh

    def _due(self) -> list[tuple[int, PackHistory]]:
        """Packs with work, round-robin so one slow pack does not starve the others."""
        data = self.coordinator.data
        now = time.monotonic()
        due = []
        for address, state in sorted(data.packs.items()) if data is not None else ():
            history = self.pack(address)
            if history is None or not _answers(state):
                continue
            if history.failed_at is not None and now - history.failed_at < RETRY_AFTER:
                continue
            if history.checked_at is not None and not history.pending:
                age = dt_util.utcnow() - history.checked_at
                history.check_wanted = history.check_wanted or age >= CHECK_INTERVAL
            if history.check_wanted or history.pending or not history.complete:
                due.append((address, history))
        self._round += 1
        if due:
            shift = self._round % len(due)
            due = due[shift:] + due[:shift]
        return due

    async def _step(self, due: list[tuple[int, PackHistory]]) -> None:
        budget = RECORDS_PER_REFRESH
        for address, history in due:
            if budget <= 0:
                break
            try:
                if history.check_wanted or history.pending or not history.entries:
                    budget -= await self._check(address, history, budget + CHECK_EXTRA)
                if not (history.check_wanted or history.pending) and budget > 1:
                    budget -= await self._fill(address, history, budget)
            except BmsError as err:
                history.error, history.failed_at = str(err), time.monotonic()
                LOGGER.debug("Reading the history of pack %s failed: %s", address, err)
                continue
            history.error, history.failed_at = None, None
        if self._dirty:
            self._store.async_delay_save(self._stored, SAVE_DELAY)

    async def _check(self, address: int, history: PackHistory, budget: int) -> int:
        """Look for new records: index 0 on, until the newest cached one. Exchanges used.

        The reads of a check can span refreshes; each step that read something new ends with
        index 0 read again: still the first record this check read, nothing was logged since,
        and every read of the check is in order. Otherwise the check starts over.
        """
        if not history.entries and not history.complete:
            return await self._first(address, history)
        used = 0
        newest = history.entries[0].raw if history.entries else None
        found = False
        while used < budget and self._may_exchange():
            index = history.scan_index
            entry = await self._read(address, index)
            used += 1
            if entry is not None and entry.raw == newest:
                found = True
                break
            if entry is None or index >= MAX_RECORDS - 1:
                if entry is not None:
                    history.pending.append(entry)
                found = True
                break
            history.pending.append(entry)
            history.scan_index += 1
        if not history.pending:
            if found:  # index 0 is the newest cached record, or the log is (still) empty
                self._learned(address, history, end=newest is None)
            return used
        if not self._may_exchange():
            return used  # verified at the next step
        first = await self._read(address, 0)
        used += 1
        if first is None or first.raw != history.pending[0].raw:
            LOGGER.debug("Pack %s logged a record while its history was read: again", address)
            history.pending, history.scan_index, history.check_wanted = [], 0, True
            return used
        if found:
            self._learned(address, history, end=entry is None or newest is None)
        return used

    async def _first(self, address: int, history: PackHistory) -> int:
        """A fresh cache: the newest record starts it (no event), the rest is filled after."""
        if not self._may_exchange():
            return 0
        entry = await self._read(address, 0)
        history.check_wanted = False
        history.checked_at = dt_util.utcnow()
        if entry is None:
            history.complete = True  # an empty log: what comes later is new
        else:
            history.entries.append(entry)
        self._changed(address)
        return 1

    async def _fill(self, address: int, history: PackHistory, budget: int) -> int:
        """Read older records after the oldest cached one. Exchanges used.

        The records read are taken only if the oldest cached record is still where it was
        (read last): otherwise new records pushed the log down meanwhile, and are looked for
        first.
        """
        count = len(history.entries)
        if history.complete or not count:
            return 0
        if count >= MAX_RECORDS:
            history.complete = True
            self._changed(address)
            return 0
        used, found, end = 0, [], False
        while used < min(budget - 1, MAX_RECORDS - count) and self._may_exchange():
            entry = await self._read(address, count + used)
            used += 1
            if entry is None:
                end = True
                break
            found.append(entry)
        if not used or not self._may_exchange():
            return used
        last = await self._read(address, count - 1)
        used += 1
        if last is None or last.raw != history.entries[-1].raw:
            history.check_wanted = True
            return used
        history.entries.extend(found)
        history.complete = end or len(history.entries) >= MAX_RECORDS
        self._changed(address)
        return used

    def _learned(self, address: int, history: PackHistory, *, end: bool) -> None:
        """A check is over: prepend what it found, as events, unless the whole log is new.

        ``end``: it read to the end of the log without meeting a cached record. With records
        cached, that is a log the cache does not know (cleared, another pack): no events.
        An empty cache's first records are a first fill (no events) unless the log was known
        to be empty.
        """
        new = history.pending
        history.pending, history.scan_index, history.check_wanted = [], 0, False
        history.checked_at = dt_util.utcnow()
        known_empty = not history.entries and history.complete
        if end and history.entries:
            history.entries = new[:MAX_RECORDS]
            LOGGER.info(
                "Pack %s on %s holds a history log the cache does not know: read again",
                address,
                self.coordinator.link.url,
            )
        elif not history.entries and not known_empty:
            history.entries = new[:MAX_RECORDS]  # the first fill starts with these
        else:
            history.entries = (new + history.entries)[:MAX_RECORDS]
            for offset, entry in reversed(list(enumerate(new))):
                self._fire(address, replace(entry.record, index=offset))
        if end:
            history.complete = True
        self._changed(address)

    async def _read(self, address: int, index: int) -> Entry | None:
        """A1H at ``index``: the record, or ``None`` past the last one."""
        client = self.coordinator.client
        request = encode_request(Command.HISTORY, address, encode_history_request(index))

        def decode(frame: Frame) -> Entry | None:
            record = decode_history(frame.info, index)
            return None if record is None else Entry(bytes(frame.info), record)

        try:
            return await client.link.exchange(
                request, decode, expect_adr=client.attribution.reply_addresses.get(address)
            )
        except ResponseError as err:
            if err.code == NO_DATA:
                return None
            raise

    def _changed(self, address: int) -> None:
        self._dirty = True
        async_dispatcher_send(self.hass, signal_history(self._entry_id), address)

    def _stored(self) -> dict[str, Any]:
        self._dirty = False
        return {"packs": {str(a): p.as_stored() for a, p in sorted(self.packs.items())}}

    def _fire(self, address: int, record: HistoryRecord) -> None:
        device = dr.async_get(self.hass).async_get_device_by_identifier(
            (DOMAIN, self.coordinator.pack_identifier(address)), self._entry_id
        )
        LOGGER.info(
            "Pack %s on %s logged: %s",
            address,
            self.coordinator.link.url,
            ", ".join(problem_keys(record)) or record_kind(record),
        )
        self.hass.bus.async_fire(
            EVENT_HISTORY,
            {
                **history_json(record),
                "kind": record_kind(record),
                "keys": problem_keys(record),
                "pack": address,
                "device_id": device.id if device is not None else None,
                "config_entry_id": self._entry_id,
            },
        )


def _answers(state: PackState) -> bool:
    return state.available and state.missed == 0


# -- what the "Last BMS record" sensor shows (its class is in sensor.py) -----------------------

LAST_RECORD: Final = SensorEntityDescription(
    key="last_history_record",
    translation_key="last_history_record",
    device_class=SensorDeviceClass.TIMESTAMP,
)

type RecordTime = datetime | None
type RecordAttributes = dict[str, Any] | None


def _newest(coordinator: StackCoordinator, address: int) -> HistoryRecord | None:
    history = coordinator.history.pack(address)
    return history.entries[0].record if history is not None and history.entries else None


def newest_record_time(coordinator: StackCoordinator, address: int) -> RecordTime:
    """When the pack's newest cached record was logged."""
    record = _newest(coordinator, address)
    return record_time(record) if record is not None else None


def newest_record_attributes(coordinator: StackCoordinator, address: int) -> RecordAttributes:
    """What the pack's newest cached record holds."""
    record = _newest(coordinator, address)
    if record is None:
        return None
    return {
        "kind": record_kind(record),
        "protections": list(record.protections),
        "alarms": list(record.alarms),
        "faults": list(record.faults),
    }


def follow_history(entity: PackEntity) -> CALLBACK_TYPE:
    """Update the entity when its pack's cached history changes (written if what it shows did)."""

    @callback
    def changed(address: int) -> None:
        if address == entity.address:
            entity.async_write_if_changed()

    return async_dispatcher_connect(
        entity.hass, signal_history(entity.coordinator.config_entry.entry_id), changed
    )
