"""bench/bus_efficiency.py runs for every framing and prints its table (no timing is asserted).

One pack of Seplos V2 (ASCII) and one of PACE Modbus (Modbus RTU), one refresh each, with a short
turnaround: the benchmark's own figures are for a quiet machine, not for a test to bound.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
import sys
from types import ModuleType

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.usefixtures("socket_enabled")


def _bench() -> ModuleType:
    path: Path = REPO_ROOT / "bench" / "bus_efficiency.py"
    spec = importlib.util.spec_from_file_location("bus_efficiency", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


async def test_one_row_per_framing(capsys: pytest.CaptureFixture[str]) -> None:
    bench = _bench()
    argv = ["--dialects", "seplos", "pace_modbus", "--packs", "1", "--repeat", "1"]
    await bench.main([*argv, "--turnaround-ms", "5"])  # exit status: timing, not asserted
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| seplos |")]
    rows += [line for line in out.splitlines() if line.startswith("| pace_modbus |")]
    assert len(rows) == 2, out
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert cells[1] == "9600" and cells[2] == "1" and cells[3] == "direct"
        assert int(cells[4]) > 0 and int(cells[5]) > 0  # exchanges, characters
        assert cells[8].startswith("**") and cells[9] == "-"
    assert "pace_modbus: worst ratio" in out


def test_pack_counts_are_capped_at_the_dialect_and_modes_are_pace_s() -> None:
    bench = _bench()
    parser_args = bench.argparse.Namespace(
        dialects=["pace", "pylontech"], packs=[1, 16], modes=["relay"], baud=0
    )
    assert bench.configurations(parser_args) == [
        ("pace", 1, "relay", 9600),
        ("pace", 16, "relay", 9600),
        ("pylontech", 1, "direct", 9600),
        ("pylontech", 12, "direct", 9600),
    ]


def test_the_modbus_minimum_has_the_rtu_silence() -> None:
    bench = _bench()
    ascii_ = bench.physical_minimum("seplos", 960, 2, 2, 9600, 0.045)
    rtu = bench.physical_minimum("pace_modbus", 960, 2, 2, 9600, 0.045)
    assert ascii_ == pytest.approx(1.0 + 0.09)
    assert rtu == pytest.approx(ascii_ + 2 * 3.5 * 10 / 9600)
