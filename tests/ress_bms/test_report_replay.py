"""``ress-bms report`` and ``ress-bms replay``: one file from a stack, decoded again offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ress_bms.analog import decode_analog, encode_analog
from ress_bms.capture import (
    REDACTED,
    CapturedFrame,
    frames_from_chunks,
    pair,
    parse_frames,
    redact_frames,
)
from ress_bms.cli import main
from ress_bms.commands import Command, encode_request
from ress_bms.device import decode_serials, encode_text
from ress_bms.frame import VER_PACE, decode_frame, encode_frame
from ress_bms.replay import replay_file, replay_frames, summary
from ress_bms.report import analog_json, status_json
from ress_bms.simulator import Simulator
from tests.ress_bms.test_cli import JAKIPER_42, ress_bms


def _simulated(sim: Simulator, address: int) -> dict[str, object]:
    """What the simulator puts on the wire for a pack, in the JSON of ``status --json``."""
    pack = sim.pack(address)
    return (
        {"address": address, "online": True}
        | analog_json(pack.analog())
        | status_json(pack.status())
    )


def _reply(command: int, info: bytes, adr: int = 1) -> bytes:
    return encode_frame(VER_PACE, adr, 0x46, 0, info).rstrip(b"\r")


def _request(command: int, adr: int = 1, info: bytes = b"") -> bytes:
    return encode_request(command, adr, info).rstrip(b"\r")


# -- report, end to end on the simulator -------------------------------------------------------


@pytest.mark.usefixtures("socket_enabled")
async def test_report_replays_to_what_the_simulator_sent(
    simulator: Simulator, tmp_path: Path
) -> None:
    simulator.raise_protection(2, "cell_over_voltage")
    out = tmp_path / "report.json"
    code, stdout, stderr = await ress_bms("report", "--url", simulator.url, "--out", str(out))
    assert code == 0, stderr
    assert stdout == ""
    assert f"wrote {out}: 3 packs" in stderr
    assert "serials redacted" in stderr
    text = out.read_text(encoding="utf-8")
    report = json.loads(text)

    # what the owner sends: serials and the gateway's host hidden, everything else there
    for address in (1, 2, 3):
        assert simulator.pack(address).bms_serial not in text
        assert simulator.pack(address).pack_serial not in text
    assert "127.0.0.1" not in text
    assert report["redacted"] is True
    assert report["link"]["url"] == f"socket://{REDACTED}:{simulator.port}"
    assert set(report["versions"]) >= {"ress_bms", "python", "serialx"}
    assert report["errors"] == {}
    assert [p["bms_serial"] for p in report["scan"]["packs"]] == [REDACTED] * 3
    (master,) = report["parameters"]
    assert master["address"] == 1
    assert master["values"] == simulator.pack(1).bms.settings.values

    # the file replays to the values the client decoded, which are the simulator's own
    replayed = replay_file(out)
    assert replayed["format"] == "report"
    assert not [e for e in replayed["frames"] if "error" in e]
    got = replayed["summary"]
    assert got["pack_count"] == 3
    assert got["parameters"]["1"] == master["values"]
    for pack in report["status"]["packs"]:
        address = pack["address"]
        assert got["packs"][str(address)] == pack
        assert pack == _simulated(simulator, address)
        assert got["identity"][str(address)] == {
            "version": simulator.pack(address).version,
            "bms_serial": REDACTED,
            "pack_serial": REDACTED,
        }
    assert got["packs"]["2"]["bits"]["protection"]["cell_over_voltage"] is True


@pytest.mark.usefixtures("socket_enabled")
async def test_report_no_redact_keeps_the_serials(simulator: Simulator, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    code, _, stderr = await ress_bms(
        "report", "--url", simulator.url, "--out", str(out), "--no-redact"
    )
    assert code == 0
    assert "serials NOT redacted" in stderr
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["redacted"] is False
    assert report["link"]["url"] == simulator.url
    identity = replay_file(out)["summary"]["identity"]
    for address in (1, 2, 3):
        pack = simulator.pack(address)
        assert report["scan"]["packs"][address - 1]["bms_serial"] == pack.bms_serial
        assert identity[str(address)]["bms_serial"] == pack.bms_serial


@pytest.mark.usefixtures("socket_enabled")
async def test_report_of_a_battery_that_does_not_answer(
    simulator: Simulator, tmp_path: Path
) -> None:
    """The case the report is for: nothing recognised, yet the file says what was tried."""
    simulator.set_offline(1)
    out = tmp_path / "report.json"
    code, _, stderr = await ress_bms(
        "report", "--url", simulator.url, "--out", str(out), "--timeout", "0.2"
    )
    assert code == 0
    assert "scan: no reply to 90H" in stderr
    report = json.loads(out.read_text(encoding="utf-8"))
    assert "no reply to 90H" in report["errors"]["scan"]
    assert "127.0.0.1" not in report["errors"]["scan"]
    assert report["scan"] is None
    assert report["status"] is None
    sent = {f["text"] for f in report["frames"] if f["dir"] == "tx"}
    assert _request(Command.PACK_COUNT).decode() in sent
    assert any(text.startswith("~2001") for text in sent)  # the VER 0x20 probe is on record
    replayed = replay_file(out)
    assert {e["role"] for e in replayed["frames"]} == {"request"}


@pytest.mark.usefixtures("socket_enabled")
async def test_report_to_standard_output(simulator: Simulator) -> None:
    code, stdout, _ = await ress_bms("report", "--url", simulator.url, "--out", "-")
    assert code == 0
    assert json.loads(stdout)["scan"]["master_address"] == 1


async def test_report_without_a_link_is_one_line() -> None:
    code, _, stderr = await ress_bms("report")
    assert code == 1
    assert stderr == "ress-bms: no link: give --url (or set RESS_BMS_URL)\n"


# -- capture files -----------------------------------------------------------------------------


@pytest.mark.usefixtures("socket_enabled")
async def test_capture_file_replays(simulator: Simulator, tmp_path: Path) -> None:
    out = tmp_path / "stack.jsonl"
    code, _, _ = await ress_bms(
        "capture", "--url", simulator.url, "--seconds", "0.2", "--out", str(out)
    )
    assert code == 0
    replayed = replay_file(out)
    assert replayed["format"] == "capture"
    assert replayed["noise_bytes"] == 0
    assert not [e for e in replayed["frames"] if "error" in e]
    assert [e["role"] for e in replayed["frames"][:2]] == ["request", "reply"]
    for address in (1, 2, 3):
        assert replayed["summary"]["packs"][str(address)] == _simulated(simulator, address)
    # the serials are in a capture (it is raw): only a report hides them
    assert replayed["summary"]["identity"]["1"]["bms_serial"] == simulator.pack(1).bms_serial


def test_frames_split_and_glued_across_chunks() -> None:
    request = _request(Command.ANALOG, 1, b"\x01") + b"\r"
    reply = JAKIPER_42.encode() + b"\r"
    chunks = [
        ("tx", request, 100.0),
        ("rx", b"\x00\xff" + reply[:30], 100.05),
        ("rx", reply[30:90], 100.06),
        ("rx", reply[90:] + b"~2501", 100.07),
    ]
    frames, noise = frames_from_chunks(chunks)  # type: ignore[arg-type]
    assert noise == 2
    assert [(f.direction, f.time) for f in frames] == [("tx", 0.0), ("rx", pytest.approx(0.07))]
    (first, second) = replay_frames(frames)
    assert first["decoded"]["name"] == "analog"
    assert second["reply_to"] == "42"
    assert second["decoded"]["packs"][0]["cycles"] == 140


def test_requests_and_replies_of_a_passive_capture() -> None:
    """Listening only, both sides arrive as rx: the content tells them apart.

    90H and E1H-E4H are command codes and return codes at once: with a request waiting, such a
    frame is its reply; with none, it is another request.
    """
    count = _request(Command.PACK_COUNT)
    mos_temp = _request(Command.MOS_TEMP_READ, 2)  # E1H, also the "CID1 error" return code
    frames = [
        CapturedFrame("rx", count),
        CapturedFrame("rx", _reply(Command.PACK_COUNT, b"\x02")),
        CapturedFrame("rx", mos_temp),
        CapturedFrame("rx", encode_frame(VER_PACE, 2, 0x46, 0x90).rstrip(b"\r")),  # ADR error
        CapturedFrame("rx", count),
    ]
    roles = [item.role for item in pair(frames)]
    assert roles == ["request", "reply", "request", "reply", "request"]
    entries = replay_frames(frames)
    assert entries[1]["decoded"]["packs"] == 2
    assert entries[2]["decoded"]["name"] == "mos_temp_read"
    assert entries[3]["decoded"] == {"command": "E1", "address": 2, "rtn": 0x90,
                                     "error": "ADR error"}  # fmt: skip
    assert entries[4]["decoded"]["name"] == "pack_count"


def test_echo_of_a_half_duplex_adapter() -> None:
    request = _request(Command.PACK_COUNT)
    frames = [CapturedFrame("tx", request), CapturedFrame("rx", request),
              CapturedFrame("rx", _reply(Command.PACK_COUNT, b"\x01"))]  # fmt: skip
    assert [item.role for item in pair(frames)] == ["request", "echo", "reply"]


def test_redacted_serial_frames_stay_valid() -> None:
    serials = encode_text("123456789012345") + encode_text("")
    frames = [
        CapturedFrame("tx", _request(Command.SERIAL)),
        CapturedFrame("rx", _reply(Command.SERIAL, serials)),
        CapturedFrame("tx", _request(Command.SERIAL, 2)),
        CapturedFrame("rx", b"~2502460050283132333435363738393031"),  # cut short: not a frame
    ]
    hidden = redact_frames(frames)
    assert b"3132333435" not in b"".join(f.raw for f in hidden)
    value = decode_serials(decode_frame(hidden[1].raw).info)
    assert (value.bms, value.pack) == (REDACTED, None)
    assert hidden[3].raw == REDACTED.encode()
    assert hidden[0] == frames[0]


def test_plain_text_and_diagnostics_files(tmp_path: Path) -> None:
    text = tmp_path / "frames.txt"
    request = _request(Command.ANALOG, 1, b"\x01").decode()
    text.write_text(f"sent: {request}\nreceived: {JAKIPER_42}\n", encoding="utf-8")
    replayed = replay_file(text)
    assert replayed["format"] == "text"
    assert replayed["summary"]["packs"]["1"]["cycles"] == 140

    report = {"frames": [{"dir": "tx", "text": request}, {"dir": "rx", "text": JAKIPER_42}]}
    diagnostics = tmp_path / "config_entry-syscom_ress.json"
    diagnostics.write_text(json.dumps({"data": {"report": report}}), encoding="utf-8")
    replayed = replay_file(diagnostics)
    assert replayed["format"] == "diagnostics"
    assert replayed["summary"]["packs"]["1"]["voltage"] == 52.429


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"entry": {}}', "without frames"),
        ("hello\n", "no frames"),
        ('{"dir": "tx", "hex": "zz"}\n', "line 1 is not a capture line"),
    ],
)
def test_replay_of_something_else_is_one_line(
    content: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "file.json"
    path.write_text(content, encoding="utf-8")
    assert main(["replay", str(path)]) == 1
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


def test_replay_text_names_every_frame(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "frames.txt"
    bad = JAKIPER_42[:-4] + "0000"
    path.write_text(
        "\n".join([_request(Command.ANALOG, 1, b"\x01").decode(), JAKIPER_42, bad]),
        encoding="utf-8",
    )
    assert main(["replay", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "frames.txt: text, 3 frames"
    assert "42H analog to 1 INFO 01" in out[1]
    assert "42H reply from 1: packs=1" in out[2]
    assert "pack 1: 52.429 V -2.25 A" in out[3]
    assert "invalid" in out[4]
    assert "CHKSUM" in out[4]


def test_summary_ignores_refusals() -> None:
    frames = [
        CapturedFrame("tx", _request(Command.VERSION)),
        CapturedFrame("rx", encode_frame(VER_PACE, 1, 0x46, 0x04).rstrip(b"\r")),
    ]
    entries = replay_frames(frames)
    assert entries[1]["decoded"]["error"] == "CID2 invalid"
    assert summary(entries)["identity"] == {}


def test_parse_frames_of_a_report_keeps_the_document() -> None:
    loaded = parse_frames(json.dumps({"frames": [], "scan": None}))
    assert loaded.format == "report"
    assert loaded.document == {"frames": [], "scan": None}


def test_a_one_pack_reply_is_the_pack_asked_for() -> None:
    """Firmware that echoes 01 in every one-pack reply: the block is still pack 2's (relay)."""
    block = decode_analog(bytes.fromhex(JAKIPER_42[13:-4]), 1).packs[0]
    info = encode_analog([block], 1)  # echoes 01
    frames = [
        CapturedFrame("tx", _request(Command.ANALOG, 1, b"\x02")),
        CapturedFrame("rx", _reply(Command.ANALOG, info)),
    ]
    (_, reply) = replay_frames(frames)
    assert "error" not in reply
    assert [p["address"] for p in reply["decoded"]["packs"]] == [2]
    assert summary(replay_frames(frames))["packs"]["2"]["cycles"] == 140
