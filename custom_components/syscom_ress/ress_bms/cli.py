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

from . import history, params, replay, report
from .capture import FrameRecorder
from .client import PollMode, StackClient, StackInfo, StackSample
from .detect import DEFAULT_BUDGET, Detection, DetectionError, detect
from .dialect_client import make_client
from .dialect_decode import decode_dialect_text
from .dialects import DIALECTS, pace
from .errors import BmsError
from .link import BAUDRATES, DEFAULT_BAUDRATE, DEFAULT_TIMEOUT, Direction, Link
from .status import Kind

PROG = "ress-bms"
REPORT_FILE = "ress-bms-report.json"
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
        "--baud",
        type=int,
        choices=(*BAUDRATES, 115200),
        default=default(DEFAULT_BAUDRATE),
        help="baud rate",
    )
    group.add_argument(
        "--dialect",
        choices=tuple(DIALECTS),
        default=default(None),
        help="protocol dialect (default: PACE VER 0x25; scan --detect finds it)",
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
    scan.add_argument(
        "--detect",
        action="store_true",
        help="find the dialect, baud rate and address, sending only reads (docs/protocol.md)",
    )
    scan.add_argument(
        "--budget",
        type=float,
        default=DEFAULT_BUDGET,
        help=f"--detect: seconds it may take in all ({DEFAULT_BUDGET:g})",
    )
    scan.add_argument(
        "--listen",
        type=float,
        default=0.0,
        help="--detect: seconds to listen at each baud rate before sending (0: skip; 2.5)",
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
    decode.add_argument(
        "--request",
        help="the request it answers (~... or Modbus hex): for Modbus, which registers it holds",
    )
    capture = add("capture", "record every byte both ways as JSON lines, for bug reports")
    capture.add_argument("--seconds", type=float, default=30.0, help="how long (30)")
    capture.add_argument("--out", required=True, help="output file")
    capture.add_argument(
        "--passive", action="store_true", help="only listen (another master polls the bus)"
    )
    report_ = add(
        "report", "write one JSON file for a bug report: scan, status, parameters, frames"
    )
    report_.add_argument(
        "--out", default=REPORT_FILE, help=f"output file, - for standard output ({REPORT_FILE})"
    )
    report_.add_argument(
        "--no-redact", action="store_true", help="keep the serial numbers and the gateway's host"
    )
    report_.add_argument(
        "--multidrop", action="store_true", help="probe every address 0-15 (no master)"
    )
    report_.add_argument(
        "--mode", choices=[m.value for m in PollMode], default="auto", help="poll mode"
    )
    replay_ = add("replay", "decode every frame of a capture, report or diagnostics file")
    replay_.add_argument("file", help="the file (ress-bms capture, report, or HA diagnostics)")
    control_ = sub.add_parser(
        "control",
        help="send a command to a running simulator's control socket",
        description="send a command to a running simulator's control socket (docs/simulator.md): "
        "ress-bms control --port PORT raise pack=2 protection=cell_over_voltage",
    )
    control_.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("RESS_BMS_CONTROL_PORT", "0")) or None,
        help="the simulator's control port, printed as 'control:' (env RESS_BMS_CONTROL_PORT)",
    )
    control_.add_argument("--host", default="127.0.0.1", help="the simulator's host (127.0.0.1)")
    control_.add_argument(
        "words", nargs="+", metavar="CMD [KEY=VALUE ...]", help="command and its fields, or JSON"
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
    if "bits" in data:
        lines += [
            f"  states: {_flags(_set_bits(data, Kind.STATE))}",
            f"  settings: {_flags(_set_bits(data, Kind.SETTING))}",
        ]
    return "\n".join(lines)


def _set_bits(data: dict[str, Any], kind: Kind) -> list[str]:
    return [name for name, on in data["bits"][kind.value].items() if on]


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


def decode_text(
    text: str, command: int, dialect: str | None = None, request: str | None = None
) -> dict[str, Any]:
    """Decode one frame given as text; the result ``ress-bms decode --json`` prints.

    Without ``dialect`` (or with ``pace`` and no ``request``) exactly the PACE VER 0x25 decode.
    """
    if dialect is None:
        return replay.decode_text(text, command)
    return decode_dialect_text(text, dialect, command, request)


def _detection_text(found: Detection) -> str:
    rows: list[Sequence[object]] = [
        ("dialect", f"{found.dialect} ({found.title})"),
        ("baud rate", found.baudrate),
        ("address", found.address_or_unit),
        ("model", found.model or "-"),
        ("serial", found.serial or "-"),
        ("packs", "-" if found.packs is None else found.packs),
    ]
    return _table(rows)


def _replay_text(data: dict[str, Any]) -> str:
    """One line per frame (``#index  +time  dir  what``), the packs of 42H/44H replies below."""
    lines = [f"{data['file']}: {data['format']}, {len(data['frames'])} frames"]
    for entry in data["frames"]:
        moment = f"{entry['time']:+9.3f}" if "time" in entry else " " * 9
        head = f"#{entry['index']:<4} {moment}  {entry['dir']}  "
        lines.append(head + _frame_line(entry))
        decoded = entry.get("decoded", {})
        for pack in decoded.get("packs", []) if isinstance(decoded.get("packs"), list) else []:
            lines.append(" " * 19 + _block_line(pack))
    if data["noise_bytes"]:
        lines.append(f"{data['noise_bytes']} bytes of noise outside frames")
    return "\n".join(lines)


def _frame_line(entry: dict[str, Any]) -> str:
    decoded = entry.get("decoded")
    if entry["role"] == "echo":
        return "echo of the request (half-duplex adapter)"
    if "error" in entry:
        about = f" (reply to {entry['reply_to']}H)" if "reply_to" in entry else ""
        return f"{entry['role']}{about}: {entry['error']}  {entry['text'][:60]}"
    if "note" in entry:
        return str(entry["note"])
    assert decoded is not None
    if entry["role"] == "request":
        values = f" {_compact(decoded['values'])}" if "values" in decoded else ""
        info = f" INFO {decoded['info']}" if decoded["info"] else ""
        return f"{decoded['request']}H {decoded['name']} to {decoded['address']}{info}{values}"
    rest = {k: v for k, v in decoded.items() if k not in ("command", "address", "packs")}
    if isinstance(decoded.get("packs"), list):
        rest["packs"] = len(decoded["packs"])
    elif "packs" in decoded:
        rest["packs"] = decoded["packs"]
    return f"{entry['reply_to']}H reply from {decoded['address']}: {_compact(rest) or 'OK'}"


def _block_line(pack: dict[str, Any]) -> str:
    if "voltage" in pack:
        return (
            f"pack {pack['address']}: {pack['voltage']:.3f} V {pack['current']:+.2f} A "
            f"SOC {pack['soc']:g} % cells {min(pack['cell_voltages'], default=0):.3f}-"
            f"{max(pack['cell_voltages'], default=0):.3f} V"
        )
    if "bits" in pack:
        active = [
            f"{name.replace('_', ' ')} ({kind})"
            for kind in (Kind.PROTECTION, Kind.ALARM, Kind.FAULT, Kind.STATE)
            for name in _set_bits(pack, kind)
        ]
        return f"pack {pack['address']}: {', '.join(active) or 'nothing set'}"
    return f"pack {pack['address']}: offline"


def _compact(values: Any) -> str:
    if isinstance(values, dict):
        return ", ".join(f"{k}={_compact(v)}" for k, v in values.items())
    if isinstance(values, float):
        return f"{values:g}"
    return json.dumps(values) if isinstance(values, (list, dict)) else str(values)


# -- commands on a link ------------------------------------------------------------------------


def _dialect(args: argparse.Namespace) -> str:
    return str(args.dialect or pace.INFO.name)


def _client(args: argparse.Namespace, link: Link[Any]) -> StackClient:
    """The client of ``--dialect``; what that dialect cannot do it refuses before sending."""
    mode = PollMode(getattr(args, "mode", "auto"))
    return make_client(link, _dialect(args), master_address=args.address, poll_mode=mode)


def _link(args: argparse.Namespace, recorder: Any = None) -> Link[Any]:
    if not args.url:
        raise CliError("no link: give --url (or set RESS_BMS_URL)")
    return Link(
        args.url,
        baudrate=args.baud,
        timeout=args.timeout,
        recorder=recorder,
        framing=DIALECTS[_dialect(args)].framing,
    )


async def _detect(args: argparse.Namespace) -> None:
    if not args.url:
        raise CliError("no link: give --url (or set RESS_BMS_URL)")
    dialects = None if args.dialect is None else [args.dialect]
    try:
        found = await detect(args.url, dialects=dialects, budget=args.budget, listen=args.listen)
    except DetectionError as err:
        if args.json:
            data = {"error": str(err), "type": type(err).__name__, "evidence": list(err.evidence)}
            print(json.dumps(data, indent=2))
        raise
    _emit(args, found.to_json(), lambda: _detection_text(found))


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


async def _report(args: argparse.Namespace) -> None:
    recorder = FrameRecorder()
    link = _link(args, recorder)
    client = _client(args, link)
    stack: StackInfo | None = None
    sample: StackSample | None = None
    parameters: dict[int, dict[str, float] | BaseException] = {}
    errors: dict[str, BaseException] = {}
    async with link:
        try:
            stack = await client.discover(scan=args.multidrop)
        except BmsError as err:
            errors["scan"] = err
        if stack is not None:
            sample = await client.poll()
            master = stack.master.address
            try:
                parameters[master] = (await client.read_parameters(master)).values
            except BmsError as err:
                parameters[master] = err
    data = report.build_report(
        source=f"{PROG} report",
        stack=stack,
        sample=sample,
        parameters=parameters,
        frames=recorder.frames,
        link=link,
        poll_mode=client.mode,
        errors=errors,
        redact=not args.no_redact,
    )
    text = json.dumps(data, indent=2) + "\n"
    if args.out == "-":
        sys.stdout.write(text)
    else:
        with open(args.out, "w", encoding="utf-8") as out:  # noqa: ASYNC230 - one small write
            out.write(text)
    packs = len(stack.packs) if stack is not None else 0
    redacted = "serials redacted" if data["redacted"] else "serials NOT redacted"
    where = "standard output" if args.out == "-" else args.out
    print(f"wrote {where}: {packs} packs, {len(data['frames'])} frames, {redacted}",
          file=sys.stderr)  # fmt: skip
    for key, message in data["errors"].items():
        print(f"{PROG}: {key}: {message} (recorded in the report)", file=sys.stderr)


async def _control(args: argparse.Namespace) -> None:
    from .simulator.control import request_from_words, send  # noqa: PLC0415

    if args.port is None:
        raise CliError("control: which port? --port PORT (the simulator prints 'control:')")
    request = request_from_words(args.words)
    result = await send(args.host, args.port, request)
    print(json.dumps(result, indent=2))
    if not result.get("ok"):
        raise CliError(f"control: {result.get('error', 'refused')}")


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
    detecting = args.command == "scan" and args.detect
    if args.command == "decode":
        command = _parse_command(args.command_code)
        data = decode_text(args.frame, command, args.dialect, args.request)
        _emit(args, data, lambda: json.dumps(data, indent=2))
    elif detecting:
        await _detect(args)
    elif args.command == "replay":
        data = replay.replay_file(args.file)
        _emit(args, data, lambda: _replay_text(data))
    elif args.command == "capture":
        await _capture(args)
    elif args.command == "report":
        await _report(args)
    elif args.command == "simulate":
        from .simulator.cli import run as simulate  # noqa: PLC0415

        await simulate(args)
    elif args.command == "control":
        await _control(args)
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
