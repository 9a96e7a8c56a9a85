"""Every name, state, error and icon the monitoring side uses has its text in strings.json."""

from __future__ import annotations

import json
from pathlib import Path
import re
from typing import Any

import pytest

from custom_components.syscom_ress.binary_sensor import (
    PACK_BINARY_SENSORS,
    cell_balancing_description,
)
from custom_components.syscom_ress.sensor import (
    ENERGY_SENSORS,
    PACK_SENSORS,
    STACK_SENSORS,
    PackMode,
    cell_temperature_description,
    cell_voltage_description,
)

ROOT = Path(__file__).resolve().parents[2] / "custom_components" / "syscom_ress"
STRINGS: dict[str, Any] = json.loads((ROOT / "strings.json").read_text(encoding="utf-8"))
ICONS: dict[str, Any] = json.loads((ROOT / "icons.json").read_text(encoding="utf-8"))


def test_english_translation_is_strings_json() -> None:
    """translations/en.json is strings.json (no references to resolve in this project)."""
    english = json.loads((ROOT / "translations" / "en.json").read_text(encoding="utf-8"))
    assert english == STRINGS


def test_entity_names() -> None:
    """Each sensor and binary sensor description has a translated name with its placeholders."""
    sensors = STRINGS["entity"]["sensor"]
    binary = STRINGS["entity"]["binary_sensor"]
    descriptions = [
        *PACK_SENSORS,
        *STACK_SENSORS,
        *ENERGY_SENSORS,
        cell_voltage_description(1),
        cell_temperature_description(1),
    ]
    for description in descriptions:
        assert description.translation_key in sensors, description.key
    for description in [*PACK_BINARY_SENSORS, cell_balancing_description(1)]:
        assert description.translation_key in binary, description.key
    for table, description in (
        (sensors, cell_voltage_description(1)),
        (sensors, cell_temperature_description(1)),
        (binary, cell_balancing_description(1)),
    ):
        assert description.translation_key is not None
        name = table[description.translation_key]["name"]
        placeholders = set(re.findall(r"{(\w+)}", name))
        assert placeholders == set(description.translation_placeholders or {}), name
    assert set(sensors["pack_state"]["state"]) == {m.value for m in PackMode}


def test_icons_name_known_entities() -> None:
    """icons.json only names translation keys that exist."""
    for platform, icons in ICONS["entity"].items():
        for key in icons:
            assert key in STRINGS["entity"][platform], (platform, key)


@pytest.mark.parametrize("step", ["serial", "network"])
def test_every_field_is_described(step: str) -> None:
    """The connection steps label and describe every field, the advanced section too."""
    strings = STRINGS["config"]["step"][step]
    assert set(strings["data"]) == set(strings["data_description"]) == {"device", "baudrate"}
    advanced = strings["sections"]["advanced"]
    assert set(advanced["data"]) == set(advanced["data_description"])
    assert set(advanced["data"]) == {"poll_mode", "master_address", "timeout"}
    options = STRINGS["options"]["step"]["init"]
    assert set(options["data"]) == set(options["data_description"]) == {"scan_interval"}


def test_errors_and_exceptions() -> None:
    """Errors of the flow and exceptions of the coordinator are all translated."""
    errors = STRINGS["config"]["error"]
    for key in ("cannot_connect", "no_reply", "not_pace", "ver20_unsupported"):
        assert key in errors
        assert key in STRINGS["exceptions"]
    assert {"invalid_url", "unknown"} <= set(errors)
    assert "stack_silent" in STRINGS["exceptions"]
    assert {"already_configured", "reconfigure_successful", "wrong_stack"} <= set(
        STRINGS["config"]["abort"]
    )
