"""Detection (ress_bms.detect): one fake bus per dialect, a silent bus, garbage, never a write.

Each peer stands for one battery behind a TCP gateway, listening at one baud rate: the link
factory gives every other baud rate a silent peer. Peers answer the dialect's own probe with a
frame of tests/fixtures/frames-dialects.json where one exists (built from the documented
layouts otherwise) and record every request they got; each must be a read of its dialect.
Waits are scaled down (``wait_scale``); no test bounds the wall-clock time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
import contextlib
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, strategies as st
import pytest

from ress_bms import detect as detect_module
from ress_bms.commands import Command
from ress_bms.detect import (
    BusMasteredError,
    NothingAnswersError,
    UnrecognisedDeviceError,
    check_read,
    detect,
)
from ress_bms.device import encode_text
from ress_bms.dialects import DIALECTS, eg4, pylontech, seplos
from ress_bms.dialects.ver20 import WRITES_IN_SOME_DIALECT
from ress_bms.errors import BmsError, BmsTimeoutError, ForbiddenCommandError, LinkError
from ress_bms.frame import Frame, decode_frame
from ress_bms.framing import Framing
from ress_bms.link import Link
from ress_bms.modbus import READ_INPUT, decode_request, with_crc
from ress_bms.simulator import Simulator

from .fakepeer import Answer, BusPeer, answering
from .test_dialect_eg4 import _status_info as eg4_status_info
from .test_dialect_pylontech import _status_block as pylontech_status_block
from .test_dialect_seplos import _status_info as seplos_status_info
from .ver20_frames import FRAMES, FUZZ

pytestmark = pytest.mark.usefixtures("socket_enabled")

SCALE = 0.02
"""The documented waits times this: 1 s -> 20 ms, EG4's 2 s -> 40 ms."""


def response(command_prefix: str) -> bytes:
    """The reference reply of the first entry whose command starts with ``command_prefix``."""
    entry = next(f for f in FRAMES if f["command"].startswith(command_prefix) and f["response"])
    return entry["response"].encode() + b"\r"


def modbus_reply(raw_request: bytes, data: bytes) -> bytes:
    request = decode_request(raw_request)
    assert len(data) == request.reply_bytes
    return with_crc(bytes((request.unit, request.function, len(data))) + data)


def words(*values: int) -> bytes:
    return b"".join(v.to_bytes(2) for v in values)


def text_registers(value: str, count: int) -> bytes:
    return value.encode().ljust(2 * count, b"\x00")


def silent(raw: bytes) -> None:
    return None


@dataclass
class Bus:
    """The link factory of a test: ``baudrate`` reaches the battery, the rest the silent peer."""

    battery: BusPeer
    quiet: BusPeer
    baudrate: int
    opened: list[tuple[int, str]] = field(default_factory=list)

    def factory(self, url: str, baudrate: int, framing: Framing[Any]) -> Link[Any]:
        self.opened.append((baudrate, framing.name))
        target = self.battery if baudrate == self.baudrate else self.quiet
        return Link(
            target.url, baudrate=baudrate, framing=framing, retries=0, drain=0.01,
            late_window=0.01,
        )  # fmt: skip

    @property
    def requests(self) -> list[bytes]:
        """Every request either peer got, in the order sent."""
        return self.battery.requests


@contextlib.asynccontextmanager
async def bus(answer: Answer, baudrate: int = 9600) -> Any:
    log: list[bytes] = []
    async with BusPeer(answering(answer), log) as battery, BusPeer(answering(silent), log) as quiet:
        yield Bus(battery, quiet, baudrate)


def assert_only_reads(requests: list[bytes]) -> None:
    """Every request is a documented read of some dialect: no write CID2, fc 03/04 only."""
    assert requests
    for raw in requests:
        if raw.startswith(b"~"):
            frame = decode_frame(raw)
            assert frame.cid2 not in WRITES_IN_SOME_DIALECT, raw
            assert frame.cid2 in {0x42, 0x44, 0x47, 0x4F, 0x51, 0x90, 0x92, 0x93, 0x96, 0xC1, 0xC2}
            assert frame.adr != 0xFF
        else:
            assert decode_request(raw).function in (0x03, 0x04), raw.hex()


async def run_detect(b: Bus, **kwargs: Any) -> Any:
    return await detect(
        "socket://gateway", link_factory=b.factory, wait_scale=SCALE, budget=10.0, **kwargs
    )


