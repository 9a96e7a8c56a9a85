"""script/develop's demo: a pleasant start, a believable day, and a control socket to play with.

The whole demo (Home Assistant in a browser) is tests/e2e; here, without starting anything: the
simulator command script/develop runs, what that simulator does over days of its time, and the
banner's recipes, which must work on it.
"""

from __future__ import annotations

import argparse
from datetime import datetime
import io
from pathlib import Path
import sys
from typing import Any

import pytest

from ress_bms.simulator import Simulator
from ress_bms.simulator.cli import add_arguments, build
from ress_bms.simulator.control import execute, request_from_words
from tests.conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "script"))
import devhome

pytestmark = pytest.mark.usefixtures("socket_enabled")  # ports are chosen on 127.0.0.1


def _home(tmp_path: Path, *argv: str) -> devhome.DevHome:
    return devhome.develop_home(devhome._parse(list(argv)), tmp_path)


def _simulator_command(home: devhome.DevHome, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    started: list[list[str]] = []

    class Child:
        def __init__(self, name: str, args: list[str], *_: Any, **__: Any) -> None:
            started.append(args)

        def start(self) -> None:
            return

    monkeypatch.setattr(devhome, "Child", Child)
    home._choose_ports()
    home._start_simulator()
    (command,) = started
    return command


def _parsed(command: list[str]) -> argparse.Namespace:
    assert command[1:4] == ["-m", "ress_bms", "simulate"]
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(command[4:])


def test_the_demo_starts_late_morning_half_full_with_its_control(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = _home(tmp_path)
    args = _parsed(_simulator_command(home, monkeypatch))
    assert (args.start.hour, args.start.minute) == (10, 30)
    assert args.start.date() == datetime.now().date()
    assert args.soc == 50
    assert args.profile == "solar-day"
    assert args.speed == 60
    assert not args.no_control
    assert args.control == home.control_port != home.sim_port
    again = _home(tmp_path)  # the next start keeps the port (the banner's recipes stay valid)
    again._choose_ports()
    assert again.control_port == home.control_port


def test_the_demo_speaks_the_dialect_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``script/develop --dialect seplos_v3``: the simulator speaks it; PACE by default."""
    assert _parsed(_simulator_command(_home(tmp_path), monkeypatch)).dialect == "pace"
    home = _home(tmp_path, "--dialect", "seplos_v3")
    assert home.dialect == "seplos_v3"
    assert _parsed(_simulator_command(home, monkeypatch)).dialect == "seplos_v3"
    with pytest.raises(SystemExit):
        devhome._parse(["--dialect", "nope"])


def test_other_dev_homes_have_no_control_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The end-to-end test and the benchmarks start the simulator as before."""
    args = _parsed(_simulator_command(devhome.DevHome(tmp_path), monkeypatch))
    assert args.no_control


def test_a_believable_day_and_no_protection_for_days(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three simulated days from the demo's start: charge by day, discharge by night, never an
    alarm or protection, and never near empty."""
    args = _parsed([*_simulator_command(_home(tmp_path), monkeypatch), "--step", "10"])
    stack = build(args).stack
    socs: list[float] = []
    currents: list[float] = []
    for _ in range(3 * 24):
        stack.advance(3600)
        socs.append(min(p.physics.soc for p in stack.packs))
        currents.append(stack.master.physics.current)
        for pack in stack.packs:
            assert pack.bms.protections == ()
            assert pack.bms.alarms == ()
    assert min(socs) > 30 and max(socs) > 95
    assert max(currents) > 10
    assert min(currents) < -5
    assert all(len(p.bms.history) == 1 for p in stack.packs)  # only the power-on record


async def test_the_recipes_work_on_the_demo_simulator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = _home(tmp_path)
    _simulator_command(home, monkeypatch)
    home.ha_version, home.stack_device_id = "2026.10.4", "abc"
    token = tmp_path / "token"
    token.write_text("x\n", encoding="utf-8")
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(devhome, "ROOT", tmp_path)
    devhome._banner(home, token)
    prefix = f".venv/bin/ress-bms control --port {home.control_port} "
    recipes = [
        line.strip()[len(prefix) :].split()
        for line in out.getvalue().splitlines()
        if line.strip().startswith(prefix)
    ]
    assert len(recipes) >= 4
    assert any(words[0] == "raise" for words in recipes)
    async with Simulator(packs=3, seed=1) as sim:
        for words in recipes:
            result = execute(sim, request_from_words(words))
            assert result["ok"], (words, result)
        assert sim.pack(3).online is False
