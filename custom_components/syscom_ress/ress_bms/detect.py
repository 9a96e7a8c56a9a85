"""Find which dialect, baud rate and address a bus answers in, sending only reads.

The probe order is dialects.md 7.2 adapted to the dialects of :data:`~.dialects.DIALECTS`:

1. 9600 baud, ASCII: PACE 0x25 (C1H to ADR 1, 1 s), Seplos V2 (42H to ADR 0, 1 s), Seplos
   slave 1 / Pylontech V2.8 (42H to ADR 1, 1 s), Pylontech master (42H to ADR 2, 1 s), EG4
   (42H without INFO to ADR 1, 2 s);
2. 9600 baud, Modbus: PACE Modbus (fc 03 registers 0-7 of unit 1, 0.5 s);
3. 19200 baud, Modbus: Seplos V3 (fc 04 0x1700, 10 registers, unit 0 then unit 1, 0.5 s each);
4. 19200 baud, ASCII: PACE 0x25 and Seplos V2 again (1 s each);
5. 115200 baud, ASCII: Pylontech master (0.5 s).

Every probe is built by its dialect's own request builder and checked again here against that
dialect's read set (:func:`check_read`): no write, no broadcast, ever. Each (baud rate, framing)
step opens its own :class:`~.link.Link` and closes it after. The first answer that decodes as
a dialect's reply stops the sequence; one more read of the same dialect confirms it (44H, the
serials, the version string or the full VIA block), and a few more reads fill in the model,
serial and pack count where the dialect has them. Answers that decode as nothing are
classified (dialects.md 7.3/7.4: a VER 0x20 frame to a PACE probe, an RTN, a Modbus
exception, bytes that are no frame, a console prompt) and kept as evidence.

A bus where nothing answers fails within ``budget`` seconds with one
:class:`NothingAnswersError` that lists what was tried; one where something answered but no
dialect was confirmed with :class:`UnrecognisedDeviceError`; one another master polls
(frames nobody asked for) with :class:`BusMasteredError`, and nothing more is sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
import logging
import time
from typing import Any, Final

from . import device
from .commands import Command, encode_request
from .dialects import DIALECTS, MultiPack, eg4, pace, pace_modbus, pylontech, seplos, seplos_v3
from .dialects.ver20 import VER, WRITES_IN_SOME_DIALECT
from .errors import (
    BmsError,
    BmsTimeoutError,
    BusContentionError,
    ChecksumError,
    DecodeError,
    ForbiddenCommandError,
    FrameError,
    LinkError,
    ResponseError,
)
from .frame import VER_PACE, Frame, decode_frame
from .framing import ASCII, MODBUS, Framing, ModbusFrame
from .link import Link
from .modbus import (
    READ_HOLDING,
    READ_INPUT,
    ModbusExceptionError,
    ReadReply,
    decode_reply,
    decode_request,
)

_LOGGER = logging.getLogger(__name__)

DEFAULT_BUDGET: Final = 20.0
"""Seconds the whole detection may take (dialects.md 7.2: "worst case about 20 s")."""
QUIET: Final = 0.2
"""Silence after a probe that timed out before the next request (7.1 rule 3: 100-200 ms)."""
LISTEN: Final = 2.5
"""Seconds of listening per baud rate when listen-before-talk is asked for (7.2 step 0)."""
LATE_WINDOW: Final = 0.5
"""How long a probe that timed out may still be answered late (the link's default is 5 s)."""
BAUDRATES: Final = (9600, 19200, 115200)

type LinkFactory = Callable[[str, int, Framing[Any]], Link[Any]]


class DetectionError(BmsError):
    """Detection found no dialect; the message says what was tried and what was seen."""

    def __init__(self, message: str, evidence: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.evidence = tuple(evidence)


class NothingAnswersError(DetectionError, BmsTimeoutError):
    """No probe got any answer at all: wrong port, wiring, baud rate, or no BMS there."""


class UnrecognisedDeviceError(DetectionError):
    """Something answered, but no dialect's read decoded and was confirmed."""


class BusMasteredError(DetectionError):
    """Another master polls this bus: detection stopped without transmitting (7.1 rule 2)."""


@dataclass(frozen=True, slots=True)
class Detection:
    """What answered: the dialect (a :data:`~.dialects.DIALECTS` key), where, and what it said."""

    dialect: str
    baudrate: int
    address_or_unit: int
    model: str | None = None
    serial: str | None = None
    packs: int | None = None
    evidence: tuple[str, ...] = ()
    """One line per probe sent (or listening window), in order, with what came back."""

    @property
    def title(self) -> str:
        """The dialect's title (``PACE VER 0x25``)."""
        return DIALECTS[self.dialect].title

    def to_json(self) -> dict[str, Any]:
        """The ``ress-bms scan --detect --json`` object."""
        return {
            "dialect": self.dialect,
            "title": self.title,
            "baudrate": self.baudrate,
            "framing": DIALECTS[self.dialect].framing.name,
            "address": self.address_or_unit,
            "model": self.model,
            "serial": self.serial,
            "packs": self.packs,
            "evidence": list(self.evidence),
        }


# -- what may be sent -----------------------------------------------------------------------------


def check_read(dialect: str, request: bytes) -> bytes:
    """``request`` if it is a read of ``dialect``; :class:`ForbiddenCommandError` otherwise."""
    info = DIALECTS[dialect]
    if info.framing is MODBUS:
        try:
            read = decode_request(request)
        except FrameError as err:
            raise ForbiddenCommandError(f"{dialect}: {request.hex()} is no read: {err}") from None
        # Unit 0 is Modbus's broadcast, except where the dialect's system unit answers there.
        broadcast = read.unit == 0 and info.multipack is not MultiPack.SYSTEM_UNIT
        if read.function not in (READ_HOLDING, READ_INPUT) or broadcast:
            raise ForbiddenCommandError(f"{dialect}: {request.hex()} is not a fc 03/04 read")
        return request
    frame = decode_frame(request)
    if (
        frame.ver != info.version
        or frame.cid2 not in info.reads
        or frame.cid2 in WRITES_IN_SOME_DIALECT
        or frame.adr == 0xFF
    ):
        raise ForbiddenCommandError(f"{dialect}: {request!r} is not one of its reads")
    return request


# -- probes ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Found:
    dialect: str
    address: int
    model: str | None = None
    serial: str | None = None
    packs: int | None = None


@dataclass(frozen=True, slots=True)
class Probe:
    """One read-only request of the sequence and how long to wait for its answer."""

    dialect: str
    """The dialect it is meant for (an answer may still turn out to be another's)."""
    label: str
    request: bytes
    wait: float
    address: int


@dataclass(slots=True)
class _Run:
    url: str
    factory: LinkFactory
    scale: float
    deadline: float
    evidence: list[str] = field(default_factory=list)
    answered: bool = False
    tried: list[str] = field(default_factory=list)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def note(self, baudrate: int, framing: Framing[Any], text: str) -> None:
        line = f"{baudrate} {framing.name}: {text}"
        _LOGGER.debug("detect %s: %s", self.url, line)
        self.evidence.append(line)


def _pace_probe(address: int = 1) -> Probe:
    request = encode_request(Command.VERSION, address)
    return Probe(pace.INFO.name, f"PACE 0x25 C1H to ADR {address}", request, 1.0, address)


def _seplos_probe(address: int) -> Probe:
    request = seplos.analog_request(address)
    label = f"VER 0x20 42H to ADR {address}"
    return Probe(seplos.INFO.name, label, request, 1.0, address)


def _pylontech_probe(wait: float = 1.0) -> Probe:
    request = pylontech.analog_request(2)
    return Probe(pylontech.INFO.name, "Pylontech 42H to ADR 2", request, wait, 2)


def _eg4_probe() -> Probe:
    return Probe(eg4.INFO.name, "EG4 42H (no INFO) to ADR 1", eg4.analog_request(1), 2.0, 1)


def _pace_modbus_probe() -> Probe:
    request = pace_modbus.probe_request(1).encode()
    return Probe(pace_modbus.INFO.name, "PACE Modbus fc 03 0-7 unit 1", request, 0.5, 1)


def _seplos_v3_probe(unit: int) -> Probe:
    request = seplos_v3.probe_request(unit).encode()
    label = f"Seplos V3 fc 04 0x1700 unit {unit}"
    return Probe(seplos_v3.INFO.name, label, request, 0.5, unit)


SEQUENCE: Final[tuple[tuple[int, Framing[Any], tuple[Probe, ...]], ...]] = (
    (
        9600,
        ASCII,
        (_pace_probe(), _seplos_probe(0), _seplos_probe(1), _pylontech_probe(), _eg4_probe()),
    ),
    (9600, MODBUS, (_pace_modbus_probe(),)),
    (19200, MODBUS, (_seplos_v3_probe(0), _seplos_v3_probe(1))),
    (19200, ASCII, (_pace_probe(), _seplos_probe(0))),
    (115200, ASCII, (_pylontech_probe(0.5),)),
)
"""Every step of the sequence: baud rate, framing, the probes sent on one link, in order."""


def _default_link(url: str, baudrate: int, framing: Framing[Any]) -> Link[Any]:
    """A probe link: no retry, a short late window.

    Every probe accepts any frame: with the link's 5 s window, a reply to the next probe from
    the same ADR would be dropped as the late answer of this one.
    """
    return Link(
        url, baudrate=baudrate, framing=framing, retries=0, drain=QUIET, late_window=LATE_WINDOW
    )


# -- classifying answers --------------------------------------------------------------------------


def classify_ascii(frame: Frame) -> str:
    """Which ASCII dialect a valid RTN-00 42H or C1H reply is from (dialects.md 7.3).

    Raises :class:`DecodeError` saying what the frame is when no dialect's layout fits.
    """
    if frame.ver == VER_PACE:
        device.decode_version(frame.info)
        return pace.INFO.name
    if frame.ver != VER:
        raise DecodeError(
            f"VER {frame.ver:02X}H: a vendor fork or another protocol (neither 25H nor 20H)"
        )
    if frame.cid1 in eg4.REPLY_CID1:
        eg4.decode_analog(frame)
        return eg4.INFO.name
    reasons = []
    decoders: tuple[tuple[str, Callable[[Frame], object]], ...] = (
        (seplos.INFO.name, seplos.decode_analog),
        (pylontech.INFO.name, pylontech.decode_analog),
    )
    for name, decode in decoders:
        try:
            decode(frame)
        except DecodeError as err:
            reasons.append(f"not {name} ({err})")
            continue
        return name
    raise DecodeError(f"a VER 20H CID1 {frame.cid1:02X}H frame: " + "; ".join(reasons))


async def _ask[T](
    link: Link[Any],
    run: _Run,
    dialect: str,
    request: bytes,
    decode: Callable[[Any], T],
    wait: float,
) -> T:
    timeout = max(0.001, min(wait * run.scale, run.remaining()))
    return await link.exchange(check_read(dialect, request), decode, timeout=timeout, retries=0)


async def _extra[T](
    link: Link[Any],
    run: _Run,
    dialect: str,
    request: bytes,
    decode: Callable[[Any], T],
    wait: float,
) -> T | None:
    """A best-effort read after the confirmation (model, serial, pack count): None if refused."""
    try:
        return await _ask(link, run, dialect, request, decode, wait)
    except BmsError as err:
        _LOGGER.debug("detect: %s read %r failed: %s", dialect, request, err)
        return None


def _frame(frame: Frame) -> Frame:
    return frame


def _modbus(request: bytes) -> Callable[[ModbusFrame], ReadReply]:
    read = decode_request(request)
    return lambda reply: decode_reply(reply.raw, read)


async def _confirm_ascii(
    link: Link[Any], run: _Run, dialect: str, probe: Probe, frame: Frame
) -> _Found:
    """One more read of ``dialect`` (it must answer), then what else it tells."""
    adr, wait = frame.adr, probe.wait
    if dialect == pace.INFO.name:
        version = device.decode_version(frame.info)
        serials = await _ask(
            link, run, dialect, encode_request(Command.SERIAL, adr),
            lambda f: device.decode_serials(f.info), wait,
        )  # fmt: skip
        count = await _extra(
            link, run, dialect, encode_request(Command.PACK_COUNT, adr),
            lambda f: device.decode_pack_count(f.info), wait,
        )  # fmt: skip
        return _Found(dialect, adr, version or None, serials.bms or serials.pack or None, count)
    if dialect == seplos.INFO.name:
        await _ask(link, run, dialect, seplos.status_request(adr), seplos.decode_status, wait)
        vendor = await _extra(
            link, run, dialect, seplos.vendor_info_request(adr), seplos.decode_vendor_info, wait
        )
        return _Found(dialect, adr, vendor.device_name or None if vendor else None)
    if dialect == pylontech.INFO.name:
        await _ask(link, run, dialect, pylontech.status_request(adr), pylontech.decode_status, wait)
        maker = await _extra(
            link, run, dialect, pylontech.manufacturer_info_request(adr),
            pylontech.decode_manufacturer_info, wait,
        )  # fmt: skip
        serial = await _extra(
            link, run, dialect, pylontech.serial_number_request(adr),
            pylontech.decode_serial_number, wait,
        )  # fmt: skip
        group = await _extra(
            link, run, dialect, pylontech.analog_request(adr, pylontech.ALL_PACKS),
            lambda f: pylontech.decode_analog(f, pylontech.ALL_PACKS), wait,
        )  # fmt: skip
        return _Found(
            dialect,
            adr,
            maker.device_name or None if maker else None,
            serial.serial or None if serial else None,
            len(group.packs) if group else None,
        )
    await _ask(link, run, dialect, eg4.status_request(adr), eg4.decode_status, wait)
    info = await _extra(
        link, run, dialect, eg4.manufacturer_info_request(adr), eg4.decode_manufacturer_info, wait
    )
    return _Found(dialect, adr, info.text or None if info else None)


async def _confirm_modbus(link: Link[Any], run: _Run, probe: Probe, reply: ReadReply) -> _Found:
    unit, wait = probe.address, probe.wait
    if probe.dialect == pace_modbus.INFO.name:
        request = pace_modbus.confirm_request(unit).encode()
        version = await _ask(
            link, run, probe.dialect, request,
            lambda f: pace_modbus.decode_device_info(unit, [_modbus(request)(f)]), wait,
        )  # fmt: skip
        serials = pace_modbus.device_info_requests(unit, "1.0")[0].encode()
        info = await _extra(
            link, run, probe.dialect, serials,
            lambda f: pace_modbus.decode_device_info(unit, [_modbus(serials)(f)]), wait,
        )  # fmt: skip
        serial = info.model_serial or info.pack_serial if info else None
        return _Found(probe.dialect, unit, version.version, serial)
    name = seplos_v3.decode_device_info([reply], unit).factory_name
    request = seplos_v3.device_info_requests(unit)[0].encode()
    via = await _ask(
        link, run, probe.dialect, request,
        lambda f: seplos_v3.decode_device_info([_modbus(request)(f)], unit), wait,
    )  # fmt: skip
    eia = seplos_v3.bank_requests()[0].encode()
    bank = await _extra(
        link, run, probe.dialect, eia,
        lambda f: seplos_v3.decode_bank([_modbus(eia)(f)]), wait,
    )  # fmt: skip
    model = via.device_name or via.factory_name or name
    return _Found(probe.dialect, unit, model, via.bms_serial or via.pack_serial,
                  bank.values.pack_count if bank else None)  # fmt: skip


# -- the sequence ---------------------------------------------------------------------------------


def _what_noise(received: bytes) -> str:
    text = received.decode("ascii", "replace")
    if "pylon" in text.lower() or "help" in text.lower() or text.rstrip().endswith(">"):
        return f"readable text {text.strip()[:40]!r}: a console port, not this protocol"
    return f"{len(received)} bytes that are no frame: wrong baud rate or a collision"


async def _probe(link: Link[Any], run: _Run, baudrate: int, probe: Probe) -> _Found | None:
    framing = link.framing
    received = bytearray()
    previous = link.recorder

    def record(direction: Any, data: bytes) -> None:
        if direction == "rx":
            received.extend(data)
        if previous is not None:
            previous(direction, data)

    link.recorder = record
    run.tried.append(f"{probe.label} at {baudrate}")
    wait = f"{probe.wait * run.scale:g} s"
    try:
        if framing is MODBUS:
            answer: Any = await _ask(
                link, run, probe.dialect, probe.request, _modbus(probe.request), probe.wait
            )
        else:
            answer = await _ask(link, run, probe.dialect, probe.request, _frame, probe.wait)
    except BmsTimeoutError:
        if received:
            run.answered = True
            run.note(baudrate, framing, f"{probe.label}: {_what_noise(bytes(received))}")
        else:
            run.note(baudrate, framing, f"{probe.label}: no answer in {wait}")
        return None
    except BusContentionError as err:
        run.note(baudrate, framing, f"{probe.label}: another master's request ({err})")
        raise BusMasteredError(
            f"another master polls {run.url} at {baudrate} baud: detection stopped, "
            "nothing more is sent",
            run.evidence,
        ) from None
    except ModbusExceptionError as err:
        run.answered = True
        run.note(baudrate, framing, f"{probe.label}: a Modbus device at this baud rate ({err})")
        return None
    except ResponseError as err:
        run.answered = True
        run.note(baudrate, framing, f"{probe.label}: an ASCII device at this baud rate ({err})")
        return None
    except ChecksumError as err:
        run.answered = True
        run.note(baudrate, framing, f"{probe.label}: a frame with a bad checksum ({err})")
        return None
    except FrameError as err:
        run.answered = True
        run.note(
            baudrate, framing,
            f"{probe.label}: a ~...CR frame that is not this framing ({err}): another protocol",
        )  # fmt: skip
        return None
    except DecodeError as err:
        run.answered = True
        run.note(baudrate, framing, f"{probe.label}: a reply that does not fit ({err})")
        return None
    finally:
        link.recorder = previous
    run.answered = True
    return await _classified(link, run, baudrate, probe, answer)


async def _classified(
    link: Link[Any], run: _Run, baudrate: int, probe: Probe, answer: Frame | ReadReply
) -> _Found | None:
    framing = link.framing
    try:
        if isinstance(answer, ReadReply):
            run.note(baudrate, framing, f"{probe.label}: answered ({probe.dialect})")
            found = await _confirm_modbus(link, run, probe, answer)
        else:
            dialect = classify_ascii(answer)
            run.note(
                baudrate, framing,
                f"{probe.label}: ADR {answer.adr} answered VER {answer.ver:02X}H "
                f"CID1 {answer.cid1:02X}H, a {dialect} reply",
            )  # fmt: skip
            found = await _confirm_ascii(link, run, dialect, probe, answer)
    except BmsError as err:
        if isinstance(err, LinkError) and not isinstance(err, BmsTimeoutError):
            raise
        run.note(baudrate, framing, f"{probe.label}: not confirmed ({err})")
        return None
    run.note(baudrate, framing, f"{found.dialect} confirmed at address {found.address}")
    return found


async def _listen(run: _Run, baudrates: Sequence[int], seconds: float) -> None:
    for baudrate in baudrates:
        link = run.factory(run.url, baudrate, ASCII)
        try:
            await link.open()
            await asyncio.sleep(max(0.0, min(seconds, run.remaining())))
        finally:
            await link.close()
        stats = link.stats
        heard = stats.unsolicited_frames + stats.foreign_requests + stats.late_replies
        if heard:
            run.note(baudrate, ASCII, f"listening: {heard} frames nobody here asked for")
            raise BusMasteredError(
                f"frames arrive unasked on {run.url} at {baudrate} baud: another master polls "
                "this bus; detection sent nothing",
                run.evidence,
            )
        what = f", {stats.noise_bytes} bytes of noise" if stats.noise_bytes else ""
        run.note(baudrate, ASCII, f"listening {seconds * run.scale:g} s: quiet{what}")


async def detect(
    url: str,
    *,
    baudrates: Collection[int] | None = None,
    dialects: Collection[str] | None = None,
    link_factory: LinkFactory = _default_link,
    budget: float = DEFAULT_BUDGET,
    listen: float = 0.0,
    wait_scale: float = 1.0,
) -> Detection:
    """Probe ``url`` read-only in the documented order; return what answered.

    ``baudrates`` and ``dialects`` leave out the other steps and probes. ``listen`` seconds of
    listen-before-talk at each baud rate first (0: skipped; dialects.md 7.2 step 0 says 2.5).
    ``wait_scale`` multiplies the documented waits (tests shrink them). The whole run stops
    after ``budget`` seconds.
    """
    unknown = set(dialects or ()) - set(DIALECTS)
    if unknown:
        raise ValueError(f"unknown dialects: {', '.join(sorted(unknown))}")
    run = _Run(url, link_factory, wait_scale, time.monotonic() + budget)
    steps = [
        (baud, framing, tuple(p for p in probes if dialects is None or p.dialect in dialects))
        for baud, framing, probes in SEQUENCE
        if baudrates is None or baud in baudrates
    ]
    steps = [step for step in steps if step[2]]
    try:
        async with asyncio.timeout(budget):
            if listen > 0:
                await _listen(run, sorted({s[0] for s in steps}), listen * wait_scale)
            for baudrate, framing, probes in steps:
                found = await _step(run, baudrate, framing, probes)
                if found is not None:
                    return Detection(
                        found.dialect, baudrate, found.address, found.model, found.serial,
                        found.packs, tuple(run.evidence),
                    )  # fmt: skip
    except TimeoutError as err:
        if isinstance(err, BmsError):
            raise
        run.evidence.append(f"budget of {budget:g} s spent")
    raise _failure(run, steps)


async def _step(
    run: _Run, baudrate: int, framing: Framing[Any], probes: Sequence[Probe]
) -> _Found | None:
    link = run.factory(run.url, baudrate, framing)
    try:
        for probe in probes:
            if run.remaining() <= 0:
                return None
            found = await _probe(link, run, baudrate, probe)
            if found is not None:
                return found
    finally:
        with suppress(BmsError):
            await link.close()
    return None


def _failure(
    run: _Run, steps: Sequence[tuple[int, Framing[Any], Sequence[Probe]]]
) -> DetectionError:
    planned = [f"{p.label} at {baud}" for baud, _, probes in steps for p in probes]
    skipped = [p for p in planned if p not in run.tried]
    tried = "; ".join(run.tried) or "nothing"
    left = f" (budget spent before: {'; '.join(skipped)})" if skipped else ""
    if not run.answered:
        return NothingAnswersError(
            f"nothing answers on {run.url}: tried {tried}{left}", run.evidence
        )
    seen = "; ".join(line for line in run.evidence if "no answer" not in line)
    return UnrecognisedDeviceError(
        f"something answers on {run.url} but no dialect was confirmed: {seen}{left}",
        run.evidence,
    )


__all__ = [
    "SEQUENCE",
    "BusMasteredError",
    "Detection",
    "DetectionError",
    "NothingAnswersError",
    "Probe",
    "UnrecognisedDeviceError",
    "check_read",
    "classify_ascii",
    "detect",
]