# -- a battery of each dialect ---------------------------------------------------------------


def pace_answer(raw: bytes) -> bytes | None:
    if not raw.startswith(b"~25"):
        return None
    frame = decode_frame(raw)
    info = {
        Command.VERSION: encode_text("PACE-P16S100A-V2.1"),
        Command.SERIAL: encode_text("BMS123456") + encode_text("PACK7890"),
        Command.PACK_COUNT: bytes((3,)),
    }.get(Command(frame.cid2))
    return None if info is None else Frame(0x25, frame.adr, 0x46, 0, info).encode()


SEPLOS_51H = b"1101-SP16 " + bytes((1, 7)) + b"SEPLOS".ljust(20, b"\x00")


def seplos_answer(raw: bytes) -> bytes | None:
    if not raw.startswith(b"~2000"):
        return None  # DIP 0: the other probes are not for this pack
    frame = decode_frame(raw)
    if frame.cid2 == seplos.ANALOG:
        return response("42H telemetry response, 16 cells")
    if frame.cid2 == seplos.STATUS:
        return Frame(0x20, 0, 0x46, 0, seplos_status_info()).encode()
    if frame.cid2 == seplos.VENDOR_INFO:
        return Frame(0x20, 0, 0x46, 0, SEPLOS_51H).encode()
    return None


def pylontech_answer(raw: bytes) -> bytes | None:
    if not raw.startswith(b"~2002"):
        return None  # a master at ADR 2 ignores the others
    frame = decode_frame(raw)
    if frame.cid2 == pylontech.ANALOG and frame.info == b"\x02":
        return response("42H analog value, single pack, capacity > 65 Ah")
    if frame.cid2 == pylontech.STATUS:
        info = bytes((0x11, 2)) + pylontech_status_block()
        return Frame(0x20, 2, 0x46, 0, info).encode()
    if frame.cid2 == pylontech.MANUFACTURER_INFO:
        info = b"US3000C   " + bytes((2, 1)) + b"PYLON".ljust(20, b" ")
        return Frame(0x20, 2, 0x46, 0, info).encode()
    if frame.cid2 == pylontech.SERIAL_NUMBER:
        return Frame(0x20, 2, 0x46, 0, b"\x02" + b"PPTAH0212345678".ljust(16, b" ")).encode()
    return None  # the group read (FF) is not answered: the pack count stays unknown


def eg4_answer(raw: bytes) -> bytes | None:
    if not raw.startswith(b"~20014A"):
        return None
    frame = decode_frame(raw)
    if frame.cid2 == eg4.ANALOG:
        return response("42H analog value (no INFO")
    if frame.cid2 == eg4.STATUS:
        return Frame(0x20, 1, 0x4A, 0, eg4_status_info()).encode()
    if frame.cid2 == eg4.MANUFACTURER_INFO:
        return response("51H manufacturer info")
    return None


def pace_modbus_answer(raw: bytes) -> bytes | None:
    if raw.startswith(b"~"):
        return None
    request = decode_request(raw)
    if request.unit != 1 or request.function != 0x03:
        return None
    if request.start == 0:
        return modbus_reply(raw, words(0, 5324, 98, 100, 10000, 10000, 10000, 12))
    if request.start == 150:
        return modbus_reply(raw, text_registers("P16S100A-1.3", request.count))
    return None  # a V1.0 pack: no serial registers


def seplos_v3_answer(raw: bytes) -> bytes | None:
    if raw.startswith(b"~"):
        return None
    request = decode_request(raw)
    if request.function != READ_INPUT:
        return None
    if request.unit == 0 and request.start == 0x1700:
        via = (
            text_registers("XZH-ElecTech Co.,Ltd", 10)
            + text_registers("SP05B", 10)
            + text_registers("11", 1)
            + text_registers("BMS0001", 15)
            + text_registers("PACK0001", 15)
        )
        return modbus_reply(raw, via[: 2 * request.count])
    if request.unit == 0 and request.start == 0x2000:
        return bytes.fromhex(next(f for f in FRAMES if f["command"].startswith("EIA"))["response"])
    return None


