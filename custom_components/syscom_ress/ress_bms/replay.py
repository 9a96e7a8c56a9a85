"""Decode recorded traffic offline: every frame of a capture, report or diagnostics file.

``ress-bms replay FILE`` and ``ress-bms decode FRAME`` print what this module returns. A reply is
decoded as the answer to the request before it (42H/44H to ``FF`` or to one pack, the history
index of A1H), so a file replays exactly as the client read it on the bus; :func:`summary` then
gathers the last values of every pack, in the shapes of ``ress-bms status``, ``scan`` and
``params``, which is what the regression tests of ``tests/fixtures/captures`` compare.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import analog, control, device, history, params, report, status
from .capture import CapturedFrame, Exchanged, load_frames, pair
from .commands import ALLOWED_COMMANDS, COMMAND_ALL_PACKS, Command
from .errors import BmsError, DecodeError, ResponseError, UnsupportedProtocolError
from .frame import VER_PACE, Frame, decode_frame

type Json = dict[str, Any]


def decode_text(text: str, command: int) -> Json:
    """Decode one frame given as text (``ress-bms decode``).

    A request is named and its values shown; a reply is decoded as the answer to ``command``.
    """
    frame = decode_frame(text.strip().encode())
    if frame.ver != VER_PACE:
        raise UnsupportedProtocolError(
            f"VER {frame.ver:02X}H: only the PACE VER 25H protocol is supported yet"
        )
    if frame.cid2 in ALLOWED_COMMANDS and frame.cid2 > 0x0F:
        return decode_request(frame)
    return decode_reply(frame, command)


def decode_request(frame: Frame) -> Json:
    """What a request asks for: the command's name, the address, INFO, and the values written."""
    data: Json = {
        "request": f"{frame.cid2:02X}",
        "name": Command(frame.cid2).name.lower() if frame.cid2 in ALLOWED_COMMANDS else None,
        "address": frame.adr,
        "info": frame.info.hex().upper(),
    }
    group = next((g for g in params.GROUPS if g.write == frame.cid2), None)
    if group is not None:
        data["values"] = {
            p.key: p.decode(frame.info)
            for p in group.parameters
            if p.offset + p.size <= len(frame.info)
        }
    return data


def decode_reply(frame: Frame, command: int, request_info: bytes | None = None) -> Json:
    """A reply to ``command``; ``request_info`` is the INFO of that request, when known."""
    data: Json = {"command": f"{command:02X}", "address": frame.adr}
    if not frame.lchksum_ok:
        data["lchksum_ok"] = False
    if frame.cid2:
        error = ResponseError(frame.cid2, command)
        return data | {"rtn": frame.cid2, "error": error.meaning}
    return data | _decode_payload(command, frame.info, request_info)


def _decode_payload(command: int, info: bytes, request_info: bytes | None) -> Json:
    group = next((g for g in params.GROUPS if g.read == command), None)
    if group is not None:
        return {"group": group.key, "values": group.decode(info)}
    asked = request_info[0] if request_info else None
    match command:
        case Command.ANALOG:
            reply = _analog(info, asked)
            return {"packs": [report.analog_json(p) for p in reply.packs]}
        case Command.STATUS:
            alarms = _status(info, asked)
            return {"packs": [report.status_json(p) for p in alarms.packs]}
        case Command.PACK_COUNT:
            return {"packs": device.decode_pack_count(info)}
        case Command.VERSION:
            return {"version": device.decode_version(info)}
        case Command.SERIAL:
            return report.serials_json(device.decode_serials(info))
        case Command.CAPACITY:
            return report.capacities_json(device.decode_capacities(info))
        case Command.CLOCK_READ:
            return {"time": device.decode_clock(info).isoformat()}
        case Command.HISTORY:
            index = int.from_bytes(request_info) if request_info else 0
            record = history.decode_history(info, index)
            return {"record": report.history_json(record) if record else None}
        case Command.CONTROL:
            answer = control.decode_control(info)
            return {"code": f"{answer.code:02X}", "control_status": answer.control_status}
        case Command.CHARGE_MOS | Command.DISCHARGE_MOS:
            return {"indication": control.decode_mos(info)}
        case _ if not info:
            return {}
    raise DecodeError(f"no decoder for command {command:02X}H with data")


def _analog(info: bytes, asked: int | None) -> analog.AnalogReply:
    """A 42H reply to FF (every pack) or to one pack number; guessed when the request is unknown.

    A one-pack reply whose echoed number differs from the one asked (firmware that echoes 01)
    is read as the pack it names; :func:`_renumbered` then gives it the address asked for.
    """
    if asked is not None:
        try:
            return analog.decode_analog(info, asked)
        except DecodeError:
            if asked == COMMAND_ALL_PACKS:
                raise
    try:
        return analog.decode_analog(info, COMMAND_ALL_PACKS)
    except BmsError:
        return analog.decode_analog(info, info[1] if len(info) > 1 else 1)


