"""Home Assistant finds, parses and loads the custom integration."""

from __future__ import annotations

import json
from pathlib import Path

import homeassistant
from homeassistant.const import __version__ as HA_VERSION
from homeassistant.core import HomeAssistant
from homeassistant.loader import async_get_integration
from homeassistant.setup import async_setup_component
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
import pytest

from custom_components.syscom_ress.const import DOMAIN

MANIFEST = Path(__file__).resolve().parents[2] / "custom_components" / DOMAIN / "manifest.json"


def _core_pins() -> dict[str, str]:
    """Exact versions pinned by the installed core (homeassistant/package_constraints.txt)."""
    pins: dict[str, str] = {}
    constraints = Path(homeassistant.__file__).parent / "package_constraints.txt"
    for raw in constraints.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        req = Requirement(line)
        exact = [spec.version for spec in req.specifier if spec.operator == "=="]
        if exact and req.marker is None:
            pins[canonicalize_name(req.name)] = exact[0]
    return pins


CORE_PINS = _core_pins()
MANIFEST_REQUIREMENTS = json.loads(MANIFEST.read_text(encoding="utf-8"))["requirements"]


async def test_manifest_parses(hass: HomeAssistant) -> None:
    """The loader finds the integration in custom_components and reads its manifest."""
    integration = await async_get_integration(hass, DOMAIN)
    assert integration.domain == "syscom_ress"
    assert integration.name == "Syscom RESS battery"
    assert integration.config_flow is True
    assert integration.iot_class == "local_polling"
    assert integration.integration_type == "hub"
    assert not integration.is_built_in
    assert integration.version is not None
    assert integration.documentation
    assert integration.issue_tracker
    assert integration.manifest["codeowners"]
    keys = list(json.loads(MANIFEST.read_text(encoding="utf-8")))
    assert keys[:2] == ["domain", "name"], "hassfest wants domain, name, then the rest sorted"
    assert keys[2:] == sorted(keys[2:]), "hassfest wants domain, name, then the rest sorted"
    assert integration.requirements == MANIFEST_REQUIREMENTS


async def test_component_loads(hass: HomeAssistant) -> None:
    """The integration module imports and sets up inside Home Assistant."""
    integration = await async_get_integration(hass, DOMAIN)
    assert integration.get_component() is not None
    assert await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    assert DOMAIN in hass.config.components


def test_core_pins_serialx() -> None:
    """The installed core pins serialx, so the requirement check below is meaningful."""
    assert "serialx" in CORE_PINS
    assert any(canonicalize_name(Requirement(r).name) == "serialx" for r in MANIFEST_REQUIREMENTS)


@pytest.mark.parametrize("requirement", MANIFEST_REQUIREMENTS)
def test_requirement_accepts_core_pin(requirement: str) -> None:
    """Each manifest requirement that core pins must accept core's version, or HA cannot install."""
    req = Requirement(requirement)
    pinned = CORE_PINS.get(canonicalize_name(req.name))
    if pinned is None:
        pytest.skip(f"Home Assistant {HA_VERSION} does not pin {req.name}")
    assert req.specifier.contains(pinned, prereleases=True), (
        f"{requirement} rejects {req.name}=={pinned} pinned by Home Assistant {HA_VERSION}"
    )