@pytest.mark.parametrize(
    ("answer", "baudrate", "dialect", "address", "model", "serial", "packs"),
    [
        (pace_answer, 9600, "pace", 1, "PACE-P16S100A-V2.1", "BMS123456", 3),
        (pace_answer, 19200, "pace", 1, "PACE-P16S100A-V2.1", "BMS123456", 3),
        (seplos_answer, 9600, "seplos", 0, "1101-SP16", None, None),
        (seplos_answer, 19200, "seplos", 0, "1101-SP16", None, None),
        (pylontech_answer, 9600, "pylontech", 2, "US3000C", "PPTAH0212345678", None),
        (pylontech_answer, 115200, "pylontech", 2, "US3000C", "PPTAH0212345678", None),
        (eg4_answer, 9600, "eg4", 1, None, None, None),
        (pace_modbus_answer, 9600, "pace_modbus", 1, "P16S100A-1.3", None, None),
        (seplos_v3_answer, 19200, "seplos_v3", 0, "SP05B", "BMS0001", 1),
    ],
    ids=lambda v: v.__name__ if callable(v) else str(v),
)
async def test_each_dialect_is_found_with_its_baud_rate_and_identity(
    answer: Answer,
    baudrate: int,
    dialect: str,
    address: int,
    model: str | None,
    serial: str | None,
    packs: int | None,
) -> None:
    async with bus(answer, baudrate) as b:
        found = await run_detect(b)
    assert (found.dialect, found.baudrate, found.address_or_unit) == (dialect, baudrate, address)
    if dialect == "eg4":
        assert found.model  # the 51H text as sent, whatever it reads
    else:
        assert found.model == model
    assert (found.serial, found.packs) == (serial, packs)
    assert f"{dialect} confirmed" in found.evidence[-1]
    assert found.to_json()["framing"] == DIALECTS[dialect].framing.name
    assert_only_reads(b.requests)
    # one link per (baud, framing), in the documented order, none opened twice
    assert len(set(b.opened)) == len(b.opened)
    assert b.opened[-1][0] == baudrate


async def test_the_first_probes_are_the_documented_frames_in_order() -> None:
    async with bus(silent) as b:
        with pytest.raises(NothingAnswersError):
            await run_detect(b)
    sent = [r.decode() if r.startswith(b"~") else r.hex().upper() for r in b.requests]
    assert sent == [
        "~250146C10000FD9A\r",
        "~20004642E00200FD37\r",
        "~20014642E00201FD35\r",
        "~20024642E00202FD33\r",
        "~20014A420000FDA2\r",
        "010300000008440C",
        "00041700000A7468",
        "01041700000A75B9",
        "~250146C10000FD9A\r",
        "~20004642E00200FD37\r",
        "~20024642E00202FD33\r",
    ]
    assert b.opened == [
        (9600, "ascii"), (9600, "modbus"), (19200, "modbus"), (19200, "ascii"), (115200, "ascii"),
    ]  # fmt: skip


async def test_a_silent_bus_is_one_clear_error_listing_what_was_tried() -> None:
    async with bus(silent) as b:
        with pytest.raises(NothingAnswersError) as caught:
            await run_detect(b)
    err = caught.value
    assert isinstance(err, BmsTimeoutError)
    message = str(err)
    assert message.startswith("nothing answers on socket://gateway: tried ")
    labels = (
        "PACE 0x25 C1H to ADR 1 at 9600",
        "EG4 42H (no INFO) to ADR 1 at 9600",
        "Seplos V3 fc 04 0x1700 unit 1 at 19200",
        "Pylontech 42H to ADR 2 at 115200",
    )
    for label in labels:
        assert label in message
    assert len(err.evidence) == 11
    assert all("no answer" in line for line in err.evidence)


async def test_the_budget_stops_the_sequence_and_says_what_was_left() -> None:
    async with bus(silent) as b:
        with pytest.raises(NothingAnswersError) as caught:
            await detect("socket://gateway", link_factory=b.factory, wait_scale=1.0, budget=0.3)
    message = str(caught.value)
    assert "budget spent before:" in message
    assert "Pylontech 42H to ADR 2 at 115200" in message.split("budget spent before:")[1]


async def test_baudrates_and_dialects_narrow_the_sequence() -> None:
    async with bus(seplos_v3_answer, 19200) as b:
        found = await run_detect(b, baudrates=[19200], dialects=["seplos_v3"])
    assert found.dialect == "seplos_v3"
    assert b.opened == [(19200, "modbus")]
    assert len(b.requests) == 3  # probe, VIA, EIA
    with pytest.raises(ValueError, match="unknown dialects"):
        await detect("socket://x", dialects=["nope"])


# -- answers of another kind -----------------------------------------------------------------


