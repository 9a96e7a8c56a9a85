"""What the integration costs its Home Assistant host: CPU per refresh, recorder rows, memory.

For 1, 4 and 16 packs, a real Home Assistant (script/devhome.py: its own temporary config folder,
onboarded over the REST API, the entry made through the real config flow) with its SQLite
recorder polls the simulator (9600 baud, 45 ms turnaround, solar-day profile, 10:00 in the
morning) every 5 s. Simulated time runs faster than the wall clock by the factor that gives each
refresh the simulated time a refresh at the default 30 s interval sees (30 s plus the refresh
itself): the values move between two refreshes as they move in a real day at the default
interval, so rows per refresh scale to rows per hour at 30 s. Per pack count, in one fresh Home
Assistant:

1. before the entry exists: resident memory;
2. the entry is created through the config flow: time until every entity has its first state;
3. scan interval 5 s (options flow); default entities: a window of ``--refreshes`` refreshes;
4. Home Assistant restarted on the same configuration, so the entry loads from storage as it
   does at every start after the day it was created: time to first states, then a window. The
   process that created the entry keeps the memory the registration's peak took from the
   system until it restarts; the restarted one is what a running installation holds;
5. every entity enabled, the entry disabled: the same Home Assistant idle for as long (the CPU
   baseline), and its memory;
6. the entry enabled again (now with every entity): time to first states, then a window.

Printed per pack count and entity set: process CPU per refresh (minus the idle baseline; split
into the event loop, the recorder thread and the rest) and per pack; recorder state rows per
refresh, per hour and per pack-hour at the default interval, and the entities that wrote most;
statistics rows per hour (entities with a state class: 12 five-minute rows and one hourly row
each); resident memory before the entry, loaded and disabled; time from creation to first
states. CPU is read from /proc (every thread); the windows keep clear of the recorder's
five-minute statistics run (that run is the statistics' cost, not a refresh's).

    .venv/bin/python bench/ha_cost.py                  # 1, 4, 16 packs (16 alone: about 11 minutes)
    .venv/bin/python bench/ha_cost.py --quick          # 1 pack, short windows: a smoke run
    .venv/bin/python bench/ha_cost.py --packs 16 --markdown cost.md

Everything listens on and talks to 127.0.0.1 only; every wait is bounded; Home Assistant and the
simulator are stopped on the way out, on Ctrl-C and on errors.
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter
import contextlib
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
import json
from pathlib import Path
import re
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from typing import Any

import soak  # bench/soak.py: the entity map, the options flow, the log format, the tree version

devhome = soak.devhome

HOST = "127.0.0.1"
DEFAULT_INTERVAL = 30.0
"""The integration's default scan interval (const.DEFAULT_SCAN_INTERVAL), s."""
STATISTICS_ROWS_PER_HOUR = 13
"""Per entity with a state class: 12 five-minute rows and one hourly row."""
SAMPLE_PERIOD = 1.0
GAP = 1.5
"""Seconds after a refresh finished at which a window opens or closes: between two refreshes."""
SETTLE = 12.0
"""Home Assistant saves its registries 10 s after a change: wait that out before measuring."""
STATISTICS_RUN = (-1.0, 10.0)
"""Seconds around the recorder's five-minute statistics run (:m0:10 and :m5:10 UTC; it takes
well under a second at 16 packs here) that no measuring window touches."""
REFRESH_LINE = re.compile(
    r"Finished fetching syscom_ress .* data in (?P<seconds>[\d.]+) seconds \(success: True\)"
)
RELOAD_LINE = soak.RELOAD_LINE
GOAL_PACKS, GOAL_CPU_MS, GOAL_ROWS, GOAL_MIB = 16, 15.0, 400.0, 40.0
"""Issue 11's goals for a 16-pack stack with default entities (printed next to the figures)."""
WINDOWS = {
    "default": ("default entities, just created", "the entry's creation"),
    "restarted": ("default entities, after a restart", "Home Assistant's restart"),
    "all": ("every entity", "enabling the entry"),
}
"""The measuring windows, in the order they run: what each is, and what its first states follow."""

