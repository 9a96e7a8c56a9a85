"""German and Dutch translations mirror the English source key by key.

Every key path of strings.json must exist in de.json and nl.json (and no
other), every value must be a non-empty string, and each string must keep
the English placeholders ({...}) and [%key:...%] references unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path
import re
from typing import Any

import pytest

COMPONENT = Path(__file__).parents[2] / "custom_components" / "syscom_ress"
LANGUAGES = ("de", "nl")

KEY_REF = re.compile(r"\[%key:[^%]*%\]")
PLACEHOLDER = re.compile(r"\{[^{}]*\}")


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """Map every leaf's dotted key path to its value."""
    if not isinstance(node, dict):
        return {prefix: node}
    flat: dict[str, Any] = {}
    for key, value in node.items():
        flat.update(_flatten(value, f"{prefix}.{key}" if prefix else key))
    return flat


def _load(path: Path) -> dict[str, Any]:
    return _flatten(json.loads(path.read_text(encoding="utf-8")))


def _markers(text: str) -> tuple[list[str], list[str]]:
    refs = KEY_REF.findall(text)
    return sorted(PLACEHOLDER.findall(KEY_REF.sub("", text))), sorted(refs)


ENGLISH = _load(COMPONENT / "strings.json")


@pytest.mark.parametrize("language", LANGUAGES)
def test_same_key_paths_as_english(language: str) -> None:
    translated = _load(COMPONENT / "translations" / f"{language}.json")
    assert set(translated) - set(ENGLISH) == set(), "keys not in English"
    assert set(ENGLISH) - set(translated) == set(), "English keys not translated"


@pytest.mark.parametrize("language", LANGUAGES)
def test_values_are_non_empty_strings(language: str) -> None:
    translated = _load(COMPONENT / "translations" / f"{language}.json")
    bad = {
        path: value
        for path, value in translated.items()
        if not isinstance(value, str) or not value.strip()
    }
    assert bad == {}


@pytest.mark.parametrize("language", LANGUAGES)
def test_placeholders_and_key_references_match_english(language: str) -> None:
    translated = _load(COMPONENT / "translations" / f"{language}.json")
    mismatched = {
        path: (ENGLISH[path], translated[path])
        for path in ENGLISH.keys() & translated.keys()
        if isinstance(translated[path], str)
        and _markers(translated[path]) != _markers(ENGLISH[path])
    }
    assert mismatched == {}
