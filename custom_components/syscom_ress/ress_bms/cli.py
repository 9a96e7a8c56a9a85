"""``ress-bms``: talk to a PACE BMS stack from a terminal.

Every reading command takes ``--json``; its keys are the contract documented in the README.
Every error is one line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime
import json
import os
import sys
import time
from typing import Any, TextIO

from . import analog, control, device, history, params, report, status
from .client import PollMode, StackClient
from .commands import ALLOWED_COMMANDS, Command
from .errors import BmsError, ResponseError
from .frame import VER_PACE, Frame, decode_frame
from .link import BAUDRATES, DEFAULT_BAUDRATE, DEFAULT_TIMEOUT, Direction, Link

PROG = "ress-bms"
EXIT_ERROR = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A problem to report in one line."""


def _common(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """Connection options, accepted before and after the subcommand."""
    default = (lambda value: argparse.SUPPRESS) if suppress else (lambda value: value)
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--url",
        default=default(os.environ.get("RESS_BMS_URL")),
        help="/dev/ttyUSB0, socket://host:port or rfc2217://host:port (env RESS_BMS_URL)",
    )
    group.add_argument(
        "--baud", type=int, choices=BAUDRATES, default=default(DEFAULT_BAUDRATE), help="baud rate"
    )
    group.add_argument(
        "--address", type=int, default=default(1), help="address of the master pack (1)"
    )
    group.add_argument(
        "--timeout",
        type=float,
        default=default(DEFAULT_TIMEOUT),
        help=f"seconds of silence before a request fails ({DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument("--json", action="store_true", default=default(False), help="print JSON")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``ress-bms``."""
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    _common(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_: str) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=help_, description=help_)
        _common(cmd, suppress=True)
        return cmd

    scan = add("scan", "find the packs: pack count, versions and serials")
    scan.add_argument(
        "--multidrop", action="store_true", help="probe every address 0-15 (no master)"
    )
    status_ = add("status", "read analog values and alarms of every pack")
    status_.add_argument(
        "--mode", choices=[m.value for m in PollMode], default="auto", help="poll mode"
    )
    params_ = add("params", "read every parameter of one pack")
    params_.add_argument("--pack", type=int, help="pack address (default: the master)")
    set_ = add("set", "write parameters: validated as a set, then read back")
    set_.add_argument("pairs", nargs="+", metavar="NAME VALUE", help="parameter and value")
    set_.add_argument("--pack", type=int, help="pack address (default: the master)")
    set_.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    set_.add_argument("--dry-run", action="store_true", help="show the frames, send nothing")
    hist = add("history", "read the BMS history log, newest first")
    hist.add_argument("--pack", type=int, help="pack address (default: the master)")
    hist.add_argument("--count", type=int, default=history.MAX_RECORDS, help="records to read")
    clock = add("clock", "read the BMS clock")
    clock.add_argument("--pack", type=int, help="pack address (default: the master)")
    clock.add_argument("--sync", action="store_true", help="set it to this computer's time")
    decode = add("decode", "decode one frame given as its ASCII text (no link needed)")
    decode.add_argument("frame", help="the frame, e.g. ~25014600...; CR optional")
    decode.add_argument(
        "--command",
        dest="command_code",
        default="42",
        help="command the response answers (hex, default 42)",
    )
    capture = add("capture", "record every byte both ways as JSON lines, for bug reports")
    capture.add_argument("--seconds", type=float, default=30.0, help="how long (30)")
    capture.add_argument("--out", required=True, help="output file")
    capture.add_argument(
        "--passive", action="store_true", help="only listen (another master polls the bus)"
    )
    simulate = sub.add_parser("simulate", help="run the battery stack simulator")
    try:
        from .simulator.cli import add_arguments  # noqa: PLC0415 - optional until it exists
    except ImportError:  # pragma: no cover
        pass
    else:
        add_arguments(simulate)
    return parser


# -- output ------------------------------------------------------------------------------------


def _emit(args: argparse.Namespace, data: Any, human: Callable[[], str]) -> None:
    print(json.dumps(data, indent=2) if args.json else human())


def _flags(names: Sequence[str]) -> str:
    return ", ".join(n.replace("_", " ") for n in names) or "none"


def _on(value: bool) -> str:
    return "on" if value else "off"


