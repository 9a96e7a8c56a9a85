"""What the stack answers to one request frame, built with the library's own codecs.

Addressing follows the reference (docs/protocol.md, "Addressing"): the bus is multi-drop, so a
pack answers frames carrying its own ADR, and the master (address 1) also takes ADR 00 and FF. A
one-pack stack is a point-to-point link and answers any ADR. Replies carry the answering pack's
own address. Only the master answers 42H/44H for the whole stack (COMMAND FF) or for another
pack (relay); every other command acts on the addressed pack alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from ..analog import encode_analog
from ..commands import FORBIDDEN_COMMANDS, Command
from ..device import decode_clock, encode_capacities, encode_clock, encode_text
from ..errors import RTN_NO_DATA, RTN_REFUSED, ChecksumError, DecodeError, FrameError
from ..frame import CID1_LFP, VER_PACE, checksum, decode_frame, encode_frame
from ..history import encode_history
from ..status import encode_status
from .bms import Path
from .pack import Pack
from .settings import GROUP_BY_COMMAND, RTN_FORMAT, RTN_INVALID
from .stack import Stack

RTN_OK: Final = 0x00
RTN_VER: Final = 0x01
RTN_CHKSUM: Final = 0x02
RTN_LCHKSUM: Final = 0x03
RTN_CID2: Final = 0x04
RTN_CID1: Final = 0xE1
COMMAND_ALL: Final = 0xFF

type Answer = tuple[int, bytes] | None
"""(RTN, INFO) of the reply, or ``None`` for silence."""
type Handler = Callable[[Stack, Pack, bytes], Answer]


def addressed(stack: Stack, adr: int) -> Pack | None:
    """The pack that answers a frame with this ADR, if it is on the bus."""
    if len(stack.packs) == 1 or adr in (0x00, 0xFF):
        pack: Pack | None = stack.master
    else:
        pack = next((p for p in stack.packs if p.address == adr), None)
    return pack if pack is not None and pack.answers else None


def respond(stack: Stack, raw: bytes) -> bytes | None:
    """The reply frame (CR included) to one raw request frame, or ``None`` for silence."""
    try:
        frame = decode_frame(raw)
    except ChecksumError:
        pack = _pack_of_damaged(stack, raw)
        return None if pack is None else encode_reply(stack, pack, RTN_CHKSUM)
    except FrameError:
        return None  # not a frame at all: nobody on the bus recognises it
    pack = addressed(stack, frame.adr)
    if pack is None:
        return None
    if frame.ver != VER_PACE:
        return encode_reply(stack, pack, RTN_VER)
    if not frame.lchksum_ok:
        return encode_reply(stack, pack, RTN_LCHKSUM)
    if frame.cid1 != CID1_LFP:
        return encode_reply(stack, pack, RTN_CID1)
    answer = dispatch(stack, pack, frame.cid2, frame.info)
    if answer is None:
        return None
    rtn, info = answer
    # A relayed 42H/44H still comes from the master: the reply carries the answering pack's ADR.
    return encode_reply(stack, pack, rtn, info)


def _pack_of_damaged(stack: Stack, raw: bytes) -> Pack | None:
    """The addressee of a frame whose checksum is wrong (ADR is characters 3-4)."""
    try:
        return addressed(stack, int(raw[3:5], 16))
    except ValueError:
        return None


def encode_reply(stack: Stack, pack: Pack, rtn: int, info: bytes = b"") -> bytes:
    """Encode a reply from ``pack``, with the firmware's LCHKSUM bug when it has it."""
    raw = encode_frame(VER_PACE, pack.address, CID1_LFP, rtn, info)
    return wrong_lchksum(raw) if stack.firmware.lchksum_bug else raw


def wrong_lchksum(raw: bytes) -> bytes:
    """The same frame with LCHKSUM off by one (``~sum`` instead of ``-sum``), CHKSUM still right."""
    body = raw[1:-5]
    nibble = (int(body[8:9], 16) - 1) & 0xF
    body = body[:8] + b"%X" % nibble + body[9:]
    return b"~" + body + b"%04X" % checksum(body) + b"\r"


def dispatch(stack: Stack, pack: Pack, cid2: int, info: bytes) -> Answer:
    """Run one command on ``pack``; unknown and forbidden commands get RTN 04."""
    handler = HANDLERS.get(cid2)
    if handler is not None:
        return handler(stack, pack, info)
    group = GROUP_BY_COMMAND.get(cid2)
    if group is None or cid2 in FORBIDDEN_COMMANDS:
        return RTN_CID2, b""
    parameter_group, write = group
    if not write:
        return RTN_OK, pack.bms.settings.read(parameter_group)
    return pack.bms.settings.write(parameter_group, info), b""


