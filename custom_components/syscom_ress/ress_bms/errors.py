"""Every error the protocol library raises: one hierarchy, rooted at :class:`BmsError`."""

from __future__ import annotations

from typing import Final

RETURN_CODES: Final[dict[int, str]] = {
    0x00: "normal",
    0x01: "VER error",
    0x02: "CHKSUM error",
    0x03: "LCHKSUM error",
    0x04: "CID2 invalid",
    0x05: "command format error",
    0x06: "invalid data",
    0x07: "no data",
    0x09: "operation or write refused",
    0x90: "ADR error",
    0x91: "communication error",
    0xE1: "CID1 error",
    0xE2: "command execution failed",
    0xE3: "equipment fault",
    0xE4: "invalid permission",
}
"""RTN codes: [PACE-2018] Table A.8, [PACE-V3.1] Table A.8, [SEPLOS-V2] Table 5."""

RTN_NO_DATA: Final = 0x07
RTN_REFUSED: Final = 0x09


class BmsError(Exception):
    """Base class of every error raised by this library."""


class FrameError(BmsError):
    """Bytes that are not a well-formed PACE frame (bad hex, length, SOI or EOI)."""


class ChecksumError(FrameError):
    """A frame whose CHKSUM does not match its content."""


class DecodeError(BmsError):
    """A well-formed frame whose payload does not fit the layout of the command."""


class ResponseError(BmsError):
    """The BMS answered with a non-zero return code (RTN)."""

    def __init__(self, code: int, command: int | None = None) -> None:
        self.code = code
        self.command = command
        self.meaning = RETURN_CODES.get(code, "unknown return code")
        what = f" to command {command:02X}H" if command is not None else ""
        super().__init__(f"BMS returned RTN {code:02X}H ({self.meaning}){what}")

    @property
    def retryable(self) -> bool:
        """RTN 02/03: the BMS saw our request corrupted, so sending it again may work."""
        return self.code in (0x02, 0x03)


class CommandRefusedError(ResponseError):
    """RTN 09: the firmware refused the operation (for example a MOSFET switch under load)."""


class UnsupportedProtocolError(BmsError):
    """The device speaks a protocol dialect this library does not support (yet)."""


class UnsupportedCapabilityError(BmsError):
    """The stack's dialect does not do this (no document defines it precisely): never sent."""


class ForbiddenCommandError(BmsError):
    """A command code outside the allowlist: calibration, factory, test or destructive."""


class ValidationError(BmsError, ValueError):
    """A parameter value or set of values that must not be sent to the BMS."""


class BusContentionError(BmsError):
    """Another master's request crossed ours on the bus: no reply can be told to be ours."""


class LinkError(BmsError):
    """The transport failed: cannot open, connection lost, or no answer."""


class BmsTimeoutError(LinkError, TimeoutError):
    """No complete valid reply arrived in time."""


class ConnectionLostError(LinkError):
    """The transport closed during an exchange (a gateway reset): worth one more try."""


class LinkUnavailableError(LinkError):
    """The link is down and waiting before the next reconnection attempt."""


def response_error(code: int, command: int | None = None) -> ResponseError:
    """Return the typed error for a non-zero RTN."""
    if code == RTN_REFUSED:
        return CommandRefusedError(code, command)
    return ResponseError(code, command)
