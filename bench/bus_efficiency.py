"""How close each dialect's client gets to the physical limit of a half-duplex RS485 bus.

For every dialect, at its default baud rate (``DIALECTS[name].baudrates[0]``) and a 45 ms BMS
turnaround, the project's client (``make_client``) refreshes 1, 4 and 16 packs once against the
simulator (Pylontech addresses at most 12 packs, EG4 and Seplos V3 15: the largest stack is
capped there). PACE is refreshed in each of its poll modes (broadcast, relay, direct); the other
dialects have one poll style, each pack at its own address ("direct").

For exactly the frames that crossed the line, the physical minimum is characters x 10 / baud
plus one turnaround per exchange; for Modbus RTU, plus the 3.5 character times of silence that
must precede each request (MODBUS over Serial Line V1.02 2.5.1.1, ``modbus.frame_gap``; the
silence before a reply is the turnaround itself). The ratio measured / minimum says how much
time the client adds. For PACE the same requests are then replayed by a baseline poller that
waits a fixed 200 ms between requests (the request throttle of the most used peer,
nkinnan/esphome-pace-bms), and its ratio is printed too.

    .venv/bin/python bench/bus_efficiency.py --repeat 3            # the whole table (~5 minutes)
    .venv/bin/python bench/bus_efficiency.py --dialects pace --packs 4 --modes relay --repeat 3
    .venv/bin/python bench/bus_efficiency.py --dialects seplos_v3 --packs 1 --baud 9600
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass
import statistics
import sys
import time
from typing import Any

from ress_bms.client import PollMode, StackClient
from ress_bms.dialect_client import make_client
from ress_bms.dialects import DIALECTS
from ress_bms.frame import FrameExtractor
from ress_bms.framing import MODBUS
from ress_bms.link import DEFAULT_FRAME_GAP, Direction, Link
from ress_bms.modbus import frame_gap
from ress_bms.simulator import Simulator
from ress_bms.simulator.dialects import responder
from ress_bms.simulator.line import BITS_PER_CHARACTER, Line

PACE = "pace"
BAUD = 9600
TURNAROUND = 0.045
BASELINE_GAP = 0.200
GOAL = 1.10
MODES = ("broadcast", "relay", "direct")


class Recorder:
    """Counts the characters the link sends and receives; keeps PACE's requests for the baseline.

    Raw byte counts work for both framings (Modbus RTU has no frame markers to cut on).
    """

    def __init__(self, *, keep_requests: bool = False) -> None:
        self.frames: list[bytes] = []
        self.tx = 0
        self.rx = 0
        self.recording = False
        self._extractor = FrameExtractor() if keep_requests else None

    def __call__(self, direction: Direction, data: bytes) -> None:
        if not self.recording:
            return
        if direction == "tx":
            self.tx += len(data)
            if self._extractor is not None:
                self.frames += self._extractor.feed(data)
        else:
            self.rx += len(data)


@dataclass(frozen=True)
class Run:
    dialect: str
    baud: int
    packs: int
    mode: str
    exchanges: int
    characters: int
    minimum: float
    measured: float
    baseline: float | None = None
    baseline_minimum: float | None = None
    trouble: int = 0
    """Timeouts, retries and drains during the timed refreshes (0 in a fair run)."""

    @property
    def ratio(self) -> float:
        return self.measured / self.minimum

    @property
    def baseline_ratio(self) -> float | None:
        if self.baseline is None or not self.baseline_minimum:
            return None
        return self.baseline / self.baseline_minimum


def real_line(sim: Simulator, baud: int, turnaround: float) -> Line:
    """Put the simulator on a fresh line at the real rate (discovery ran at full speed)."""
    sim.line = Line(baud, turnaround)
    return sim.line


def physical_minimum(dialect: str, characters: int, exchanges: int, requests: int, baud: int,
                     turnaround: float) -> float:  # fmt: skip
    """Wire time plus turnarounds, plus the RTU silence before each request on Modbus."""
    seconds = characters * BITS_PER_CHARACTER / baud + exchanges * turnaround
    if DIALECTS[dialect].framing is MODBUS:
        seconds += requests * frame_gap(baud)
    return seconds


def max_packs(dialect: str) -> int:
    """The most packs the simulator addresses in ``dialect``."""
    return responder(dialect).max_packs


async def measure(dialect: str, packs: int, mode: str, repeat: int, baud: int,
                  turnaround: float, gap: float | None = None) -> Run:  # fmt: skip
    """One configuration: discovery at full speed, a warm-up poll, then ``repeat`` timed ones."""
    pace = dialect == PACE
    async with Simulator(packs=packs, seed=1, dialect=dialect) as sim:
        recorder = Recorder(keep_requests=pace)
        link: Link[Any] = Link(
            sim.url, baudrate=baud, timeout=1.0, retries=0, recorder=recorder,
            framing=DIALECTS[dialect].framing, frame_gap=gap,
        )  # fmt: skip
        async with link:
            options = {"poll_mode": PollMode(mode)} if pace else {}
            client: StackClient = make_client(link, dialect, **options)
            await client.discover()
            await client.poll()  # warm up: connection, first decode
            line = real_line(sim, baud, turnaround)
            recorder.recording = True
            before = _trouble(link)
            durations = []
            for _ in range(repeat):
                started = time.perf_counter()
                sample = await client.poll()
                durations.append(time.perf_counter() - started)
                if len(sample.online) != packs:
                    raise SystemExit(
                        f"{dialect}, {packs} packs, {mode}: only {len(sample.online)} answered"
                    )
            recorder.recording = False
            trouble = _trouble(link) - before
            traffic = line.traffic
        characters = recorder.tx + recorder.rx
        if characters != traffic.characters_in + traffic.characters_out:
            raise SystemExit(f"{dialect}: the link and the line disagree on the characters")
        seconds = physical_minimum(
            dialect, characters, traffic.replies, traffic.requests, baud, turnaround
        )
        minimum = seconds / repeat
        run = Run(dialect, baud, packs, mode, traffic.replies // repeat, characters // repeat,
                  minimum, statistics.median(durations), trouble=trouble)  # fmt: skip
        if not pace:
            return run
        frames = recorder.frames[: len(recorder.frames) // repeat]
        line = real_line(sim, baud, turnaround)
        baseline = await baseline_poll(sim, frames)
        baseline_minimum = line.traffic.minimum_seconds(baud, turnaround)
    return Run(run.dialect, baud, packs, mode, run.exchanges, run.characters, run.minimum,
               run.measured, baseline, baseline_minimum, trouble)  # fmt: skip


def _trouble(link: Link[Any]) -> int:
    stats = link.stats
    return stats.timeouts + stats.retries + stats.drains


async def baseline_poll(sim: Simulator, frames: list[bytes]) -> float:
    """Send each request, wait for its reply, then wait a fixed 200 ms before the next one."""
    reader, writer = await asyncio.open_connection(sim.host, sim.port)
    extractor = FrameExtractor()
    try:
        started = time.perf_counter()
        for index, request in enumerate(frames):
            if index:
                await asyncio.sleep(BASELINE_GAP)
            writer.write(request)
            while not extractor.feed(await reader.read(4096)):
                pass
        return time.perf_counter() - started
    finally:
        writer.close()
        await writer.wait_closed()


def table(runs: list[Run], turnaround: float) -> str:
    lines = [
        f"Bus efficiency with a {turnaround * 1000:g} ms turnaround (one refresh of every pack "
        f"after discovery; Modbus minimum includes 3.5 character times before each request)",
        "",
        "| dialect | baud | packs | mode | exchanges | characters | physical minimum | client "
        "| ratio | baseline (200 ms gap) | baseline ratio |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        ratio = run.baseline_ratio
        baseline = "-" if run.baseline is None else f"{run.baseline:.3f} s"
        lines.append(
            f"| {run.dialect} | {run.baud} | {run.packs} | {run.mode} | {run.exchanges} "
            f"| {run.characters} | {run.minimum:.3f} s | {run.measured:.3f} s "
            f"| **{run.ratio:.3f}** | {baseline} | {'-' if ratio is None else f'{ratio:.3f}'} |"
        )
    lines.append("")
    for dialect in dict.fromkeys(run.dialect for run in runs):
        worst = max(run.ratio for run in runs if run.dialect == dialect)
        verdict = "met" if worst <= GOAL else "NOT met"
        lines.append(f"{dialect}: worst ratio {worst:.3f} (goal <= {GOAL:.2f}): {verdict}")
    return "\n".join(lines)


def configurations(args: argparse.Namespace) -> list[tuple[str, int, str, int]]:
    """(dialect, packs, mode, baud) in table order; pack counts capped at the dialect's most."""
    chosen = []
    for dialect in args.dialects:
        baud = args.baud or DIALECTS[dialect].baudrates[0]
        modes = args.modes if dialect == PACE else ["direct"]
        for packs in dict.fromkeys(min(p, max_packs(dialect)) for p in args.packs):
            chosen += [(dialect, packs, mode, baud) for mode in modes]
    return chosen


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dialects", nargs="+", default=list(DIALECTS), choices=list(DIALECTS))
    parser.add_argument("--packs", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES,
                        help="PACE's poll modes (the other dialects poll each pack)")  # fmt: skip
    parser.add_argument("--repeat", type=int, default=1, help="refreshes per configuration")
    parser.add_argument(
        "--baud", type=int, default=0, help="every dialect at this rate (default: its first)"
    )
    parser.add_argument("--turnaround-ms", type=float, default=TURNAROUND * 1000)
    parser.add_argument(
        "--frame-gap-ms",
        type=float,
        default=None,
        help="the link's quiet line before each request (default: the link's own: "
        f"{DEFAULT_FRAME_GAP * 1000:g} ms in ASCII, 3.5 characters in Modbus RTU)",
    )
    args = parser.parse_args(argv)
    turnaround = args.turnaround_ms / 1000
    runs = []
    for dialect, packs, mode, baud in configurations(args):
        gap = None if args.frame_gap_ms is None else args.frame_gap_ms / 1000
        run = await measure(dialect, packs, mode, args.repeat, baud, turnaround, gap)
        progress = (
            f"{dialect:11} {baud:6} {packs:2} packs {mode:9}: {run.measured:.3f} s for a "
            f"minimum of {run.minimum:.3f} s (ratio {run.ratio:.3f})"
        )
        if run.baseline is not None:
            progress += f"; baseline {run.baseline:.3f} s (ratio {run.baseline_ratio:.3f})"
        if run.trouble:
            progress += f"; {run.trouble} timeouts, retries or drains: not a fair run"
        print(progress, file=sys.stderr)
        runs.append(run)
    print(table(runs, turnaround))
    return 0 if max(run.ratio for run in runs) <= GOAL else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
