"""Repair issues: what the owner has to look at on the bus, raised and cleared by the integration.

A :class:`StackWatcher` per stack checks the link's counters every minute and after each refresh:

* ``link_silent``: nothing has answered for :data:`SILENT_AFTER` (the cable, the gateway, the
  master pack's power);
* ``second_master``: requests from another master (an inverter or the PC tool polling the same
  bus), or several replies nobody here asked for; cleared once none has been seen for
  :data:`SECOND_MASTER_CLEAR`;
* ``firmware_dialect``: a pack answers in a way the integration does not fully know: a 42H
  extension length never seen before, replies with a wrong LCHKSUM (tolerated, but a sign of
  other differences), or replies with another VER than 0x25;
* ``pack_offline``: some packs answer and others have stopped (their entities are
  unavailable): the stack's totals (state of charge, capacities, stored energy, power) count the
  packs that answer only, so the owner is told that the stack looks smaller than it is;
* ``dialect_changed``: the stack is silent in its stored dialect but answers in another one, or
  at another baud rate (a firmware update, a changed protocol setting): the coordinator's
  read-only check found it (``StackCoordinator.found_dialect``).

Only ``dialect_changed`` can be fixed from Home Assistant: its fix flow stores what answers and
reloads the entry. Each issue is removed as soon as its cause is gone, and all of them when the
entry unloads.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final

from homeassistant.components.repairs import RepairsFlow, RepairsFlowResult
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.util import dt as dt_util

from .const import CONF_BAUDRATE, CONF_DIALECT, DOMAIN
from .coordinator import StackCoordinator
from .ress_bms.analog import EXTENSION_LENGTHS_SEEN

SILENT_AFTER: Final = timedelta(minutes=10)
SECOND_MASTER_CLEAR: Final = timedelta(minutes=10)
DIALECT_CLEAR: Final = timedelta(minutes=10)
"""A wrong LCHKSUM counts as a finding for this long after the last one."""
CHECK_INTERVAL: Final = timedelta(minutes=1)
UNSOLICITED_SUSPECT: Final = 3
"""Replies nobody asked for, between two checks, that suggest another master (one may be late)."""

ISSUE_LINK_SILENT: Final = "link_silent"
ISSUE_SECOND_MASTER: Final = "second_master"
ISSUE_FIRMWARE_DIALECT: Final = "firmware_dialect"
ISSUE_PACK_OFFLINE: Final = "pack_offline"
ISSUE_DIALECT_CHANGED: Final = "dialect_changed"
ISSUES: Final = (
    ISSUE_LINK_SILENT,
    ISSUE_SECOND_MASTER,
    ISSUE_FIRMWARE_DIALECT,
    ISSUE_PACK_OFFLINE,
    ISSUE_DIALECT_CHANGED,
)


def utcnow() -> datetime:
    """The watcher's clock (tests move it on without freezing the event loop)."""
    return dt_util.utcnow()


def issue_id(kind: str, entry_id: str) -> str:
    """The issue registry id of one kind of issue for one stack."""
    return f"{kind}_{entry_id}"


