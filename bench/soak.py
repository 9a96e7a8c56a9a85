"""Soak: Home Assistant on the simulator behind a hostile gateway, every published value checked.

A real Home Assistant (a child process with its own temporary config folder, set up the way
script/develop does it: script/devhome.py) polls a simulated stack (3 packs by default, 9600 baud,
45 ms turnaround, real time) every 5 s through the project's fault-injecting gateway
(ress_bms.simulator.gateway). The run goes through phases: clean; corrupt, truncated and glued
replies; late replies (1.5-4.5 s); another master's exchanges; a half-open gateway, then a reset;
a pack offline (the simulator's control socket), then back; clean recovery.

Every state Home Assistant publishes for the integration's entities arrives over its websocket
API (``state_changed``, with Home Assistant's own timestamp), and the simulator's truth (control
socket ``state``) is sampled four times a second. Each published pack voltage, current, SOC and
cell voltage must lie, within a small tolerance, between the lowest and highest truth of *that*
pack over the two scan intervals before it was published; the packs start at clearly different
SOCs and currents, so a value of the wrong pack cannot pass. Printed at the end: wrong values
(per pack, with examples and the pack they match), unhandled errors in the Home Assistant log,
packs that went unavailable in a phase that did not target them, the recovery time after each
phase, whether the energy counters only grew, the memory of the Home Assistant process, and what
the gateway and the simulator really injected. Exit status 1 when a wrong value, an unhandled
error or a decreasing energy counter was seen.

    .venv/bin/python bench/soak.py                     # 15 minutes of phases (docs/reliability.md)
    .venv/bin/python bench/soak.py --minutes 3         # a quick run
    .venv/bin/python bench/soak.py --markdown out.md   # also write the figures as Markdown

Everything listens on and talks to 127.0.0.1 only. The run is bounded in time, and Home
Assistant, the simulator and the gateway are stopped on the way out, on Ctrl-C and on errors.
"""

from __future__ import annotations

import argparse
import asyncio
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
import contextlib
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
import json
import os
from pathlib import Path
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any, TextIO

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "script"))
sys.path.insert(0, str(ROOT / "custom_components" / "syscom_ress"))  # this tree's ress_bms

import devhome  # noqa: E402 - script/devhome.py: the development Home Assistant

from ress_bms.simulator.gateway import Gateway  # noqa: E402

DOMAIN = devhome.DOMAIN
HOST = "127.0.0.1"
TRUTH_PERIOD = 0.25
"""Seconds between truth samples (the simulator's physics ticks every 0.25 s of wall time)."""
RSS_PERIOD = 15.0
STATUS_PERIOD = 30.0
SETTLE_SCANS = 6
SETTLE_SHARE = 0.3
"""Each phase that breaks something ends clean: six scan intervals, at most 30 % of it."""
SETUP_BUDGET = 1800.0
"""Seconds allowed for everything but the phases (first start: installs, onboarding)."""

TOLERANCE = {"voltage": 0.015, "current": 0.02, "soc": 0.2, "cell": 0.004}
"""How far a published value may lie outside its pack's truth range: reading resolution plus
the simulator's measurement noise between two truth samples (0.6 mV per cell, 1 sigma)."""
CHECKED = ("voltage", "current", "soc")
CELL_KEY = re.compile(r"^cell_(\d+)_voltage$")
PACK_UNIQUE_ID = re.compile(r"^(?P<stack>.+)_pack(?P<pack>\d+)_(?P<key>.+)$")
ENERGY_KEYS = ("energy_charged", "energy_discharged")
LOG_LINE = re.compile(
    r"^(?P<when>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) (?P<level>[A-Z]+) "
    r"\((?P<thread>[^)]*)\) \[(?P<logger>[^\]]+)\] (?P<message>.*)$"
)
OURS = ("syscom_ress", "ress_bms")
RELOAD_LINE = "Reloading configuration entries because disabled_by changed"


