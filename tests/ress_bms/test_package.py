"""``ress_bms`` is a regular package: its public names, its version, and a cheap import."""

from __future__ import annotations

from importlib import import_module
import json
import subprocess
import sys

import pytest

import ress_bms
from tests.conftest import LIBRARY_DIR

PUBLIC = sorted(set(ress_bms.__all__) - {"__version__", "DISTRIBUTION"})


def test_a_regular_package_with_a_docstring() -> None:
    assert ress_bms.__file__ is not None
    assert ress_bms.__file__ == str(LIBRARY_DIR / "__init__.py")
    assert ress_bms.__doc__ is not None
    assert "StackClient" in ress_bms.__doc__


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_is_the_submodule_object(name: str) -> None:
    module = import_module(f"ress_bms.{ress_bms._EXPORTS[name]}")
    assert getattr(ress_bms, name) is getattr(module, name)
    assert name in dir(ress_bms)


def test_all_lists_the_exports() -> None:
    assert set(ress_bms.__all__) == {"__version__", "DISTRIBUTION", *ress_bms._EXPORTS}


def test_submodules_are_not_shadowed() -> None:
    """``from ress_bms import analog`` is still the module (names and modules never clash)."""
    from ress_bms import analog, status

    assert analog.__name__ == "ress_bms.analog"
    assert status.STATUS_BITS is ress_bms.STATUS_BITS
    assert not set(ress_bms._EXPORTS) & {p.stem for p in LIBRARY_DIR.glob("*.py")}


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'StackKlient'"):
        _ = ress_bms.StackKlient  # type: ignore[attr-defined]


def test_version_is_the_manifest_version() -> None:
    manifest = json.loads((LIBRARY_DIR.parent / "manifest.json").read_text(encoding="utf-8"))
    assert ress_bms.__version__ == manifest["version"]


def test_import_is_cheap_and_names_load_on_use() -> None:
    """``import ress_bms`` alone loads neither asyncio nor serialx; a name brings its module."""
    code = (
        "import json, sys, ress_bms\n"
        "watch = ('asyncio', 'serialx', 'ress_bms.client')\n"
        "before = sorted(m for m in watch if m in sys.modules)\n"
        "from ress_bms import PackStatus, StackClient\n"
        "after = sorted(m for m in watch if m in sys.modules)\n"
        "print(json.dumps([before, after, StackClient.__module__]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    before, after, module = json.loads(result.stdout)
    assert before == []
    assert after == ["asyncio", "ress_bms.client", "serialx"]
    assert module == "ress_bms.client"