class StackWatcher:
    """Raises and clears the repair issues of one stack."""

    def __init__(self, hass: HomeAssistant, coordinator: StackCoordinator) -> None:
        self.hass = hass
        self.coordinator = coordinator
        stats = coordinator.link.stats
        now = utcnow()
        self._clock = now
        """The latest time seen: a check never goes back in time."""
        self._replies = stats.replies
        self._heard = now
        self._foreign = stats.foreign_requests
        self._unsolicited = stats.unsolicited_frames
        self._foreign_seen: datetime | None = None
        self._lchksum = stats.lchksum_errors
        self._lchksum_seen: datetime | None = now if stats.lchksum_errors else None

    @property
    def _entry_id(self) -> str:
        return self.coordinator.config_entry.entry_id

    @callback
    def async_start(self) -> CALLBACK_TYPE:
        """Check now, after each refresh and every minute; returns the function that stops it."""
        remove_listener = self.coordinator.async_add_listener(self.async_check)
        remove_timer = async_track_time_interval(self.hass, self._tick, CHECK_INTERVAL)
        self.async_check()

        def stop() -> None:
            remove_listener()
            remove_timer()
            for kind in ISSUES:
                ir.async_delete_issue(self.hass, DOMAIN, issue_id(kind, self._entry_id))

        return stop

    @callback
    def _tick(self, _now: datetime) -> None:
        self.async_check()

    @callback
    def async_check(self) -> None:
        """Compare the link's counters with the last check; raise or clear each issue."""
        now = self._clock = max(utcnow(), self._clock)
        self._check_silent(now)
        self._check_second_master(now)
        self._check_dialect(now)
        self._check_packs_offline()
        self._check_found_dialect()

    def _set(
        self, kind: str, active: bool, fix: dict[str, Any] | None = None, **placeholders: str
    ) -> None:
        """Raise (with ``fix``: the fix flow's data) or clear one kind of issue."""
        ident = issue_id(kind, self._entry_id)
        if not active:
            ir.async_delete_issue(self.hass, DOMAIN, ident)
            return
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            ident,
            is_fixable=fix is not None,
            data=fix,
            severity=ir.IssueSeverity.ERROR
            if kind == ISSUE_LINK_SILENT
            else ir.IssueSeverity.WARNING,
            translation_key=kind,
            translation_placeholders={
                "title": self.coordinator.config_entry.title,
                "url": self.coordinator.link.url,
                **placeholders,
            },
        )

    def _check_silent(self, now: datetime) -> None:
        replies = self.coordinator.link.stats.replies
        if replies != self._replies:
            self._replies, self._heard = replies, now
        silent = now - self._heard
        self._set(
            ISSUE_LINK_SILENT,
            silent >= SILENT_AFTER,
            minutes=str(int(silent.total_seconds() // 60)),
        )

    def _check_second_master(self, now: datetime) -> None:
        stats = self.coordinator.link.stats
        foreign = stats.foreign_requests - self._foreign
        unsolicited = stats.unsolicited_frames - self._unsolicited
        self._foreign, self._unsolicited = stats.foreign_requests, stats.unsolicited_frames
        if foreign > 0 or unsolicited >= UNSOLICITED_SUSPECT:
            self._foreign_seen = now
        self._set(
            ISSUE_SECOND_MASTER,
            self._foreign_seen is not None and now - self._foreign_seen < SECOND_MASTER_CLEAR,
            foreign=str(stats.foreign_requests),
            unsolicited=str(stats.unsolicited_frames),
        )

    def _check_dialect(self, now: datetime) -> None:
        stats = self.coordinator.link.stats
        findings = []
        data = self.coordinator.data
        for pack in data.packs.values() if data is not None else ():
            analog = pack.analog
            if analog is not None and analog.online:
                length = len(analog.extension)
                if length not in EXTENSION_LENGTHS_SEEN:
                    findings.append(
                        f"pack {pack.address}: 42H analog values end with {length} bytes "
                        "the integration does not decode"
                    )
        if stats.lchksum_errors > self._lchksum:
            self._lchksum, self._lchksum_seen = stats.lchksum_errors, now
        if self._lchksum_seen is not None and now - self._lchksum_seen < DIALECT_CLEAR:
            findings.append(f"{stats.lchksum_errors} replies with a wrong LCHKSUM")
        expected = self.coordinator.client.dialect.version
        for command, (_request, reply) in sorted(stats.last_frames.items()):
            try:
                ver = int(reply[1:3], 16)
            except ValueError:
                continue
            if expected is not None and ver != expected:
                findings.append(
                    f"the reply to {command:02X}H carries VER {ver:02X}H, not {expected:02X}H"
                )
        self._set(ISSUE_FIRMWARE_DIALECT, bool(findings), details="; ".join(findings))

    def _check_packs_offline(self) -> None:
        """Some packs answer, others not: the totals are of the packs that answer only."""
        data = self.coordinator.data
        packs = list(data.packs.values()) if data is not None else []
        online = [p for p in packs if p.available]
        offline = [p.address for p in packs if not p.available]
        self._set(
            ISSUE_PACK_OFFLINE,
            bool(online and offline),  # all silent: link_silent says so
            packs=", ".join(str(a) for a in offline),
            online=str(len(online)),
            total=str(len(packs)),
        )

    def _check_found_dialect(self) -> None:
        """The silent stack answers in another dialect or at another baud rate."""
        found = self.coordinator.found_dialect
        client, link = self.coordinator.client, self.coordinator.link
        if found is None:
            self._set(ISSUE_DIALECT_CHANGED, False)
            return
        self._set(
            ISSUE_DIALECT_CHANGED,
            True,
            fix={
                "entry_id": self._entry_id,
                CONF_DIALECT: found.dialect,
                CONF_BAUDRATE: found.baudrate,
            },
            stored=client.dialect.title,
            stored_baud=str(link.baudrate),
            found=found.title,
            baud=str(found.baudrate),
            model=found.model or "-",
        )


class DialectFixFlow(RepairsFlow):
    """Store the dialect and baud rate the stack answers in, then reload the entry."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._entry_id = str(data["entry_id"])
        self._dialect = str(data[CONF_DIALECT])
        self._baudrate = int(data[CONF_BAUDRATE])

    async def async_step_init(self, user_input: dict[str, str] | None = None) -> RepairsFlowResult:
        """The only step: confirm."""
        return await self.async_step_confirm()

    async def async_step_confirm(
        self, user_input: dict[str, str] | None = None
    ) -> RepairsFlowResult:
        """Show what answers; on confirmation store it and reload."""
        entry = self.hass.config_entries.async_get_entry(self._entry_id)
        if entry is None:
            return self.async_abort(reason="entry_removed")
        if user_input is not None:
            self.hass.config_entries.async_update_entry(
                entry,
                data={**entry.data, CONF_DIALECT: self._dialect, CONF_BAUDRATE: self._baudrate},
            )
            self.hass.config_entries.async_schedule_reload(entry.entry_id)
            return self.async_create_entry(data={})
        issue = ir.async_get(self.hass).async_get_issue(DOMAIN, self.issue_id)
        return self.async_show_form(
            step_id="confirm",
            description_placeholders=dict(issue.translation_placeholders or {})
            if issue is not None
            else None,
        )


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, Any] | None
) -> RepairsFlow:
    """The fix flow of a fixable issue (only ``dialect_changed`` is)."""
    assert data is not None, issue_id
    return DialectFixFlow(data)


@callback
def async_watch_stack(hass: HomeAssistant, coordinator: StackCoordinator) -> CALLBACK_TYPE:
    """Start watching a stack for repair issues; returns the function that stops it."""
    return StackWatcher(hass, coordinator).async_start()
