"""``ress-bms simulate``: run a simulated stack until interrupted.

The library's command-line tool wires :func:`add_arguments` and :func:`run` into its
``simulate`` subcommand; ``python -m ress_bms.simulator.cli`` runs the same thing on its own.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import datetime
import sys
from typing import Final

from .dialects import DEFAULT_DIALECT, RESPONDERS
from .faults import FAULT_KINDS, FaultSettings
from .firmware import DEFAULT_PROFILE, PROFILES
from .physics import LOAD_PROFILES
from .server import Simulator

FAULT_HELP: Final = {
    "corrupt_checksum": "reply with a wrong CHKSUM",
    "truncate": "reply cut short (CR kept)",
    "glue": "previous reply glued before this one",
    "garbage": "noise bytes before the reply",
    "drop": "no reply",
    "late": "reply --late-delay seconds late",
    "disconnect": "close the TCP connection instead of replying",
}


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} is not a probability between 0 and 1")
    return value


def _listen(text: str) -> tuple[str, int] | None:
    if text.lower() in ("", "off", "none"):
        return None
    host, _, port = text.rpartition(":")
    try:
        return host or "127.0.0.1", int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the simulator's options to ``parser``."""
    serve = parser.add_argument_group("serving")
    serve.add_argument(
        "--listen",
        type=_listen,
        default=("127.0.0.1", 5000),
        metavar="HOST:PORT",
        help="TCP gateway address (default 127.0.0.1:5000; 'off' for none)",
    )
    serve.add_argument("--pty", action="store_true", help="also serve a pseudo-terminal")
    serve.add_argument(
        "--control",
        type=int,
        default=0,
        metavar="PORT",
        help="JSON-lines control socket on 127.0.0.1 (default: a free port)",
    )
    serve.add_argument("--no-control", action="store_true", help="no control socket")
    serve.add_argument(
        "--baud",
        type=int,
        default=9600,
        help="simulated line speed, 10 bits per character (0 = no delay)",
    )
    serve.add_argument(
        "--turnaround-ms",
        type=float,
        default=45.0,
        help="BMS think time between request and reply (default 45)",
    )

    stack = parser.add_argument_group("battery")
    stack.add_argument("--packs", type=int, default=1, help="packs in the stack, 1-16")
    stack.add_argument("--cells", type=int, default=16, help="cells per pack (15 for 48 V)")
    stack.add_argument(
        "--dialect",
        choices=tuple(RESPONDERS),
        default=DEFAULT_DIALECT,
        help=f"protocol the stack speaks (default {DEFAULT_DIALECT})",
    )
    stack.add_argument(
        "--firmware",
        choices=sorted(PROFILES),
        default=DEFAULT_PROFILE,
        help=f"firmware profile (default {DEFAULT_PROFILE})",
    )
    stack.add_argument(
        "--extension",
        type=int,
        choices=(0, 1, 10, 14, 22),
        help="override the profile's 42H extension length",
    )
    stack.add_argument(
        "--status-extras",
        type=int,
        choices=range(6),
        metavar="0-5",
        help="override the profile's V3.1 trailing 44H status bytes",
    )
    stack.add_argument(
        "--history-end", choices=("empty", "rtn07"), help="override how A1H says 'no more records'"
    )
    stack.add_argument(
        "--lchksum-bug", action="store_true", help="send a wrong LCHKSUM nibble in every reply"
    )
    stack.add_argument(
        "--echo-one", action="store_true", help="echo pack 01 in every one-pack 42H/44H reply"
    )
    stack.add_argument(
        "--profile",
        choices=sorted(LOAD_PROFILES),
        default="idle",
        help="load and charge profile (default idle)",
    )
    stack.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="simulated seconds per wall-clock second (default 1)",
    )
    stack.add_argument("--step", type=float, default=0.1, help="physics step, seconds")
    stack.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    stack.add_argument("--soc", type=float, default=50.0, help="initial state of charge, %%")
    stack.add_argument("--ambient", type=float, default=25.0, help="ambient temperature, °C")
    stack.add_argument(
        "--start",
        type=datetime.fromisoformat,
        default=None,
        help="simulated start time, ISO 8601 (default: now)",
    )

    faults = parser.add_argument_group("faults (probability per reply)")
    for kind in FAULT_KINDS:
        faults.add_argument(
            f"--{kind.replace('_', '-')}",
            type=_probability,
            default=0.0,
            metavar="P",
            help=FAULT_HELP[kind],
        )
    faults.add_argument(
        "--late-delay",
        type=float,
        default=2.0,
        help="seconds a late reply comes after its turnaround (default 2)",
    )
    faults.add_argument(
        "--offline",
        type=int,
        action="append",
        default=[],
        metavar="PACK",
        help="start with this pack unreachable (repeatable)",
    )


def build(args: argparse.Namespace) -> Simulator:
    """A simulator configured from parsed arguments (not started)."""
    firmware = PROFILES[args.firmware]
    overrides = {
        "extension": args.extension,
        "status_extras": args.status_extras,
        "history_end": args.history_end,
        "lchksum_bug": args.lchksum_bug or None,
        "echo_one": args.echo_one or None,
    }
    firmware = firmware.with_changes(**{k: v for k, v in overrides.items() if v is not None})
    fault_settings = FaultSettings(late_delay=args.late_delay)
    fault_settings.update(**{kind: getattr(args, kind) for kind in FAULT_KINDS})
    listen = args.listen
    sim = Simulator(
        args.packs,
        cells=args.cells,
        firmware=firmware,
        profile=args.profile,
        seed=args.seed,
        soc=args.soc,
        ambient=args.ambient,
        start=(args.start or datetime.now()).replace(microsecond=0),  # the BMS keeps local time
        step=args.step,
        speed=args.speed,
        baud=args.baud,
        turnaround_ms=args.turnaround_ms,
        host=listen[0] if listen else "127.0.0.1",
        port=listen[1] if listen else 0,
        tcp=listen is not None,
        pty=args.pty,
        control_port=None if args.no_control else args.control,
        faults=fault_settings,
        dialect=args.dialect,
    )
    for address in args.offline:
        sim.set_offline(address)
    return sim


async def run(args: argparse.Namespace) -> int:
    """Serve until cancelled (Ctrl-C); print where to connect first."""
    sim = build(args)
    async with sim:
        stack = sim.stack
        print(f"ress-bms simulate: {len(stack.packs)} pack(s) of {stack.cells} cells, "
              f"dialect {sim.dialect}, firmware {stack.firmware.name}, "
              f"profile {stack.profile_name}, {args.baud or 'unlimited'} baud")  # fmt: skip
        if args.listen is not None:
            print(f"tcp: {sim.url}")
        if sim.pty_path:
            print(f"pty: {sim.pty_path}")
        if sim.control_url:
            print(f"control: {sim.control_url}")
        sys.stdout.flush()
        await asyncio.Event().wait()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the simulator as a program of its own."""
    parser = argparse.ArgumentParser(prog="ress-bms simulate", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