COST_YAML = """\
# Written by bench/ha_cost.py: Home Assistant with its SQLite recorder, quiet logs.
homeassistant:
  name: RESS cost
  unit_system: metric
  time_zone: {time_zone}

frontend:
config:
api:
history:
logbook:
energy:
recorder:
{http}
logger:
  default: warning
  logs:
    # one line per refresh ("Finished fetching"): how the windows count refreshes
    custom_components.syscom_ress: debug
    homeassistant.config_entries: info
"""


def say(message: str) -> None:
    print(f"ha_cost {time.strftime('%H:%M:%S')}: {message}", flush=True)


def refresh_estimate(packs: int, baud: int) -> float:
    """Seconds one broadcast refresh of ``packs`` takes (at 9600 baud: docs/performance.md)."""
    return 0.25 + 0.2 * packs if baud else 0.05


def speed_for(packs: int, interval: float, baud: int = 9600) -> float:
    """Simulated seconds per wall second: a refresh sees what one at the default interval does."""
    busy = refresh_estimate(packs, baud)
    return round((DEFAULT_INTERVAL + busy) / (interval + busy), 2)


# -- Home Assistant -------------------------------------------------------------------------------


class CostHome(devhome.DevHome):
    """script/develop's Home Assistant with a recorder and quiet logs; times the new entry."""

    def __init__(self, state_dir: Path, *, clock: str, **kwargs: Any) -> None:
        super().__init__(state_dir, **kwargs)
        start = datetime.combine(datetime.now().date(), datetime.strptime(clock, "%H:%M").time())
        self.simulator_args = ["--start", start.isoformat(timespec="seconds")]
        self.rss_before: int | None = None
        self.first_states: float | None = None
        """Seconds from the config flow's last step (the entry's creation) to every state."""

    def _write_config(self) -> None:
        super()._write_config()  # the custom_components link and the packages folder
        http = devhome.HTTP_YAML.format(host=self.http_host, port=self.http_port)
        (self.config_dir / "configuration.yaml").write_text(
            COST_YAML.format(time_zone=devhome._time_zone(), http=http), encoding="utf-8"
        )

    @property
    def database(self) -> Path:
        """The recorder's SQLite file."""
        return self.config_dir / "home-assistant_v2.db"

    @property
    def pid(self) -> int:
        """Home Assistant's process id."""
        assert self.hass is not None
        assert self.hass.proc is not None
        return self.hass.proc.pid

    async def restart(self) -> None:
        """Stop Home Assistant cleanly and start it again on the same configuration."""
        assert self.hass is not None
        await self.hass.stop(signal.SIGTERM, timeout=60)
        self.hass.start()
        await self._wait_for_http()
        await self._wait_running()

    async def _ensure_entry(self) -> None:
        """Memory before the entry, then the config flow, timed to every entity's first state."""
        await asyncio.sleep(SETTLE)  # Home Assistant has just started: let it calm down
        self.rss_before = self.rss_kib()
        assert self.api is not None
        api = self.api
        posted: list[float] = []
        post = api.post

        async def timed_post(path: str, payload: Any = None) -> Any:
            posted.append(time.monotonic())
            return await post(path, payload)

        api.post = timed_post  # type: ignore[method-assign]
        try:
            await super()._ensure_entry()
        finally:
            del api.post  # the class's method again
        await every_state(self, self.packs)
        self.first_states = time.monotonic() - posted[-1]


async def shown_entities(home: CostHome) -> list[dict[str, Any]]:
    """The integration's enabled entities as the frontend lists them (``ei`` id, ``di`` device):
    the JSON that list caches in each registry entry is there in any Home Assistant that is
    looked at (:data:`devhome.LIST_FOR_DISPLAY`)."""
    assert home.api is not None
    (listed,) = await home.api.ws(devhome.LIST_FOR_DISPLAY)
    return devhome.ours_for_display(listed)


def stored_registry(home: CostHome) -> list[dict[str, Any]]:
    """The entry's entity registry entries, enabled or not, from Home Assistant's store (saved
    10 s after a change; read, never written)."""
    path = home.config_dir / ".storage" / "core.entity_registry"
    entities: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["data"][
        "entities"
    ]
    return [e for e in entities if e.get("config_entry_id") == home.entry_id]


