"""``ress-bms`` end to end: JSON contract, human output, one-line errors, writes with read-back."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
from pathlib import Path
import re
import sys
import threading
from unittest import mock

import pytest

from ress_bms.cli import main
from ress_bms.simulator import Simulator

LIBRARY_PARENT = Path(__file__).parents[2] / "custom_components" / "syscom_ress"
JAKIPER_42 = (
    "~25014600F07A0001100CC70CC80CC70CC70CC70CC50CC60CC70CC70CC60CC70CC60CC60CC70CC60CC7060B9B"
    "0B990B990B990BB30BBCFF1FCCCD12D303286A008C2710E1E4"
)
PACK_KEYS = {
    "address", "online", "cell_voltages", "temperatures", "mos_temperature",
    "environment_temperature", "current", "voltage", "power", "remaining_capacity",
    "full_capacity", "design_capacity", "cycles", "soc", "soh",
}  # fmt: skip
STATUS_KEYS = {
    "protections", "alarms", "faults", "charge_mos", "discharge_mos", "current_limit", "heating",
    "balancing",
}  # fmt: skip


class Terminal(io.StringIO):
    """Standard input that is a terminal, with the owner's answer already typed."""

    def isatty(self) -> bool:
        return True


async def ress_bms(*args: str, stdin: io.StringIO | None = None) -> tuple[int, str, str]:
    """Run the command-line tool on a thread of its own (the simulator keeps this event loop)."""
    result: list[int] = []
    out, err = io.StringIO(), io.StringIO()

    loop = asyncio.get_running_loop()
    done = asyncio.Event()

    def run() -> None:
        try:
            with (
                contextlib.redirect_stdout(out),
                contextlib.redirect_stderr(err),
                mock.patch("sys.stdin", stdin or io.StringIO()),
            ):
                result.append(main(list(args)))
        finally:
            loop.call_soon_threadsafe(done.set)

    thread = threading.Thread(target=run, name="ress-bms-cli")
    thread.start()
    await done.wait()
    thread.join()
    return result[0], out.getvalue(), err.getvalue()