def tree_version() -> str:
    """The commit of the tree under test, and whether the integration has uncommitted changes."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "custom_components"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except OSError, subprocess.SubprocessError:
        return "unknown (not a git checkout)"
    return f"{commit} + uncommitted changes" if dirty else commit


def say(message: str) -> None:
    print(f"soak {time.strftime('%H:%M:%S')}: {message}", flush=True)


# -- phases --------------------------------------------------------------------------------------


@dataclass
class Phase:
    """One stretch of the run: what is broken during it, and which packs it may take away."""

    name: str
    title: str
    share: float
    """Part of ``--minutes`` (the shares add up to 1)."""
    targets: str = "none"
    """Packs it may make unavailable: ``none``, ``all`` or ``last`` (the pack taken offline)."""
    start: float = 0.0
    repaired: float = 0.0
    """When its faults stopped (the pack back, the reset done): recovery is timed from here."""
    end: float = 0.0
    injected: Counter[str] = field(default_factory=Counter)

    @property
    def kind(self) -> str:
        """What the phase does (``wire`` for ``wire#2``, a later round of it)."""
        return self.name.split("#")[0]

    @property
    def faulty(self) -> bool:
        """Whether the phase breaks anything (clean phases have no recovery to time)."""
        return self.kind not in ("clean", "recovery")

    def targeted(self, pack: int | None, packs: int) -> bool:
        """Whether this phase may legitimately make ``pack`` (None: the stack) unavailable."""
        if self.targets == "all":
            return True
        return self.targets == "last" and pack == packs


PHASES = (
    Phase("clean", "clean", 90 / 900),
    Phase("wire", "corrupt, truncated and glued replies", 150 / 900),
    Phase("late", "late replies (1.5-4.5 s)", 150 / 900),
    Phase("foreign", "another master's exchanges", 150 / 900),
    Phase("half-open", "half-open gateway, then a reset", 90 / 900, targets="all"),
    Phase("offline", "last pack offline, then back", 120 / 900, targets="last"),
    Phase("recovery", "clean recovery", 150 / 900),
)


def phase_plan(rounds: int) -> list[Phase]:
    """The phases of a run: clean, ``rounds`` times each fault phase (``wire#2``...), recovery.

    More rounds inject each fault class (the reset and the offline pack too) more often in
    the same ``--minutes``, each round's phases shorter.
    """
    first, *faulty, last = PHASES
    plan = [Phase(**_fields(first))]
    for number in range(1, rounds + 1):
        for phase in faulty:
            name = phase.name if rounds == 1 else f"{phase.name}#{number}"
            fields = _fields(phase) | {"name": name, "share": phase.share / rounds}
            plan.append(Phase(**fields))
    plan.append(Phase(**_fields(last)))
    return plan


WIRE_FAULTS = {"corrupt": 0.08, "truncate": 0.08, "glue": 0.08}
LATE_FAULTS = {"late": 0.35}
FOREIGN_FAULTS = {"foreign": 0.3}


def pack_plan(packs: int) -> list[tuple[float, float]]:
    """(SOC %, current A) per pack: far apart, so that one pack's values never fit another's."""
    if packs == 1:
        return [(50.0, -5.0)]
    return [
        (round(20 + 70 * i / (packs - 1), 1), round(10 - 25 * i / (packs - 1), 1))
        for i in range(packs)
    ]


# -- Home Assistant, the simulator, the gateway --------------------------------------------------

SOAK_YAML = """\
# Written by bench/soak.py: a light Home Assistant (no recorder) for the soak.
homeassistant:
  name: RESS soak
  unit_system: metric
  time_zone: {time_zone}

config:
api:
diagnostics:
{http}
logger:
  default: warning
  logs:
    custom_components.syscom_ress: debug
    homeassistant.config_entries: info
"""


class SoakHome(devhome.DevHome):
    """script/develop's Home Assistant, pointed at the gateway, with the simulator's control."""

    def __init__(
        self, state_dir: Path, *, gateway_port: int, control_port: int, **kwargs: Any
    ) -> None:
        super().__init__(state_dir, **kwargs)
        self.gateway_port = gateway_port
        self.control_port = control_port
        self.prepare: Callable[[], Awaitable[None]] | None = None
        """Run once the simulator listens, before Home Assistant sees the stack."""

    @property
    def sim_url(self) -> str:
        """What the config flow is given: the gateway, not the simulator."""
        return f"socket://{HOST}:{self.gateway_port}"

    def _start_simulator(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(devhome.INTEGRATION_DIR), env.get("PYTHONPATH", "")) if p
        )
        env["PYTHONUNBUFFERED"] = "1"
        self.simulator = devhome.Child(
            "the simulator",
            [
                sys.executable,
                *f"-m ress_bms simulate --packs {self.packs} --profile {self.profile}".split(),
                *f"--speed {self.speed} --seed {self.seed} --baud 9600".split(),
                *f"--turnaround-ms 45 --control {self.control_port}".split(),
                *f"--listen {HOST}:{self.sim_port}".split(),
            ],
            self.state_dir / "simulator.log",
            env=env,
            cwd=self.state_dir,
        )
        self.simulator.start()

    async def _wait_for_simulator(self) -> None:
        await super()._wait_for_simulator()
        if self.prepare is not None:
            await self.prepare()

    def _write_config(self) -> None:
        super()._write_config()  # the custom_components link and the packages folder
        http = devhome.HTTP_YAML.format(host=self.http_host, port=self.http_port)
        (self.config_dir / "configuration.yaml").write_text(
            SOAK_YAML.format(time_zone=devhome._time_zone(), http=http), encoding="utf-8"
        )


class Control:
    """A JSON-lines client of the simulator's control socket."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()
        self.commands: Counter[str] = Counter()

    async def call(self, cmd: str, **args: Any) -> dict[str, Any]:
        """Run one command; raise when it is refused."""
        async with self._lock, asyncio.timeout(10):
            for _attempt in range(20):
                if self._writer is not None:
                    break
                try:
                    self._reader, self._writer = await asyncio.open_connection(HOST, self.port)
                except OSError:
                    await asyncio.sleep(0.25)
            if self._writer is None:
                raise RuntimeError(f"the simulator's control socket {HOST}:{self.port} refuses")
            assert self._reader is not None
            self._writer.write(json.dumps({"cmd": cmd, **args}).encode() + b"\n")
            answer: dict[str, Any] = json.loads(await self._reader.readline())
        if not answer.get("ok"):
            raise RuntimeError(f"control {cmd}: {answer.get('error')}")
        if cmd != "state":
            self.commands[cmd] += 1
        return answer

    async def close(self) -> None:
        """Close the connection."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


# -- what was seen -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Truth:
    """One pack as the simulator had it at ``t``."""

    t: float
    online: bool
    soc: float
    current: float
    voltage: float
    cells: tuple[float, ...]

    def value(self, key: str) -> float | None:
        """The truth an entity key is compared with."""
        if match := CELL_KEY.match(key):
            index = int(match[1]) - 1
            return self.cells[index] if index < len(self.cells) else None
        return float(getattr(self, key)) if key in CHECKED else None


@dataclass(frozen=True, slots=True)
class Published:
    """One state Home Assistant published for one of the integration's entities."""

    t: float
    """Home Assistant's ``last_updated`` (epoch seconds)."""
    entity_id: str
    state: str

    @property
    def number(self) -> float | None:
        """The state as a number, None for unavailable / unknown / text."""
        try:
            return float(self.state)
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class Entity:
    """An entity of the integration: its pack (None for the stack) and its description key."""

    entity_id: str
    pack: int | None
    key: str