def _pack_text(data: dict[str, Any]) -> str:
    head = f"Pack {data['address']}"
    if not data.get("online"):
        return f"{head}  OFFLINE" + (f" ({data['error']})" if "error" in data else "")
    cells = data["cell_voltages"]
    low = min(range(len(cells)), key=cells.__getitem__)
    high = max(range(len(cells)), key=cells.__getitem__)
    temps = " ".join("-" if t is None else f"{t:.1f}" for t in data["temperatures"])
    lines = [
        f"{head}  {data['voltage']:.3f} V  {data['current']:+.2f} A  {data['power']:+.0f} W  "
        f"SOC {data['soc']:g} %  SOH {data['soh']:g} %",
        "  cells (V):  " + " ".join(f"{v:.3f}" for v in cells),
        f"              min {cells[low]:.3f} (#{low + 1})  max {cells[high]:.3f} (#{high + 1})  "
        f"delta {1000 * (cells[high] - cells[low]):.0f} mV",
        f"  temperatures (°C): {temps}  MOS {data['mos_temperature']}  "
        f"env {data['environment_temperature']}",
        f"  capacity (Ah): {data['remaining_capacity']:g} remaining / {data['full_capacity']:g} "
        f"full / {data['design_capacity']:g} design, {data['cycles']} cycles",
    ]
    if "protections" in data:
        lines += [
            f"  charge MOS {_on(data['charge_mos'])}, discharge MOS {_on(data['discharge_mos'])}, "
            f"current limit {_on(data['current_limit'])}, heating {_on(data['heating'])}, "
            f"balancing {', '.join(map(str, data['balancing'])) or 'none'}",
            f"  protections: {_flags(data['protections'])}",
            f"  alarms: {_flags(data['alarms'])}",
            f"  faults: {_flags(data['faults'])}",
        ]
    return "\n".join(lines)


def _table(rows: Sequence[Sequence[object]]) -> str:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


# -- offline decode ----------------------------------------------------------------------------


def _parse_command(text: str) -> int:
    value = text.upper().removeprefix("0X").removesuffix("H")
    try:
        return int(value, 16)
    except ValueError:
        raise CliError(f"--command {text!r} is not a hexadecimal command code") from None


def decode_text(text: str, command: int) -> dict[str, Any]:
    """Decode one frame given as text; the result ``ress-bms decode --json`` prints."""
    frame = decode_frame(text.strip().encode())
    if frame.ver != VER_PACE:
        raise CliError(f"VER {frame.ver:02X}H: only the PACE VER 25H protocol is supported yet")
    if frame.cid2 in ALLOWED_COMMANDS and frame.cid2 > 0x0F:
        return _decode_request(frame)
    data: dict[str, Any] = {"command": f"{command:02X}", "address": frame.adr}
    if not frame.lchksum_ok:
        data["lchksum_ok"] = False
    if frame.cid2:
        error = ResponseError(frame.cid2, command)
        return data | {"rtn": frame.cid2, "error": error.meaning}
    return data | _decode_payload(command, frame.info)


def _decode_payload(command: int, info: bytes) -> dict[str, Any]:
    group = next((g for g in params.GROUPS if g.read == command), None)
    if group is not None:
        return {"group": group.key, "values": group.decode(info)}
    match command:
        case Command.ANALOG:
            return {"packs": [report.analog_json(p) for p in _analog_any(info).packs]}
        case Command.STATUS:
            return {"packs": [report.status_json(p) for p in _status_any(info).packs]}
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
            record = history.decode_history(info, 0)
            return {"record": report.history_json(record) if record else None}
        case Command.CONTROL:
            reply = control.decode_control(info)
            return {"code": f"{reply.code:02X}", "control_status": reply.control_status}
        case Command.CHARGE_MOS | Command.DISCHARGE_MOS:
            return {"indication": control.decode_mos(info)}
        case _ if not info:
            return {}
    raise CliError(f"no decoder for command {command:02X}H with data")


def _analog_any(info: bytes) -> analog.AnalogReply:
    """A 42H reply to FF (every pack) or to one pack number."""
    try:
        return analog.decode_analog(info, 0xFF)
    except BmsError:
        return analog.decode_analog(info, info[1] if len(info) > 1 else 1)


def _status_any(info: bytes) -> status.StatusReply:
    try:
        return status.decode_status(info, 0xFF)
    except BmsError:
        return status.decode_status(info, info[1] if len(info) > 1 else 1)


