"""Config flow: pick a serial port or a network gateway, find the stack, name it, confirm it.

Nothing is stored before the bus has answered: the flow opens the link, asks the master for its
pack count, reads versions and serials, and shows what it found. The master pack's BMS serial is
the entry's unique id. The name the owner gives the stack is the entry's title, and the stack
device and every pack device are named after it ("<name>", "<name> pack 2"), so two stacks
never share device names or entity ids.

A flow the owner started and left open must not lock out the next one for the same stack: the
unique id is set without ``raise_on_progress``, and Home Assistant aborts the forgotten flow
once the new one creates the entry.
"""

from __future__ import annotations

from collections.abc import Mapping
import re
from typing import Any, Final

from homeassistant.components import usb
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
    CONF_MASTER_ADDRESS,
    CONF_POLL_MODE,
    CONF_SCAN_INTERVAL,
    CONF_TIMEOUT,
    DEFAULT_BAUD,
    DEFAULT_LINK_TIMEOUT,
    DEFAULT_MASTER,
    DEFAULT_POLL_MODE,
    DEFAULT_SCAN_INTERVAL,
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
    error_key,
    link_for_entry_data,
    model_id,
)
from .ress_bms.client import PollMode, StackInfo
from .ress_bms.errors import BmsError, LinkError

STEP_SERIAL: Final = "serial"
STEP_NETWORK: Final = "network"
URL_SCHEMES: Final = ("socket://", "rfc2217://")
"""What a network gateway's address may start with (serialx opens both)."""
DEFAULT_NAME: Final = "RESS battery"
"""A stack's name unless the owner chooses another (entity ids ``sensor.ress_battery_...``)."""
_HOST_PORT: Final = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(?P<port>\d{1,5})$")


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
            vol.Required(
                CONF_BAUDRATE, default=str(defaults.get(CONF_BAUDRATE, DEFAULT_BAUD))
            ): SelectSelector(
                SelectSelectorConfig(
                    options=[str(rate) for rate in BAUDRATE_OPTIONS],
                    mode=SelectSelectorMode.LIST,
                )
            ),
            vol.Required(CONF_ADVANCED): section(
                _advanced_schema(defaults.get(CONF_ADVANCED, {})), {"collapsed": True}
            ),
        }
    )


def entry_data(user_input: Mapping[str, Any], device: str) -> dict[str, Any]:
    """Config entry data from a form: typed values, the connection under ``device``."""
    advanced = user_input.get(CONF_ADVANCED, {})
    return {
        CONF_DEVICE: device,
        CONF_BAUDRATE: int(user_input.get(CONF_BAUDRATE, DEFAULT_BAUD)),
        CONF_ADVANCED: {
            CONF_POLL_MODE: str(advanced.get(CONF_POLL_MODE, DEFAULT_POLL_MODE.value)),
            CONF_MASTER_ADDRESS: int(advanced.get(CONF_MASTER_ADDRESS, DEFAULT_MASTER)),
            CONF_TIMEOUT: float(advanced.get(CONF_TIMEOUT, DEFAULT_LINK_TIMEOUT)),
        },
    }


class NotABatteryError(BmsError):
    """Something at the address answered, but with bytes that are no PACE frame at all."""


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
            raise NotABatteryError(
                f"{link.url} answered {stats.noise_bytes} bytes that are no PACE frame"
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
                device = await self.hass.async_add_executor_job(usb.get_serial_by_id, device)
            result = await self._async_try(entry_data(user_input, device), errors)
            if result is not None:
                return result
        return self.async_show_form(
            step_id=STEP_SERIAL,
            data_schema=connection_schema(STEP_SERIAL, self._defaults(user_input, STEP_SERIAL)),
            errors=errors,
        )

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
                result = await self._async_try(entry_data(user_input, url), errors)
                if result is not None:
                    return result
        return self.async_show_form(
            step_id=STEP_NETWORK,
            data_schema=connection_schema(STEP_NETWORK, self._defaults(user_input, STEP_NETWORK)),
            errors=errors,
        )

    def _defaults(self, user_input: Mapping[str, Any] | None, step: str) -> Mapping[str, Any]:
        if user_input is not None:
            return user_input
        if self.source != SOURCE_RECONFIGURE:
            return {}
        data = self._get_reconfigure_entry().data
        is_network = str(data[CONF_DEVICE]).startswith(URL_SCHEMES)
        if is_network != (step == STEP_NETWORK):
            return {k: v for k, v in data.items() if k != CONF_DEVICE}
        return data

    async def _async_try(
        self, data: dict[str, Any], errors: dict[str, str]
    ) -> ConfigFlowResult | None:
        """Probe the stack; on success go on, else fill ``errors``."""
        try:
            stack = await probe_stack(data)
        except NotABatteryError as err:
            LOGGER.debug("Probing %s failed: %s", data[CONF_DEVICE], err)
            errors["base"] = "not_a_battery"
            return None
        except BmsError as err:
            LOGGER.debug("Probing %s failed: %s", data[CONF_DEVICE], err)
            errors["base"] = error_key(err)
            return None
        except Exception:  # the flow must show an error, whatever went wrong
            LOGGER.exception("Unexpected error probing %s", data[CONF_DEVICE])
            errors["base"] = "unknown"
            return None
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
        return self.async_show_form(
            step_id="confirm",
            data_schema=vol.Schema({vol.Required(CONF_NAME, default=suggested): TextSelector()}),
            description_placeholders={
                "packs": str(len(self._stack.packs)),
                "model": (master.version or "?").split("-", 1)[0],
                "firmware": master.version or "?",
                "serial": master.bms_serial or "?",
                "device": self._data[CONF_DEVICE],
            },
        )


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
