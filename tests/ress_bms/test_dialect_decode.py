"""``ress-bms decode --dialect``'s decoder for what test_cli_dialects does not reach: every
read of each VER 0x20 dialect, a request given instead of a reply, the commands without a
decoder, and Modbus coil reads other than PIC.

Requests are the reference's (frames-dialects.json); replies are built from the layouts of
dialects.md where the reference has none.
"""

from __future__ import annotations

import pytest

from ress_bms.dialect_decode import decode_dialect_text
from ress_bms.dialects import eg4, pylontech, seplos
from ress_bms.errors import DecodeError, FrameError, ResponseError
from ress_bms.frame import Frame, encode_frame

from .reference_frames import entry
from .test_cli import JAKIPER_42
from .test_dialect_pylontech import _status_block as pylontech_status_block
from .ver20_frames import reply


def text(adr: int, cid1: int, info: bytes, *, rtn: int = 0) -> str:
    return reply(adr, cid1, info, rtn=rtn).decode().strip()


def words(*values: int) -> bytes:
    return b"".join(v.to_bytes(2, signed=v < 0) for v in values)


# -- what is refused ------------------------------------------------------------------------


def test_an_unknown_dialect_names_the_known_ones() -> None:
    with pytest.raises(DecodeError, match=r"unknown dialect 'jbd': one of pace, .*seplos_v3"):
        decode_dialect_text("~20004642E00200FD37", "jbd")


@pytest.mark.parametrize(
    ("frame", "request_hex", "message"),
    [
        ("0103zz", "01 03 00 00 00 08 44 0C", "the frame .0103zz. is not hexadecimal"),
        ("0104020001", "01 04 00 00 0G", "--request '01 04 00 00 0G' is not hexadecimal"),
    ],
)
def test_modbus_text_that_is_not_hex_is_a_frame_error(
    frame: str, request_hex: str, message: str
) -> None:
    with pytest.raises(FrameError, match=message):
        decode_dialect_text(frame, "pace_modbus", request=request_hex)


def test_a_command_without_a_documented_layout_is_said_so() -> None:
    """Seplos 47H has no published layout (dialects.md 2.5): a decode error, not a guess."""
    with pytest.raises(DecodeError, match="no seplos decoder for command 47H"):
        decode_dialect_text(text(0, seplos.CID1, bytes(10)), "seplos", command=0x47)
    with pytest.raises(DecodeError, match="no pylontech decoder for command 45H"):
        decode_dialect_text(text(2, pylontech.CID1, b""), "pylontech", command=0x45)
    with pytest.raises(DecodeError, match="no eg4 decoder for command 93H"):  # no EG4 serial
        decode_dialect_text(
            text(1, eg4.CID1, b"ABC"), "eg4", request=entry("93H serial")["request"]
        )


def test_a_refusal_to_the_reference_request_names_the_command() -> None:
    sent = entry("93H (Pylontech serial-number read) sent to a Seplos")
    with pytest.raises(ResponseError, match=r"RTN 04H .* to command 93H"):
        decode_dialect_text(sent["response"], "seplos", request=sent["request"])


# -- a request, or a frame that is no reply ---------------------------------------------------


def test_a_request_is_shown_as_what_it_asks() -> None:
    sent = entry("42H telemetry request (ADR 0x0A")["request"]
    assert decode_dialect_text(sent, "seplos") == {"request": "42", "address": 0x0A, "info": "0A"}


def test_the_seplos_5ah_poll_answer_keeps_its_cid2_and_its_bytes() -> None:
    """The 5AH answer carries 5A where an RTN belongs: shown as received, not decoded."""
    answer = entry("5AH master->slave poll observed on a Seplos V2 link bus (slave 01)")
    data = decode_dialect_text(answer["response"], "seplos")
    assert (data["request"], data["address"]) == ("5A", 1)
    words_hex = answer["decoded_per_layout"]
    assert data["info"].startswith("".join(words_hex["first_words_hex"]))
    assert len(data["info"]) == 2 * words_hex["info_bytes"]


def test_pace_takes_its_command_from_the_request() -> None:
    request = Frame(0x25, 1, 0x46, 0x42, b"\x01").encode().decode().strip()
    by_request = decode_dialect_text(JAKIPER_42, "pace", request=request)
    assert by_request == decode_dialect_text(JAKIPER_42, "pace", command=0x42)
    assert by_request["packs"][0]["cell_voltages"][0] == pytest.approx(3.271)


# -- Seplos V2.0 ------------------------------------------------------------------------------


def test_seplos_protocol_version_and_vendor_info() -> None:
    version = decode_dialect_text(text(0, seplos.CID1, b""), "seplos", command=0x4F)
    assert version == {"command": "4F", "address": 0, "protocol_version": "20"}
    info = b"1101-SP16 " + bytes((1, 7)) + b"SEPLOS".ljust(20, b"\x00")
    vendor = decode_dialect_text(text(0, seplos.CID1, info), "seplos", command=0x51)
    assert (vendor["device_name"], vendor["version"], vendor["manufacturer"]) == (
        "1101-SP16",
        "1.7",
        "SEPLOS",
    )


# -- Pylontech: each read of the reference, answered by the documented layout ------------------