def _status(info: bytes, asked: int | None) -> status.StatusReply:
    """A 44H reply, read as :func:`_analog` reads a 42H one."""
    if asked is not None:
        try:
            return status.decode_status(info, asked)
        except DecodeError:
            if asked == COMMAND_ALL_PACKS:
                raise
    try:
        return status.decode_status(info, COMMAND_ALL_PACKS)
    except BmsError:
        return status.decode_status(info, info[1] if len(info) > 1 else 1)


# -- whole recordings --------------------------------------------------------------------------


def replay_frames(frames: Iterable[CapturedFrame]) -> list[Json]:
    """Every frame with what it decodes to (or why it does not), in recorded order."""
    return [_entry(index, item) for index, item in enumerate(pair(frames))]


def _entry(index: int, item: Exchanged) -> Json:
    captured = item.frame
    entry: Json = {"index": index}
    if captured.time is not None:
        entry["time"] = round(captured.time, 3)
    entry |= {"dir": captured.direction, "role": item.role, "text": captured.text}
    frame, request = item.decoded, item.request
    if item.role == "invalid":
        entry["error"] = str(item.error)
        if request is not None:
            entry["reply_to"] = f"{request.cid2:02X}"
        return entry
    if frame is None or item.role == "echo":
        return entry
    if frame.ver != VER_PACE:
        entry["ver"] = f"{frame.ver:02X}"
        entry["note"] = f"VER {frame.ver:02X}H is not the PACE VER 25H protocol: not decoded"
        return entry
    try:
        if item.role == "request":
            entry["decoded"] = decode_request(frame)
        elif request is None:
            entry["error"] = "a reply with no request before it: not decoded"
        else:
            entry["reply_to"] = f"{request.cid2:02X}"
            entry["request_address"] = request.adr
            entry["decoded"] = _renumbered(decode_reply(frame, request.cid2, request.info), request)
    except BmsError as err:
        entry["error"] = str(err)
    return entry


def _renumbered(decoded: Json, request: Frame) -> Json:
    """Number the packs of a 42H/44H reply as the client does.

    The blocks of an FF reply are the packs from the master's address on; a one-pack reply is
    the pack asked for, whatever number it echoes.
    """
    if request.cid2 not in (Command.ANALOG, Command.STATUS) or "packs" not in decoded:
        return decoded
    asked = request.info[0] if request.info else request.adr
    for offset, pack in enumerate(decoded["packs"]):
        pack["address"] = request.adr + offset if asked == COMMAND_ALL_PACKS else asked
    return decoded


def summary(entries: Iterable[Json]) -> Json:
    """The last values of every pack, gathered from decoded replies.

    ``packs`` has the keys of ``ress-bms status --json`` per pack, ``identity`` those of
    ``scan`` (version, serials), ``parameters`` those of ``params``; each keyed by address.
    """
    analogs: dict[int, Json] = {}
    statuses: dict[int, Json] = {}
    identity: dict[int, Json] = {}
    parameters: dict[int, Json] = {}
    pack_count = None
    for entry in entries:
        decoded = entry.get("decoded")
        if entry.get("role") != "reply" or not decoded or "error" in decoded:
            continue
        target = int(entry["request_address"])  # as the client keys what it learns
        match entry["reply_to"]:
            case "42":
                analogs |= {p["address"]: p for p in decoded["packs"]}
            case "44":
                statuses |= {p["address"]: p for p in decoded["packs"]}
            case "90":
                pack_count = decoded["packs"]
            case "C1":
                identity.setdefault(target, {})["version"] = decoded["version"]
            case "C2":
                serials = {k: decoded[k] for k in ("bms_serial", "pack_serial")}
                identity.setdefault(target, {}).update(serials)
            case _ if "group" in decoded:
                parameters.setdefault(target, {}).update(decoded["values"])
    packs = {}
    for address, values in sorted(analogs.items()):
        merged: Json = {"address": address, "online": values.get("online", False)}
        if merged["online"]:
            merged |= values
            if address in statuses:
                merged |= statuses[address]
        packs[str(address)] = merged
    return {
        "pack_count": pack_count,
        "packs": packs,
        "identity": {str(a): v for a, v in sorted(identity.items())},
        "parameters": {str(a): v for a, v in sorted(parameters.items())},
    }


def replay_file(path: str | Path) -> Json:
    """Replay a capture, report, diagnostics or plain-text file; what ``replay --json`` prints."""
    loaded = load_frames(path)
    entries = replay_frames(loaded.frames)
    return {
        "file": Path(path).name,
        "format": loaded.format,
        "noise_bytes": loaded.noise_bytes,
        "frames": entries,
        "summary": summary(entries),
    }