async def test_a_modbus_exception_proves_a_device_but_detects_nothing() -> None:
    def refuse(raw: bytes) -> bytes | None:
        if raw.startswith(b"~"):
            return None
        return with_crc(bytes((raw[0], raw[1] | 0x80, 0x01)))

    async with bus(refuse) as b:
        with pytest.raises(UnrecognisedDeviceError) as caught:
            await run_detect(b)
    assert "a Modbus device at this baud rate" in str(caught.value)
    assert "exception 01H" in str(caught.value)


async def test_a_ver20_frame_to_the_pace_probe_is_classified_then_found_by_its_own_probe() -> None:
    def seplos_everywhere(raw: bytes) -> bytes | None:
        if raw.startswith(b"~25"):  # a VER 0x20 pack answering the PACE probe with its 42H
            return response("42H telemetry response, 16 cells")
        return seplos_answer(raw)

    async with bus(seplos_everywhere) as b:
        found = await run_detect(b)
    assert found.dialect == "seplos"
    first = found.evidence[0]
    assert "PACE 0x25 C1H" in first and "VER 20H" in first and "a seplos reply" in first
    assert found.evidence[1] == "9600 ascii: seplos confirmed at address 0"


async def test_garbage_and_foreign_frames_are_named() -> None:
    def garbage(raw: bytes) -> bytes | None:
        if raw == b"~250146C10000FD9A\r":
            return bytes.fromhex("FDEDF7CA82828282821105") + b"\r"
        if raw.startswith(b"~2000"):
            return b"~\x01\x01\x00\xfe\r"  # binary EG4 Lifepower: shares SOI/EOI only
        if raw.startswith(b"~20014642"):
            return b"pylon_debug> "
        if raw.startswith(b"~2002"):
            return Frame(0x20, 2, 0x46, 0x04, b"").encode()  # RTN 04: CID2 invalid
        return None

    async with bus(garbage) as b:
        with pytest.raises(UnrecognisedDeviceError) as caught:
            await run_detect(b, baudrates=[9600])
    lines = caught.value.evidence
    assert "bytes that are no frame" in lines[0]
    assert "not this framing" in lines[1]
    assert "console port" in lines[2]
    assert "an ASCII device at this baud rate" in lines[3] and "RTN 04H" in lines[3]
    assert "no answer" in lines[4]


async def test_another_masters_request_stops_detection() -> None:
    def master(raw: bytes) -> bytes | None:
        return b"~2001465A0000FD9D\r"  # a Seplos V2 master polling its slaves (5AH)

    async with bus(master) as b:
        with pytest.raises(BusMasteredError, match="another master"):
            await run_detect(b)
    assert len(b.requests) == 1


async def test_listen_before_talk_sends_nothing_on_a_mastered_bus() -> None:
    async with BusPeer(answering(silent)) as peer:
        server = await asyncio.start_server(_chatty, "127.0.0.1", 0)
        host, port = server.sockets[0].getsockname()[:2]

        def factory(url: str, baudrate: int, framing: Framing[Any]) -> Link[Any]:
            return Link(f"socket://{host}:{port}", baudrate=baudrate, framing=framing, retries=0)

        with pytest.raises(BusMasteredError, match="unasked"):
            await detect("socket://x", link_factory=factory, listen=0.3, budget=5.0)
        server.close()
        await server.wait_closed()
    assert peer.requests == []
    assert _HEARD == []


_HEARD: list[bytes] = []


async def _chatty(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        for _ in range(20):
            writer.write(b"~2001465A0000FD9D\r")
            await writer.drain()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.02):
                    if data := await reader.read(100):
                        _HEARD.append(data)
    writer.close()


async def test_listening_on_a_quiet_bus_goes_on_to_probe() -> None:
    async with bus(pace_answer) as b:
        found = await run_detect(b, listen=1.0)
    assert found.dialect == "pace"
    assert found.evidence[0].startswith("9600 ascii: listening")


# -- what may be sent ------------------------------------------------------------------------


def _all_probes() -> Iterator[tuple[str, bytes]]:
    for _, _, probes in detect_module.SEQUENCE:
        for probe in probes:
            yield probe.dialect, probe.request


@pytest.mark.parametrize(("dialect", "request_"), list(_all_probes()))
def test_every_probe_is_a_read_of_its_dialect(dialect: str, request_: bytes) -> None:
    assert check_read(dialect, request_) == request_


