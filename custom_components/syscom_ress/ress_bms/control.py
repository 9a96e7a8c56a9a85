"""Controls: 99H switches, 9AH/9BH charge and discharge MOSFET, 9CH forced shutdown.

99H polarity. The spec says 06 = LED alarm on, 0A = current limiter on, 0D = buzzer on, 08 = high
gear; nkinnan calls LED and limiter "the reverse of documentation". The second reply byte of
nkinnan's own captures is the control status after the change and agrees with the spec:
07 -> 0x22 (bit 5 "LED alarm disabled" set), 0B -> 0x32 (bit 4 "limiter disabled" set),
0D -> 0x01 (bit 0 "buzzer enabled"), 09 -> 0x38 (bit 3 "low gear"). We follow the spec.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from .errors import DecodeError


class Control(IntEnum):
    """99H control codes ([PACE-V3.1] §4.10)."""

    LED_ALARM_ON = 0x06
    LED_ALARM_OFF = 0x07
    LIMITER_HIGH_GEAR = 0x08
    LIMITER_LOW_GEAR = 0x09
    CURRENT_LIMITER_ON = 0x0A
    CURRENT_LIMITER_OFF = 0x0B
    BUZZER_OFF = 0x0C
    BUZZER_ON = 0x0D


SWITCHES: Final[dict[str, tuple[Control, Control]]] = {
    "buzzer": (Control.BUZZER_ON, Control.BUZZER_OFF),
    "led_alarm": (Control.LED_ALARM_ON, Control.LED_ALARM_OFF),
    "current_limiter": (Control.CURRENT_LIMITER_ON, Control.CURRENT_LIMITER_OFF),
    "limiter_low_gear": (Control.LIMITER_LOW_GEAR, Control.LIMITER_HIGH_GEAR),
}
"""Switch name -> (code to turn on, code to turn off)."""

MOS_ON: Final = 0x00
MOS_OFF: Final = 0x01
"""9AH/9BH INFO: 00 = MOSFET on, 01 = off ([PACE-V3.1] §4.11-4.12; nkinnan's captures agree)."""
SHUTDOWN_INFO: Final = b"\x01"
"""9CH: PbmsTools sends INFO 01 (the V3.1 spec says LENID 0); the proven frame wins."""


@dataclass(frozen=True, slots=True)
class ControlReply:
    """99H reply: the echoed code and the control status byte after the change."""

    code: int
    control_status: int | None


def decode_control(info: bytes) -> ControlReply:
    """99H reply: 2 bytes on real firmware, empty per [PACE-V3.1]."""
    if not info:
        return ControlReply(0, None)
    if len(info) != 2:
        raise DecodeError(f"control reply has {len(info)} bytes, expected 2")
    return ControlReply(info[0], info[1])


def decode_mos(info: bytes) -> int | None:
    """9AH/9BH reply: the indication status byte after the change (empty on some firmware)."""
    if len(info) > 1:
        raise DecodeError(f"MOS reply has {len(info)} bytes, expected 1")
    return info[0] if info else None