async def every_state(home: CostHome, packs: int, timeout: float = 180.0) -> None:
    """Until every enabled entity of the integration has a state, on the stack and every pack."""
    assert home.api is not None
    api = home.api

    async def ready() -> bool:
        ours = await shown_entities(home)
        (states,) = await api.ws({"type": "get_states"})
        shown = {s["entity_id"] for s in states}
        devices = {e.get("di") for e in ours}
        return len(devices) > packs and all(e["ei"] in shown for e in ours)

    await home._until("every entity's first state", ready, timeout=timeout, interval=0.5)


async def set_entry_disabled(home: CostHome, disabled: bool) -> None:
    """Disable or enable the entry, as its menu in the frontend does."""
    assert home.api is not None
    await home.api.ws(
        {
            "type": "config_entries/disable",
            "entry_id": home.entry_id,
            "disabled_by": "user" if disabled else None,
        }
    )


async def enable_every_entity(home: CostHome) -> int:
    """Enable every entity the integration disabled by default; how many there were."""
    assert home.api is not None
    wanted = [e["entity_id"] for e in stored_registry(home) if e.get("disabled_by")]
    if wanted:
        await home.api.ws(
            *(
                {"type": "config/entity_registry/update", "entity_id": e, "disabled_by": None}
                for e in wanted
            )
        )
    return len(wanted)


# -- what Home Assistant's process spends ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CpuSample:
    """Nanoseconds on a CPU of each of Home Assistant's threads at ``t`` (by thread id)."""

    t: float
    threads: dict[int, tuple[str, int]]
    """Thread id -> (its name, ns it has run)."""


class CpuSampler:
    """Home Assistant's CPU time, per thread, once a second and on demand.

    From /proc/PID/task/*/schedstat, the scheduler's own count in nanoseconds (the clock-tick
    figures of /proc/PID/stat are too coarse for a few milliseconds). A thread that ends loses
    at most its last second.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[CpuSample] = []

    def sample(self) -> CpuSample:
        """Read /proc now."""
        threads = {}
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError, IndexError):
                ran = int(task.joinpath("schedstat").read_text().split()[0])
                threads[int(task.name)] = (task.joinpath("comm").read_text().strip(), ran)
        found = CpuSample(time.time(), threads)
        self.samples.append(found)
        return found

    async def run(self) -> None:
        """Sample until cancelled."""
        while True:
            with contextlib.suppress(OSError):
                self.sample()
            await asyncio.sleep(SAMPLE_PERIOD)

    def rate(self, t0: float, t1: float) -> tuple[float, float, float, float]:
        """CPU ms per second (total, event loop, recorder) and the seconds counted, over
        [t0, t1], leaving out the recorder's five-minute statistics runs."""
        inside = [s for s in self.samples if t0 <= s.t <= t1]
        seconds = total = loop = recorder = 0.0
        for a, b in pairwise(inside):
            if _near_statistics_run(a.t, b.t):
                continue
            seconds += b.t - a.t
            for tid, (name, ran) in b.threads.items():
                spent = ran - a.threads.get(tid, (name, 0))[1]
                total += spent
                if tid == self.pid:
                    loop += spent
                elif name.startswith("Recorder"):
                    recorder += spent
        if not seconds:
            return 0.0, 0.0, 0.0, 0.0
        scale = 1e-6 / seconds
        return total * scale, loop * scale, recorder * scale, seconds


