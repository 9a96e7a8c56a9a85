"""``ress_bms``: the PACE "paceic" VER 0x25 protocol of Syscom RESS rack batteries, in asyncio.

No Home Assistant import anywhere below this package: it ships inside the integration and is
installed on its own as the ``ress_bms`` package of the ``ress-bms`` command-line tool.

    from ress_bms import Link, StackClient

    async with Link("socket://192.168.1.50:8899") as link:
        client = StackClient(link)
        stack = await client.discover()       # StackInfo: packs, versions, serials
        sample = await client.poll()          # StackSample: PackAnalog and PackStatus per pack

Layers: :mod:`.link` (bytes, one request in flight) -> :mod:`.frame` (the frame codec) ->
:mod:`.analog`, :mod:`.status`, :mod:`.device`, :mod:`.history`, :mod:`.params`, :mod:`.control`
(command codecs and typed values) -> :mod:`.client` (the stack). :mod:`.report` holds the JSON
views of ``ress-bms --json`` and the owner's report, :mod:`.capture` and :mod:`.replay` turn
recorded traffic back into values, :mod:`.simulator` is a protocol-exact battery stack.

The names below are loaded on first use: ``import ress_bms`` costs neither asyncio nor serialx.
"""

from __future__ import annotations

from importlib import import_module
import json
from pathlib import Path
from typing import TYPE_CHECKING, Final

DISTRIBUTION: Final = "syscom-ress"
"""The name the project is installed under (pyproject.toml)."""

_EXPORTS: Final[dict[str, str]] = {
    # the stack
    "StackClient": "client",
    "PollMode": "client",
    "StackInfo": "client",
    "PackInfo": "client",
    "StackSample": "client",
    "PackSample": "client",
    "ParameterSet": "client",
    "WriteResult": "client",
    "WriteNotKeptError": "client",
    "Link": "link",
    "LinkStats": "link",
    # decoded values
    "PackAnalog": "analog",
    "PackStatus": "status",
    "StatusBit": "status",
    "Kind": "status",
    "STATUS_BITS": "status",
    "HistoryRecord": "history",
    "Command": "commands",
    # the parameter table
    "Parameter": "params",
    "ParameterGroup": "params",
    "PARAMETERS": "params",
    "PARAMETERS_BY_KEY": "params",
    "GROUPS": "params",
    # errors
    "BmsError": "errors",
    "FrameError": "errors",
    "ChecksumError": "errors",
    "DecodeError": "errors",
    "ResponseError": "errors",
    "CommandRefusedError": "errors",
    "UnsupportedProtocolError": "errors",
    "ForbiddenCommandError": "errors",
    "ValidationError": "errors",
    "LinkError": "errors",
    "BmsTimeoutError": "errors",
    "LinkUnavailableError": "errors",
    # reports and replays
    "build_report": "report",
    "replay_file": "replay",
    # the simulator
    "Simulator": "simulator",
}
"""Public name -> the submodule that defines it."""

__all__ = [
    "DISTRIBUTION",
    "GROUPS",
    "PARAMETERS",
    "PARAMETERS_BY_KEY",
    "STATUS_BITS",
    "BmsError",
    "BmsTimeoutError",
    "ChecksumError",
    "Command",
    "CommandRefusedError",
    "DecodeError",
    "ForbiddenCommandError",
    "FrameError",
    "HistoryRecord",
    "Kind",
    "Link",
    "LinkError",
    "LinkStats",
    "LinkUnavailableError",
    "PackAnalog",
    "PackInfo",
    "PackSample",
    "PackStatus",
    "Parameter",
    "ParameterGroup",
    "ParameterSet",
    "PollMode",
    "ResponseError",
    "Simulator",
    "StackClient",
    "StackInfo",
    "StackSample",
    "StatusBit",
    "UnsupportedProtocolError",
    "ValidationError",
    "WriteNotKeptError",
    "WriteResult",
    "__version__",
    "build_report",
    "replay_file",
]

if TYPE_CHECKING:
    from .analog import PackAnalog
    from .client import (
        PackInfo,
        PackSample,
        ParameterSet,
        PollMode,
        StackClient,
        StackInfo,
        StackSample,
        WriteNotKeptError,
        WriteResult,
    )
    from .commands import Command
    from .errors import (
        BmsError,
        BmsTimeoutError,
        ChecksumError,
        CommandRefusedError,
        DecodeError,
        ForbiddenCommandError,
        FrameError,
        LinkError,
        LinkUnavailableError,
        ResponseError,
        UnsupportedProtocolError,
        ValidationError,
    )
    from .history import HistoryRecord
    from .link import Link, LinkStats
    from .params import GROUPS, PARAMETERS, PARAMETERS_BY_KEY, Parameter, ParameterGroup
    from .replay import replay_file
    from .report import build_report
    from .simulator import Simulator
    from .status import STATUS_BITS, Kind, PackStatus, StatusBit

    __version__: str
else:

    def __getattr__(name: str) -> object:
        """Load a public name from its submodule on first use (PEP 562)."""
        if name == "__version__":
            value: object = _version()
        elif name in _EXPORTS:
            value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
        else:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def _version() -> str:
    """The release this code belongs to.

    Inside the integration (a Home Assistant install, this checkout) that is the version of the
    ``manifest.json`` beside this package; installed on its own (``pip install .``), the
    distribution's. The release script writes both from one argument; a test checks they agree.
    """
    manifest = Path(__file__).resolve().parent.parent / "manifest.json"
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except OSError, ValueError:
        data = None
    if isinstance(data, dict) and data.get("domain") == "syscom_ress" and "version" in data:
        return str(data["version"])
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "0+unknown"
