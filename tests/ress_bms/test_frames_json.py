"""Every public VER 0x25 frame decodes to the values its source reported.

The frames come from public specifications and captures (tests/fixtures/frames.json, a copy of
the team's reference set). Requests must decode and re-encode byte for byte; responses must decode
with the command they answer, and where the source reported values, to those values.
"""

from __future__ import annotations

from datetime import datetime
import json
from pathlib import Path
import re
from typing import Any

import pytest

from ress_bms import analog, control, device, history, params, status
from ress_bms.cli import decode_text
from ress_bms.commands import Command
from ress_bms.errors import CommandRefusedError, ResponseError
from ress_bms.frame import VER_PACE, decode_frame

FRAMES = json.loads((Path(__file__).parent.parent / "fixtures" / "frames.json").read_text())
PACE = [f for f in FRAMES["frames"] if not f["family"].startswith("NOT 0x25")]

# Values a source reported that the frame's own bytes contradict. Each is checked to be what the
# bytes say, so the list cannot hide a decoder bug.
ERRATA = {
    # nkinnan's comment prints "P1812101380309D"; the 40 INFO bytes start with "1812..." (0x31).
    ("C2H product info / serial", "serial"): "1812101380309D",
}


# Inverter protocol numbers of [PACE-V3.1] §4.72 named by the spec examples in frames.json.
PROTOCOL_CODES = {"PYLON_485": 0x01, "GROWATT_CAN": 0x02, "SE_CAN": 0x04}


def _command(entry: dict[str, Any]) -> int:
    if entry["request"]:
        return decode_frame(entry["request"].encode()).cid2
    return int(re.match(r"([0-9A-F]{2})H", entry["command"])[1], 16)  # type: ignore[index]


def _pack_number(entry: dict[str, Any]) -> int:
    if entry["request"]:
        info = decode_frame(entry["request"].encode()).info
        if info:
            return info[0]
    return 1


def _number(value: Any) -> float:
    return float(re.match(r"-?[\d.]+", str(value))[0])  # type: ignore[index]


def _id(entry: dict[str, Any]) -> str:
    return f"{entry['command']} ({entry['device'] or entry['family']})"


@pytest.mark.parametrize("entry", PACE, ids=_id)
def test_frames_decode_and_reencode(entry: dict[str, Any]) -> None:
    for key in ("request", "response"):
        if entry[key]:
            frame = decode_frame(entry[key].encode())
            assert frame.ver == VER_PACE
            assert frame.encode().decode().rstrip("\r") == entry[key]


def _decoded(entry: dict[str, Any]) -> dict[str, Any]:
    """What our decoders make of a response, in the source's vocabulary."""
    command = _command(entry)
    frame = decode_frame(entry["response"].encode())
    info = frame.info
    if command == Command.ANALOG:
        pack = analog.decode_analog(info, _pack_number(entry)).packs[0]
        return {
            "cells_mV": [round(v * 1000) for v in pack.cell_voltages],
            "temps_C": list(pack.temperatures),
            "current_A": pack.current,
            "voltage_V": pack.voltage,
            "remain_Ah": pack.remaining_capacity,
            "P": pack.user_defined_count,
            "full_Ah": pack.full_capacity,
            "cycles": pack.cycles,
            "design_Ah": pack.design_capacity,
        }
    if command == Command.VERSION:
        return {"version": device.decode_version(info)}
    if command == Command.SERIAL:
        return {"serial": device.decode_serials(info).bms}
    if command == Command.PACK_COUNT:
        return {"packs": device.decode_pack_count(info)}
    if command == Command.CLOCK_READ:
        return {"datetime": device.decode_clock(info)}
    if command == Command.CLOCK_WRITE:
        return {"datetime": device.decode_clock(decode_frame(entry["request"].encode()).info)}
    if command == Command.HISTORY:
        record = history.decode_history(info, 0)
        assert record is not None
        return {
            "time": record.time,
            "current_A": record.current,
            "voltage_V": record.voltage,
            "remain_Ah": record.remaining_capacity,
            "full_Ah": record.full_capacity,
            "cells_mV": [round(v * 1000) for v in record.cell_voltages],
            "temps_C": list(record.temperatures),
        }
    group = next(g for g in params.GROUPS if command in (g.read, g.write))
    payload = info if command == group.read else decode_frame(entry["request"].encode()).info
    values = {
        p.key: p.decode(payload) for p in group.parameters if p.offset + p.size <= len(payload)
    }
    return {"enable": payload[0], **values}


# The source's field names for parameter groups, in payload order after the enable byte.
_PARAM_NAMES = {
    "cell_over_voltage": ("alarm_mV", "protect_mV", "release_mV", "delay_x100ms"),
    "cell_under_voltage": ("alarm_mV", "protect_mV", "release_mV", "delay_x100ms"),
    "pack_over_voltage": ("alarm_mV", "protect_mV", "release_mV", "delay_x100ms"),
    "pack_under_voltage": ("alarm_mV", "protect_mV", "release_mV", "delay_x100ms"),
    "charge_over_current": ("alarm_A", "protect_A", "delay_x100ms"),
    "discharge_over_current_2": ("dsg_oc2_A", "dsg_oc2_delay_x25ms"),
    "short_circuit": ("delay_us",),
    "balance": ("start_mV", "delta_mV"),
    "sleep": ("sleep_cell_mV", "delay_min"),
    "full_charge": ("full_V_mV", "full_I_mA", "soc_low_alarm_pct"),
    "cell_low_temperature": ("chg_alarm_C", "chg_prot_C", "chg_rel_C", "dsg_alarm_C",
                             "dsg_prot_C", "dsg_rel_C"),
    "mos_high_temperature": ("alarm_C", "prot_C", "rel_C"),
    "environment_temperature": ("ut_alarm_C", "ut_prot_C", "ut_rel_C", "ot_alarm_C",
                                "ot_prot_C", "ot_rel_C"),
    "current_limit": ("A",),
    "inverter_protocol": ("can", "rs485", "type"),
}  # fmt: skip


