"""The hosted checks and issue forms under .github/: valid YAML that does what it says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO_ROOT

GITHUB = REPO_ROOT / ".github"
WORKFLOWS = sorted((GITHUB / "workflows").glob("*.yml"))
FORMS = sorted(p for p in (GITHUB / "ISSUE_TEMPLATE").glob("*.yml") if p.name != "config.yml")


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), path
    return data


def _steps() -> list[tuple[str, str, dict[str, Any]]]:
    """(workflow file, job id, step) for every step of every job."""
    found = []
    for path in WORKFLOWS:
        for job_id, job in _load(path)["jobs"].items():
            assert job["runs-on"], f"{path.name}:{job_id} has no runner"
            found += [(path.name, job_id, step) for step in job["steps"]]
    return found


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_runs_on_pushes_and_pull_requests(path: Path) -> None:
    data = _load(path)
    triggers = data.get("on", data.get(True))  # YAML 1.1 reads a bare `on` as true
    assert {"push", "pull_request"} <= set(triggers), path.name
    assert data["permissions"] == {"contents": "read"}


def test_the_official_hassfest_and_hacs_actions() -> None:
    uses = {step.get("uses"): step for _, _, step in _steps() if "uses" in step}
    assert "home-assistant/actions/hassfest@master" in uses
    assert uses["hacs/action@main"]["with"] == {"category": "integration"}


def test_a_job_runs_the_test_suite_as_contributors_do() -> None:
    runs = [(name, job) for name, job, step in _steps() if "script/test" in step.get("run", "")]
    assert runs, "no workflow step runs script/test"
    for name, job in runs:
        steps = _load(GITHUB / "workflows" / name)["jobs"][job]["steps"]
        assert steps[0]["uses"].startswith("actions/checkout@"), "the job tests a checkout"


@pytest.mark.parametrize("path", FORMS, ids=lambda p: p.name)
def test_issue_forms(path: Path) -> None:
    form = _load(path)
    assert form["name"]
    assert form["description"]
    ids = [item["id"] for item in form["body"] if item["type"] != "markdown"]
    assert len(ids) == len(set(ids)), "field ids must be unique"
    for item in form["body"]:
        assert item["type"] in {"markdown", "textarea", "input", "dropdown", "checkboxes"}
        assert item["attributes"]


def test_the_not_recognised_form_asks_for_the_report() -> None:
    form = _load(GITHUB / "ISSUE_TEMPLATE" / "battery_not_recognised.yml")
    intro = form["body"][0]["attributes"]["value"]
    assert "ress-bms report" in intro
    assert "docs/troubleshooting.md#sending-a-report" in intro
    report = next(item for item in form["body"] if item.get("id") == "report")
    assert report["validations"]["required"] is True
    bug = _load(GITHUB / "ISSUE_TEMPLATE" / "bug_report.yml")
    assert "ress-bms report" in bug["body"][0]["attributes"]["value"]
    troubleshooting = (REPO_ROOT / "docs" / "troubleshooting.md").read_text(encoding="utf-8")
    assert "\n## Sending a report\n" in troubleshooting  # the anchor both forms link to
