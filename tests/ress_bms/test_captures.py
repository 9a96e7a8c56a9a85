"""Every recording in tests/fixtures/captures replays to the values stored beside it.

A file ``NAME.json`` (a report or a diagnostics download), ``NAME.jsonl`` (a capture) or
``NAME.txt`` (frames pasted one per line) comes with ``NAME.expected.json``: what
``ress-bms replay NAME.* --json`` printed when the file was added and the values were checked
against the battery's own display or the PC tool (tests/fixtures/captures/README.md). A report or
diagnostics file also carries what the client decoded live; its replay must agree with that too.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ress_bms.replay import replay_file
from tests.conftest import REPO_ROOT

CAPTURES = REPO_ROOT / "tests" / "fixtures" / "captures"
RECORDINGS = sorted(
    path
    for path in CAPTURES.iterdir()
    if path.suffix in {".json", ".jsonl", ".txt"} and not path.name.endswith(".expected.json")
)


def _expected(path: Path) -> Path:
    return path.with_name(f"{path.name.rsplit('.', 1)[0]}.expected.json")


def test_there_are_recordings_and_each_has_its_expected_values() -> None:
    assert len(RECORDINGS) >= 3
    expected = set(CAPTURES.glob("*.expected.json"))
    assert {_expected(p) for p in RECORDINGS} == expected, "a recording or its values is missing"


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.name)
def test_replay_gives_the_expected_values(path: Path) -> None:
    expected = json.loads(_expected(path).read_text(encoding="utf-8"))
    assert replay_file(path) == expected


@pytest.mark.parametrize(
    "path", [p for p in RECORDINGS if p.suffix == ".json"], ids=lambda p: p.name
)
def test_replay_of_a_report_agrees_with_what_was_decoded_live(path: Path) -> None:
    document = json.loads(path.read_text(encoding="utf-8"))
    report = document.get("data", {}).get("report", document)
    got = replay_file(path)["summary"]
    assert report["status"]["packs"], "a report fixture should hold a poll"
    for pack in report["status"]["packs"]:
        if "error" not in pack:
            assert got["packs"][str(pack["address"])] == pack
    for read in report["parameters"]:
        if "values" in read:
            assert got["parameters"][str(read["address"])] == read["values"]
    for pack in report["scan"]["packs"]:
        identity = got["identity"].get(str(pack["address"]))
        if identity is not None:
            assert identity["version"] == pack["version"]
            assert identity["bms_serial"] == pack["bms_serial"]