def _decode_request(frame: Frame) -> dict[str, Any]:
    data: dict[str, Any] = {
        "request": f"{frame.cid2:02X}",
        "name": Command(frame.cid2).name.lower(),
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


# -- commands on a link ------------------------------------------------------------------------


def _client(args: argparse.Namespace, link: Link) -> StackClient:
    mode = PollMode(getattr(args, "mode", "auto"))
    return StackClient(link, master_address=args.address, poll_mode=mode)


def _link(args: argparse.Namespace, recorder: Any = None) -> Link:
    if not args.url:
        raise CliError("no link: give --url (or set RESS_BMS_URL)")
    return Link(args.url, baudrate=args.baud, timeout=args.timeout, recorder=recorder)


async def _scan(args: argparse.Namespace, client: StackClient) -> None:
    stack = await client.discover(scan=args.multidrop)
    rows: list[Sequence[object]] = [("address", "version", "BMS serial", "pack serial", "direct")]
    rows += [
        (p.address, p.version or "-", p.bms_serial or "-", p.pack_serial or "-", _on(p.direct))
        for p in stack.packs
    ]
    _emit(args, report.stack_json(stack), lambda: _table(rows))


async def _status(args: argparse.Namespace, client: StackClient) -> None:
    await client.discover()
    sample = await client.poll()
    packs = [report.sample_json(s) for s in sample.packs.values()]
    data = {"mode": sample.mode.value, "packs": packs}
    _emit(args, data, lambda: "\n\n".join(_pack_text(p) for p in packs))


async def _params(args: argparse.Namespace, client: StackClient) -> None:
    values = (await client.read_parameters(args.pack)).values
    rows: list[Sequence[object]] = [("parameter", "value", "unit", "range", "step")]
    for param in params.PARAMETERS:
        rows.append(
            (
                param.key,
                f"{values[param.key]:g}",
                param.unit,
                f"{param.minimum:g}..{param.maximum:g}",
                f"{param.step:g}",
            )
        )
    _emit(args, {"address": args.pack or args.address, "values": values}, lambda: _table(rows))


def _pairs(items: Sequence[str]) -> dict[str, float]:
    if len(items) % 2:
        raise CliError("set takes NAME VALUE pairs")
    changes = {}
    for name, text in zip(items[::2], items[1::2], strict=True):
        if name not in params.PARAMETERS_BY_KEY:
            raise CliError(f"unknown parameter {name!r}; `{PROG} params` lists them")
        try:
            changes[name] = float(text)
        except ValueError:
            raise CliError(f"{name}: {text!r} is not a number") from None
    return changes


def _confirm(question: str, stdin: TextIO) -> bool:
    if not stdin.isatty():
        raise CliError("refusing to write without confirmation: add --yes")
    print(f"{question} [y/N] ", end="", flush=True)
    return stdin.readline().strip().lower() in ("y", "yes")


async def _set(args: argparse.Namespace, client: StackClient) -> None:
    changes = args.changes
    plan = await client.write_parameters(changes, args.pack, dry_run=True)
    lines = [
        f"{key}: {plan.old[key]:g} -> {value:g} {params.PARAMETERS_BY_KEY[key].unit}"
        for key, value in changes.items()
    ]
    frames = [w.frame.decode().strip() for w in plan.writes]
    if args.dry_run:
        data = {"address": plan.address, "old": plan.old, "changes": changes, "frames": frames}
        _emit(args, data, lambda: "\n".join([*lines, *frames]))
        return
    if not args.json:
        print("\n".join(lines))
    if not args.yes and not _confirm(f"Write to pack {plan.address}?", sys.stdin):
        raise CliError("nothing written")
    result = await client.write_parameters(changes, args.pack)
    data = {
        "address": result.address,
        "old": {k: result.old[k] for k in changes},
        "new": {k: result.new[k] for k in changes},
        "frames": frames,
    }
    _emit(args, data, lambda: "written and read back: " + ", ".join(
        f"{k} = {result.new[k]:g}" for k in changes))  # fmt: skip


async def _history(args: argparse.Namespace, client: StackClient) -> None:
    records = await client.read_history(args.pack, args.count)
    data = [report.history_json(r) for r in records]
    rows: list[Sequence[object]] = [("#", "time", "V", "A", "events")]
    rows += [
        (
            r["index"],
            r["time"] or "-",
            f"{r['voltage']:.2f}",
            f"{r['current']:+.2f}",
            _flags(r["protections"] + r["alarms"] + r["faults"]),
        )
        for r in data
    ]
    _emit(args, {"records": data}, lambda: _table(rows) if data else "no records")


async def _clock(args: argparse.Namespace, client: StackClient) -> None:
    if args.sync:
        await client.set_clock(datetime.now().replace(microsecond=0), args.pack)
    value = await client.read_clock(args.pack)
    _emit(args, {"time": value.isoformat()}, value.isoformat)


async def _capture(args: argparse.Namespace) -> None:
    with open(args.out, "w", encoding="utf-8") as out:  # noqa: ASYNC230 - a local file, small writes

        def record(direction: Direction, data: bytes) -> None:
            line = {
                "time": round(time.time(), 6),
                "dir": direction,
                "hex": data.hex(),
                "text": data.decode("ascii", "backslashreplace"),
            }
            out.write(json.dumps(line) + "\n")

        link = _link(args, record)
        deadline = time.monotonic() + args.seconds
        async with link:
            if args.passive:
                await asyncio.sleep(args.seconds)
            else:
                client = _client(args, link)
                await client.discover()
                while time.monotonic() < deadline:
                    await client.poll()
    print(f"wrote {args.out}", file=sys.stderr)


_LINK_COMMANDS: dict[str, Callable[[argparse.Namespace, StackClient], Coroutine[Any, Any, None]]]
_LINK_COMMANDS = {
    "scan": _scan,
    "status": _status,
    "params": _params,
    "set": _set,
    "history": _history,
    "clock": _clock,
}


async def run(args: argparse.Namespace) -> None:
    """Run one parsed command."""
    if args.command == "decode":
        data = decode_text(args.frame, _parse_command(args.command_code))
        _emit(args, data, lambda: json.dumps(data, indent=2))
    elif args.command == "capture":
        await _capture(args)
    elif args.command == "simulate":
        from .simulator.cli import run as simulate  # noqa: PLC0415

        await simulate(args)
    else:
        if args.command == "set":
            args.changes = _pairs(args.pairs)
            params.validate(args.changes, {})  # refuse what is wrong on its own before connecting
        async with _link(args) as link:
            await _LINK_COMMANDS[args.command](args, _client(args, link))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        asyncio.run(run(args))
    except (CliError, BmsError, OSError, ValueError) as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    return 0
