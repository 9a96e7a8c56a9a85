"""Command codes (CID2) and the allowlist of those this library may ever send.

[PACE-V3.1] Table A.7. Calibration (A9-AD), factory and test (7E/7F, 80, FF, B7-BD, B4, C3/C4),
restore defaults (A4), set capacity (A5/A7), set cycle count (BD) and clear history (B3) are
deliberately absent: :func:`encode_request` refuses anything not listed here.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

from .errors import ForbiddenCommandError
from .frame import CID1_LFP, VER_PACE, encode_frame

COMMAND_ALL_PACKS: Final = 0xFF
"""COMMAND byte of 42H/44H asking the master for every pack of the stack."""


class Command(IntEnum):
    """CID2 codes of the PACE VER 0x25 protocol that this library uses."""

    ANALOG = 0x42
    STATUS = 0x44
    PACK_COUNT = 0x90
    CONTROL = 0x99
    CHARGE_MOS = 0x9A
    DISCHARGE_MOS = 0x9B
    SHUTDOWN = 0x9C
    SLEEP_READ = 0xA0
    HISTORY = 0xA1
    CAPACITY = 0xA6
    SLEEP_WRITE = 0xA8
    FULL_CHARGE_WRITE = 0xAE
    FULL_CHARGE_READ = 0xAF
    CLOCK_READ = 0xB1
    CLOCK_WRITE = 0xB2
    BALANCE_WRITE = 0xB5
    BALANCE_READ = 0xB6
    VERSION = 0xC1
    SERIAL = 0xC2
    CELL_OV_WRITE = 0xD0
    CELL_OV_READ = 0xD1
    CELL_UV_WRITE = 0xD2
    CELL_UV_READ = 0xD3
    PACK_OV_WRITE = 0xD4
    PACK_OV_READ = 0xD5
    PACK_UV_WRITE = 0xD6
    PACK_UV_READ = 0xD7
    CHARGE_OC_WRITE = 0xD8
    CHARGE_OC_READ = 0xD9
    DISCHARGE_OC_WRITE = 0xDA
    DISCHARGE_OC_READ = 0xDB
    CELL_HIGH_TEMP_WRITE = 0xDC
    CELL_HIGH_TEMP_READ = 0xDD
    CELL_LOW_TEMP_WRITE = 0xDE
    CELL_LOW_TEMP_READ = 0xDF
    MOS_TEMP_WRITE = 0xE0
    MOS_TEMP_READ = 0xE1
    DISCHARGE_OC2_WRITE = 0xE2
    DISCHARGE_OC2_READ = 0xE3
    SHORT_CIRCUIT_WRITE = 0xE4
    SHORT_CIRCUIT_READ = 0xE5
    ENV_TEMP_WRITE = 0xE6
    ENV_TEMP_READ = 0xE7
    INVERTER_PROTOCOL_READ = 0xEB
    INVERTER_PROTOCOL_WRITE = 0xEC
    CURRENT_LIMIT_READ = 0xED
    CURRENT_LIMIT_WRITE = 0xEE


ALLOWED_COMMANDS: Final = frozenset(Command)
"""Every CID2 the library may put on the wire; nothing else is ever encoded."""

FORBIDDEN_COMMANDS: Final = frozenset(
    {0x7E, 0x7F, 0x80, 0xA4, 0xA5, 0xA7, 0xB3, 0xB4, 0xBD, 0xC3, 0xC4, 0xFF}
    | set(range(0xA9, 0xAE))
    | set(range(0xB7, 0xBD))
)
"""Factory, calibration, test and destructive commands named by the reference."""


def encode_request(
    command: int, adr: int, info: bytes = b"", *, ver: int = VER_PACE, cid1: int = CID1_LFP
) -> bytes:
    """Encode a request frame, refusing any command outside :data:`ALLOWED_COMMANDS`."""
    if command not in ALLOWED_COMMANDS:
        raise ForbiddenCommandError(f"command {command:02X}H is not allowed on the bus")
    if not 0 <= adr <= 0xFF:
        raise ValueError(f"address {adr} out of range")
    return encode_frame(ver, adr, cid1, command, info)
