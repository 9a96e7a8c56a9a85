"""Shared helpers of the control-side tests (numbers, switches, actions, events, repairs)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from unittest.mock import PropertyMock, patch

from homeassistant.core import HomeAssistant
import pytest

from custom_components.syscom_ress.coordinator import StackCoordinator
from custom_components.syscom_ress.number import ParameterNumber
from custom_components.syscom_ress.ress_bms.simulator import protocol
from custom_components.syscom_ress.switch import ShutdownSwitch

PACK1 = "ress_battery_pack_1_"
PACK2 = "ress_battery_pack_2_"


@contextmanager
def _enabled(classes: tuple[type, ...]) -> Iterator[None]:
    patches = [
        patch.object(
            cls, "entity_registry_enabled_default", new_callable=PropertyMock, return_value=True
        )
        for cls in classes
    ]
    for p in patches:
        p.start()
    try:
        yield
    finally:
        for p in patches:
            p.stop()


@pytest.fixture
def enable_numbers() -> Iterator[None]:
    """The threshold numbers are enabled (they are disabled by default)."""
    with _enabled((ParameterNumber,)):
        yield


@pytest.fixture
def enable_shutdown() -> Iterator[None]:
    """The forced-shutdown switch is enabled (it is disabled by default)."""
    with _enabled((ShutdownSwitch,)):
        yield


def chained(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the simulated slaves answer nothing at their own address (a master/slave chain).

    The master then answers every frame on the bus, as a stack wired through its master's RS485
    port does: slaves are reached only through the master's relayed 42H/44H.
    """
    original = protocol.addressed

    def master_only(stack, adr):  # type: ignore[no-untyped-def]
        pack = original(stack, adr)
        return pack if pack is None or pack is stack.master else None

    monkeypatch.setattr(protocol, "addressed", master_only)


async def refresh(hass: HomeAssistant, coordinator: StackCoordinator) -> None:
    """One poll of the stack, and every state written."""
    await coordinator.async_refresh()
    await hass.async_block_till_done(wait_background_tasks=True)


async def settle_history(hass: HomeAssistant, coordinator: StackCoordinator) -> int:
    """Refresh until the history cache holds every reachable pack's whole log; refreshes taken."""
    for refreshes in range(1, 200):
        await refresh(hass, coordinator)
        packs = [coordinator.history.pack(address) for address in coordinator.data.packs]
        if all(p is None or (p.complete and not p.pending and not p.check_wanted) for p in packs):
            return refreshes
    raise AssertionError("the history cache never settled")
