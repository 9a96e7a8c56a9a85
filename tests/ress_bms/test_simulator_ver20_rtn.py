"""The simulated VER 0x20 batteries refuse a bad request as dialects.md says the real ones do.

RTN 01 for another VER, 02 for a bad CHKSUM (from the addressed pack; silence when the ADR
cannot be read), 03 for a bad LCHKSUM, 05 for a read whose INFO the document does not have,
Pylontech's 90 for a COMMAND that is not the module's ADR. A Pylontech group read zero-fills
a module the master cannot reach, in 44H as in 42H.
"""

from __future__ import annotations

import pytest

from ress_bms.dialects import eg4, pylontech, seplos
from ress_bms.frame import Frame, checksum, decode_frame, encode_frame
from ress_bms.modbus import ReadRequest
from ress_bms.simulator.dialects import responder
from ress_bms.simulator.dialects.modbus import RequestCutter
from ress_bms.simulator.stack import Stack

RTN_VER, RTN_CHKSUM, RTN_LCHKSUM, RTN_FORMAT, RTN_ADR = 0x01, 0x02, 0x03, 0x05, 0x90
CID1 = {"seplos": seplos.CID1, "pylontech": pylontech.CID1, "eg4": eg4.CID1}
FIRST_ADR = {"seplos": 0, "pylontech": 2, "eg4": 1}  # pack 1's ADR in each dialect


def rtn(dialect: str, request: bytes, packs: int = 2) -> int | None:
    """The RTN the simulated stack answers ``request`` with, ``None`` for silence."""
    answer = responder(dialect).respond(Stack(packs), request)
    return None if answer is None else decode_frame(answer).cid2


def framed(body: str) -> bytes:
    """``~body CHKSUM CR`` with a correct CHKSUM over whatever ``body`` says."""
    return b"~" + body.encode() + b"%04X\r" % checksum(body.encode())


@pytest.mark.parametrize("dialect", sorted(CID1))
def test_a_bad_chksum_is_answered_by_the_addressed_pack(dialect: str) -> None:
    adr = FIRST_ADR[dialect]
    good = encode_frame(0x20, adr, CID1[dialect], 0x42, bytes((adr,)))
    bad = good[:-2] + (b"0" if good[-2:-1] != b"0" else b"1") + b"\r"  # CHKSUM's last digit
    assert rtn(dialect, bad) == RTN_CHKSUM
    assert rtn(dialect, b"~20ZZ" + bad[5:]) is None  # not hexadecimal: no frame, silence


@pytest.mark.parametrize("dialect", sorted(CID1))
def test_another_ver_and_a_bad_lchksum_have_their_codes(dialect: str) -> None:
    adr, cid1 = FIRST_ADR[dialect], CID1[dialect]
    assert rtn(dialect, encode_frame(0x25, adr, cid1, 0x42, bytes((adr,)))) == RTN_VER
    # LENID 2 has LCHKSUM E; 1 is wrong, the CHKSUM over it right
    bad_length = framed(f"20{adr:02X}{cid1:02X}421002{adr:02X}")
    assert not decode_frame(bad_length).lchksum_ok
    assert rtn(dialect, bad_length) == RTN_LCHKSUM


@pytest.mark.parametrize(
    "cid2",
    [pylontech.ANALOG, pylontech.STATUS, pylontech.MANAGEMENT, pylontech.SERIAL_NUMBER,
     pylontech.SOFTWARE_VERSION],
)  # fmt: skip
def test_pylontech_module_reads_need_the_modules_own_command(cid2: int) -> None:
    """[PYLON-3.3]: INFO is COMMAND = the module's ADR; 0xFF only for 42H/44H at ADR 02."""
    assert rtn("pylontech", encode_frame(0x20, 3, pylontech.CID1, cid2)) == RTN_FORMAT
    assert rtn("pylontech", encode_frame(0x20, 3, pylontech.CID1, cid2, b"\x02")) == RTN_ADR
    assert rtn("pylontech", encode_frame(0x20, 3, pylontech.CID1, cid2, b"\x03")) == 0


@pytest.mark.parametrize("cid2", [pylontech.MANUFACTURER_INFO, pylontech.SYSTEM_PARAMETERS])
def test_pylontech_reads_without_info_refuse_one(cid2: int) -> None:
    assert rtn("pylontech", encode_frame(0x20, 2, pylontech.CID1, cid2, b"\x02")) == RTN_FORMAT
    assert rtn("pylontech", encode_frame(0x20, 2, pylontech.CID1, cid2)) == 0


@pytest.mark.parametrize("cid2", [eg4.STATUS, eg4.CLOCK_READ])
def test_eg4_requests_carry_no_info(cid2: int) -> None:
    assert rtn("eg4", encode_frame(0x20, 1, eg4.CID1, cid2, b"\x01")) == RTN_FORMAT
    assert rtn("eg4", encode_frame(0x20, 1, eg4.CID1, cid2)) == 0


def test_pylontech_group_status_zero_fills_an_offline_module() -> None:
    stack = Stack(3)
    stack.pack(2).online = False
    answer = responder("pylontech").respond(stack, pylontech.status_request(2, pylontech.ALL_PACKS))
    packs = pylontech.decode_status(answer or b"", pylontech.ALL_PACKS)
    assert [p.status.address for p in packs] == [2, 3, 4]
    offline = packs[1]
    assert not offline.status.charge_mos and not offline.status.discharge_mos
    assert set(offline.status.cell_codes) == {0} and set(offline.status.temperature_codes) == {0}
    assert packs[0].status.charge_mos and packs[2].status.charge_mos


def test_the_modbus_request_cutter_drops_what_it_holds() -> None:
    cutter = RequestCutter()
    request = ReadRequest(1, 0x03, 0, 8).encode()
    assert cutter.feed(request[:5]) == []
    assert cutter.clear() == 5
    assert cutter.feed(request) == [request]  # the half request is gone, not glued on
    assert cutter.clear() == 0


def test_a_frame_encodes_as_the_simulator_reads_it() -> None:
    """The LCHKSUM helper above: a correct LENGTH gives a frame the simulator answers."""
    good = framed("20024642E00202")
    assert good == Frame(0x20, 2, 0x46, 0x42, b"\x02").encode()
    assert rtn("pylontech", good) == 0
