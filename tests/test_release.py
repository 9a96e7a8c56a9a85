"""Releases: one version everywhere, the HACS zip, the changelog, and the zip installed for real."""

from __future__ import annotations

from datetime import date
from importlib.metadata import version as installed_version
import importlib.util
import json
import os
from pathlib import Path
import re
import shutil
import subprocess
import sys
from types import ModuleType
import zipfile

import pytest

from tests.conftest import REPO_ROOT

INTEGRATION = REPO_ROOT / "custom_components" / "syscom_ress"


def _load_release() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ress_release", REPO_ROOT / "script/release.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and friends look their module up
    spec.loader.exec_module(module)
    return module


release = _load_release()


# -- one version ------------------------------------------------------------------------------


def test_one_version_everywhere() -> None:
    """manifest.json, pyproject.toml, the library and the newest changelog entry agree."""
    import ress_bms

    version = release.manifest_version()
    assert release.pyproject_version() == version
    assert ress_bms.__version__ == version
    assert installed_version("syscom-ress") == version  # the editable install of this checkout
    changelog = (REPO_ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert release.released_versions(changelog)[0] == version


def test_changelog_is_keep_a_changelog() -> None:
    text = (REPO_ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert text.startswith("# Changelog\n")
    assert "## [Unreleased]" in text
    releases = re.findall(r"^## \[(\d[^\]]*)\] - (\d{4}-\d{2}-\d{2})$", text, re.M)
    assert releases, "every release heading reads '## [X.Y.Z] - YYYY-MM-DD'"
    assert releases[-1][0] == "0.1.0"
    for name, _ in releases:
        assert re.search(rf"^\[{re.escape(name)}\]: https://", text, re.M), f"no link for {name}"
    assert (
        (REPO_ROOT / "LICENSE")
        .read_text(encoding="utf-8")
        .lstrip()
        .startswith("Apache License\n                           Version 2.0, January 2004")
    )


def test_hacs_takes_the_zip() -> None:
    hacs = json.loads((REPO_ROOT / "hacs.json").read_text(encoding="utf-8"))
    assert hacs["zip_release"] is True
    assert hacs["filename"] == "syscom_ress.zip"
    manifest = json.loads((INTEGRATION / "manifest.json").read_text(encoding="utf-8"))
    assert hacs["homeassistant"] in (REPO_ROOT / "info.md").read_text(encoding="utf-8")
    assert manifest["domain"] == "syscom_ress"


# -- the zip ----------------------------------------------------------------------------------


def _tracked_integration_files() -> set[str]:
    result = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "."],
        cwd=INTEGRATION, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return set(result.stdout.split())


def test_zip_holds_the_integration_at_its_root(tmp_path: Path) -> None:
    """HACS unpacks the asset into custom_components/syscom_ress/ as it is."""
    archive = release.build_zip(tmp_path, "9.8.7")
    assert archive.name == "syscom_ress.zip"
    with zipfile.ZipFile(archive) as zipped:
        names = set(zipped.namelist())
        manifest = json.loads(zipped.read("manifest.json"))
    assert {"manifest.json", "__init__.py", "ress_bms/__init__.py", "ress_bms/py.typed",
            "brand/icon.png", "translations/en.json", "LICENSE"} <= names  # fmt: skip
    assert names - {"LICENSE"} == _tracked_integration_files()
    assert not [n for n in names if n.startswith("custom_components/") or "__pycache__" in n]
    assert manifest["version"] == "9.8.7"
    assert list(manifest)[:2] == ["domain", "name"]
    assert json.loads((INTEGRATION / "manifest.json").read_text())["version"] != "9.8.7"


def test_zip_is_reproducible(tmp_path: Path) -> None:
    first = release.build_zip(tmp_path / "a").read_bytes()
    second = release.build_zip(tmp_path / "b").read_bytes()
    assert first == second


def test_release_zip_installs_and_loads(tmp_path: Path) -> None:
    """A fresh config with only the unzipped release: the integration loads and reads a stack.

    The zip is ``RESS_RELEASE_ZIP`` when script/release runs this test, else built here. The
    check runs in a new interpreter with the fresh config as its only ``custom_components``.
    """
    given = os.environ.get("RESS_RELEASE_ZIP")
    version = os.environ.get("RESS_RELEASE_VERSION", release.manifest_version())
    archive = Path(given) if given else release.build_zip(tmp_path / "dist")
    config = tmp_path / "config"
    target = config / "custom_components" / "syscom_ress"
    target.mkdir(parents=True)
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(target)
    shutil.copy(REPO_ROOT / "tests" / "fixtures" / "installed_check.py",
                config / "test_installed.py")  # fmt: skip
    (config / "pytest.ini").write_text(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
        "filterwarnings = ignore::DeprecationWarning:pytest_asyncio.*\n",
        encoding="utf-8",
    )
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_", "PYTHONPATH"))
    }
    env["RESS_RELEASE_VERSION"] = version
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_installed.py"],
        cwd=config, env=env, capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "1 passed" in result.stdout


# -- version and changelog writing ------------------------------------------------------------