def _source_units(name: str, param: params.Parameter, value: float) -> float:
    """Our SI value in the unit the source's field name carries."""
    if name.endswith(("_mV", "_mA")) and param.unit in ("V", "A"):
        return round(value * 1000)
    if name.endswith("_x100ms"):
        return round(value * 10)
    if name.endswith("_x25ms"):
        return round(value / 0.025)
    return value


def _expected_params(entry: dict[str, Any], decoded: dict[str, Any]) -> dict[str, Any]:
    command = _command(entry)
    group = next(g for g in params.GROUPS if command in (g.read, g.write))
    names = _PARAM_NAMES[group.key]
    ours = {"enable": decoded["enable"]}
    for name, param in zip(names, group.parameters, strict=False):
        ours[name] = _source_units(name, param, decoded[param.key])
    return ours


WITH_VALUES = [e for e in PACE if e["decoded_by_source"] and e["response"]]


@pytest.mark.parametrize("entry", WITH_VALUES, ids=_id)
def test_frames_decode_to_reported_values(entry: dict[str, Any]) -> None:
    decoded = _decoded(entry)
    if "group" not in decoded and _command(entry) not in (
        Command.ANALOG, Command.VERSION, Command.SERIAL, Command.PACK_COUNT, Command.CLOCK_READ,
        Command.CLOCK_WRITE, Command.HISTORY,
    ):  # fmt: skip
        decoded = _expected_params(entry, decoded)
    checked = 0
    for key, expected in entry["decoded_by_source"].items():
        if (entry["command"], key) in ERRATA:
            assert decoded[key] == ERRATA[entry["command"], key]
            checked += 1
            continue
        if key not in decoded:
            continue
        ours = decoded[key]
        if isinstance(ours, datetime):
            assert ours == datetime.fromisoformat(expected)
        elif key in ("can", "rs485"):
            code = str(expected).split()[0]
            assert ours == (int(code, 16) if code.startswith("0x") else PROTOCOL_CODES[code])
        elif key == "type":
            assert ours == (0 if "auto" in str(expected) else 1)
        elif isinstance(expected, list):
            assert ours == pytest.approx([_number(v) for v in expected])
        elif isinstance(expected, str):
            assert ours.strip() == expected.strip()
        else:
            assert ours == pytest.approx(_number(expected))
        checked += 1
    assert checked, "no reported value was compared"


@pytest.mark.parametrize("entry", [e for e in PACE if e["response"] and e["request"]], ids=_id)
def test_cli_decode_gives_json_for_every_response(entry: dict[str, Any]) -> None:
    command = _command(entry)
    data = decode_text(entry["response"], command)
    assert data["command"] == f"{command:02X}"
    json.dumps(data)  # the CLI prints it


def test_refused_mos_switch_is_a_typed_error() -> None:
    frame = decode_frame(b"~25004609E00204FD2B")
    with pytest.raises(CommandRefusedError) as err:
        frame.raise_for_rtn(Command.DISCHARGE_MOS)
    assert err.value.code == 0x09
    assert isinstance(err.value, ResponseError)


def test_control_replies_carry_the_control_status() -> None:
    """99H second reply byte = control status after the change: it settles the polarity."""
    cases = {
        "~25004600C0040D01FCC3": ("buzzer_enabled", True),
        "~25004600C0040C00FCC5": ("buzzer_enabled", False),
        "~25004600C0040722FCCD": ("led_alarm_disabled", True),
        "~25004600C0040602FCD0": ("led_alarm_disabled", False),
        "~25004600C0040B32FCC1": ("current_limit_disabled", True),
        "~25004600C0040A22FCC3": ("current_limit_disabled", False),
        "~25004600C0040938FCC4": ("limiter_low_gear", True),
        "~25004600C0040830FCCD": ("limiter_low_gear", False),
    }
    for text, (key, expected) in cases.items():
        reply = control.decode_control(decode_frame(text.encode()).info)
        bit = status.BITS_BY_KEY[key]
        assert bool(reply.control_status >> bit.bit & 1) is expected, text  # type: ignore[operator]
        on, off = next(v for k, v in control.SWITCHES.items() if key.startswith(k.split("_")[0]))
        assert reply.code in (on, off)


def test_mos_replies_carry_the_indication_status() -> None:
    charge_on = control.decode_mos(decode_frame(b"~25004600E00226FD30").info)
    charge_off = control.decode_mos(decode_frame(b"~25004600E00224FD32").info)
    bit = status.BITS_BY_KEY["charge_mos"]
    assert charge_on is not None and charge_on >> bit.bit & 1
    assert charge_off is not None and not charge_off >> bit.bit & 1