class Recorder:
    """Everything seen during the run, also written as JSON lines to ``soak.jsonl``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: TextIO = path.open("w", encoding="utf-8")
        self.truth: dict[int, list[Truth]] = defaultdict(list)
        self.truth_times: dict[int, list[float]] = defaultdict(list)
        self.published: list[Published] = []
        self.initial: dict[str, str] = {}
        self.rss: list[tuple[float, int]] = []
        self.stream_gaps: list[tuple[float, float]] = []

    def write(self, kind: str, **data: Any) -> None:
        self._file.write(json.dumps({"t": round(time.time(), 3), "type": kind, **data}) + "\n")

    def add_truth(self, t: float, packs: list[dict[str, Any]]) -> None:
        for pack in packs:
            address = int(pack["pack"])
            self.truth[address].append(
                Truth(
                    t,
                    bool(pack["online"]),
                    float(pack["soc"]),
                    float(pack["current"]),
                    float(pack["voltage"]),
                    tuple(float(v) for v in pack["cells"]),
                )
            )
            self.truth_times[address].append(t)
        self.write(
            "truth",
            at=round(t, 3),
            packs=[
                {k: p[k] for k in ("pack", "online", "soc", "current", "voltage", "cells")}
                for p in packs
            ],
        )

    def add_state(self, item: Published) -> None:
        self.published.append(item)
        self.write("state", at=item.t, entity=item.entity_id, state=item.state)

    def close(self) -> None:
        self._file.close()


async def sample_truth(control: Control, recorder: Recorder) -> None:
    """The simulator's truth, four times a second, until cancelled."""
    while True:
        before = time.time()
        try:
            answer = await control.call("state")
        except (OSError, RuntimeError, TimeoutError, ValueError) as err:
            say(f"truth sample failed: {err}")
            await control.close()
        else:
            recorder.add_truth((before + time.time()) / 2, answer["packs"])
        await asyncio.sleep(max(0.0, TRUTH_PERIOD - (time.time() - before)))


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


async def listen_states(
    home: SoakHome,
    token: str,
    entities: dict[str, Entity],
    recorder: Recorder,
    ready: asyncio.Event,
) -> None:
    """Every ``state_changed`` of our entities, over the websocket API, until cancelled."""
    assert home.session is not None
    lost_at: float | None = None
    for _attempt in range(20):
        try:
            async with home.session.ws_connect(
                f"{home.url}/api/websocket", heartbeat=20, max_msg_size=0
            ) as ws:
                await _ws_auth(ws, token)
                await ws.send_json(
                    {"id": 1, "type": "subscribe_events", "event_type": "state_changed"}
                )
                await ws.send_json({"id": 2, "type": "get_states"})
                async for message in ws:
                    if message.type != aiohttp.WSMsgType.TEXT:
                        break
                    data = json.loads(message.data)
                    if data.get("id") == 2 and data.get("type") == "result":
                        for state in data.get("result") or []:
                            if state["entity_id"] in entities:
                                recorder.initial.setdefault(state["entity_id"], state["state"])
                        if lost_at is not None:
                            recorder.stream_gaps.append((lost_at, time.time()))
                            lost_at = None
                        ready.set()
                    elif data.get("type") == "event":
                        event = data["event"]["data"]
                        new = event.get("new_state")
                        if new is not None and event["entity_id"] in entities:
                            recorder.add_state(
                                Published(
                                    _epoch(new["last_updated"]),
                                    event["entity_id"],
                                    str(new["state"]),
                                )
                            )
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as err:
            say(f"websocket: {err}")
        lost_at = lost_at or time.time()
        say("websocket event stream lost: reconnecting")
        await asyncio.sleep(1)
    raise RuntimeError("the websocket event stream keeps failing")


async def _ws_auth(ws: aiohttp.ClientWebSocketResponse, token: str) -> None:
    async with asyncio.timeout(30):
        message = await ws.receive_json()
        if message.get("type") != "auth_required":
            raise RuntimeError(f"websocket: {message}")
        await ws.send_json({"type": "auth", "access_token": token})
        message = await ws.receive_json()
        if message.get("type") != "auth_ok":
            raise RuntimeError(f"websocket auth refused: {message}")


async def sample_rss(home: SoakHome, recorder: Recorder) -> None:
    """Home Assistant's resident memory every 15 s, until cancelled."""
    while True:
        if (rss := home.rss_kib()) is not None:
            recorder.rss.append((time.time(), rss))
            recorder.write("rss", kib=rss)
        await asyncio.sleep(RSS_PERIOD)


# -- setting Home Assistant up for the run ------------------------------------------------------


async def set_scan_interval(home: SoakHome, seconds: int) -> None:
    """The options flow, as the frontend runs it (the entry reloads)."""
    assert home.api is not None
    flow = await home.api.post(
        "/api/config/config_entries/options/flow", {"handler": home.entry_id}
    )
    if flow.get("type") != "form":
        raise devhome.ApiError(f"expected the options form, got {flow}")
    result = await home.api.post(
        f"/api/config/config_entries/options/flow/{flow['flow_id']}", {"scan_interval": seconds}
    )
    if result.get("type") != "create_entry":
        raise devhome.ApiError(f"the options flow did not finish: {result}")


async def our_entities(home: SoakHome) -> dict[str, Entity]:
    """The entry's entities that are enabled, by entity id."""
    assert home.api is not None
    (registry,) = await home.api.ws({"type": "config/entity_registry/list"})
    found = {}
    for entry in registry:
        if entry.get("config_entry_id") != home.entry_id or entry.get("disabled_by"):
            continue
        unique_id = str(entry.get("unique_id", ""))
        if match := PACK_UNIQUE_ID.match(unique_id):
            found[entry["entity_id"]] = Entity(entry["entity_id"], int(match["pack"]), match["key"])
        else:
            key = unique_id.split("_", 1)[1] if "_" in unique_id else unique_id
            found[entry["entity_id"]] = Entity(entry["entity_id"], None, key)
    return found


async def enable_cell_voltages(home: SoakHome) -> list[str]:
    """Enable every pack's cell voltage sensors (off by default); Home Assistant reloads in 30 s."""
    assert home.api is not None
    (registry,) = await home.api.ws({"type": "config/entity_registry/list"})
    wanted = [
        e["entity_id"]
        for e in registry
        if e.get("config_entry_id") == home.entry_id
        and e.get("disabled_by") is not None
        and (m := PACK_UNIQUE_ID.match(str(e.get("unique_id", ""))))
        and CELL_KEY.match(m["key"])
    ]
    if wanted:
        await home.api.ws(
            *(
                {"type": "config/entity_registry/update", "entity_id": e, "disabled_by": None}
                for e in wanted
            )
        )
    return wanted


