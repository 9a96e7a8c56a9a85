"""The next deprecation in the integration's own code fails the tests, whichever way it comes.

Python warnings from the integration's modules are errors (pyproject's ``filterwarnings``), and
Home Assistant's own reports of a deprecated API used by the integration fail the test that
triggered them (``deprecated_api_reports`` in conftest.py). Both are checked here to really
trigger, on the deprecation that was in services.py: ``DeviceEntry.config_entries``.
"""

from __future__ import annotations

from pathlib import Path
import warnings

from awesomeversion import AwesomeVersion
from homeassistant.const import __version__ as HA_VERSION
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import device_registry as dr, frame
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.syscom_ress.const import DOMAIN

from .conftest import DeprecatedApiReports

INTEGRATION = Path(__file__).resolve().parents[2] / "custom_components" / DOMAIN


@pytest.mark.parametrize("module", ["custom_components.syscom_ress.services", "ress_bms.client"])
def test_a_deprecation_warning_of_the_integration_is_an_error(module: str) -> None:
    with pytest.raises(DeprecationWarning):
        warnings.warn_explicit("old API", DeprecationWarning, "x.py", 1, module=module)


def test_a_deprecation_warning_of_someone_else_is_not() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # what the filters leave alone shows up here
        warnings.filterwarnings(
            "error", category=DeprecationWarning, module=r"custom_components\.syscom_ress.*"
        )
        warnings.warn_explicit(
            "old API", DeprecationWarning, "x.py", 1, module="homeassistant.helpers.foo"
        )
    assert [str(w.message) for w in caught] == ["old API"]


async def test_home_assistant_reports_of_deprecated_api_use_are_caught(
    hass: HomeAssistant, deprecated_api_reports: DeprecatedApiReports
) -> None:
    """What Home Assistant's frame helper reports from the integration's code is caught."""
    # Code that Home Assistant takes for the integration's own (its file name says so).
    probe = compile(
        "report_usage('uses an old API', breaks_in_ha_version='2099.1.0')",
        str(INTEGRATION / "probe.py"),
        "eval",
    )
    eval(probe, {"report_usage": frame.report_usage})
    (report,) = deprecated_api_reports.reports
    assert "uses an old API" in report
    deprecated_api_reports.reports.clear()  # seen: this test passes


async def test_device_entry_config_entries_is_reported(
    hass: HomeAssistant, deprecated_api_reports: DeprecatedApiReports
) -> None:
    """The deprecation that was in services.py is one such report (from Home Assistant 2026.10)."""
    entry = MockConfigEntry(domain=DOMAIN)
    entry.add_to_hass(hass)
    device = dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id, identifiers={(DOMAIN, "x")}
    )
    probe = compile("device.config_entries", str(INTEGRATION / "probe.py"), "eval")
    eval(probe, {"device": device})
    if not deprecated_api_reports.reports:
        assert AwesomeVersion(HA_VERSION) < AwesomeVersion("2026.10.0")  # not deprecated yet
        return
    (report,) = deprecated_api_reports.reports
    assert "config_entries" in report
    assert "config_entry_id" in report
    deprecated_api_reports.reports.clear()


async def test_services_use_no_deprecated_api(
    hass: HomeAssistant, deprecated_api_reports: DeprecatedApiReports
) -> None:
    """The action's device lookup (services._target) no longer reads config_entries."""
    from homeassistant.core import ServiceCall

    from custom_components.syscom_ress.services import _target

    entry = MockConfigEntry(domain=DOMAIN)
    entry.add_to_hass(hass)
    device = dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id, identifiers={(DOMAIN, "x")}
    )
    call = ServiceCall(hass, DOMAIN, "read_parameters", {"device_id": device.id})
    with pytest.raises(ServiceValidationError) as err:
        _target(hass, call)
    assert err.value.translation_key == "entry_not_loaded"
    assert deprecated_api_reports.reports == []
