"""``ress-bms decode FRAME --dialect NAME``: one reply of any dialect, decoded offline.

The JSON has the keys of the PACE decode (:mod:`.replay`) for every dialect: ``command`` and
``address``, and ``packs`` whose entries are :func:`~.report.analog_json` (42H and the Modbus
telemetry reads) or :func:`~.report.status_json` (44H and the flag reads). What only one dialect
has sits under its own names beside them (``port_voltage``, ``extra``, ``raw``, ``registers``
...). A frame of another protocol or dialect, a bad checksum or CRC, a non-zero RTN and a
Modbus exception raise a typed :class:`~.errors.BmsError`.

ASCII dialects take the frame as its ``~...`` text; ``command`` (default 42H) or the request
(``~...``) says what it answers. Modbus dialects take the reply as hex and need the request
(hex) to know which registers it holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import contextlib
import dataclasses
from typing import Any

from . import replay, report
from .dialects import DIALECTS, eg4, pace_modbus, pylontech, seplos, seplos_v3
from .dialects.base import DialectStatus, Register, read_replies
from .dialects.ver20 import VER
from .errors import DecodeError, FrameError
from .frame import VER_PACE, Frame, decode_frame
from .framing import MODBUS, RESPONSE_CODES
from .modbus import READ_COILS, ReadReply, decode_reply, decode_request

type Json = dict[str, Any]

MODBUS_NEEDS_REQUEST = "a Modbus reply needs its request: --request HEX (8 bytes)"


def jsonable(value: Any) -> Any:
    """Values of the dialect dataclasses as JSON: bytes as hex, tuples as lists."""
    if isinstance(value, bytes):
        return value.hex().upper()
    if isinstance(value, tuple | list):
        return [jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


def _status(decoded: DialectStatus) -> Json:
    data = report.status_json(decoded.status) | {
        "extra": list(decoded.extra),
        "raw": jsonable(decoded.raw),
    }
    cells = getattr(decoded, "extra_cells", None)
    if cells:
        data["extra_cells"] = jsonable(cells)
    return data


def _hex_bytes(text: str, what: str) -> bytes:
    cleaned = "".join(text.split()).removeprefix("0x")
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise FrameError(f"{what} {text[:40]!r} is not hexadecimal bytes") from None


def _ascii_frame(text: str, dialect: str) -> Frame:
    stripped = text.strip()
    if not stripped.startswith("~"):
        raise FrameError(
            f"{stripped[:40]!r} is not a ~...CR frame: {dialect} speaks the ASCII framing"
        )
    return decode_frame(stripped.encode("ascii", "replace"))


def decode_dialect_text(
    text: str, dialect: str, command: int | None = None, request: str | None = None
) -> Json:
    """Decode one frame of ``dialect``; the object ``ress-bms decode --dialect --json`` prints."""
    if dialect not in DIALECTS:
        raise DecodeError(f"unknown dialect {dialect!r}: one of {', '.join(DIALECTS)}")
    if DIALECTS[dialect].framing is MODBUS:
        return _decode_modbus(text, dialect, request)
    if dialect == "pace":
        asked = command if command is not None else 0x42
        if request is not None:
            asked = _ascii_frame(request, dialect).cid2
        frame = _ascii_frame(text, dialect)
        if frame.ver != VER_PACE:
            raise DecodeError(f"VER {frame.ver:02X}H: not a PACE VER 25H frame")
        return replay.decode_text(text, asked)
    return _decode_ver20(text, dialect, command, request)


# -- VER 0x20 -------------------------------------------------------------------------------------


def _decode_ver20(text: str, dialect: str, command: int | None, request: str | None) -> Json:
    frame = _ascii_frame(text, dialect)
    asked_info: bytes | None = None
    asked = 0x42 if command is None else command
    if request is not None:
        asked_frame = _ascii_frame(request, dialect)
        asked, asked_info = asked_frame.cid2, asked_frame.info
    # A 4FH reply's VER is the protocol version it reports (dialects.md): any VER is its answer.
    if frame.ver != VER and asked != seplos.PROTOCOL_VERSION:
        raise DecodeError(
            f"VER {frame.ver:02X}H: not a {dialect} frame (the VER 0x20 family answers with 20H)"
        )
    if frame.cid2 not in RESPONSE_CODES:
        return {
            "request": f"{frame.cid2:02X}",
            "address": frame.adr,
            "info": frame.info.hex().upper(),
        }
    data: Json = {"command": f"{asked:02X}", "address": frame.adr}
    frame.raise_for_rtn(asked)
    if dialect == seplos.INFO.name:
        return data | _seplos(frame, asked)
    if dialect == pylontech.INFO.name:
        target = asked_info[0] if asked_info else None
        return data | _pylontech(frame, asked, target)
    return data | _eg4(frame, asked)


def _seplos(frame: Frame, command: int) -> Json:
    match command:
        case seplos.ANALOG:
            analog = seplos.decode_analog(frame)
            return {
                "packs": [report.analog_json(analog.pack)],
                "port_voltage": analog.port_voltage,
                "command_group": analog.command_group,
                "data_flag": analog.data_flag,
            }
        case seplos.STATUS:
            return {"packs": [_status(seplos.decode_status(frame))]}
        case seplos.PROTOCOL_VERSION:
            return {"protocol_version": f"{seplos.decode_protocol_version(frame):02X}"}
        case seplos.VENDOR_INFO:
            info = seplos.decode_vendor_info(frame)
            return {**jsonable(info), "version": info.version}
    raise DecodeError(f"no seplos decoder for command {command:02X}H")


def _pylontech(frame: Frame, command: int, target: int | None) -> Json:
    match command:
        case pylontech.ANALOG:
            analog = pylontech.decode_analog(frame, target)
            return {
                "packs": [report.analog_json(p) for p in analog.packs],
                "info_flag": analog.info_flag,
            }
        case pylontech.STATUS:
            return {"packs": [_status(s) for s in pylontech.decode_status(frame, target)]}
        case pylontech.PROTOCOL_VERSION:
            return {"protocol_version": f"{pylontech.decode_protocol_version(frame):02X}"}
        case pylontech.MANUFACTURER_INFO:
            info = pylontech.decode_manufacturer_info(frame)
            return {**jsonable(info), "version": info.version}
        case pylontech.SYSTEM_PARAMETERS:
            return {"parameters": jsonable(pylontech.decode_system_parameters(frame))}
        case pylontech.MANAGEMENT:
            return {"management": jsonable(pylontech.decode_management(frame))}
        case pylontech.SERIAL_NUMBER:
            return {"serial": pylontech.decode_serial_number(frame).serial}
        case pylontech.SOFTWARE_VERSION:
            version = pylontech.decode_software_version(frame)
            return {"manufacturer_version": version.manufacturer, "main_line": version.main_line}
    raise DecodeError(f"no pylontech decoder for command {command:02X}H")


def _eg4(frame: Frame, command: int) -> Json:
    match command:
        case eg4.ANALOG:
            analog = eg4.decode_analog(frame)
            extra = {k: v for k, v in jsonable(analog).items() if k != "pack"}
            return {"packs": [report.analog_json(analog.pack)]} | extra
        case eg4.STATUS:
            return {"packs": [_status(eg4.decode_status(frame))]}
        case eg4.CLOCK_READ:
            return {"time": eg4.decode_clock(frame).isoformat()}
        case eg4.MANUFACTURER_INFO:
            info = eg4.decode_manufacturer_info(frame)
            return {"text": info.text, "raw": info.raw.hex().upper()}
    raise DecodeError(f"no eg4 decoder for command {command:02X}H")


# -- Modbus ---------------------------------------------------------------------------------------

_PACE_MODBUS_TABLES: Sequence[Register] = (
    *pace_modbus.PACK,
    *pace_modbus.FLAGS,
    *pace_modbus.CELL_BLOCK,
    *pace_modbus.PARAMETERS,
    *pace_modbus.DEVICE,
)
_SEPLOS_V3_TABLES: Sequence[Register] = (
    *seplos_v3.PIA,
    *seplos_v3.PIB,
    *seplos_v3.EIA,
    *seplos_v3.EIB,
    *seplos_v3.SPA,
    *seplos_v3.VIA,
    *seplos_v3.PCT,
)


def _decode_modbus(text: str, dialect: str, request: str | None) -> Json:
    if text.strip().startswith("~"):
        raise FrameError(f"an ASCII ~...CR frame: not a Modbus RTU reply ({dialect} speaks Modbus)")
    if request is None:
        raise DecodeError(MODBUS_NEEDS_REQUEST)
    read = decode_request(_hex_bytes(request, "--request"))
    reply = decode_reply(_hex_bytes(text, "the frame"), read)
    data: Json = {
        "command": f"{read.function:02X}",
        "address": read.unit,
        "start": read.start,
        "count": read.count,
    }
    if dialect == pace_modbus.INFO.name:
        return data | _pace_modbus(reply)
    return data | _seplos_v3(reply)


def _pace_modbus(reply: ReadReply) -> Json:
    unit = reply.request.unit
    data: Json = {"registers": jsonable(read_replies(_PACE_MODBUS_TABLES, [reply]))}
    packs: list[Json] = []
    with contextlib.suppress(DecodeError):  # a read without cells 15-36 is no PackAnalog
        packs.append(report.analog_json(pace_modbus.decode_analog(unit, [reply])))
    with contextlib.suppress(DecodeError):
        packs.append(_status(pace_modbus.decode_status(unit, [reply])))
    if packs:
        data["packs"] = packs
    return data


def _seplos_v3(reply: ReadReply) -> Json:
    unit = reply.request.unit
    if reply.request.function == READ_COILS:
        tables = (seplos_v3.PIC, seplos_v3.EIC, seplos_v3.SFA)
        coils: Json = {}
        for table in tables:
            coils |= seplos_v3.read_coil_bytes(table, [reply])
        data: Json = {"coils": coils}
        try:  # PIC: the cell and NTC counts are in SPA, not here; read as 16 cells, 4 NTCs
            shape = seplos_v3.PackShape(16, 4)
            data["packs"] = [_status(seplos_v3.decode_status(unit, [reply], shape))]
            data["assumed_shape"] = {"cells": shape.cells, "cell_sensors": shape.cell_sensors}
        except DecodeError:
            pass
        return data
    values = read_replies(_SEPLOS_V3_TABLES, [reply])
    data = {"registers": jsonable(values)}
    with contextlib.suppress(DecodeError):
        data["bank"] = jsonable(seplos_v3.decode_bank([reply], unit).values)
    return data