async def wait_for_log(home: SoakHome, text: str, timeout: float) -> None:
    """Until Home Assistant's log has a line with ``text``."""

    async def logged() -> bool:
        content = await asyncio.to_thread(home.log_path.read_text, "utf-8", "replace")
        return text in content

    await home._until(f"{text!r} in Home Assistant's log", logged, timeout=timeout)


async def wait_for_numbers(home: SoakHome, entity_ids: list[str], timeout: float) -> None:
    """Until every one of ``entity_ids`` shows a number."""
    assert home.api is not None
    api = home.api

    async def numbers() -> bool:
        states = {s["entity_id"]: s["state"] for s in await api.get("/api/states")}
        for entity_id in entity_ids:
            try:
                float(states.get(entity_id, "missing"))
            except ValueError:
                return False
        return True

    await home._until("every checked entity to show a number", numbers, timeout=timeout)


# -- the run -------------------------------------------------------------------------------------


@dataclass
class Run:
    """Everything the analysis needs."""

    args: argparse.Namespace
    packs: int
    scan: float
    phases: list[Phase]
    entities: dict[str, Entity]
    recorder: Recorder
    gateway: Gateway
    control: Control
    home: SoakHome
    plan: list[tuple[float, float]]
    ha_version: str | None = None
    tree: str = ""
    current_sign: int = 1
    """How the integration's current sensors are signed (found from the run, see current_sign)."""
    diagnostics: dict[str, Any] | None = None
    offline_seconds: float = 0.0


async def run_phases(run: Run) -> None:
    """Each phase in turn: break what it breaks, wait its time, repair."""
    gateway, control, packs = run.gateway, run.control, run.packs
    total = run.args.minutes * 60
    for phase in run.phases:
        before = Counter(gateway.injected)
        commands = Counter(control.commands)
        phase.start = time.time()
        run.recorder.write("phase", name=phase.name, event="start")
        length = phase.share * total
        settle = min(SETTLE_SCANS * run.scan, SETTLE_SHARE * length) if phase.faulty else 0.0
        say(f"phase {phase.name}: {phase.title}, {length - settle:.0f} s + {settle:.0f} s clean")
        gateway.clear()
        match phase.kind:
            case "wire":
                gateway.set(**WIRE_FAULTS)
            case "late":
                gateway.set(**LATE_FAULTS)
            case "foreign":
                gateway.set(**FOREIGN_FAULTS)
            case "half-open":
                gateway.half_open = True
            case "offline":
                await control.call("offline", pack=packs, offline=True)
            case _:
                pass
        await asyncio.sleep(length - settle)
        match phase.kind:
            case "half-open":
                gateway.half_open = False
                closed = gateway.reset()
                say(f"gateway reset: {closed} connection(s) closed")
            case "offline":
                await control.call("offline", pack=packs, offline=False)
                run.offline_seconds += time.time() - phase.start
            case _:
                pass
        gateway.clear()
        phase.repaired = time.time()
        await asyncio.sleep(settle)
        phase.end = time.time()
        phase.injected = Counter(gateway.injected) - before
        for command, count in (Counter(control.commands) - commands).items():
            phase.injected[f"simulator {command}"] += count
        run.recorder.write("phase", name=phase.name, event="end", injected=dict(phase.injected))
        shown = ", ".join(f"{k} {v}" for k, v in sorted(phase.injected.items())) or "nothing"
        say(f"phase {phase.name} done: injected {shown}")


async def status_lines(run: Run) -> None:
    """A line every 30 s: states seen, truth samples, memory."""
    while True:
        await asyncio.sleep(STATUS_PERIOD)
        rec = run.recorder
        rss = rec.rss[-1][1] / 1024 if rec.rss else float("nan")
        samples = sum(len(v) for v in rec.truth.values())
        say(
            f"{len(rec.published)} states, {samples} truth samples, "
            f"Home Assistant {rss:.0f} MiB, gateway {dict(run.gateway.injected)}"
        )


