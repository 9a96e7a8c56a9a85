"""Config flow: pick a serial port or a network gateway, find the stack, name it, confirm it.

Nothing is stored before the bus has answered: the flow opens the link, asks the master for its
pack count, reads versions and serials, and shows what it found.

The protocol (dialect) and the baud rate default to "Detect automatically" (:data:`DETECT`):
:func:`~.ress_bms.detect.detect` then probes the bus read-only in its documented order, in the
background behind Home Assistant's progress step, within :data:`DETECT_BUDGET` seconds, and the
entry stores what answered (a :data:`~.ress_bms.dialects.DIALECTS` key and a baud rate, never
:data:`DETECT`). Both chosen under the advanced settings: no detection runs. One of them chosen:
detection only tries that dialect or that baud rate. Entries made before dialects hold no
:data:`CONF_DIALECT` and mean PACE. The master pack's BMS serial is
the entry's unique id. The name the owner gives the stack is the entry's title, and the stack
device and every pack device are named after it ("<name>", "<name> pack 2"), so two stacks
never share device names or entity ids.

A flow the owner started and left open must not lock out the next one for the same stack: the
unique id is set without ``raise_on_progress``, and Home Assistant aborts the forgotten flow
once the new one creates the entry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
import os
import re
from typing import Any, Final

from homeassistant.config_entries import (
    SOURCE_RECONFIGURE,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlowWithReload,
)
from homeassistant.const import CONF_NAME
from homeassistant.core import callback
from homeassistant.data_entry_flow import section
from homeassistant.helpers.selector import (
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    SerialPortSelector,
    TextSelector,
)

try:  # Home Assistant validates with probatio from 2026.9 on (voluptuous is aliased to it)
    import probatio as vol
except ImportError:  # pragma: no cover - Home Assistant 2026.8
    import voluptuous as vol  # type: ignore[no-redef]

from .const import (
    BAUDRATE_OPTIONS,
    CONF_ADVANCED,
    CONF_BAUDRATE,
    CONF_DEVICE,
    CONF_DIALECT,
    CONF_MASTER_ADDRESS,
    CONF_POLL_MODE,
    CONF_SCAN_INTERVAL,
    CONF_TIMEOUT,
    DEFAULT_BAUD,
    DEFAULT_LINK_TIMEOUT,
    DEFAULT_MASTER,
    DEFAULT_POLL_MODE,
    DEFAULT_SCAN_INTERVAL,
    DETECT,
    DOMAIN,
    LOGGER,
    MAX_LINK_TIMEOUT,
    MAX_MASTER_ADDRESS,
    MAX_SCAN_INTERVAL,
    MIN_LINK_TIMEOUT,
    MIN_SCAN_INTERVAL,
)
from .coordinator import (
    RessConfigEntry,
    client_for_entry_data,
    dialect_of_entry_data,
    error_key,
    link_for_entry_data,
    model_id,
)
from .ress_bms.client import PollMode, StackInfo
from .ress_bms.detect import (
    DEFAULT_BUDGET,
    BusMasteredError,
    Detection,
    DetectionError,
    NothingAnswersError,
    detect,
)
from .ress_bms.dialects import DIALECTS
from .ress_bms.errors import BmsError, LinkError

STEP_SERIAL: Final = "serial"
STEP_NETWORK: Final = "network"
STEP_DETECT: Final = "detect"
"""The progress step detection (and the probe after it) runs behind."""
STEP_FOUND: Final = "found"
"""Where the flow goes once the search in the background is done (no form of its own)."""
DETECT_BUDGET: Final = DEFAULT_BUDGET
"""Seconds detection may take before the form shows "nothing answers" (20)."""
DETECT_LISTEN: Final = 1.0
"""Seconds detection listens at each baud rate before it sends anything: frames nobody asked for
mean another master (an inverter, a monitoring program) polls the bus, and nothing is sent."""
BAUDRATE_CHOICES: Final[tuple[int, ...]] = tuple(
    sorted({*BAUDRATE_OPTIONS, *(rate for info in DIALECTS.values() for rate in info.baudrates)})
)
"""The baud rates the form offers: the link's and every dialect's (Pylontech's 115200)."""
URL_SCHEMES: Final = ("socket://", "rfc2217://")
"""What a network gateway's address may start with (serialx opens both)."""
DEFAULT_NAME: Final = "RESS battery"
"""A stack's name unless the owner chooses another (entity ids ``sensor.ress_battery_...``)."""
_HOST_PORT: Final = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(?P<port>\d{1,5})$")


SERIAL_BY_ID: Final = "/dev/serial/by-id"


def serial_by_id(device: str) -> str:
    """The stable ``/dev/serial/by-id`` name of ``device``, or ``device`` (blocking: executor).

    ``/dev/ttyUSB0`` may be another adapter after a reboot; its by-id link names the adapter.
    (The usb integration has the same helper; depending on it would load USB discovery and the
    Supervisor client, 13 MiB, for these lines: docs/performance.md.)
    """
    if not os.path.isdir(SERIAL_BY_ID):
        return device
    real = os.path.realpath(device)
    for link in os.scandir(SERIAL_BY_ID):
        if link.is_symlink() and os.path.realpath(link.path) == real:
            return link.path
    return device


def normalize_url(value: str) -> str | None:
    """A gateway address as a serialx URL: ``host:port`` becomes ``socket://host:port``."""
    value = value.strip()
    if value.lower().startswith(URL_SCHEMES):
        scheme, _, rest = value.partition("://")
        return f"{scheme.lower()}://{rest}" if rest else None
    match = _HOST_PORT.match(value)
    if match is None or not 0 < int(match["port"]) < 65536:
        return None
    return f"socket://{value}"


def _advanced_schema(defaults: Mapping[str, Any]) -> vol.Schema:
    return vol.Schema(
        {
            vol.Required(CONF_DIALECT, default=str(defaults.get(CONF_DIALECT, DETECT))): (
                SelectSelector(
                    SelectSelectorConfig(
                        options=[DETECT, *DIALECTS],
                        translation_key=CONF_DIALECT,
                        mode=SelectSelectorMode.DROPDOWN,
                    )
                )
            ),
            vol.Required(CONF_BAUDRATE, default=str(defaults.get(CONF_BAUDRATE, DETECT))): (
                SelectSelector(
                    SelectSelectorConfig(
                        options=[DETECT, *(str(rate) for rate in BAUDRATE_CHOICES)],
                        translation_key=CONF_BAUDRATE,
                        mode=SelectSelectorMode.DROPDOWN,
                    )
                )
            ),
            vol.Required(
                CONF_POLL_MODE, default=defaults.get(CONF_POLL_MODE, DEFAULT_POLL_MODE.value)
            ): SelectSelector(
                SelectSelectorConfig(
                    options=[mode.value for mode in PollMode],
                    translation_key=CONF_POLL_MODE,
                    mode=SelectSelectorMode.DROPDOWN,
                )
            ),
            vol.Required(
                CONF_MASTER_ADDRESS, default=defaults.get(CONF_MASTER_ADDRESS, DEFAULT_MASTER)
            ): NumberSelector(
                NumberSelectorConfig(
                    min=0, max=MAX_MASTER_ADDRESS, step=1, mode=NumberSelectorMode.BOX
                )
            ),
            vol.Required(
                CONF_TIMEOUT, default=defaults.get(CONF_TIMEOUT, DEFAULT_LINK_TIMEOUT)
            ): NumberSelector(
                NumberSelectorConfig(
                    min=MIN_LINK_TIMEOUT,
                    max=MAX_LINK_TIMEOUT,
                    step=0.1,
                    unit_of_measurement="s",
                    mode=NumberSelectorMode.BOX,
                )
            ),
        }
    )


def connection_schema(step: str, defaults: Mapping[str, Any]) -> vol.Schema:
    """The form of the serial or the network step, filled with ``defaults``."""
    device: Any = SerialPortSelector() if step == STEP_SERIAL else TextSelector()
    device_key = (
        vol.Required(CONF_DEVICE, default=defaults[CONF_DEVICE])
        if defaults.get(CONF_DEVICE)
        else vol.Required(CONF_DEVICE)
    )
    return vol.Schema(
        {
            device_key: device,
            vol.Required(CONF_ADVANCED): section(
                _advanced_schema(defaults.get(CONF_ADVANCED, {})), {"collapsed": True}
            ),
        }
    )


def entry_data(user_input: Mapping[str, Any], device: str) -> dict[str, Any]:
    """Config entry data from a form: typed values, the connection under ``device``.

    The dialect and the baud rate are :data:`DETECT` where the owner left them to detection
    (:func:`needs_detection`); :func:`detected_data` replaces them before anything is stored.
    """
    advanced = user_input.get(CONF_ADVANCED, {})
    baudrate = str(advanced.get(CONF_BAUDRATE, DETECT))
    return {
        CONF_DEVICE: device,
        CONF_DIALECT: str(advanced.get(CONF_DIALECT, DETECT)),
        CONF_BAUDRATE: DETECT if baudrate == DETECT else int(baudrate),
        CONF_ADVANCED: {
            CONF_POLL_MODE: str(advanced.get(CONF_POLL_MODE, DEFAULT_POLL_MODE.value)),
            CONF_MASTER_ADDRESS: int(advanced.get(CONF_MASTER_ADDRESS, DEFAULT_MASTER)),
            CONF_TIMEOUT: float(advanced.get(CONF_TIMEOUT, DEFAULT_LINK_TIMEOUT)),
        },
    }


def needs_detection(data: Mapping[str, Any]) -> bool:
    """Whether the dialect or the baud rate was left to detection."""
    return DETECT in (data.get(CONF_DIALECT), data.get(CONF_BAUDRATE))


def detected_data(data: Mapping[str, Any], found: Detection) -> dict[str, Any]:
    """``data`` with the dialect and baud rate detection found in place of :data:`DETECT`."""
    return {**data, CONF_DIALECT: found.dialect, CONF_BAUDRATE: found.baudrate}


async def detect_stack(data: Mapping[str, Any]) -> Detection:
    """Probe ``data``'s connection read-only for what it speaks; only the choices left open."""
    dialect, baudrate = data[CONF_DIALECT], data[CONF_BAUDRATE]
    return await detect(
        data[CONF_DEVICE],
        baudrates=None if baudrate == DETECT else (int(baudrate),),
        dialects=None if dialect == DETECT else (str(dialect),),
        budget=DETECT_BUDGET,
        listen=DETECT_LISTEN,
    )


def detection_error_key(err: DetectionError) -> str:
    """The flow's error for a detection that found no dialect."""
    if isinstance(err, NothingAnswersError):
        return "nothing_answers"
    if isinstance(err, BusMasteredError):
        return "bus_mastered"
    return "unrecognised_device"


class NotABatteryError(BmsError):
    """Something at the address answered, but with bytes that are no frame of its dialect."""


async def probe_stack(data: Mapping[str, Any]) -> StackInfo:
    """Connect, discover the packs and read their serials; always close the link.

    A link that failed after receiving only bytes that are no frame (a web page, a banner, a
    gateway in another mode or at another serial setting) raises :class:`NotABatteryError`:
    that is not a refused connection, nor silence.
    """
    link = link_for_entry_data(data)
    client = client_for_entry_data(data, link)
    try:
        return await client.discover(scan=client.requested_mode is PollMode.DIRECT)
    except LinkError as err:
        stats = link.stats
        if stats.replies == 0 and (
            stats.noise_bytes or stats.frame_errors or stats.checksum_errors
        ):
            dialect = dialect_of_entry_data(data)
            title = DIALECTS[dialect].title if dialect in DIALECTS else dialect
            raise NotABatteryError(
                f"{link.url} answered {stats.noise_bytes} bytes that are no {title} frame"
            ) from err
        raise
    finally:
        await link.close()


def default_name(stack: StackInfo, taken: set[str]) -> str:
    """The default name; with the master's model, then a number, when another stack has it."""
    model = model_id(stack.master.version)
    candidates = [DEFAULT_NAME]
    if model:
        candidates.append(f"{DEFAULT_NAME} {model}")
    for name in candidates:
        if name not in taken:
            return name
    number = 2
    while f"{DEFAULT_NAME} {number}" in taken:
        number += 1
    return f"{DEFAULT_NAME} {number}"


def stack_unique_id(stack: StackInfo, data: Mapping[str, Any]) -> str:
    """The master pack's BMS serial; its pack serial, or the connection, when it has none."""
    master = stack.master
    if master.bms_serial:
        return master.bms_serial
    if master.pack_serial:
        return master.pack_serial
    return f"{data[CONF_DEVICE]}#{data[CONF_ADVANCED][CONF_MASTER_ADDRESS]}"


class RessConfigFlow(ConfigFlow, domain=DOMAIN):
    """Add a Syscom RESS stack."""

    VERSION = 1
    MINOR_VERSION = 1

    def __init__(self) -> None:
        self._data: dict[str, Any] = {}
        self._stack: StackInfo | None = None
        self._detection: Detection | None = None
        self._search: asyncio.Task[tuple[dict[str, Any], Detection, StackInfo]] | None = None
        """Detection and the probe after it, in the background (the progress step's task)."""
        self._search_step = STEP_SERIAL
        """The form the search was started from: where its error is shown."""
        self._search_input: dict[str, Any] | None = None
        self._search_device = ""
        """The port or gateway URL being searched (the progress text shows it)."""
        self._search_errors: dict[str, str] = {}

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: RessConfigEntry) -> RessOptionsFlow:
        """The options flow (scan interval)."""
        return RessOptionsFlow()

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Serial port or network gateway."""
        return self.async_show_menu(step_id="user", menu_options=[STEP_SERIAL, STEP_NETWORK])

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Move the same stack to another port or gateway."""
        return self.async_show_menu(step_id="reconfigure", menu_options=[STEP_SERIAL, STEP_NETWORK])

    async def async_step_serial(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """A local serial port or an ESPHome serial proxy."""
        errors: dict[str, str] = {}
        if user_input is not None:
            device = str(user_input[CONF_DEVICE])
            if device.startswith("/dev/"):
                device = await self.hass.async_add_executor_job(serial_by_id, device)
            result = await self._async_try(
                STEP_SERIAL, user_input, entry_data(user_input, device), errors
            )
            if result is not None:
                return result
        return self._connection_form(STEP_SERIAL, user_input, errors)

    async def async_step_network(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """An RS485-to-Ethernet/Wi-Fi gateway: ``host:port`` or a URL."""
        errors: dict[str, str] = {}
        if user_input is not None:
            url = normalize_url(str(user_input[CONF_DEVICE]))
            if url is None:
                errors[CONF_DEVICE] = "invalid_url"
            else:
                result = await self._async_try(
                    STEP_NETWORK, user_input, entry_data(user_input, url), errors
                )
                if result is not None:
                    return result
        return self._connection_form(STEP_NETWORK, user_input, errors)

    def _connection_form(
        self, step: str, user_input: Mapping[str, Any] | None, errors: dict[str, str]
    ) -> ConfigFlowResult:
        """The serial or network form; after a failed search, with its error and input."""
        if user_input is None and self._search_input is not None:
            user_input, self._search_input = self._search_input, None
            errors, self._search_errors = self._search_errors, {}
        return self.async_show_form(
            step_id=step,
            data_schema=connection_schema(step, self._defaults(user_input, step)),
            errors=errors,
        )

    def _defaults(self, user_input: Mapping[str, Any] | None, step: str) -> Mapping[str, Any]:
        if user_input is not None:
            return user_input
        if self.source != SOURCE_RECONFIGURE:
            return {}
        data = self._get_reconfigure_entry().data
        # The form holds the dialect and baud rate under its advanced section: the stack keeps
        # speaking what it spoke (the owner may still pick "Detect automatically").
        defaults: dict[str, Any] = {
            **data,
            CONF_ADVANCED: {
                **data.get(CONF_ADVANCED, {}),
                CONF_DIALECT: dialect_of_entry_data(data),
                CONF_BAUDRATE: str(data.get(CONF_BAUDRATE, DEFAULT_BAUD)),
            },
        }
        is_network = str(data[CONF_DEVICE]).startswith(URL_SCHEMES)
        if is_network != (step == STEP_NETWORK):
            del defaults[CONF_DEVICE]
        return defaults

    async def _async_try(
        self,
        step: str,
        user_input: Mapping[str, Any],
        data: dict[str, Any],
        errors: dict[str, str],
    ) -> ConfigFlowResult | None:
        """Probe the stack (detect it first in the background when asked); else fill ``errors``."""
        if needs_detection(data):
            self._search_step, self._search_input = step, dict(user_input)
            self._search_device = str(data[CONF_DEVICE])
            # Not eager: the progress step is shown first, even when the search ends at once
            # (a progress step that was never shown cannot be done).
            self._search = self.hass.async_create_task(
                self._async_search(data), f"{DOMAIN} detect {data[CONF_DEVICE]}", eager_start=False
            )
            return self._progress(self._search)
        try:
            stack = await probe_stack(data)
        except Exception as err:  # the flow must show an error, whatever went wrong
            errors["base"] = _probe_error_key(err, data)
            return None
        self._detection = None
        return await self._async_found(data, stack)

    async def _async_search(
        self, data: dict[str, Any]
    ) -> tuple[dict[str, Any], Detection, StackInfo]:
        """Detect what the bus speaks, then probe the stack in it (the progress task)."""
        try:
            found = await detect_stack(data)
        except DetectionError as err:
            LOGGER.debug(
                "Detection on %s found nothing: %s\n%s",
                data[CONF_DEVICE], err, "\n".join(err.evidence),
            )  # fmt: skip
            raise
        LOGGER.debug(
            "Detection on %s found %s at %s baud, address %s (model %s, serial %s, %s packs):\n%s",
            data[CONF_DEVICE], found.dialect, found.baudrate, found.address_or_unit, found.model,
            found.serial, found.packs, "\n".join(found.evidence),
        )  # fmt: skip
        detected = detected_data(data, found)
        return detected, found, await probe_stack(detected)

    async def async_step_detect(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """The search runs in the background; the owner sees progress, then its outcome."""
        task = self._search
        if task is None:  # pragma: no cover - only reached through _async_try
            return self.async_abort(reason="unknown")
        if not task.done():
            return self._progress(task)
        self._search = None
        try:
            data, self._detection, self._stack = task.result()
        except DetectionError as err:
            self._search_errors = {"base": detection_error_key(err)}
        except Exception as err:  # the flow must show an error, whatever went wrong
            self._search_errors = {
                "base": _probe_error_key(err, {CONF_DEVICE: self._search_device})
            }
        else:
            self._data = data
            return self.async_show_progress_done(next_step_id=STEP_FOUND)
        return self.async_show_progress_done(next_step_id=self._search_step)

    def _progress(self, task: asyncio.Task[Any]) -> ConfigFlowResult:
        return self.async_show_progress(
            step_id=STEP_DETECT,
            progress_action=STEP_DETECT,
            description_placeholders={"device": self._search_device},
            progress_task=task,
        )

    async def async_step_found(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """After a search that found the stack: the same path as a probe without detection."""
        assert self._stack is not None
        self._search_input = None
        return await self._async_found(self._data, self._stack)

    async def _async_found(self, data: dict[str, Any], stack: StackInfo) -> ConfigFlowResult:
        """The stack answered: same stack or a new one, then the confirm step."""
        # Not raise_on_progress: a flow left open on the confirm step must not lock this one out.
        await self.async_set_unique_id(stack_unique_id(stack, data), raise_on_progress=False)
        if self.source == SOURCE_RECONFIGURE:
            self._abort_if_unique_id_mismatch(reason="wrong_stack")
            return self.async_update_reload_and_abort(
                self._get_reconfigure_entry(), data_updates=data
            )
        self._abort_if_unique_id_configured(updates=data)
        self._data, self._stack = data, stack
        return await self.async_step_confirm()

    async def async_step_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Show what was found, ask for a name; create the entry (its title is the name)."""
        assert self._stack is not None
        master = self._stack.master
        taken = {entry.title for entry in self._async_current_entries(include_ignore=False)}
        suggested = default_name(self._stack, taken)
        if user_input is not None:
            name = " ".join(str(user_input.get(CONF_NAME, "")).split()) or suggested
            return self.async_create_entry(title=name, data=self._data)
        found = self._detection
        model = master.version or (found.model if found else None) or "?"
        serial = master.bms_serial or master.pack_serial or (found.serial if found else None)
        dialect = dialect_of_entry_data(self._data)
        return self.async_show_form(
            step_id="confirm",
            data_schema=vol.Schema({vol.Required(CONF_NAME, default=suggested): TextSelector()}),
            description_placeholders={
                "packs": str(len(self._stack.packs)),
                "model": model.split("-", 1)[0],
                "firmware": master.version or "?",
                "serial": serial or "?",
                "device": self._data[CONF_DEVICE],
                "protocol": DIALECTS[dialect].title if dialect in DIALECTS else dialect,
                "baudrate": str(self._data.get(CONF_BAUDRATE, DEFAULT_BAUD)),
            },
        )


def _probe_error_key(err: BaseException, data: Mapping[str, Any]) -> str:
    """The form's error for a probe that failed (logged: at debug when it is the bus's)."""
    if isinstance(err, NotABatteryError):
        LOGGER.debug("Probing %s failed: %s", data[CONF_DEVICE], err)
        return "not_a_battery"
    if isinstance(err, BmsError):
        LOGGER.debug("Probing %s failed: %s", data[CONF_DEVICE], err)
        return error_key(err)
    LOGGER.error("Unexpected error probing %s", data[CONF_DEVICE], exc_info=(type(err), err, None))
    return "unknown"


class RessOptionsFlow(OptionsFlowWithReload):
    """How often the stack is polled."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """The scan interval."""
        if user_input is not None:
            return self.async_create_entry(
                data={CONF_SCAN_INTERVAL: int(user_input[CONF_SCAN_INTERVAL])}
            )
        current = self.config_entry.options.get(CONF_SCAN_INTERVAL, DEFAULT_SCAN_INTERVAL)
        return self.async_show_form(
            step_id="init",
            data_schema=vol.Schema(
                {
                    vol.Required(CONF_SCAN_INTERVAL, default=current): NumberSelector(
                        NumberSelectorConfig(
                            min=MIN_SCAN_INTERVAL,
                            max=MAX_SCAN_INTERVAL,
                            step=1,
                            unit_of_measurement="s",
                            mode=NumberSelectorMode.BOX,
                        )
                    )
                }
            ),
        )
