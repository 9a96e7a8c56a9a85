"""Fixtures for the Home Assistant integration tests (this folder only)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
import logging
from typing import Any

from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.syscom_ress.const import (
    CONF_ADVANCED,
    CONF_BAUDRATE,
    CONF_DEVICE,
    CONF_MASTER_ADDRESS,
    CONF_POLL_MODE,
    CONF_TIMEOUT,
    DOMAIN,
)
from custom_components.syscom_ress.ress_bms.simulator import Simulator


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load custom_components/syscom_ress in every test of this folder."""
    return


class DeprecatedApiReports(logging.Handler):
    """Collects Home Assistant's reports of a deprecated API used by this integration.

    Home Assistant reports such use by a custom integration as a log line, not as a Python
    warning (``helpers.frame.report_usage``, ``helpers.deprecation``), so pyproject's
    ``error::DeprecationWarning:custom_components.syscom_ress.*`` filter cannot see it.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.reports: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the reports that name this integration."""
        message = record.getMessage()
        if f"integration '{DOMAIN}'" in message or (
            message.startswith("The deprecated") and f" from {DOMAIN}." in message
        ):
            self.reports.append(message)


@pytest.fixture(autouse=True)
def deprecated_api_reports() -> Iterator[DeprecatedApiReports]:
    """Fail the test when the integration used an API Home Assistant reports as deprecated."""
    handler = DeprecatedApiReports()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
    assert handler.reports == [], "deprecated Home Assistant API used"


# -- the stack under test: the simulator on a local TCP port -----------------------------------


TEST_TIMEOUT = 0.3
"""Reply timeout of the test entries: a silent pack costs 2 x 0.3 s, not 2 x 1 s."""


def entry_data(
    url: str, *, poll_mode: str = "auto", timeout: float = TEST_TIMEOUT
) -> dict[str, Any]:
    """Config entry data for a stack at ``url``."""
    return {
        CONF_DEVICE: url,
        CONF_BAUDRATE: 9600,
        CONF_ADVANCED: {
            CONF_POLL_MODE: poll_mode,
            CONF_MASTER_ADDRESS: 1,
            CONF_TIMEOUT: timeout,
        },
    }


async def set_up_entry(
    hass: HomeAssistant, url: str, unique_id: str | None, **data: Any
) -> MockConfigEntry:
    """An entry for the stack at ``url`` (``data`` added to :func:`entry_data`), set up."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="RESS battery",  # the config flow's default name: entity ids sensor.ress_battery_...
        unique_id=unique_id,
        data={**entry_data(url), **data},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


@pytest.fixture
def sim_packs() -> int:
    """How many packs the simulated stack has (override in a module or with parametrize)."""
    return 3


@pytest.fixture
async def sim(socket_enabled: None, sim_packs: int) -> AsyncIterator[Simulator]:
    """A simulated stack on 127.0.0.1, time stepped by the test (``sim.advance``)."""
    async with Simulator(packs=sim_packs, seed=1) as simulator:
        yield simulator


@pytest.fixture
def config_entry(sim: Simulator) -> MockConfigEntry:
    """A config entry for the simulated stack (not added to Home Assistant yet)."""
    serial = sim.pack(1).bms_serial
    return MockConfigEntry(
        domain=DOMAIN,
        title="RESS battery",  # the config flow's default name: entity ids sensor.ress_battery_...
        unique_id=serial,
        data=entry_data(sim.url),
    )


@pytest.fixture
async def loaded_entry(hass: HomeAssistant, config_entry: MockConfigEntry) -> MockConfigEntry:
    """The simulated stack, set up in Home Assistant."""
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    return config_entry
