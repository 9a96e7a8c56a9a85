"""Logbook: each new BMS history record as a line of its pack, in Home Assistant's language.

``syscom_ress_history`` events (history_cache.py) become "RESS battery pack 1 · Protection:
Cell under-voltage protection, Cell under-voltage alarm". The kind is the "Last BMS record"
sensor's translated ``kind`` attribute, the names the binary sensors' translated names; a
missing translation falls back to English, then to the key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from homeassistant.components.logbook.const import (
    LOGBOOK_ENTRY_ENTITY_ID,
    LOGBOOK_ENTRY_MESSAGE,
    LOGBOOK_ENTRY_NAME,
)
from homeassistant.components.sensor import DOMAIN as SENSOR_DOMAIN
from homeassistant.const import ATTR_DEVICE_ID
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.helpers.translation import async_get_cached_translations

from .const import DOMAIN
from .history_cache import EVENT_HISTORY, LAST_RECORD

KIND_FALLBACK = {
    "fault": "Fault",
    "protection": "Protection",
    "alarm": "Alarm",
    "power_on": "Power-on",
    "record": "Record",
}


def describe_record(hass: HomeAssistant, data: Mapping[str, Any]) -> str:
    """A history event's record as "<kind>: <names>", in Home Assistant's language."""
    root = f"component.{DOMAIN}.entity"
    texts = async_get_cached_translations(hass, hass.config.language, "entity", DOMAIN)
    english = async_get_cached_translations(hass, "en", "entity", DOMAIN)

    def text(key: str, fallback: str) -> str:
        return texts.get(key) or english.get(key) or fallback

    kind = str(data.get("kind", "record"))
    kind_text = text(
        f"{root}.sensor.{LAST_RECORD.key}.state_attributes.kind.state.{kind}",
        KIND_FALLBACK.get(kind, kind),
    )
    names = [text(f"{root}.binary_sensor.{key}.name", key) for key in data.get("keys", [])]
    return f"{kind_text}: {', '.join(names)}" if names else kind_text


@callback
def async_describe_events(
    hass: HomeAssistant,
    async_describe_event: Callable[[str, str, Callable[[Event], dict[str, str]]], None],
) -> None:
    """Describe the history events."""

    @callback
    def describe(event: Event) -> dict[str, str]:
        data = event.data
        name = f"Pack {data.get('pack')}"
        description = {LOGBOOK_ENTRY_MESSAGE: describe_record(hass, data)}
        device_id = data.get(ATTR_DEVICE_ID)
        if device_id and (device := dr.async_get(hass).async_get(device_id)) is not None:
            name = device.name_by_user or device.name or name
            entities = er.async_entries_for_device(er.async_get(hass), device_id)
            sensor = next(
                (
                    e.entity_id
                    for e in entities
                    if e.domain == SENSOR_DOMAIN
                    and e.platform == DOMAIN
                    and e.unique_id.endswith(f"_{LAST_RECORD.key}")
                ),
                None,
            )
            if sensor is not None:
                description[LOGBOOK_ENTRY_ENTITY_ID] = sensor
        description[LOGBOOK_ENTRY_NAME] = name
        return description

    async_describe_event(DOMAIN, EVENT_HISTORY, describe)
