"""The ress_bms library must import without Home Assistant (it is also a stand-alone CLI)."""

from __future__ import annotations

import json
from pathlib import Path
import subprocess
import sys

from tests.conftest import LIBRARY_DIR, REPO_ROOT

# Runs in a fresh interpreter: puts the integration folder on sys.path, imports ress_bms and every
# module below it, and reports what got loaded. Modules come from pkgutil.walk_packages and, so
# that a folder still lacking its __init__.py is covered too, from the *.py files themselves.
# __main__ modules are skipped (importing them runs the CLI).
_IMPORT_EVERYTHING = """
import importlib, json, pathlib, pkgutil, sys
sys.path.insert(0, sys.argv[1])
import ress_bms

def fail(name):
    raise SystemExit(f"cannot import {name}: {sys.exc_info()[1]!r}")

root = pathlib.Path(sys.argv[2])
names = {info.name for info in pkgutil.walk_packages([str(root)], "ress_bms.", onerror=fail)}
for path in root.rglob("*.py"):
    parts = path.relative_to(root).with_suffix("").parts
    if "__pycache__" not in parts:
        names.add(".".join(("ress_bms", *parts)).removesuffix(".__init__"))
imported = ["ress_bms"]
for name in sorted(names):
    if name.rsplit(".", 1)[-1] == "__main__":
        continue
    try:
        importlib.import_module(name)
    except Exception:
        fail(name)
    imported.append(name)
print(json.dumps({
    "path": list(ress_bms.__path__),
    "imported": imported,
    "foreign": sorted(
        name for name in sys.modules
        if name.partition(".")[0] in {"homeassistant", "custom_components"}
    ),
}))
"""


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=120
    )


def test_library_imports_without_home_assistant(tmp_path: Path) -> None:
    """Every module of ress_bms imports in plain Python and loads no Home Assistant module."""
    result = _run("-c", _IMPORT_EVERYTHING, str(LIBRARY_DIR.parent), str(LIBRARY_DIR), cwd=tmp_path)
    assert result.returncode == 0, result.stderr or result.stdout
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert str(LIBRARY_DIR) in report["path"]
    files = [p for p in LIBRARY_DIR.rglob("*.py") if p.stem not in {"__init__", "__main__"}]
    assert len(report["imported"]) > len(files), report["imported"]  # "ress_bms" + one per file
    assert report["foreign"] == [], (
        f"the library pulled in Home Assistant or the integration: {report['foreign']}"
    )


def test_installed_package_is_this_checkout(tmp_path: Path) -> None:
    """`import ress_bms` works from anywhere in the test venv and is this checkout's library."""
    result = _run(
        "-I",
        "-c",
        "import json, ress_bms, sys; print(json.dumps(list(ress_bms.__path__)));"
        "print(sorted(m for m in sys.modules if m.partition('.')[0] == 'homeassistant'))",
        cwd=tmp_path,
    )
    assert result.returncode == 0, (
        "ress_bms is not installed in this venv (script/bootstrap installs the project with "
        f"`pip install -e .`): {result.stderr}"
    )
    lines = result.stdout.strip().splitlines()
    paths = [Path(entry) for entry in json.loads(lines[0]) if Path(entry).is_dir()]
    assert any(path.resolve() == LIBRARY_DIR for path in paths), paths
    assert lines[1] == "[]"


def test_console_script_is_declared() -> None:
    """The project declares the `ress-bms` command and the venv has it."""
    from importlib.metadata import entry_points

    (script,) = entry_points(group="console_scripts", name="ress-bms")
    assert script.value == "ress_bms.cli:main"
    assert (Path(sys.executable).parent / "ress-bms").exists()
    assert (REPO_ROOT / "pyproject.toml").is_file()