def test_pylontech_status_keeps_the_cells_an_own_bit_names() -> None:
    request = entry("44H get alarm info (ADR 02, COMMAND 02)")["request"]
    block = pylontech_status_block(cells=15, status=(0, 0, 0, 0b1000_0001, 0))
    data = decode_dialect_text(text(2, pylontech.CID1, bytes((0x11, 2)) + block), "pylontech",
                               request=request)  # fmt: skip
    (pack,) = data["packs"]
    assert (data["command"], pack["address"]) == ("44", 2)
    assert pack["extra_cells"] == {"cell_error": [1, 8]}
    assert "cell_error" in pack["extra"]


def test_pylontech_protocol_version_and_manufacturer() -> None:
    asked = entry("4FH get protocol version (ADR 02)")["request"]
    assert decode_dialect_text(text(2, pylontech.CID1, b""), "pylontech", request=asked) == {
        "command": "4F",
        "address": 2,
        "protocol_version": "20",
    }
    info = b"US2000C\x00\x00\x00" + bytes((2, 1)) + b"PYLON".ljust(20)
    asked = entry("51H get manufacturer info (ADR 02)")["request"]
    maker = decode_dialect_text(text(2, pylontech.CID1, info), "pylontech", request=asked)
    assert (maker["device_name"], maker["version"], maker["manufacturer"]) == (
        "US2000C",
        "2.1",
        "PYLON",
    )


def test_pylontech_system_parameters_in_volts_degrees_and_amps() -> None:
    info = bytes((0x11,)) + words(3650, 3050, 2900, 3231, 2731, 500, 54000, 48000, 46000)
    info += words(3331, 2531, -1000)
    asked = entry("47H get system parameters (ADR 02)")["request"]
    params = decode_dialect_text(text(2, pylontech.CID1, info), "pylontech", request=asked)[
        "parameters"
    ]
    assert params["cell_high_voltage_limit"] == pytest.approx(3.65)
    assert params["charge_high_temperature_limit"] == pytest.approx(50.0)
    assert params["discharge_low_temperature_limit"] == pytest.approx(-20.0)
    assert params["discharge_current_limit"] == pytest.approx(-100.0)


def test_pylontech_management_serial_and_software_version() -> None:
    info = bytes((2,)) + words(53250, 44000, 500, -1000) + bytes((0b1100_1000,))
    asked = entry("92H get charge/discharge management info")["request"]
    management = decode_dialect_text(text(2, pylontech.CID1, info), "pylontech", request=asked)[
        "management"
    ]
    assert management["charge_voltage_limit"] == pytest.approx(53.25)
    assert management["discharge_current_limit"] == pytest.approx(-100.0)
    assert management["charge_enabled"] and management["full_charge_request"]
    asked = entry("93H get module serial number")["request"]
    serial = decode_dialect_text(text(2, pylontech.CID1, b"\x02HPTBH02240A01234"), "pylontech",
                                 request=asked)  # fmt: skip
    assert serial == {"command": "93", "address": 2, "serial": "HPTBH02240A01234"}
    version = decode_dialect_text(
        text(2, pylontech.CID1, bytes((2, 1, 2, 3, 4, 5))), "pylontech", command=0x96
    )
    assert (version["manufacturer_version"], version["main_line"]) == ("1.2", "3.4.5")


# -- EG4 -------------------------------------------------------------------------------------


def test_eg4_clock_is_an_iso_time() -> None:
    info = (2024).to_bytes(2) + bytes((10, 14, 23, 59, 30))
    data = decode_dialect_text(text(1, eg4.CID1, info), "eg4", command=0x4D)
    assert data == {"command": "4D", "address": 1, "time": "2024-10-14T23:59:30"}


def test_eg4_manufacturer_info_is_its_text_and_bytes() -> None:
    answer = entry("51H manufacturer info")
    data = decode_dialect_text(answer["response"], "eg4", request=answer["request"])
    layout = answer["decoded_per_layout"]
    assert "QTHN" in data["text"]
    assert len(data["raw"]) == 2 * layout["info_bytes"]
    assert data["raw"].endswith(layout["bytes_42_45_hex"])


# -- Seplos V3 coils --------------------------------------------------------------------------


def test_seplos_v3_coils_other_than_pic_give_their_bytes_and_no_pack() -> None:
    """EIC is the bank's state: its bytes are shown, no pack status is made of it."""
    eic = entry("EIC (coils 0x2200")
    data = decode_dialect_text(eic["response"], "seplos_v3", request=eic["request"])
    assert data["command"] == "01" and data["start"] == 0x2200 and data["count"] == 80
    assert "packs" not in data and "assumed_shape" not in data
    assert 1 in data["coils"].values()  # TB09 system state 0x01: discharge
    assert 0x43 in data["coils"].values()  # TB07: both FETs on, bit 6 set


@pytest.mark.parametrize("dialect", ["seplos", "pylontech"])
def test_a_protocol_version_reply_carries_its_version_as_ver(dialect: str) -> None:
    """4FH answers with the protocol version in its VER byte (dialects.md): a 21H reply is the
    answer "version 2.1", not a frame of another protocol; any other reply must be VER 20H."""
    module = seplos if dialect == "seplos" else pylontech
    text = encode_frame(0x21, 1, module.CID1, 0x00, b"").decode().strip()
    assert decode_dialect_text(text, dialect, 0x4F, None)["protocol_version"] == "21"
    with pytest.raises(DecodeError, match="VER 21H"):
        decode_dialect_text(text, dialect, 0x42, None)