async def soak(args: argparse.Namespace, workdir: Path) -> int:
    """Start everything, run the phases, stop everything, analyse; the exit status."""
    sim_port, gateway_port, control_port = (devhome.free_port() for _ in range(3))
    while len({sim_port, gateway_port, control_port}) < 3:
        gateway_port, control_port = devhome.free_port(), devhome.free_port()
    plan = pack_plan(args.packs)
    control = Control(control_port)
    home = SoakHome(
        workdir / "home",
        gateway_port=gateway_port,
        control_port=control_port,
        http_host=HOST,
        http_port=devhome.free_port(),
        sim_port=sim_port,
        packs=args.packs,
        profile="idle",
        speed=1.0,
        seed=args.seed,
        poll_mode=args.poll_mode,
        log=lambda message: say(f"devhome: {message}"),
    )

    async def prepare() -> None:
        for address, (soc, current) in enumerate(plan, start=1):
            await control.call("set", pack=address, soc=soc, current=current)
        say(
            "packs set apart: "
            + ", ".join(
                f"pack {n} at {soc:g} % and {current:+g} A"
                for n, (soc, current) in enumerate(plan, start=1)
            )
        )

    home.prepare = prepare
    recorder = Recorder(workdir / "soak.jsonl")
    gateway = Gateway(
        HOST, sim_port, packs=args.packs, host=HOST, port=gateway_port, seed=args.seed
    )
    tasks: list[asyncio.Task[Any]] = []
    run: Run | None = None
    try:
        await gateway.start()
        say(f"gateway on {gateway.url} -> simulator on {HOST}:{sim_port}")
        async with asyncio.timeout(SETUP_BUDGET):
            await home.start()
            token = (await home.ensure_long_lived_token()).read_text(encoding="utf-8").strip()
            enabled = await enable_cell_voltages(home)
            await set_scan_interval(home, args.scan_interval)
            say(
                f"scan interval {args.scan_interval} s (options flow); enabled {len(enabled)} "
                "cell voltage sensors, waiting for the reload that follows (30 s)"
            )
            if enabled:
                await wait_for_log(home, RELOAD_LINE, timeout=120)
                await asyncio.sleep(2)
            entities = await our_entities(home)
            checked = [
                e.entity_id
                for e in entities.values()
                if e.pack is not None and (e.key in CHECKED or CELL_KEY.match(e.key))
            ]
            await wait_for_numbers(home, checked, timeout=180)
        run = Run(
            args,
            args.packs,
            float(args.scan_interval),
            phase_plan(args.rounds),
            entities,
            recorder,
            gateway,
            control,
            home,
            plan,
            home.ha_version,
            args.tree or tree_version(),
        )
        ready = asyncio.Event()
        tasks = [
            asyncio.ensure_future(sample_truth(control, recorder)),
            asyncio.ensure_future(listen_states(home, token, entities, recorder, ready)),
            asyncio.ensure_future(sample_rss(home, recorder)),
            asyncio.ensure_future(status_lines(run)),
        ]
        async with asyncio.timeout(60):
            await ready.wait()
        say(
            f"watching {len(entities)} entities ({len(checked)} checked against the truth); "
            f"warming up for {2 * args.scan_interval} s"
        )
        await asyncio.sleep(2 * args.scan_interval)
        async with asyncio.timeout(args.minutes * 60 + 120):
            await run_phases(run)
        say("phases done; settling for one scan interval")
        await asyncio.sleep(args.scan_interval)
        run.diagnostics = await _diagnostics(home)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        say("stopping Home Assistant, the simulator and the gateway")
        await asyncio.shield(_stop_all(home, gateway, control))
        recorder.write("gateway", events=[[round(w, 3), k] for w, k in gateway.events])
        recorder.close()
    assert run is not None
    report = analyse(run)
    print(report.text(), flush=True)
    if args.markdown:
        await asyncio.to_thread(Path(args.markdown).write_text, report.markdown(), "utf-8")
        say(f"figures written to {args.markdown}")
    return 0 if report.passed else 1


def _fields(phase: Phase) -> dict[str, Any]:
    return {
        "name": phase.name,
        "title": phase.title,
        "share": phase.share,
        "targets": phase.targets,
    }


async def _stop_all(home: SoakHome, gateway: Gateway, control: Control) -> None:
    with contextlib.suppress(Exception):
        await control.close()
    try:
        await home.stop()
    finally:
        await gateway.stop()


async def _diagnostics(home: SoakHome) -> dict[str, Any] | None:
    """The entry's diagnostics (link counters, poll mode), or None when they cannot be had."""
    assert home.api is not None
    try:
        async with asyncio.timeout(90):
            answer = await home.api.get(f"/api/diagnostics/config_entry/{home.entry_id}")
    except (aiohttp.ClientError, devhome.ApiError, OSError, TimeoutError) as err:
        say(f"diagnostics not available: {err}")
        return None
    data = answer.get("data") if isinstance(answer, dict) else None
    return data if isinstance(data, dict) else None


# -- analysis ------------------------------------------------------------------------------------


@dataclass
class Wrong:
    """A published value that cannot belong to its pack at that moment."""

    t: float
    phase: str
    pack: int
    key: str
    value: float
    low: float
    high: float
    matches: list[int]


@dataclass
class Episode:
    """A stretch during which some of a pack's entities were unavailable."""

    pack: int | None
    start: float
    end: float | None
    phase: str
    expected: bool


@dataclass
class LogFindings:
    """What the Home Assistant log says."""

    unhandled: list[str] = field(default_factory=list)
    update_failures: Counter[str] = field(default_factory=Counter)
    """``Error fetching ... data`` lines (the coordinator's UpdateFailed), per phase."""
    warnings: Counter[str] = field(default_factory=Counter)
    other_errors: Counter[str] = field(default_factory=Counter)
    poll_modes: list[tuple[float, str]] = field(default_factory=list)