def _targets(stack: Stack, pack: Pack, info: bytes) -> tuple[int, list[Pack]] | int | None:
    """(COMMAND, packs to report) for 42H/44H; an RTN on a bad request; None for silence."""
    if len(info) != 1:
        return RTN_FORMAT
    command = info[0]
    if pack is not stack.master or len(stack.packs) == 1:
        return command, [pack]  # a slave, or a lone pack, answers for itself whatever is asked
    if command == COMMAND_ALL:
        return command, list(stack.packs)
    if command in (0, pack.address):
        return command, [pack]
    target = next((p for p in stack.packs if p.address == command), None)
    return None if target is None else (command, [target])


def _analog(stack: Stack, pack: Pack, info: bytes) -> Answer:
    targets = _targets(stack, pack, info)
    if not isinstance(targets, tuple):
        return None if targets is None else (targets, b"")
    command, packs = targets
    blocks = [
        p.analog(stack.bank() if p is stack.master else (0.0, 0.0))
        if p.answers
        else p.offline_analog()
        for p in packs
    ]
    return RTN_OK, encode_analog(blocks, _echo(stack, command))


def _status(stack: Stack, pack: Pack, info: bytes) -> Answer:
    targets = _targets(stack, pack, info)
    if not isinstance(targets, tuple):
        return None if targets is None else (targets, b"")
    command, packs = targets
    blocks = [p.status() if p.answers else p.offline_status() for p in packs]
    return RTN_OK, encode_status(blocks, _echo(stack, command))


def _echo(stack: Stack, command: int) -> int:
    """The COMMAND a reply echoes: 01 for any one pack on ``echo_one`` firmware."""
    return 1 if stack.firmware.echo_one and command != COMMAND_ALL else command


def _pack_count(stack: Stack, pack: Pack, _info: bytes) -> Answer:
    # 90H: the master reports the stack; "If the DIP address != 1, the reply is always 1".
    return RTN_OK, bytes((len(stack.packs) if pack is stack.master else 1,))


def _control(_stack: Stack, pack: Pack, info: bytes) -> Answer:
    if len(info) != 1:
        return RTN_FORMAT, b""
    if not pack.bms.apply_control(info[0]):
        return RTN_INVALID, b""
    return RTN_OK, bytes((info[0], pack.bms.control_status()))


def _mos(path: Path) -> Handler:
    def handle(_stack: Stack, pack: Pack, info: bytes) -> Answer:
        if len(info) != 1:
            return RTN_FORMAT, b""
        if info[0] not in (0x00, 0x01):
            return RTN_INVALID, b""
        accepted = pack.bms.set_mos(path, info[0] == 0x00)
        # The real refusal still carries the indication byte: ~25004609E00204FD2B.
        return (RTN_OK if accepted else RTN_REFUSED), bytes((pack.bms.indication(),))

    return handle


def _shutdown(_stack: Stack, pack: Pack, _info: bytes) -> Answer:
    # The reply goes out first; from then on the pack is silent until woken (or it rebooted).
    pack.shutdown()
    return RTN_OK, b""


def _history(stack: Stack, pack: Pack, info: bytes) -> Answer:
    if len(info) != 2:
        return RTN_FORMAT, b""
    index = int.from_bytes(info)
    if index < len(pack.bms.history):
        return RTN_OK, encode_history(pack.bms.history[index])
    return (RTN_NO_DATA if stack.firmware.history_end == "rtn07" else RTN_OK), b""


def _capacities(_stack: Stack, pack: Pack, _info: bytes) -> Answer:
    return RTN_OK, encode_capacities(pack.capacities())


def _clock_read(_stack: Stack, pack: Pack, _info: bytes) -> Answer:
    return RTN_OK, encode_clock(pack.now())


def _clock_write(_stack: Stack, pack: Pack, info: bytes) -> Answer:
    try:
        pack.set_clock(decode_clock(info))
    except DecodeError:
        return RTN_INVALID, b""
    return RTN_OK, b""


def _version(_stack: Stack, pack: Pack, _info: bytes) -> Answer:
    return RTN_OK, encode_text(pack.version)


def _serials(_stack: Stack, pack: Pack, _info: bytes) -> Answer:
    return RTN_OK, encode_text(pack.bms_serial) + encode_text(pack.pack_serial)


HANDLERS: Final[dict[int, Handler]] = {
    Command.ANALOG: _analog,
    Command.STATUS: _status,
    Command.PACK_COUNT: _pack_count,
    Command.CONTROL: _control,
    Command.CHARGE_MOS: _mos(Path.CHARGE),
    Command.DISCHARGE_MOS: _mos(Path.DISCHARGE),
    Command.SHUTDOWN: _shutdown,
    Command.HISTORY: _history,
    Command.CAPACITY: _capacities,
    Command.CLOCK_READ: _clock_read,
    Command.CLOCK_WRITE: _clock_write,
    Command.VERSION: _version,
    Command.SERIAL: _serials,
}
"""CID2 -> handler for everything but the parameter groups (those come from the table)."""
