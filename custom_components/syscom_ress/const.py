"""Constants of the Syscom RESS battery integration."""

from __future__ import annotations

from datetime import timedelta
import logging
from typing import Final

from homeassistant.const import Platform

from .ress_bms.client import DEFAULT_MASTER_ADDRESS, PollMode
from .ress_bms.link import BAUDRATES, DEFAULT_BAUDRATE, DEFAULT_TIMEOUT

DOMAIN: Final = "syscom_ress"
LOGGER: Final = logging.getLogger(__package__)

PLATFORMS: Final[list[Platform]] = [
    Platform.BINARY_SENSOR,
    Platform.EVENT,
    Platform.NUMBER,
    Platform.SENSOR,
    Platform.SWITCH,
]
"""Every platform of the integration, in one list (the control side appends its own)."""

MANUFACTURER: Final = "Syscom"
STACK_MODEL: Final = "RESS rack battery"
PACK_MODEL: Final = "RESS rack battery pack"

# Config entry data. The connection lives under "device" because Home Assistant's serial port
# bookkeeping (usb.async_get_serial_port_consumers) looks for it there.
CONF_DEVICE: Final = "device"
CONF_BAUDRATE: Final = "baudrate"
CONF_ADVANCED: Final = "advanced"
CONF_POLL_MODE: Final = "poll_mode"
CONF_MASTER_ADDRESS: Final = "master_address"
CONF_TIMEOUT: Final = "timeout"
CONF_SCAN_INTERVAL: Final = "scan_interval"
CONF_DIALECT: Final = "dialect"
"""The protocol the stack speaks: a :data:`~.ress_bms.dialects.DIALECTS` key. Entries made
before dialects were known hold none: they speak PACE VER 0x25 (:data:`DEFAULT_DIALECT`)."""

DEFAULT_DIALECT: Final = "pace"
DETECT: Final = "auto"
"""The flow's "Detect automatically" choice for the dialect and the baud rate (never stored)."""

BAUDRATE_OPTIONS: Final = BAUDRATES
DEFAULT_BAUD: Final = DEFAULT_BAUDRATE
DEFAULT_POLL_MODE: Final = PollMode.AUTO
DEFAULT_MASTER: Final = DEFAULT_MASTER_ADDRESS
DEFAULT_LINK_TIMEOUT: Final = DEFAULT_TIMEOUT
MIN_LINK_TIMEOUT: Final = 0.3
MAX_LINK_TIMEOUT: Final = 10.0
MAX_MASTER_ADDRESS: Final = 15

DEFAULT_SCAN_INTERVAL: Final = 30
MIN_SCAN_INTERVAL: Final = 5
MAX_SCAN_INTERVAL: Final = 3600

MISSED_REFRESHES_UNAVAILABLE: Final = 3
"""A pack (or the whole stack) turns unavailable after this many refreshes without a reply."""
REDISCOVERY_INTERVAL: Final = timedelta(minutes=10)
"""How often the stack is asked again how many packs it has (a pack added later)."""
DIALECT_CHECK_INTERVAL: Final = timedelta(hours=1)
"""A stack silent for :data:`MISSED_REFRESHES_UNAVAILABLE` refreshes is probed read-only in
every dialect (a firmware update or a changed protocol setting) at most this often."""
IDLE_CURRENT: Final = 0.2
"""Below this current (A, either way) a pack counts as standing by, not (dis)charging."""
ALARM_CLEAR_HOLD: Final = timedelta(minutes=2)
"""An alarm counts as cleared once no refresh has seen it for this long.

The BMS clears an alarm as soon as its value is back inside the threshold (no release value,
unlike a protection), so a value that hovers at the threshold flips it at every poll."""
BALANCING_HOLD: Final = timedelta(minutes=5)
"""The Balancing binary sensor stays on this long after the last refresh that saw balancing."""
MAX_INTEGRATION_GAP: Final = 600.0
"""Energy is not integrated across a gap between two readings longer than this (seconds)."""