@dataclass
class Report:
    """The figures of one run."""

    run: Run
    checked: int
    unchecked: int
    wrong: list[Wrong]
    episodes: list[Episode]
    recovery: dict[str, float | None]
    energy: dict[str, tuple[int, list[str]]]
    log: LogFindings

    @property
    def unaffected(self) -> list[Episode]:
        return [e for e in self.episodes if not e.expected]

    @property
    def energy_violations(self) -> int:
        return sum(len(bad) for _count, bad in self.energy.values())

    @property
    def passed(self) -> bool:
        return not self.wrong and not self.log.unhandled and not self.energy_violations

    # -- figures

    def _rss(self) -> tuple[float, float, float] | None:
        samples = self.run.recorder.rss
        if not samples:
            return None
        return samples[0][1] / 1024, max(s[1] for s in samples) / 1024, samples[-1][1] / 1024

    def _wrong_by_pack(self) -> str:
        counts = Counter(w.pack for w in self.wrong)
        return ", ".join(f"pack {p}: {counts[p]}" for p in range(1, self.run.packs + 1))

    def _examples(self, limit: int = 3) -> list[str]:
        lines = []
        for pack in range(1, self.run.packs + 1):
            mine = [w for w in self.wrong if w.pack == pack]
            for w in mine[:limit]:
                like = f"; fits pack {', '.join(map(str, w.matches))}" if w.matches else ""
                lines.append(
                    f"pack {pack} {w.key} = {w.value:g} at {_clock(w.t)} ({w.phase}): its truth "
                    f"was {w.low:g}..{w.high:g}{like}{self._cause(w.t)}"
                )
        return lines

    def _cause(self, t: float) -> str:
        """The gateway's last faults in the two scan intervals before ``t``."""
        recent = [(when, kind) for when, kind in self.run.gateway.events
                  if t - 2 * self.run.scan <= when <= t]  # fmt: skip
        if not recent:
            return ""
        shown = ", ".join(f"{kind} {t - when:.1f} s before" for when, kind in recent[-3:])
        return f"; the gateway's last faults: {shown}"

    def _link(self) -> str:
        diag = self.run.diagnostics or {}
        link = diag.get("link") or {}
        stats = link.get("stats") or {}
        keys = (
            "requests", "replies", "timeouts", "retries", "checksum_errors", "frame_errors",
            "decode_errors", "stale_frames", "late_replies", "unsolicited_frames",
            "foreign_requests", "contended", "drains", "address_mismatches", "connects",
            "disconnects",
        )  # fmt: skip
        shown = ", ".join(f"{k} {stats[k]}" for k in keys if k in stats)
        mode = link.get("poll_mode")
        return f"poll mode at the end: {mode}; {shown}" if stats else "no diagnostics"

    def rows(self) -> list[tuple[str, str]]:
        """(figure, value) pairs, in the order they are printed."""
        rec = self.run.recorder
        rss = self._rss()
        total = Counter(self.run.gateway.injected)
        late = self.run.gateway.late_delays
        injected = ", ".join(f"{k} {v}" for k, v in sorted(total.items()) if v)
        if late:
            injected += f" (late by {min(late):.1f}-{max(late):.1f} s)"
        sim = ", ".join(f"{k} {v}" for k, v in sorted(self.run.control.commands.items()))
        recovery = ", ".join(
            f"{p.name} {_recovery_text(p, self.recovery)}" for p in self.run.phases if p.faulty
        )
        unaffected = self.unaffected
        energy = "; ".join(
            f"{key}: {count} values, "
            + (f"{len(bad)} DECREASES ({bad[0]})" if bad else "never decreased")
            for key, (count, bad) in self.energy.items()
        )
        return [
            (
                "states published / checked against the truth",
                f"{len(rec.published)} / {self.checked} ({self.unchecked} without truth)",
            ),
            ("wrong values published", f"**{len(self.wrong)}** ({self._wrong_by_pack()})"),
            (
                "current sensors read",
                "positive while charging (as the BMS)"
                if self.run.current_sign > 0
                else "positive while discharging (compared with the truth negated)",
            ),
            ("unhandled errors in the Home Assistant log", f"**{len(self.log.unhandled)}**"),
            (
                "update failures logged (handled)",
                ", ".join(f"{k} {v}" for k, v in self.log.update_failures.items()) or "0",
            ),
            (
                "unaffected packs that went unavailable",
                f"**{len(unaffected)}**"
                + (
                    "".join(
                        f"; {_who(e.pack)} in {e.phase} at {_clock(e.start)}"
                        for e in unaffected[:5]
                    )
                ),
            ),
            ("recovery after each phase (to every entity available and updating)", recovery),
            ("energy counters", energy),
            (
                "Home Assistant memory (RSS start / max / end)",
                f"{rss[0]:.0f} / {rss[1]:.0f} / {rss[2]:.0f} MiB (+{rss[2] - rss[0]:.0f} MiB)"
                if rss
                else "not measured",
            ),
            ("gateway injected", injected or "nothing"),
            ("simulator control commands", sim or "none"),
            ("the integration's link", self._link()),
        ]

    def phase_rows(self) -> list[list[str]]:
        wrong = Counter(w.phase for w in self.wrong)
        rows = []
        for phase in self.run.phases:
            shown = ", ".join(f"{k} {v}" for k, v in sorted(phase.injected.items()) if v)
            unavailable = [e for e in self.episodes if e.phase == phase.name]
            rows.append(
                [
                    phase.name,
                    phase.title,
                    _length(phase),
                    shown or "-",
                    str(wrong[phase.name]),
                    ", ".join(
                        sorted(
                            {
                                _who(e.pack) + ("" if e.expected else " (NOT targeted)")
                                for e in unavailable
                            }
                        )
                    )
                    or "-",
                    _recovery_text(phase, self.recovery),
                ]
            )
        return rows

    def text(self) -> str:
        run = self.run
        lines = [
            "",
            f"Soak: {run.packs} packs, {run.args.minutes:g} min of phases, scan "
            f"interval {run.scan:g} s, poll mode {run.args.poll_mode}, Home Assistant "
            f"{run.ha_version}, seed {run.args.seed}, tree {run.tree}",
            "",
        ]
        for name, value in self.rows():
            lines.append(f"  {name}: {value.replace('**', '')}")
        lines += ["", "  phase      injected / wrong / unavailable / recovery"]
        for row in self.phase_rows():
            lines.append(f"  {row[0]:<10} {row[3]} / {row[4]} / {row[5]} / {row[6]}")
        if self.wrong:
            lines += ["", "  wrong values, examples:", *(f"    {x}" for x in self._examples())]
        if self.log.unhandled:
            lines += ["", "  unhandled errors:", *(f"    {x}" for x in self.log.unhandled[:10])]
        if self.log.warnings:
            lines += ["", "  warnings of the integration:"]
            lines += [f"    {n} x {m}" for m, n in self.log.warnings.most_common(8)]
        if self.log.poll_modes:
            modes = ", ".join(f"{_clock(t)} {m}" for t, m in self.log.poll_modes[:12])
            lines += ["", f"  poll mode chosen: {modes}"]
        lines += ["", "  RESULT: " + ("PASS" if self.passed else "FAIL"), ""]
        return "\n".join(lines)

    def markdown(self) -> str:
        run = self.run
        lines = [
            f"{run.packs} packs, {run.args.minutes:g} minutes of phases, scan interval "
            f"{run.scan:g} s, poll mode {run.args.poll_mode}, Home Assistant {run.ha_version}, "
            f"seed {run.args.seed}, tree {run.tree}:",
            "",
            "| figure | value |",
            "|---|---|",
            *(f"| {name} | {value} |" for name, value in self.rows()),
            "",
            "| phase | what | length | injected | wrong values | unavailable | recovery |",
            "|---|---|---:|---|---:|---|---:|",
            *("| " + " | ".join(row) + " |" for row in self.phase_rows()),
        ]
        if self.wrong:
            lines += ["", "Examples of wrong values:", "", *(f"* {x}" for x in self._examples())]
        if self.log.unhandled:
            lines += [
                "",
                "Unhandled errors:",
                "",
                *(f"* `{x[:200]}`" for x in self.log.unhandled[:10]),
            ]
        lines += ["", f"Result: **{'PASS' if self.passed else 'FAIL'}**", ""]
        return "\n".join(lines)


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))


