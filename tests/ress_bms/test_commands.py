"""The allowlist: calibration, factory, test and destructive commands never reach the bus."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from ress_bms.commands import ALLOWED_COMMANDS, FORBIDDEN_COMMANDS, encode_request
from ress_bms.errors import ForbiddenCommandError

LIBRARY = Path(__file__).parents[2] / "custom_components" / "syscom_ress" / "ress_bms"


def test_no_forbidden_command_is_allowed() -> None:
    assert not ALLOWED_COMMANDS & FORBIDDEN_COMMANDS
    # Calibration A9-AD, clear history B3, set capacity A7, set cycles BD, test mode FF.
    assert {0xA9, 0xAD, 0xB3, 0xA7, 0xBD, 0xFF, 0x7E, 0xA4} <= FORBIDDEN_COMMANDS


@pytest.mark.parametrize("command", sorted(FORBIDDEN_COMMANDS))
def test_forbidden_commands_cannot_be_encoded(command: int) -> None:
    with pytest.raises(ForbiddenCommandError):
        encode_request(command, 1)


def test_only_allowed_codes_can_be_encoded() -> None:
    for command in range(256):
        if command in ALLOWED_COMMANDS:
            assert encode_request(command, 1)[7:9] == b"%02X" % command
        else:
            with pytest.raises(ForbiddenCommandError):
                encode_request(command, 1)


def test_client_code_encodes_requests_only_through_the_allowlist() -> None:
    """Outside the codec and the simulator, no module builds a frame by hand."""
    for path in LIBRARY.glob("*.py"):
        if path.name in ("frame.py", "commands.py"):
            continue
        tree = ast.parse(path.read_text())
        names = {
            node.id if isinstance(node, ast.Name) else node.attr
            for node in ast.walk(tree)
            if isinstance(node, (ast.Name, ast.Attribute))
        }
        built = {
            node.func.id
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        }
        assert "encode_frame" not in names, path.name
        assert "Frame" not in built, path.name  # a Frame may be read or named, never made
