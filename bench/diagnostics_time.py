"""How long a diagnostics download takes, now that the history log comes from the cache.

Before issue 10 a download read every pack's history log from the bus: 500 records of about
0.2 s each at 9600 baud, 137 s seen on a stack. Now diagnostics answer from the history cache
(history_cache.py). This sets up the integration in an in-process Home Assistant (the test
harness of pytest-homeassistant-custom-component) on a simulated stack whose packs each hold a
full log of 500 records, lets the cache fill (at full line speed, to get there quickly), then
times the diagnostics of the whole stack, and, for comparison, reads 25 records over a real
9600-baud line (45 ms turnaround) and scales that to what reading the logs would take.

    .venv/bin/python bench/diagnostics_time.py              # 3 packs, 500 records each
    .venv/bin/python bench/diagnostics_time.py --packs 1 --repeat 20
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
import statistics
import sys
import tempfile
import time

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from homeassistant import loader  # noqa: E402
from pytest_homeassistant_custom_component.common import (  # noqa: E402
    MockConfigEntry,
    async_test_home_assistant,
)

from custom_components.syscom_ress import diagnostics, history_cache  # noqa: E402
from custom_components.syscom_ress.const import (  # noqa: E402
    CONF_ADVANCED,
    CONF_BAUDRATE,
    CONF_DEVICE,
    CONF_MASTER_ADDRESS,
    CONF_POLL_MODE,
    CONF_TIMEOUT,
    DOMAIN,
)
from custom_components.syscom_ress.ress_bms.client import StackClient  # noqa: E402
from custom_components.syscom_ress.ress_bms.history import MAX_RECORDS  # noqa: E402
from custom_components.syscom_ress.ress_bms.link import Link  # noqa: E402
from custom_components.syscom_ress.ress_bms.simulator import Simulator  # noqa: E402


def _fill_logs(sim: Simulator, records: int) -> None:
    for pack in sim.stack.packs:
        while len(pack.bms.history) < records:
            sim.advance(1)
            pack.bms.log()


async def _cached_diagnostics(packs: int, records: int, repeat: int) -> tuple[list[float], int]:
    with tempfile.TemporaryDirectory() as config:
        (Path(config) / "custom_components").symlink_to(ROOT / "custom_components")
        async with (
            async_test_home_assistant(config_dir=config) as hass,
            Simulator(packs=packs, seed=1) as sim,
        ):
            hass.data.pop(loader.DATA_CUSTOM_COMPONENTS, None)
            _fill_logs(sim, records)
            entry = MockConfigEntry(
                domain=DOMAIN,
                title="RESS battery",
                unique_id=sim.pack(1).bms_serial,
                data={
                    CONF_DEVICE: sim.url,
                    CONF_BAUDRATE: 9600,
                    CONF_ADVANCED: {
                        CONF_POLL_MODE: "auto",
                        CONF_MASTER_ADDRESS: 1,
                        CONF_TIMEOUT: 0.3,
                    },
                },
            )
            entry.add_to_hass(hass)
            history_cache.RECORDS_PER_REFRESH = 4 * MAX_RECORDS  # fill at once, for the bench
            assert await hass.config_entries.async_setup(entry.entry_id)
            await hass.async_block_till_done(wait_background_tasks=True)
            coordinator = entry.runtime_data
            for _ in range(4):
                await coordinator.async_refresh()
                await hass.async_block_till_done(wait_background_tasks=True)
            cached = sum(len(coordinator.history.pack(a).entries) for a in coordinator.data.packs)
            requests = sim.line.traffic.requests
            times = []
            for _ in range(repeat):
                started = time.perf_counter()
                await diagnostics.async_get_config_entry_diagnostics(hass, entry)
                times.append(time.perf_counter() - started)
            assert sim.line.traffic.requests == requests, "diagnostics used the bus"
            await hass.config_entries.async_unload(entry.entry_id)
            await hass.async_stop(force=True)
    return times, cached


async def _reading_over_the_line(sample: int) -> float:
    """Seconds per record read over a 9600-baud line with the BMS's 45 ms turnaround."""
    async with Simulator(packs=1, seed=1, baud=9600, turnaround_ms=45.0) as sim:
        _fill_logs(sim, sample)
        async with Link(sim.url) as link:
            client = StackClient(link)
            started = time.perf_counter()
            records = await client.read_history(1, sample)
            return (time.perf_counter() - started) / len(records)


async def _main(args: argparse.Namespace) -> int:
    times, cached = await _cached_diagnostics(args.packs, args.records, args.repeat)
    per_record = await _reading_over_the_line(args.sample)
    median = statistics.median(times)
    print(f"diagnostics of {args.packs} pack(s), {cached} cached records in all:")
    print(f"  from the cache    median {median * 1000:.1f} ms, worst {max(times) * 1000:.1f} ms "
          f"({args.repeat} runs, no byte on the bus)")  # fmt: skip
    print(f"  from the bus      {per_record * 1000:.0f} ms per record at 9600 baud "
          f"-> {per_record * cached:.0f} s for the same records (before issue 10)")  # fmt: skip
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packs", type=int, default=3, help="packs in the stack (3)")
    parser.add_argument("--records", type=int, default=MAX_RECORDS, help="records per log (500)")
    parser.add_argument("--repeat", type=int, default=10, help="diagnostics runs (10)")
    parser.add_argument("--sample", type=int, default=25, help="records read over 9600 baud (25)")
    return asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