def _length(phase: Phase) -> str:
    faults, clean = phase.repaired - phase.start, phase.end - phase.repaired
    return f"{faults:.0f} s + {clean:.0f} s clean" if phase.faulty else f"{faults:.0f} s"


def _recovery_text(phase: Phase, recovery: dict[str, float | None]) -> str:
    if not phase.faulty:
        return "-"
    value = recovery.get(phase.name)
    if value is None:
        return "not recovered"
    beyond = " (into the next phase)" if phase.repaired + value > phase.end else ""
    return f"{value:.1f} s{beyond}"


def _who(pack: int | None) -> str:
    return "stack" if pack is None else f"pack {pack}"


def _phase_at(phases: list[Phase], t: float) -> str:
    for phase in phases:
        if phase.start <= t < phase.end:
            return phase.name
    return "after" if phases and t >= phases[-1].end else "before"


def truth_range(run: Run, pack: int, key: str, t: float) -> tuple[float, float] | None:
    """Lowest and highest truth of ``key`` for ``pack`` over the two scan intervals up to ``t``
    (and the first sample after it)."""
    rec = run.recorder
    times = rec.truth_times.get(pack, [])
    low = bisect_left(times, t - 2 * run.scan)
    high = min(bisect_right(times, t) + 1, len(times))
    values = [v for s in rec.truth[pack][low:high] if (v := s.value(key)) is not None]
    return (min(values), max(values)) if values else None


def current_sign(run: Run) -> int:
    """+1 when the current sensors read as the BMS does (positive while charging), -1 when they
    follow the energy dashboard (positive while discharging): what most published currents say."""
    votes: Counter[int] = Counter()
    first = run.phases[0].start
    seen = [Published(first, e, s) for e, s in run.recorder.initial.items()]
    for item in [*seen, *run.recorder.published]:
        entity = run.entities.get(item.entity_id)
        value = item.number
        if entity is None or entity.pack is None or entity.key != "current" or value is None:
            continue
        found = truth_range(run, entity.pack, "current", item.t)
        if found is None or abs(value) < 0.5 or min(abs(found[0]), abs(found[1])) < 0.5:
            continue
        votes[1 if (value > 0) == (found[0] > 0) else -1] += 1
    return -1 if votes[-1] > votes[1] else 1


def check_values(run: Run) -> tuple[int, int, list[Wrong]]:
    """Every published pack value against its pack's truth range around its publication."""
    rec = run.recorder
    first = run.phases[0].start
    sign = run.current_sign = current_sign(run)

    checked = unchecked = 0
    wrong = []
    for item in rec.published:
        entity = run.entities[item.entity_id]
        if item.t < first or entity.pack is None:
            continue
        if entity.key not in CHECKED and not CELL_KEY.match(entity.key):
            continue
        value = item.number
        if value is None:
            continue
        if entity.key == "current":
            value *= sign
        found = truth_range(run, entity.pack, entity.key, item.t)
        if found is None:
            unchecked += 1
            continue
        checked += 1
        tolerance = TOLERANCE["cell" if CELL_KEY.match(entity.key) else entity.key]
        low, high = found
        if low - tolerance <= value <= high + tolerance:
            continue
        matches = []
        for other in range(1, run.packs + 1):
            theirs = truth_range(run, other, entity.key, item.t) if other != entity.pack else None
            if theirs and theirs[0] - tolerance <= value <= theirs[1] + tolerance:
                matches.append(other)
        wrong.append(
            Wrong(
                item.t,
                _phase_at(run.phases, item.t),
                entity.pack,
                entity.key,
                value,
                low,
                high,
                matches,
            )
        )
    return checked, unchecked, wrong


def availability(run: Run) -> tuple[list[Episode], dict[str, float | None]]:
    """Unavailability episodes per pack, and the recovery time after each phase."""
    rec = run.recorder
    first = run.phases[0].start
    states = dict(rec.initial)
    events = sorted(rec.published, key=lambda p: p.t)
    index = 0
    while index < len(events) and events[index].t < first:
        states[events[index].entity_id] = events[index].state
        index += 1
    baseline = {e for e, s in states.items() if s != "unavailable"}
    owners = sorted({run.entities[e].pack for e in baseline}, key=lambda p: -1 if p is None else p)
    down: dict[int | None, set[str]] = {p: set() for p in owners}
    for entity_id in baseline:
        if states.get(entity_id) == "unavailable":
            down[run.entities[entity_id].pack].add(entity_id)
    episodes: list[Episode] = []
    open_episodes: dict[int | None, Episode] = {}
    timeline: list[tuple[float, int]] = []
    """(time, entities of the baseline unavailable) after each event from the first phase on."""
    for item in events[index:]:
        entity = run.entities[item.entity_id]
        if item.entity_id not in baseline:
            continue
        pack = entity.pack
        was_down = bool(down[pack])
        if item.state == "unavailable":
            down[pack].add(item.entity_id)
        else:
            down[pack].discard(item.entity_id)
        if down[pack] and not was_down:
            look = [p for p in run.phases if p.start <= item.t and p.end >= item.t - 3 * run.scan]
            expected = any(p.targeted(pack, run.packs) for p in look)
            open_episodes[pack] = Episode(
                pack, item.t, None, _phase_at(run.phases, item.t), expected
            )
            episodes.append(open_episodes[pack])
        elif was_down and not down[pack] and pack in open_episodes:
            open_episodes.pop(pack).end = item.t
        timeline.append((item.t, sum(len(v) for v in down.values())))

    owner = {e: run.entities[e].pack for e in baseline}
    recovery: dict[str, float | None] = {}
    for phase in run.phases:
        if phase.faulty:
            recovery[phase.name] = _recovery(phase.repaired, events, timeline, owner)
    return episodes, recovery