async def test_python_dash_m_runs_the_tool() -> None:
    env = {**os.environ, "PYTHONPATH": str(LIBRARY_PARENT)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ress_bms", "decode", JAKIPER_42, "--json",
        stdout=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    out, _ = await process.communicate()
    assert process.returncode == 0
    assert json.loads(out)["packs"][0]["cycles"] == 140


def test_decode_prints_the_json_contract(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decode", JAKIPER_42, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["command"] == "42"
    (pack,) = data["packs"]
    assert set(pack) >= PACK_KEYS
    assert pack["voltage"] == 52.429
    assert pack["current"] == -2.25
    assert pack["temperatures"] == [24.1, 23.9, 23.9, 23.9]


def test_decode_of_a_request_names_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decode", "~250046D4F01001E10AE740D2F00AF9FB", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["name"] == "pack_ov_write"
    assert data["values"]["pack_over_voltage_alarm"] == 57.61


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["decode", "~25014642E00201FD31"], "CHKSUM"),
        (["decode", "~20014A420000FDA2"], "VER 20H"),
        (["decode", JAKIPER_42, "--command", "zz"], "not a hexadecimal"),
        (["decode", "~25004600A006131400FC6F", "--command", "FE"], "no decoder"),
        (["status"], "give --url"),
        (["set", "nonsense", "1", "--url", "socket://127.0.0.1:9"], "unknown parameter"),
        (["set", "low_soc_alarm", "x", "--url", "socket://127.0.0.1:9"], "not a number"),
        (["set", "low_soc_alarm", "120", "--url", "socket://127.0.0.1:9"], "outside 0..100"),
    ],
)
def test_errors_are_one_line_and_exit_1(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


@pytest.mark.usefixtures("socket_enabled")
def test_unreachable_gateway_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--url", "socket://127.0.0.1:9"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ress-bms: cannot open socket://127.0.0.1:9")
    assert err.count("\n") == 1


@pytest.mark.usefixtures("socket_enabled")
async def test_status_against_the_simulator(simulator: Simulator) -> None:
    simulator.raise_protection(2, "cell_over_voltage")
    code, out, _ = await ress_bms("status", "--url", simulator.url, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["mode"] == "broadcast"
    assert [p["address"] for p in data["packs"]] == [1, 2, 3]
    for pack in data["packs"]:
        assert set(pack) >= PACK_KEYS | STATUS_KEYS
    assert "cell_over_voltage" in data["packs"][1]["protections"]

    code, out, _ = await ress_bms("status", "--url", simulator.url)
    assert code == 0
    assert "Pack 2" in out
    assert "protections: cell over voltage" in out


@pytest.mark.usefixtures("socket_enabled")
async def test_scan_params_history_clock(simulator: Simulator) -> None:
    code, out, _ = await ress_bms("scan", "--url", simulator.url, "--json")
    assert code == 0
    assert json.loads(out)["packs"][0]["bms_serial"] == simulator.pack(1).bms_serial
    code, out, _ = await ress_bms("params", "--url", simulator.url, "--json")
    assert json.loads(out)["values"]["cell_over_voltage_protection"] == 3.65
    code, out, _ = await ress_bms("params", "--url", simulator.url)
    assert re.search(r"^cell_over_voltage_protection +3\.65 +V +2\.5\.\.4\.5", out, re.M)
    code, out, _ = await ress_bms("history", "--url", simulator.url, "--count", "2", "--json")
    assert code == 0
    assert len(json.loads(out)["records"]) >= 1
    code, out, _ = await ress_bms("clock", "--url", simulator.url, "--sync", "--json")
    assert code == 0
    assert "time" in json.loads(out)


@pytest.mark.usefixtures("socket_enabled")
async def test_set_writes_after_confirmation_and_reads_back(simulator: Simulator) -> None:
    url = ("--url", simulator.url)
    code, _, err = await ress_bms("set", "low_soc_alarm", "12", *url)
    assert code == 1
    assert "add --yes" in err  # no terminal to confirm on: nothing written
    assert simulator.pack(1).bms.value("low_soc_alarm") == 5

    code, out, _ = await ress_bms("set", "low_soc_alarm", "12", "--dry-run", "--json", *url)
    assert json.loads(out)["frames"][0].startswith("~250146AE")
    assert simulator.pack(1).bms.value("low_soc_alarm") == 5

    code, out, _ = await ress_bms("set", "low_soc_alarm", "12", "--yes", "--json", *url)
    assert code == 0
    assert json.loads(out)["new"] == {"low_soc_alarm": 12}
    assert simulator.pack(1).bms.value("low_soc_alarm") == 12

    code, _, err = await ress_bms("set", "cell_over_voltage_alarm", "3.9", "--yes", *url)
    assert code == 1
    assert "must stay below cell_over_voltage_protection" in err


@pytest.mark.usefixtures("socket_enabled")
async def test_capture_records_both_directions(simulator: Simulator, tmp_path: Path) -> None:
    out = tmp_path / "capture.jsonl"
    code, _, _ = await ress_bms(
        "capture", "--url", simulator.url, "--seconds", "0.3", "--out", str(out)
    )
    assert code == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert {line["dir"] for line in lines} == {"tx", "rx"}
    assert lines[0]["text"].startswith("~2501469000")


@pytest.mark.usefixtures("socket_enabled")
@pytest.mark.parametrize(("answer", "written"), [("y\n", 40), ("n\n", 30)])
async def test_set_asks_on_a_terminal(simulator: Simulator, answer: str, written: int) -> None:
    code, out, err = await ress_bms(
        "set", "balance_delta", "40", "--url", simulator.url, stdin=Terminal(answer)
    )
    assert "balance_delta: 30 -> 40 mV" in out
    assert "Write to pack 1? [y/N]" in out
    assert code == (0 if written == 40 else 1)
    assert simulator.pack(1).bms.value("balance_delta") == written
    if written == 30:
        assert "nothing written" in err


@pytest.mark.usefixtures("socket_enabled")
async def test_silent_pack_is_shown_offline(simulator: Simulator) -> None:
    simulator.set_offline(3)
    args = ("status", "--url", simulator.url, "--mode", "direct", "--timeout", "0.1")
    code, out, _ = await ress_bms(*args)
    assert code == 0
    assert "Pack 3  OFFLINE (no reply to 42H" in out
    code, out, _ = await ress_bms(*args, "--json")
    pack = json.loads(out)["packs"][2]
    assert pack["online"] is False
    assert "no reply" in pack["error"]
    assert "voltage" not in pack  # never a 0 V reading for a silent pack


@pytest.mark.simulator(control_port=0)
async def test_control_sends_a_command_to_a_running_simulator(simulator: Simulator) -> None:
    """``ress-bms control``: KEY=VALUE fields (JSON where they parse), or one JSON object."""
    assert simulator.control is not None
    port = str(simulator.control.port)
    code, out, _ = await ress_bms(
        "control", "--port", port, "raise", "pack=2", "protection=cell_over_voltage"
    )
    assert code == 0
    assert json.loads(out) == {"ok": True, "raised": "cell_over_voltage_protection"}
    assert "cell_over_voltage" in simulator.pack(2).bms.protections
    code, out, _ = await ress_bms(
        "control", "--port", port, '{"cmd": "set", "pack": 1, "temperatures": {"4": 95}}'
    )
    assert code == 0
    assert json.loads(out)["temperatures"][4] == 95
    code, out, err = await ress_bms("control", "--port", port, "raise", "pack=9")
    assert code == 1
    assert json.loads(out)["ok"] is False
    assert err.startswith("ress-bms: control: ")
    assert err.count("\n") == 1


async def test_control_without_a_port_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RESS_BMS_CONTROL_PORT", raising=False)
    code, _, err = await ress_bms("control", "state")
    assert code == 1
    assert "--port" in err