def test_writes_and_broadcasts_are_refused() -> None:
    reboot = next(f for f in FRAMES if f["command"].startswith('45H "system reboot"'))
    with pytest.raises(ForbiddenCommandError):
        check_read("eg4", reboot["request"].encode() + b"\r")
    with pytest.raises(ForbiddenCommandError):
        check_read("pace", Frame(0x25, 1, 0x46, 0x99, b"").encode())  # control
    with pytest.raises(ForbiddenCommandError):
        check_read("pylontech", Frame(0x20, 2, 0x46, 0x94, b"").encode())  # set mgmt
    with pytest.raises(ForbiddenCommandError):
        check_read("pace_modbus", with_crc(bytes.fromhex("0110003C00010200")))  # fc 10
    with pytest.raises(ForbiddenCommandError):
        check_read("pace_modbus", bytes.fromhex("000300000008") + b"\x00\x00")  # unit 0
    with pytest.raises(ForbiddenCommandError):
        check_read("seplos", Frame(0x20, 0xFF, 0x46, 0x42, b"\xff").encode())


async def test_the_answer_decides_the_dialect_not_the_probe() -> None:
    """42H to ADR 1 is the Seplos slave-1 probe too: a Pylontech V2.8 block there is Pylontech."""

    def pylontech_at_1(raw: bytes) -> bytes | None:
        if not raw.startswith(b"~20014642"):
            return None
        return response("42H analog value, single pack, capacity <= 65 Ah")

    async with bus(pylontech_at_1) as b:
        with pytest.raises(UnrecognisedDeviceError) as caught:
            await run_detect(b, baudrates=[9600])
    (seen,) = [line for line in caught.value.evidence if "ADR 1 answered" in line]
    assert "a pylontech reply" in seen
    after = caught.value.evidence[caught.value.evidence.index(seen) + 1]
    assert "not confirmed" in after  # this peer does not answer the 44H
    assert decode_frame(b.requests[3]).cid2 == pylontech.STATUS  # the confirmation was a 44H


async def test_the_detection_json() -> None:
    async with bus(pace_answer) as b:
        found = await run_detect(b)
    assert found.to_json() == {
        "dialect": "pace",
        "title": "PACE VER 0x25",
        "baudrate": 9600,
        "framing": "ascii",
        "address": 1,
        "model": "PACE-P16S100A-V2.1",
        "serial": "BMS123456",
        "packs": 3,
        "evidence": list(found.evidence),
    }
    assert [decode_frame(r).cid2 for r in b.requests] == [0xC1, 0xC2, 0x90]


@FUZZ
@given(
    st.sampled_from([0x20, 0x25, 0x26]),
    st.integers(0, 0xFE),
    st.sampled_from([0x46, 0x4A, 0x4E, 0x4F, 0x00]),
    st.binary(max_size=160),
)
def test_classifying_any_frame_raises_only_typed_errors(
    ver: int, adr: int, cid1: int, info: bytes
) -> None:
    frame = decode_frame(Frame(ver, adr, cid1, 0, info).encode())
    try:
        name = detect_module.classify_ascii(frame)
    except BmsError:
        return
    assert name in DIALECTS


async def test_a_port_that_cannot_be_opened_is_the_links_own_error() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    server.close()
    await server.wait_closed()  # nothing listens there any more
    with pytest.raises(LinkError, match="cannot open") as caught:
        await detect(f"socket://{host}:{port}", budget=5.0)
    assert not isinstance(caught.value, NothingAnswersError)


@pytest.mark.parametrize(
    ("dialect", "baudrate", "address", "packs"),
    [
        ("pace", 9600, 1, 3),
        ("seplos", 9600, 0, None),
        ("pylontech", 9600, 2, 3),
        ("eg4", 9600, 1, None),
        ("pace_modbus", 9600, 1, None),
        ("seplos_v3", 19200, 0, 3),
    ],
)
async def test_the_simulator_in_each_dialect_is_found(
    dialect: str, baudrate: int, address: int, packs: int | None
) -> None:
    """The simulator's own responders (simulator/dialects), over TCP: every baud rate reaches it,
    so the first probe of its dialect in the order answers."""
    async with Simulator(packs=3, seed=1, dialect=dialect) as sim:
        found = await detect(sim.url, wait_scale=0.1, budget=10.0)
    assert (found.dialect, found.baudrate, found.address_or_unit) == (dialect, baudrate, address)
    assert found.model
    assert found.packs == packs