CHANGELOG = """# Changelog

Intro.

## [Unreleased]

### Added

- A thing.

## [0.1.0] - 2026-11-24

### Added

- The start.

[Unreleased]: https://github.com/syscom-ress/ha-syscom-ress/compare/v0.1.0...HEAD
[0.1.0]: https://github.com/syscom-ress/ha-syscom-ress/releases/tag/v0.1.0
"""


def test_changelog_section_moves_under_the_version() -> None:
    text = release.release_changelog(CHANGELOG, "0.2.0", date(2026, 12, 24))
    assert release.unreleased_notes(text) == ""
    assert release.released_versions(text) == ["0.2.0", "0.1.0"]
    assert (
        "## [Unreleased]\n\n## [0.2.0] - 2026-12-24\n\n### Added\n\n- A thing.\n\n## [0.1.0]"
        in text
    )
    assert text.endswith(
        "[Unreleased]: https://github.com/syscom-ress/ha-syscom-ress/compare/v0.2.0...HEAD\n"
        "[0.2.0]: https://github.com/syscom-ress/ha-syscom-ress/compare/v0.1.0...v0.2.0\n"
        "[0.1.0]: https://github.com/syscom-ress/ha-syscom-ress/releases/tag/v0.1.0\n"
    )


def test_nothing_unreleased_is_refused() -> None:
    text = release.release_changelog(CHANGELOG, "0.2.0", date(2026, 12, 24))
    with pytest.raises(release.ReleaseError, match="nothing under"):
        release.release_changelog(text, "0.3.0", date(2026, 12, 25))


@pytest.mark.parametrize(
    ("older", "newer"),
    [("0.1.0", "0.1.1"), ("0.1.9", "0.2.0"), ("0.2.0b1", "0.2.0rc1"), ("0.2.0rc2", "0.2.0")],
)
def test_version_order(older: str, newer: str) -> None:
    assert release.version_key(older) < release.version_key(newer)


def test_bad_version_is_refused() -> None:
    with pytest.raises(release.ReleaseError, match="not a version"):
        release.version_key("v1.2")


def _copy_tree(root: Path) -> None:
    shutil.copytree(INTEGRATION, root / "custom_components" / "syscom_ress",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    for name in ("hacs.json", "pyproject.toml", "LICENSE"):
        shutil.copy(REPO_ROOT / name, root / name)
    (root / "CHANGELOG.md").write_text(CHANGELOG, encoding="utf-8")


def test_release_writes_version_and_changelog_and_nothing_else(tmp_path: Path) -> None:
    _copy_tree(tmp_path)
    pyproject = (tmp_path / "pyproject.toml").read_text(encoding="utf-8")
    archive = release.release(["0.2.0", "--no-check", "--out", str(tmp_path / "dist"),
                               "--date", "2026-12-24"], root=tmp_path)  # fmt: skip
    assert archive == tmp_path / "dist" / "syscom_ress.zip"
    assert release.manifest_version(tmp_path) == "0.2.0"
    assert release.pyproject_version(tmp_path) == "0.2.0"
    after = (tmp_path / "pyproject.toml").read_text(encoding="utf-8")
    assert after == pyproject.replace('version = "0.1.0"', 'version = "0.2.0"', 1)
    assert "## [0.2.0] - 2026-12-24" in (tmp_path / "CHANGELOG.md").read_text(encoding="utf-8")
    with zipfile.ZipFile(archive) as zipped:
        assert json.loads(zipped.read("manifest.json"))["version"] == "0.2.0"
    notes = (tmp_path / "dist" / "release-notes-0.2.0.md").read_text(encoding="utf-8")
    assert notes == "### Added\n\n- A thing.\n"
    # the same version again only rebuilds; an older one is refused
    release.release(["0.2.0", "--no-check", "--out", str(tmp_path / "dist")], root=tmp_path)
    assert release.released_versions((tmp_path / "CHANGELOG.md").read_text()) == ["0.2.0", "0.1.0"]
    with pytest.raises(release.ReleaseError, match="not newer"):
        release.release(["0.1.5", "--no-check", "--out", str(tmp_path / "dist")], root=tmp_path)


def test_dry_run_changes_no_file(tmp_path: Path) -> None:
    _copy_tree(tmp_path)
    release.release(["0.2.0", "--dry-run", "--no-check", "--out", str(tmp_path / "dist")],
                    root=tmp_path)  # fmt: skip
    assert release.manifest_version(tmp_path) == "0.1.0"
    assert (tmp_path / "CHANGELOG.md").read_text(encoding="utf-8") == CHANGELOG


def test_script_help_and_errors_are_short() -> None:
    result = subprocess.run([REPO_ROOT / "script" / "release", "--help"],
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode == 0
    assert result.stdout.startswith("usage: script/release")
    assert "--dry-run" in result.stdout
    result = subprocess.run([REPO_ROOT / "script" / "release", "latest", "--no-check"],
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode == 1
    assert result.stderr == (
        "script/release: 'latest' is not a version like 1.2.3, 1.2.3b1 or 1.2.3rc1\n"
    )
