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
from custom_components.syscom_ress.estimates import EndSource
from custom_components.syscom_ress.sensor import (
    ENERGY_SENSORS,
    PACK_ENERGY_SENSORS,
    PACK_SENSORS,
    STACK_SENSORS,
    TIME_SENSORS,
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
        *PACK_ENERGY_SENSORS,
        *TIME_SENSORS,
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


def test_attributes_and_places() -> None:
    """The attributes the entities add are named; end sources and place strings are there."""
    sensors = STRINGS["entity"]["sensor"]
    for key in ("time_to_full", "time_to_empty"):
        attributes = sensors[key]["state_attributes"]
        assert set(attributes) == {"end_soc", "end_source"}
        assert set(attributes["end_source"]["state"]) <= {s.value for s in EndSource}
    assert set(sensors["time_to_full"]["state_attributes"]["end_source"]["state"]) == {
        "full_charge_voltage",
        "capacity",
        "thresholds",
        "partial",
    }
    for key in ("min_cell_voltage", "max_cell_voltage"):
        assert set(sensors[key]["state_attributes"]) == {"cell", "pack"}
    for kind in ("any_protection", "any_alarm", "any_fault"):
        attributes = STRINGS["entity"]["binary_sensor"][kind]["state_attributes"]
        assert set(attributes) == {"active", "messages"}
    event = STRINGS["entity"]["event"]["protection_event"]["state_attributes"]
    assert {"name", "kind", "cells", "sensors", "message"} <= set(event)
    common = STRINGS["common"]
    for key, placeholder in (
        ("place_pack", "pack"),
        ("place_cell", "cell"),
        ("place_cells", "cells"),
    ):
        assert re.findall(r"{(\w+)}", common[key]) == [placeholder], key


def test_icons_name_known_entities() -> None:
    """icons.json only names translation keys that exist."""
    for platform, icons in ICONS["entity"].items():
        for key in icons:
            assert key in STRINGS["entity"][platform], (platform, key)


@pytest.mark.parametrize("step", ["serial", "network"])
def test_every_field_is_described(step: str) -> None:
    """The connection steps label and describe every field, the advanced section too."""
    strings = STRINGS["config"]["step"][step]
    assert set(strings["data"]) == set(strings["data_description"]) == {"device"}
    advanced = strings["sections"]["advanced"]
    assert set(advanced["data"]) == set(advanced["data_description"])
    fields = {"dialect", "baudrate", "poll_mode", "master_address", "timeout"}
    assert set(advanced["data"]) == fields
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
