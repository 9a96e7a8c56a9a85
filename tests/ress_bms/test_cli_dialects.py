"""``ress-bms decode --dialect``, ``scan --detect`` and ``--dialect`` on the other commands.

Kept beside test_cli.py (whose helpers it uses) so the two can change independently.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from ress_bms.cli import main
from ress_bms.frame import Frame
from ress_bms.modbus import READ_COILS, ReadRequest, with_crc
from ress_bms.simulator import Simulator

from .fakepeer import silent_gateway
from .test_cli import JAKIPER_42, PACK_KEYS, STATUS_KEYS, ress_bms
from .test_dialect_seplos import _status_info as seplos_status_info
from .ver20_frames import FRAMES


def entry(prefix: str) -> dict[str, Any]:
    return next(f for f in FRAMES if f["command"].startswith(prefix))


def decode(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert main(["decode", *argv, "--json"]) == 0, capsys.readouterr().err
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


def registers(*values: int) -> bytes:
    return b"".join(v.to_bytes(2) for v in values)


def modbus_reply(request: str, data: bytes) -> str:
    raw = bytes.fromhex(request)
    return with_crc(bytes((raw[0], raw[1], len(data))) + data).hex().upper()


# -- VER 0x20 --------------------------------------------------------------------------------


def test_seplos_42h_and_44h_have_the_pace_keys(capsys: pytest.CaptureFixture[str]) -> None:
    frame = entry("42H telemetry response, 16 cells")
    data = decode(capsys, frame["response"], "--dialect", "seplos")
    assert (data["command"], data["address"]) == ("42", 0)
    (pack,) = data["packs"]
    assert set(pack) >= PACK_KEYS
    assert len(pack["cell_voltages"]) == 16
    assert "port_voltage" in data and "data_flag" in data
    status = Frame(0x20, 0, 0x46, 0, seplos_status_info()).encode().decode().strip()
    data = decode(capsys, status, "--dialect", "seplos", "--command", "44")
    (pack,) = data["packs"]
    assert set(pack) >= STATUS_KEYS
    assert pack["extra"] == [] and "raw" in pack


def test_pylontech_uses_the_request_for_its_command(capsys: pytest.CaptureFixture[str]) -> None:
    frame = entry("42H analog value, single pack, capacity > 65 Ah")
    data = decode(
        capsys, frame["response"], "--dialect", "pylontech", "--request", frame["request"]
    )
    assert (data["command"], data["address"]) == ("42", 2)
    (pack,) = data["packs"]
    assert set(pack) >= PACK_KEYS
    assert pack["full_capacity"] > 65
    assert "info_flag" in data


def test_eg4_analog_status_and_51h(capsys: pytest.CaptureFixture[str]) -> None:
    data = decode(capsys, entry("42H analog value (no INFO")["response"], "--dialect", "eg4")
    assert set(data["packs"][0]) >= PACK_KEYS
    assert "cumulative_charge" in data and "pack" not in data
    data = decode(
        capsys, entry("44H alarm info (no INFO")["response"], "--dialect", "eg4", "--command", "44"
    )
    assert set(data["packs"][0]) >= STATUS_KEYS
    data = decode(capsys, entry("51H manufacturer info")["response"], "--dialect", "eg4",
                  "--command", "51")  # fmt: skip
    assert data["text"] and data["raw"]


def test_pace_dialect_and_no_dialect_decode_alike(capsys: pytest.CaptureFixture[str]) -> None:
    assert decode(capsys, JAKIPER_42, "--dialect", "pace") == decode(capsys, JAKIPER_42)


# -- Modbus ----------------------------------------------------------------------------------


def test_pace_modbus_registers_and_packs(capsys: pytest.CaptureFixture[str]) -> None:
    request = "010300000008440C"
    reply = modbus_reply(request, registers(0, 5324, 98, 100, 10000, 10000, 10000, 12))
    data = decode(capsys, reply, "--dialect", "pace_modbus", "--request", request)
    assert (data["command"], data["address"], data["start"], data["count"]) == ("03", 1, 0, 8)
    assert data["registers"]["voltage"] == 53.24
    assert data["registers"]["cycles"] == 12
    assert "packs" not in data  # 0-7 alone hold no cells
    whole = ReadRequest(1, 0x03, 0, 37).encode().hex()
    values = [0, 5324, 98, 100, 10000, 10000, 10000, 12, 0, 0, 0, 0, 0, 0, 0]
    values += [3300] * 16 + [250] * 6
    data = decode(capsys, modbus_reply(whole, registers(*values)), "--dialect", "pace_modbus",
                  "--request", whole)  # fmt: skip
    analog, status = data["packs"]
    assert set(analog) >= PACK_KEYS and analog["cell_voltages"] == [3.3] * 16
    assert set(status) >= STATUS_KEYS


@pytest.mark.parametrize(
    ("prefix", "key"),
    [("EIA", "bank"), ("PIA", "registers"), ("EIB", "registers"), ("PCT", "registers")],
)
def test_seplos_v3_register_reads(
    capsys: pytest.CaptureFixture[str], prefix: str, key: str
) -> None:
    frame = entry(prefix)
    request = frame["request"]
    if request is None:  # the capture has the reply only: the read it answers
        raw = bytes.fromhex(frame["response"])
        start = {"EIB": 0x2100, "PCT": 0x1800}[prefix]
        request = ReadRequest(raw[0], raw[1], start, raw[2] // 2).encode().hex()
    data = decode(capsys, frame["response"], "--dialect", "seplos_v3", "--request", request)
    assert data[key]
    assert data["command"] == "04"


def test_seplos_v3_pic_coils_give_a_status(capsys: pytest.CaptureFixture[str]) -> None:
    request = ReadRequest(1, READ_COILS, 0x1200, 144).encode().hex()
    data = decode(capsys, entry("PIC")["response"], "--dialect", "seplos_v3", "--request", request)
    assert set(data["packs"][0]) >= STATUS_KEYS
    assert data["coils"]


# -- one clear error ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--dialect", "pace_modbus", "--request", "010300000008440C"], "exception 02H"),
        (["--dialect", "seplos"], "not a ~...CR frame"),
        (["--dialect", "pace_modbus"], "--request HEX"),
    ],
)
def test_modbus_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    exception = with_crc(bytes((1, 0x83, 0x02))).hex()
    assert main(["decode", exception, *argv]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("frame", "argv", "message"),
    [
        ("010300000008440D", ["--dialect", "seplos_v3", "--request", "00041700000A7468"], "CRC"),
        ("~20014A420000FDA2", ["--dialect", "seplos_v3", "--request", "00041700000A7468"],
         "not a Modbus"),
        (JAKIPER_42, ["--dialect", "seplos"], "VER 25H"),
        ("~20014A420000FDA2", ["--dialect", "pace"], "not a PACE"),
        (entry("42H analog value (no INFO")["response"], ["--dialect", "seplos"], "CID1 4AH"),
        ("~200046040000FDB0", ["--dialect", "seplos", "--command", "93"], "RTN 04H"),
        ("~20004642E00200FD36", ["--dialect", "seplos"], "CHKSUM"),
        ("~20014A420000FDA2", [], "VER 20H"),
    ],
)  # fmt: skip
def test_frames_of_another_protocol_are_one_error(
    capsys: pytest.CaptureFixture[str], frame: str, argv: list[str], message: str
) -> None:
    assert main(["decode", frame, *argv]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.mark.usefixtures("socket_enabled")
@pytest.mark.parametrize("dialect", ["seplos", "seplos_v3"])
async def test_status_reads_a_stack_in_any_dialect(dialect: str) -> None:
    async with Simulator(2, seed=1, dialect=dialect) as sim:
        code, out, err = await ress_bms("status", "--dialect", dialect, "--url", sim.url, "--json")
        assert code == 0, err
        packs = json.loads(out)["packs"]
        assert [p["address"] for p in packs] == [1, 2]
        for n, pack in enumerate(packs, start=1):
            assert pack["cell_voltages"] == list(sim.pack(n).analog().cell_voltages)
        code, out, err = await ress_bms("scan", "--dialect", dialect, "--url", sim.url)
        assert code == 0, err
        assert len(out.strip().splitlines()) == 3  # the heading and two packs


@pytest.mark.usefixtures("socket_enabled")
@pytest.mark.parametrize(
    ("command", "what"),
    [("params", "parameters_read"), ("history", "history"), ("clock", "clock")],
)
async def test_what_a_dialect_cannot_do_is_one_error(command: str, what: str) -> None:
    async with Simulator(1, seed=1, dialect="eg4") as sim:
        code, _, err = await ress_bms(command, "--dialect", "eg4", "--url", sim.url)
    assert code == 1
    assert f"EG4 LifePower4 (VER 0x20, CID1 0x4A): no {what}" in err
    assert err.count("\n") == 1


# -- scan --detect -----------------------------------------------------------------------------


async def test_scan_detect_finds_the_simulator(simulator: Simulator) -> None:
    code, out, err = await ress_bms("scan", "--detect", "--url", simulator.url, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert (data["dialect"], data["baudrate"], data["address"]) == ("pace", 9600, 1)
    assert data["serial"] == simulator.pack(1).bms_serial
    assert data["packs"] == len(simulator.stack.packs)
    code, out, _ = await ress_bms("scan", "--detect", "--url", simulator.url)
    assert code == 0
    assert "dialect    pace (PACE VER 0x25)" in out and "baud rate  9600" in out


@pytest.mark.usefixtures("socket_enabled")
async def test_scan_detect_on_a_silent_bus_is_one_clear_error() -> None:
    async with silent_gateway() as url:
        code, out, err = await ress_bms("scan", "--detect", "--url", url, "--budget", "0.3")
        assert code == 1
        assert err.startswith(f"ress-bms: nothing answers on {url}: tried PACE 0x25 C1H")
        assert err.count("\n") == 1
        assert out == ""
        code, out, err = await ress_bms(
            "scan", "--detect", "--url", url, "--budget", "0.3", "--dialect", "eg4", "--json"
        )
        assert code == 1
        data = json.loads(out)
        assert data["type"] == "NothingAnswersError"
        assert "EG4 42H" in data["error"] and "PACE" not in data["error"]
