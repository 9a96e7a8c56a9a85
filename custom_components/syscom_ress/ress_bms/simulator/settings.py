"""The parameter memory of one BMS: every group stored as the bytes a read returns.

Reads return the stored payload; writes replace it (after the firmware's own checks) and the
decoded values, read through the one parameter table (:mod:`ress_bms.params`), drive the BMS.
"""

from __future__ import annotations

from typing import Final

from ..params import GROUPS, GROUPS_BY_KEY, PARAMETERS_BY_KEY, ParameterGroup, default_values

RTN_FORMAT: Final = 0x05
RTN_INVALID: Final = 0x06

EXTRA_DEFAULTS: Final[dict[str, float]] = {
    # The user guide gives no value for these; the Jakiper capture's values stand in.
    "discharge_over_current_2_protection": 150,
    "discharge_over_current_2_delay": 0.1,
    "short_circuit_delay": 300,
    "balance_start_voltage": 3.4,
    "balance_delta": 30,
    "sleep_voltage": 3.1,
    "sleep_delay": 5,
    "full_charge_voltage": 56.0,
    "full_charge_current": 2.0,
    "low_soc_alarm": 5,
    "current_limit_start": 100,
    "inverter_protocol_can": 0x13,
    "inverter_protocol_rs485": 0x14,
    "inverter_protocol_manual": 0,
}
CHARGE_OC2_TAIL: Final = bytes.fromhex("009604")
"""Charge OC2 150 A, 4 x 25 ms: the last three bytes of the Jakiper E3H reply."""
UNCHANGED: Final = 0xFF
"""EB/EC: a protocol byte of FF leaves that protocol as it is ([PACE-V3.1] §4.73)."""

GROUP_BY_COMMAND: Final[dict[int, tuple[ParameterGroup, bool]]] = {
    **{int(g.read): (g, False) for g in GROUPS},
    **{int(g.write): (g, True) for g in GROUPS},
}
"""CID2 -> (group, is a write)."""


def has_enable_byte(group: ParameterGroup) -> bool:
    """Whether the payload starts with the "function control" enable flag (D0-E1, E6/E7)."""
    return min(p.offset for p in group.parameters) == 1


class Settings:
    """Stored parameter payloads and their decoded values."""

    def __init__(self, cells: int) -> None:
        defaults = {**EXTRA_DEFAULTS, **default_values(cells)}
        defaults["full_charge_voltage"] = round(
            EXTRA_DEFAULTS["full_charge_voltage"] * cells / 16, 2
        )
        self.payloads: dict[str, bytes] = {}
        self.values: dict[str, float] = {}
        self._enabled: dict[str, bool] = {}
        for group in GROUPS:
            data = bytearray(group.size)
            if has_enable_byte(group):
                data[0] = 0x01
            if group.key == "discharge_over_current_2":
                data[3:6] = CHARGE_OC2_TAIL
            for param in group.parameters:
                data[param.offset : param.offset + param.size] = _stored(
                    param.key, param.encode(defaults[param.key])
                )
            self._store(group, bytes(data))

    def _store(self, group: ParameterGroup, payload: bytes) -> None:
        self.payloads[group.key] = payload
        self.values.update(group.decode(payload))
        self._enabled[group.key] = not has_enable_byte(group) or payload[0] != 0

    def read(self, group: ParameterGroup) -> bytes:
        """The payload a read of this group returns."""
        return self.payloads[group.key]

    def enabled(self, group_key: str) -> bool:
        """Whether a group's function is enabled (groups without the flag always are)."""
        return self._enabled[group_key]

    def write(self, group: ParameterGroup, payload: bytes) -> int:
        """Apply a write; return the RTN (0 = stored)."""
        sizes = {group.write_size or group.size, group.size}
        if len(payload) not in sizes:
            return RTN_FORMAT
        data = bytearray(self.payloads[group.key])
        for param in group.parameters:
            if param.offset + param.size > len(payload):
                continue
            written = payload[param.offset : param.offset + param.size]
            if group.key == "inverter_protocol" and written[0] == UNCHANGED:
                continue
            data[param.offset : param.offset + param.size] = _stored(param.key, written)
        if has_enable_byte(group):
            data[0] = payload[0]
        values = group.decode(bytes(data))
        if any(PARAMETERS_BY_KEY[key].check(value) for key, value in values.items()):
            return RTN_INVALID
        self._store(group, bytes(data))
        return 0

    def set(self, key: str, value: float) -> None:
        """Set one value directly (tests and the control socket), bypassing the wire."""
        param = PARAMETERS_BY_KEY[key]
        group = GROUPS_BY_KEY[param.group]
        data = bytearray(self.payloads[group.key])
        data[param.offset : param.offset + param.size] = _stored(key, param.encode(value))
        self._store(group, bytes(data))


def _stored(key: str, written: bytes) -> bytes:
    """What the BMS keeps for written bytes: discharge currents are kept negative (FF97)."""
    if not PARAMETERS_BY_KEY[key].magnitude:
        return written
    return (-abs(int.from_bytes(written, signed=True))).to_bytes(len(written), signed=True)