def _recovery(
    end: float,
    events: list[Published],
    timeline: list[tuple[float, int]],
    owner: dict[str, int | None],
) -> float | None:
    """Seconds from ``end`` until nothing is unavailable and every pack (and the stack) has
    published a fresh number since."""
    fresh: set[int | None] = set()
    wanted = set(owner.values())
    times = [t for t, _ in timeline]
    start = bisect_left(times, end)
    down_at_end = timeline[start - 1][1] if start else 0
    position = bisect_left([e.t for e in events], end)
    for item in events[position:]:
        if item.entity_id in owner and item.number is not None:
            fresh.add(owner[item.entity_id])
        at = bisect_right(times, item.t)
        down = timeline[at - 1][1] if at else down_at_end
        if not down and fresh >= wanted:
            return item.t - end
    return None


def energy_counters(run: Run) -> dict[str, tuple[int, list[str]]]:
    """Per energy counter: how many values were published, and every decrease."""
    found = {}
    for entity in run.entities.values():
        if entity.pack is not None or entity.key not in ENERGY_KEYS:
            continue
        values = [
            (p.t, n)
            for p in run.recorder.published
            if p.entity_id == entity.entity_id and (n := p.number) is not None
        ]
        initial = run.recorder.initial.get(entity.entity_id)
        with contextlib.suppress(TypeError, ValueError):
            values.insert(0, (0.0, float(initial or "")))
        bad = [
            f"{before:g} -> {after:g} at {_clock(t)}"
            for (_t0, before), (t, after) in pairwise(values)
            if after < before
        ]
        found[entity.key] = (len(values), bad)
    return found


def read_log(run: Run) -> LogFindings:
    """Errors, tracebacks, warnings and poll-mode choices in Home Assistant's log."""
    findings = LogFindings()
    try:
        text = run.home.log_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        findings.unhandled.append("Home Assistant's log could not be read")
        return findings
    records: list[tuple[re.Match[str], list[str]]] = []
    for line in text.splitlines():
        if match := LOG_LINE.match(line):
            records.append((match, []))
        elif records:
            records[-1][1].append(line)
    for match, rest in records:
        level, logger, message = match["level"], match["logger"], match["message"]
        when = time.mktime(datetime.fromisoformat(match["when"]).timetuple())
        body = "\n".join([message, *rest])
        ours = logger.startswith(("custom_components.syscom_ress", "ress_bms")) or any(
            name in body for name in OURS
        )
        if "Poll mode" in message and "reaches" in message:
            findings.poll_modes.append((when, message.split("Poll mode", 1)[1].split()[0]))
        if level == "WARNING" and logger.startswith("custom_components.syscom_ress"):
            findings.warnings[re.sub(r"\d+(\.\d+)?", "N", message)[:110]] += 1
        if level not in ("ERROR", "CRITICAL"):
            continue
        if not ours:
            findings.other_errors[f"[{logger}] {message[:100]}"] += 1
            continue
        if message.startswith("Error fetching") and "Traceback" not in body:
            findings.update_failures[_phase_at(run.phases, when)] += 1
            continue
        findings.unhandled.append(
            f"{match['when']} [{logger}] {message}"
            + (" (with a traceback)" if "Traceback" in body else "")
        )
    return findings


def analyse(run: Run) -> Report:
    """All the figures."""
    checked, unchecked, wrong = check_values(run)
    episodes, recovery = availability(run)
    return Report(
        run, checked, unchecked, wrong, episodes, recovery, energy_counters(run), read_log(run)
    )


# -- command line --------------------------------------------------------------------------------


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--minutes",
        type=float,
        default=15.0,
        help="length of the phases, minutes (15; 3 for a quick run)",
    )
    parser.add_argument("--packs", type=int, default=3, help="packs in the stack (3)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="times each fault phase comes round in --minutes (1; 5 injects every class 5 times)",
    )
    parser.add_argument(
        "--scan-interval",
        type=int,
        default=5,
        help="the integration's scan interval, s (5, the minimum)",
    )
    parser.add_argument("--seed", type=int, default=1, help="simulator and gateway seed (1)")
    parser.add_argument(
        "--poll-mode",
        default="auto",
        choices=("auto", "broadcast", "relay", "direct"),
        help="the config flow's poll mode (auto)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        help="folder for Home Assistant's config and the logs (default: a new "
        "temporary folder, deleted after a passing run)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument(
        "--tree", help="what is under test, for the report (default: this checkout's commit)"
    )
    parser.add_argument("--markdown", help="also write the figures to this file as Markdown")
    args = parser.parse_args(argv)
    if not 0.5 <= args.minutes <= 240:
        parser.error("--minutes must be between 0.5 and 240")
    if not 1 <= args.packs <= 16:
        parser.error("--packs must be between 1 and 16")
    if not 5 <= args.scan_interval <= 60:
        parser.error("--scan-interval must be between 5 and 60 s")
    return args


async def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="ress-soak-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    say(f"work folder {workdir}")
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if task is not None:
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    status = 2
    try:
        status = await soak(args, workdir)
    except asyncio.CancelledError:
        say("interrupted: everything stopped")
        status = 130
    except Exception as err:  # report and keep the logs, whatever went wrong
        say(f"failed: {type(err).__name__}: {err}")
        status = 2
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        if status == 0 and not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            say(f"logs kept in {workdir} (soak.jsonl, home/config/home-assistant.log)")
    return status


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main()))
    except KeyboardInterrupt:
        sys.exit(130)
