"""How close the stack client gets to the physical limit of a 9600-baud half-duplex bus.

For 1, 4 and 16 packs and each poll mode (broadcast, relay, direct), the project's StackClient
refreshes the stack once against the simulator at 9600 baud with a 45 ms BMS turnaround. For exactly
the frames that crossed the line, the physical minimum is characters x 10 / baud plus one
turnaround per exchange; the ratio measured / minimum says how much time the client adds. The same
requests are then replayed by a baseline poller that waits a fixed 200 ms between requests (the
request throttle of the most used peer, nkinnan/esphome-pace-bms), and its ratio is printed too.

    .venv/bin/python bench/bus_efficiency.py                 # the whole table (about 1 minute)
    .venv/bin/python bench/bus_efficiency.py --packs 4 --modes relay --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass
import statistics
import sys
import time

from ress_bms.client import PollMode, StackClient
from ress_bms.frame import FrameExtractor
from ress_bms.link import Direction, Link
from ress_bms.simulator import Simulator
from ress_bms.simulator.line import Line

BAUD = 9600
TURNAROUND = 0.045
BASELINE_GAP = 0.200
GOAL = 1.10


class Requests:
    """Records the request frames the link sends (the baseline replays them)."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self._extractor = FrameExtractor()
        self.recording = False

    def __call__(self, direction: Direction, data: bytes) -> None:
        if direction == "tx" and self.recording:
            self.frames += self._extractor.feed(data)


@dataclass(frozen=True)
class Run:
    packs: int
    mode: str
    exchanges: int
    characters: int
    minimum: float
    measured: float
    baseline: float
    baseline_minimum: float

    @property
    def ratio(self) -> float:
        return self.measured / self.minimum

    @property
    def baseline_ratio(self) -> float:
        return self.baseline / self.baseline_minimum


def real_line(sim: Simulator, baud: int, turnaround: float) -> Line:
    """Put the simulator on a fresh line at the real rate (discovery ran at full speed)."""
    sim.line = Line(baud, turnaround)
    return sim.line


async def measure(packs: int, mode: PollMode, repeat: int, baud: int, turnaround: float) -> Run:
    async with Simulator(packs=packs, seed=1) as sim:
        requests = Requests()
        async with Link(sim.url, timeout=1.0, retries=0, recorder=requests) as link:
            client = StackClient(link, poll_mode=mode)
            await client.discover()
            await client.poll()  # warm up: connection, first decode
            line = real_line(sim, baud, turnaround)
            requests.recording = True
            durations = []
            for _ in range(repeat):
                started = time.perf_counter()
                sample = await client.poll()
                durations.append(time.perf_counter() - started)
                if len(sample.online) != packs:
                    raise SystemExit(f"{packs} packs, {mode}: only {len(sample.online)} answered")
            requests.recording = False
            traffic = line.traffic
        minimum = traffic.minimum_seconds(baud, turnaround) / repeat
        exchanges = traffic.replies // repeat
        characters = (traffic.characters_in + traffic.characters_out) // repeat
        frames = requests.frames[: len(requests.frames) // repeat]
        line = real_line(sim, baud, turnaround)
        baseline = await baseline_poll(sim, frames)
        baseline_minimum = line.traffic.minimum_seconds(baud, turnaround)
    return Run(packs, mode.value, exchanges, characters, minimum, statistics.median(durations),
               baseline, baseline_minimum)  # fmt: skip


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


def table(runs: list[Run], baud: int, turnaround: float) -> str:
    lines = [
        f"Bus efficiency at {baud} baud, {turnaround * 1000:g} ms turnaround "
        f"(one refresh of every pack: 42H + 44H)",
        "",
        "| packs | mode | exchanges | characters | physical minimum | client | ratio "
        "| baseline (200 ms gap) | baseline ratio |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        lines.append(
            f"| {run.packs} | {run.mode} | {run.exchanges} | {run.characters} "
            f"| {run.minimum:.3f} s | {run.measured:.3f} s | **{run.ratio:.3f}** "
            f"| {run.baseline:.3f} s | {run.baseline_ratio:.3f} |"
        )
    worst = max(run.ratio for run in runs)
    lines += ["", f"Worst client ratio {worst:.3f} (goal <= {GOAL:.2f}): "
              + ("met" if worst <= GOAL else "NOT met")]  # fmt: skip
    return "\n".join(lines)


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packs", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--modes", nargs="+", default=["broadcast", "relay", "direct"],
                        choices=["broadcast", "relay", "direct"])  # fmt: skip
    parser.add_argument("--repeat", type=int, default=1, help="refreshes per configuration")
    parser.add_argument("--baud", type=int, default=BAUD)
    parser.add_argument("--turnaround-ms", type=float, default=TURNAROUND * 1000)
    args = parser.parse_args(argv)
    turnaround = args.turnaround_ms / 1000
    runs = []
    for packs in args.packs:
        for mode in args.modes:
            run = await measure(packs, PollMode(mode), args.repeat, args.baud, turnaround)
            progress = (
                f"{packs:2} packs {mode:9}: {run.measured:.3f} s for a minimum of "
                f"{run.minimum:.3f} s (ratio {run.ratio:.3f}); baseline "
                f"{run.baseline:.3f} s (ratio {run.baseline_ratio:.3f})"
            )
            print(progress, file=sys.stderr)
            runs.append(run)
    print(table(runs, args.baud, turnaround))
    return 0 if max(run.ratio for run in runs) <= GOAL else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