async def clear_of_statistics_run(seconds: float) -> None:
    """Wait until a window of ``seconds`` from now would not touch the recorder's five-minute
    run (its seconds are left out of a window's CPU)."""
    for _ in range(3):
        now = time.time()
        if not _near_statistics_run(now, now + seconds):
            return
        start = int(now // 300) * 300 + 10
        run = min(r for r in (start - 300, start, start + 300) if r + STATISTICS_RUN[1] >= now)
        await asyncio.sleep(max(0.0, run + STATISTICS_RUN[1] - now) + 0.5)


def _near_statistics_run(a: float, b: float) -> bool:
    """Whether [a, b] touches the recorder's five-minute run (minute % 5 == 0, second 10, UTC)."""
    start = int(a // 300) * 300 + 10  # :m0:10 or :m5:10 of the five minutes a falls in
    for run in (start - 300, start, start + 300):
        if a <= run + STATISTICS_RUN[1] and b >= run + STATISTICS_RUN[0]:
            return True
    return False


class HassLog:
    """Home Assistant's log, read as it grows: when each refresh finished, and reloads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.refreshes: list[tuple[float, float]] = []
        """(finished, seconds it took), epoch."""
        self.reloads: list[float] = []
        self._partial = ""

    def read(self) -> None:
        """Take in what was written since the last read."""
        try:
            with self.path.open("r", encoding="utf-8", errors="replace") as log:
                log.seek(self.offset)
                text = log.read()
                self.offset = log.tell()
        except OSError:
            return
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            match = soak.LOG_LINE.match(line)
            if match is None:
                continue
            when = datetime.fromisoformat(match["when"]).timestamp()
            if found := REFRESH_LINE.search(match["message"]):
                self.refreshes.append((when, float(found["seconds"])))
            elif RELOAD_LINE in match["message"]:
                self.reloads.append(when)

    async def refresh_after(self, t: float, timeout: float = 120.0) -> float:
        """When the first refresh that finished after ``t`` finished (waits for it)."""
        deadline = time.monotonic() + timeout
        while True:
            self.read()
            for finished, _seconds in self.refreshes:
                if finished > t:
                    return finished
            if time.monotonic() > deadline:
                raise TimeoutError(f"no refresh finished within {timeout:.0f} s")
            await asyncio.sleep(0.2)

    async def reload_after(self, t: float, timeout: float = 90.0) -> None:
        """Until Home Assistant logged the registry-change reload scheduled after ``t``."""
        deadline = time.monotonic() + timeout
        while True:
            self.read()
            if any(when > t for when in self.reloads):
                return
            if time.monotonic() > deadline:
                raise TimeoutError("Home Assistant did not reload after the registry change")
            await asyncio.sleep(0.5)

    def between(self, t0: float, t1: float) -> list[float]:
        """How long each refresh that finished in [t0, t1] took."""
        return [seconds for finished, seconds in self.refreshes if t0 <= finished <= t1]


# -- one measurement -----------------------------------------------------------------------------


@dataclass
class Window:
    """A stretch of wall time with the entry in one state."""

    t0: float
    t1: float
    refreshes: list[float] = field(default_factory=list)
    """How long each refresh in the window took (s)."""
    cpu: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    rss: int | None = None
    enabled: int = 0
    state_class: int = 0
    rows: Counter[str] = field(default_factory=Counter)
    attribute_rows: int = 0

    @property
    def period(self) -> float:
        """Mean seconds from one refresh to the next."""
        return (self.t1 - self.t0) / len(self.refreshes) if self.refreshes else 0.0


async def window(
    home: CostHome, log: HassLog, sampler: CpuSampler, refreshes: int, period: float
) -> Window:
    """Exactly ``refreshes`` refreshes (one about every ``period`` s), opened and closed between
    two of them, clear of the recorder's five-minute run."""
    await clear_of_statistics_run((refreshes + 2) * period + 2 * GAP)
    finished = await log.refresh_after(time.time())
    await asyncio.sleep(max(0.0, finished + GAP - time.time()))
    t0 = sampler.sample().t
    last = t0
    for _ in range(refreshes):
        last = await log.refresh_after(last)
    await asyncio.sleep(max(0.0, last + GAP - time.time()))
    t1 = sampler.sample().t
    found = Window(t0, t1, log.between(t0, t1), sampler.rate(t0, t1), home.rss_kib())
    assert home.api is not None
    ids = {e["ei"] for e in await shown_entities(home)}
    (states,) = await home.api.ws({"type": "get_states"})
    found.enabled = len(ids)
    found.state_class = sum(
        1 for s in states if s["entity_id"] in ids and s["attributes"].get("state_class")
    )
    return found


async def idle(home: CostHome, sampler: CpuSampler, seconds: float) -> Window:
    """Home Assistant with the entry disabled, for ``seconds``."""
    await clear_of_statistics_run(seconds)
    t0 = sampler.sample().t
    await asyncio.sleep(seconds)
    t1 = sampler.sample().t
    return Window(t0, t1, cpu=sampler.rate(t0, t1), rss=home.rss_kib())


@dataclass
class StackResult:
    """Everything measured for one stack size."""

    packs: int
    speed: float
    rss_before: int | None
    first_states: dict[str, float | None]
    windows: dict[str, Window]
    idle: Window
    keys: dict[str, str]
    """entity id -> what it is (``pack voltage``, ``stack power``)."""
    ha_version: str | None


async def measure(args: argparse.Namespace, packs: int, workdir: Path) -> StackResult:
    """One fresh Home Assistant on a stack of ``packs``; every figure of that size."""
    speed = speed_for(packs, args.interval, args.baud)
    home = CostHome(
        workdir / f"{packs}-packs",
        clock=args.clock,
        http_host=HOST,
        http_port=devhome.free_port(),
        sim_port=devhome.free_port(),
        packs=packs,
        profile="solar-day",
        speed=speed,
        seed=args.seed,
        log=lambda message: say(f"devhome: {message}"),
    )
    home.simulator_args += ["--baud", str(args.baud)]
    sampler: CpuSampler | None = None
    sampling: asyncio.Task[None] | None = None
    try:
        async with asyncio.timeout(900):
            await home.start(install=args.install)
            log = HassLog(home.log_path)
            sampler = CpuSampler(home.pid)
            sampling = asyncio.ensure_future(sampler.run())
            first: dict[str, float | None] = {"default": home.first_states}
            say(
                f"{packs} packs: the entry's entities have their first states "
                f"{home.first_states:.1f} s after its creation; scan interval {args.interval:g} s"
            )
            await soak.set_scan_interval(home, int(args.interval))
            await every_state(home, packs)
            await warm_up(log)
            period = args.interval + refresh_estimate(packs, args.baud)
            windows = {"default": await window(home, log, sampler, args.refreshes, period)}
            say(f"{packs} packs, default entities: {_brief(windows['default'])}")

            started = time.monotonic()
            sampling.cancel()
            await asyncio.gather(sampling, return_exceptions=True)
            await home.restart()
            log = HassLog(home.log_path)  # a new log file: Home Assistant keeps the last as .1
            sampler = CpuSampler(home.pid)
            sampling = asyncio.ensure_future(sampler.run())
            await every_state(home, packs)
            first["restarted"] = time.monotonic() - started
            await warm_up(log)
            windows["restarted"] = await window(home, log, sampler, args.refreshes, period)
            say(f"{packs} packs, default entities after a restart: {_brief(windows['restarted'])}")

            changed = time.time()
            enabled = await enable_every_entity(home)
            await set_entry_disabled(home, disabled=True)
            await asyncio.sleep(SETTLE)
            idle_window = await idle(home, sampler, windows["default"].t1 - windows["default"].t0)
            say(f"{packs} packs, entry disabled: {idle_window.cpu[0]:.1f} ms of CPU per second")
            if enabled:
                await log.reload_after(changed)
            await set_entry_disabled(home, disabled=False)
            started = time.monotonic()
            await every_state(home, packs)
            first["all"] = time.monotonic() - started
            await warm_up(log)
            windows["all"] = await window(home, log, sampler, args.refreshes, period)
            say(f"{packs} packs, every entity: {_brief(windows['all'])}")
            keys = await entity_keys(home)
    finally:
        if sampling is not None:
            sampling.cancel()
            await asyncio.gather(sampling, return_exceptions=True)
        await asyncio.shield(home.stop())
    for found in windows.values():
        count_rows(home.database, found, set(keys))
    return StackResult(
        packs, speed, home.rss_before, first, windows, idle_window, keys, home.ha_version
    )


async def warm_up(log: HassLog) -> None:
    """After a (re)load: the first refreshes write every state, and Home Assistant saves its
    registries 10 s after the last change; measure after both."""
    started = time.time()
    finished = await log.refresh_after(started)
    await log.refresh_after(finished)
    await asyncio.sleep(max(0.0, started + SETTLE - time.time()))


def _brief(found: Window) -> str:
    return (
        f"{len(found.refreshes)} refreshes in {found.t1 - found.t0:.0f} s, "
        f"{found.cpu[0]:.1f} ms of CPU per second, {found.enabled} entities"
    )


async def entity_keys(home: CostHome) -> dict[str, str]:
    """What each entity of the entry is, by its unique id: ``pack voltage``, ``stack soc``."""
    found = {}
    for entity in (await soak.our_entities(home)).values():
        owner = "stack" if entity.pack is None else "pack"
        key = soak.CELL_KEY.sub("cell_N_voltage", entity.key)
        key = re.sub(r"^cell_\d+_balancing$", "cell_N_balancing", key)
        key = re.sub(r"^cell_temperature_\d+$", "cell_temperature_N", key)
        found[entity.entity_id] = f"{owner} {key}"
    return found


def count_rows(database: Path, found: Window, ours: set[str]) -> None:
    """The recorder's state rows (and new attribute rows) of our entities in the window."""
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        rows = db.execute(
            "SELECT m.entity_id, COUNT(*) FROM states s "
            "JOIN states_meta m ON s.metadata_id = m.metadata_id "
            "WHERE s.last_updated_ts >= ? AND s.last_updated_ts <= ? GROUP BY m.entity_id",
            (found.t0, found.t1),
        ).fetchall()
        found.rows = Counter({entity: count for entity, count in rows if entity in ours})
        ids = ",".join("?" * len(found.rows))
        if ids:
            (found.attribute_rows,) = db.execute(
                "SELECT COUNT(DISTINCT s.attributes_id) FROM states s "
                "JOIN states_meta m ON s.metadata_id = m.metadata_id "
                f"WHERE m.entity_id IN ({ids}) AND s.last_updated_ts >= ? "
                "AND s.last_updated_ts <= ? AND s.attributes_id NOT IN "
                "(SELECT attributes_id FROM states WHERE last_updated_ts < ? "
                "AND attributes_id IS NOT NULL)",
                (*found.rows, found.t0, found.t1, found.t0),
            ).fetchone()


# -- figures -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    """The derived figures of one stack size and entity set."""

    packs: int
    entities: str
    enabled: int
    refreshes: int
    refresh_seconds: float
    period: float
    simulated: float
    cpu: float
    cpu_loop: float
    cpu_recorder: float
    rows_per_refresh: float
    rows_per_hour: float
    attribute_rows: float
    statistics_per_hour: int
    rss_before: int | None
    rss_loaded: int | None
    rss_disabled: int | None
    first_states: float | None
    top: list[tuple[str, float]]
    """What wrote most: (entity kind, rows per hour at the default interval)."""

    @property
    def cpu_per_pack(self) -> float:
        return self.cpu / self.packs

    @property
    def rows_per_pack_hour(self) -> float:
        return self.rows_per_hour / self.packs

    @property
    def entry_mib(self) -> float | None:
        if self.rss_loaded is None or self.rss_before is None:
            return None
        return (self.rss_loaded - self.rss_before) / 1024


def figures(result: StackResult, entities: str) -> Figures:
    """Per refresh, per hour at the default interval, per pack."""
    found = result.windows[entities]
    count = len(found.refreshes)
    busy = sum(found.refreshes) / count if count else 0.0
    per_hour = 3600 / (DEFAULT_INTERVAL + busy)
    excess = [a - b for a, b in zip(found.cpu[:3], result.idle.cpu[:3], strict=True)]
    cpu = [rate * found.period for rate in excess]
    kinds: Counter[str] = Counter()
    for entity_id, rows in found.rows.items():
        kinds[result.keys.get(entity_id, entity_id)] += rows
    total = sum(found.rows.values())
    return Figures(
        packs=result.packs,
        entities=entities,
        enabled=found.enabled,
        refreshes=count,
        refresh_seconds=busy,
        period=found.period,
        simulated=found.period * result.speed,
        cpu=cpu[0],
        cpu_loop=cpu[1],
        cpu_recorder=cpu[2],
        rows_per_refresh=total / count if count else 0.0,
        rows_per_hour=total / count * per_hour if count else 0.0,
        attribute_rows=found.attribute_rows / count if count else 0.0,
        statistics_per_hour=found.state_class * STATISTICS_ROWS_PER_HOUR,
        rss_before=result.rss_before,
        rss_loaded=found.rss,
        rss_disabled=result.idle.rss,
        first_states=result.first_states.get(entities),
        top=[(kind, rows / count * per_hour) for kind, rows in kinds.most_common(8)]
        if count
        else [],
    )


def _mib(kib: int | None) -> str:
    return "?" if kib is None else f"{kib / 1024:.0f} MiB"


def text_report(results: list[StackResult], args: argparse.Namespace) -> str:
    lines = [
        "",
        f"Home Assistant {results[0].ha_version if results else '?'} with its SQLite recorder, "
        f"scan interval {args.interval:g} s, simulator solar-day from {args.clock} at "
        f"{args.baud or 'unlimited'} baud, "
        f"seed {args.seed}, tree {args.tree or soak.tree_version()}",
        f"Per hour = per refresh x 3600 / ({DEFAULT_INTERVAL:g} s + the refresh's own time): "
        "the default scan interval.",
    ]
    for result in results:
        for entities in result.windows:
            f = figures(result, entities)
            lines += [
                "",
                f"{f.packs} packs, {WINDOWS[entities][0]} ({f.enabled} enabled): {f.refreshes} "
                f"refreshes of {f.refresh_seconds:.2f} s every {f.period:.1f} s, "
                f"{f.simulated:.0f} simulated s each (x{result.speed:g})",
                f"  CPU per refresh   {f.cpu:.1f} ms (event loop {f.cpu_loop:.1f}, recorder "
                f"{f.cpu_recorder:.1f}, other {f.cpu - f.cpu_loop - f.cpu_recorder:.1f}) = "
                f"{f.cpu_per_pack:.2f} ms per pack; idle {result.idle.cpu[0]:.1f} ms/s",
                f"  state rows        {f.rows_per_refresh:.1f} per refresh = "
                f"{f.rows_per_hour:,.0f} per hour = {f.rows_per_pack_hour:,.0f} per pack-hour; "
                f"new attribute rows {f.attribute_rows:.1f} per refresh",
                "  most rows         "
                + ", ".join(f"{kind} {rows:,.0f}/h" for kind, rows in f.top[:6]),
                f"  statistics rows   {f.statistics_per_hour:,} per hour "
                f"({f.statistics_per_hour / f.packs:,.0f} per pack-hour)",
                f"  memory            {_mib(f.rss_loaded)} loaded, {_mib(f.rss_before)} before "
                f"the entry (entry {f.entry_mib or 0:+.0f} MiB), "
                f"{_mib(f.rss_disabled)} with the entry disabled",
                f"  first states      {f.first_states or 0:.1f} s after " + WINDOWS[entities][1],
            ]
    for result in results:
        if result.packs == GOAL_PACKS and {"default", "restarted"} <= result.windows.keys():
            created, restarted = figures(result, "default"), figures(result, "restarted")
            lines += [
                "",
                f"Goals, {GOAL_PACKS} packs with default entities (just created; after a "
                f"restart): CPU per refresh {created.cpu:.1f}; {restarted.cpu:.1f} ms (goal "
                f"{GOAL_CPU_MS:g}), state rows {created.rows_per_pack_hour:,.0f}; "
                f"{restarted.rows_per_pack_hour:,.0f} per pack-hour (goal {GOAL_ROWS:g}), "
                f"memory of the loaded entry {created.entry_mib or 0:.0f}; "
                f"{restarted.entry_mib or 0:.0f} MiB (goal {GOAL_MIB:g})",
            ]
    return "\n".join(lines) + "\n"


def markdown_report(results: list[StackResult], args: argparse.Namespace) -> str:
    lines = [
        f"Home Assistant {results[0].ha_version if results else '?'}, SQLite recorder, scan "
        f"interval {args.interval:g} s, solar-day from {args.clock}, {args.baud or 'unlimited'} "
        f"baud, {args.refreshes} refreshes "
        f"per window, tree {args.tree or soak.tree_version()}:",
        "",
        "| packs | entities | enabled | CPU / refresh (loop + recorder) | CPU / pack | "
        "state rows / refresh | "
        "rows / pack-hour at 30 s | statistics rows / pack-hour | memory: entry loaded | "
        "first states |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        for entities in result.windows:
            f = figures(result, entities)
            lines.append(
                f"| {f.packs} | {WINDOWS[entities][0]} | {f.enabled:,} | {f.cpu:.1f} ms "
                f"({f.cpu_loop:.1f} + {f.cpu_recorder:.1f}) | "
                f"{f.cpu_per_pack:.2f} ms | {f.rows_per_refresh:.1f} | "
                f"{f.rows_per_pack_hour:,.0f} | {f.statistics_per_hour / f.packs:,.0f} | "
                f"{f.entry_mib or 0:+.0f} MiB | {f.first_states or 0:.1f} s |"
            )
    lines += ["", "Most rows (per hour at 30 s):", ""]
    for result in results:
        for entities in result.windows:
            f = figures(result, entities)
            top = ", ".join(f"{kind} {rows:,.0f}" for kind, rows in f.top[:6])
            lines.append(f"* {f.packs} packs, {WINDOWS[entities][0]}: {top}")
    return "\n".join(lines) + "\n"


# -- command line --------------------------------------------------------------------------------


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packs", default="1,4,16", help="stack sizes, comma-separated (1,4,16)")
    parser.add_argument(
        "--refreshes", type=int, default=5, help="refreshes per measuring window (5)"
    )
    parser.add_argument(
        "--interval", type=float, default=5.0, help="the integration's scan interval, s (5)"
    )
    parser.add_argument(
        "--clock", default="10:00", help="simulated time of day at the start, HH:MM (10:00)"
    )
    parser.add_argument("--seed", type=int, default=1, help="simulator seed (1)")
    parser.add_argument(
        "--baud",
        type=int,
        default=9600,
        choices=(0, 9600),
        help="the simulated line (9600, in 16-character pieces as they cross it; 0: every reply "
        "in one piece, which leaves out what receiving at line rate costs)",
    )
    parser.add_argument("--quick", action="store_true", help="1 pack, 2 refreshes per window")
    parser.add_argument("--markdown", help="also write the figures to this file as Markdown")
    parser.add_argument("--workdir", type=Path, help="keep Home Assistant's folders here")
    parser.add_argument(
        "--tree", help="what is under test, for the report (default: this checkout's commit)"
    )
    parser.add_argument(
        "--no-install",
        dest="install",
        action="store_false",
        help="do not check Home Assistant's run-time packages first",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.packs, args.refreshes = "1", 2
    try:
        args.pack_counts = [int(p) for p in str(args.packs).split(",")]
    except ValueError:
        parser.error("--packs takes numbers, e.g. 1,4,16")
    if not all(1 <= p <= 16 for p in args.pack_counts):
        parser.error("--packs must be between 1 and 16")
    if not 2 <= args.refreshes <= 100:
        parser.error("--refreshes must be between 2 and 100")
    if not 5 <= args.interval <= 60:
        parser.error("--interval must be between 5 and 60 s")
    return args


async def run(args: argparse.Namespace, workdir: Path) -> int:
    results = []
    started = time.monotonic()
    for packs in args.pack_counts:
        results.append(await measure(args, packs, workdir))
        args.install = False  # checked once
    say(f"done in {(time.monotonic() - started) / 60:.1f} min")
    print(text_report(results, args), flush=True)
    if args.markdown:
        await asyncio.to_thread(
            Path(args.markdown).write_text, markdown_report(results, args), "utf-8"
        )
        say(f"figures written to {args.markdown}")
    return 0


async def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="ress-cost-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if task is not None:
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    status = 2
    try:
        status = await run(args, workdir)
    except asyncio.CancelledError:
        say("interrupted: everything stopped")
        status = 130
    except Exception as err:  # report and keep the logs, whatever went wrong
        say(f"failed: {type(err).__name__}: {err}")
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        if status == 0 and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            say(f"Home Assistant's folders kept in {workdir}")
    return status


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main()))
    except KeyboardInterrupt:
        sys.exit(130)
