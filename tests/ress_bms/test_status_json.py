"""Every named bit of the 44H tables reaches ``decode --json`` and ``status --json``."""

from __future__ import annotations

import json

import pytest

from ress_bms.cli import main
from ress_bms.commands import Command
from ress_bms.frame import VER_PACE, encode_frame
from ress_bms.report import status_json
from ress_bms.simulator import Simulator
from ress_bms.status import (
    EXTRA_BYTES,
    STATUS_BITS,
    Kind,
    PackStatus,
    StatusBit,
    encode_status,
    status_bytes,
)
from tests.ress_bms.test_cli import ress_bms


def _status_with(*keys: str) -> PackStatus:
    return PackStatus(1, (0,) * 16, (0,) * 6, 0, 0, 0, status_bytes(keys, len(EXTRA_BYTES)))


def _reply_frame(pack: PackStatus) -> str:
    """A 44H reply to pack 1 with this status, as the BMS would send it."""
    return encode_frame(VER_PACE, 1, 0x46, 0, encode_status([pack], 1)).decode().strip()


def _decode_json(frame: str, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    assert main(["decode", frame, "--command", f"{Command.STATUS:02X}", "--json"]) == 0
    (pack,) = json.loads(capsys.readouterr().out)["packs"]
    assert isinstance(pack, dict)
    return pack


@pytest.mark.parametrize("bit", STATUS_BITS, ids=lambda b: b.key)
def test_every_bit_is_a_key_with_its_boolean(
    bit: StatusBit, capsys: pytest.CaptureFixture[str]
) -> None:
    """decode --json of a status with exactly this bit set: true there, false everywhere else."""
    pack = _decode_json(_reply_frame(_status_with(bit.key)), capsys)
    bits = pack["bits"]
    assert isinstance(bits, dict)
    assert set(bits) == {kind.value for kind in Kind}
    for other in STATUS_BITS:
        assert bits[other.kind.value][other.name] is (other is bit), other.key


def test_bits_are_the_whole_table_and_nothing_else() -> None:
    bits = status_json(_status_with())["bits"]
    assert sorted((kind, name) for kind, names in bits.items() for name in names) == sorted(
        (bit.kind.value, bit.name) for bit in STATUS_BITS
    )


def test_fully_charged_shutdown_and_settings_of_a_real_block(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Like nkinnan issue #30 (protection 2 = 80, indication 06, control 48), shutting down."""
    pack = _status_with("fully_charged", "charge_mos", "discharge_mos", "shutdown",
                        "limiter_low_gear", "system_lock")  # fmt: skip
    data = _decode_json(_reply_frame(pack), capsys)
    assert data["bits"]["state"]["fully_charged"] is True
    assert data["bits"]["state"]["shutdown"] is True
    assert data["bits"]["setting"]["limiter_low_gear"] is True
    assert data["bits"]["setting"]["system_lock"] is True
    assert data["bits"]["setting"]["buzzer_enabled"] is False
    assert data["status_bytes"]["protection_2"] == "80"
    assert data["status_bytes"]["indication"] == "46"
    # the existing keys keep their meaning
    assert data["protections"] == []
    assert data["charge_mos"] is True
    assert data["discharge_mos"] is True


def test_bytes_the_firmware_did_not_send_read_false(capsys: pytest.CaptureFixture[str]) -> None:
    pack = PackStatus(1, (0,) * 16, (0,) * 6, 0, 0, 0, status_bytes((), 0))
    data = _decode_json(_reply_frame(pack), capsys)
    assert "fault_8" not in data["status_bytes"]
    assert data["bits"]["state"]["pack_locked"] is False
    assert data["bits"]["fault"]["supply_12v"] is False


@pytest.mark.usefixtures("socket_enabled")
async def test_status_json_and_text_on_the_simulator(simulator: Simulator) -> None:
    simulator.raise_protection(2, "cell_over_voltage")
    code, out, _ = await ress_bms("status", "--url", simulator.url, "--json")
    assert code == 0
    packs = json.loads(out)["packs"]
    assert packs[1]["bits"]["protection"]["cell_over_voltage"] is True
    assert packs[1]["bits"]["state"]["charge_mos"] is False  # the protection opened it
    assert packs[0]["bits"]["protection"]["cell_over_voltage"] is False
    for pack in packs:
        assert pack["bits"]["state"]["charge_mos"] is pack["charge_mos"]
        assert pack["bits"]["state"]["discharge_mos"] is pack["discharge_mos"]
    code, out, _ = await ress_bms("status", "--url", simulator.url)
    assert code == 0
    assert "  states: discharge mos" in out
    assert "  settings: " in out
