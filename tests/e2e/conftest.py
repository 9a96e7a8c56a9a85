"""End-to-end fixtures: a real Home Assistant on the simulator, and headless Chromium.

``dev_home`` is what ``script/develop`` runs (script/devhome.py): the simulator and ``hass`` as
child processes on free local ports, in a temporary folder, onboarded and with the integration
set up through its real config flow over the REST API. ``chromium`` is Debian's Chromium, driven
through the DevTools protocol over a websocket (no driver, no browser download).

When to run: on the newest Home Assistant (``.venv``) only; ``.venv-min`` skips with a reason.
Chromium is installed with apt-get when missing; when that is impossible the test FAILS (CI must
not pass without it). ``RESS_E2E=0`` skips the end-to-end test on purpose (a developer without
root or a Debian machine).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import contextlib
import os
from pathlib import Path
import shutil
import subprocess
import sys
from typing import Any

import aiohttp
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "script"))

import devhome  # noqa: E402 - script/devhome.py, shared with script/develop

E2E_SWITCH = "RESS_E2E"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)
WINDOW = (1440, 1400)
"""Viewport of the screenshot: wide enough for the device page's three columns."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip, with the reason, where the end-to-end test is not meant to run."""
    reason = None
    if os.environ.get(E2E_SWITCH) == "0":
        reason = f"{E2E_SWITCH}=0: end-to-end test switched off"
    elif Path(sys.prefix).resolve() == (ROOT / ".venv-min").resolve():
        reason = (
            "end-to-end test runs on the newest Home Assistant only (.venv); "
            "script/test runs it there"
        )
    if reason is None:
        return
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.skip(reason=reason))


def _find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def _apt_get(*args: str) -> bool:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    result = subprocess.run(
        ["apt-get", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=900,
        check=False,
    )
    return result.returncode == 0


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium, installed with apt-get when missing (fails the test if it can't be)."""
    if path := _find_chromium():
        return path
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.fail(
            "Chromium is missing and cannot be installed here (needs root and apt-get): "
            f"install Debian's chromium, or set {E2E_SWITCH}=0 to skip the end-to-end test"
        )
    packages = ("install", "-y", "-q", "chromium", "fonts-dejavu-core")
    if not _apt_get(*packages) and not (_apt_get("update", "-q") and _apt_get(*packages)):
        pytest.fail("apt-get could not install chromium (see apt-get install chromium)")
    if (path := _find_chromium()) is None:
        pytest.fail("apt-get installed chromium but no chromium binary is on PATH")
    return path


@pytest.fixture
async def dev_home(socket_enabled: None, tmp_path: Path) -> AsyncIterator[devhome.DevHome]:
    """Simulator + Home Assistant on free ports, onboarded, the integration set up."""
    lines: list[str] = []
    home = devhome.DevHome(
        tmp_path / "develop",
        http_port=devhome.free_port(),
        sim_port=devhome.free_port(),
        log=lines.append,
    )
    try:
        async with asyncio.timeout(300):  # first run on a new machine also installs the frontend
            await home.start()
    except BaseException:
        await home.stop()
        print("\n".join(lines))
        raise
    try:
        yield home
    finally:
        await home.stop()


class DevTools:
    """One page target of Chromium, through the DevTools protocol."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._next = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send a command, return its result (events in between are ignored)."""
        self._next += 1
        number = self._next
        await self.ws.send_json({"id": number, "method": method, "params": params})
        async with asyncio.timeout(30):
            while True:
                message = await self.ws.receive_json()
                if message.get("id") != number:
                    continue
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (promises awaited)."""
        result = await self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"JavaScript failed: {result['exceptionDetails']}")
        return result["result"].get("value")


@pytest.fixture
async def browser(socket_enabled: None, chromium: str, tmp_path: Path) -> AsyncIterator[DevTools]:
    """A fresh headless Chromium (own profile), its blank page ready to navigate."""
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    child = devhome.Child(
        "Chromium",
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            "about:blank",
        ],
        tmp_path / "chromium.log",
    )
    child.start()
    try:
        async with aiohttp.ClientSession() as session:
            page_ws = await _page_websocket(session, child, profile / "DevToolsActivePort")
            async with session.ws_connect(page_ws, max_msg_size=0) as ws:
                tools = DevTools(ws)
                await tools.call(
                    "Emulation.setDeviceMetricsOverride",
                    width=WINDOW[0],
                    height=WINDOW[1],
                    deviceScaleFactor=1,
                    mobile=False,
                )
                yield tools
    except BaseException:
        print(f"--- Chromium's output:\n{child.tail()}")
        raise
    finally:
        await child.stop(timeout=10)


async def _page_websocket(
    session: aiohttp.ClientSession, child: devhome.Child, port_file: Path
) -> str:
    """The DevTools websocket URL of Chromium's first page (Chromium writes its port)."""
    async with asyncio.timeout(30):
        while (port := _devtools_port(port_file)) is None:
            if child.returncode is not None:
                raise RuntimeError(f"Chromium exited ({child.returncode}):\n{child.tail()}")
            await asyncio.sleep(0.1)
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"http://127.0.0.1:{port}/json/list") as resp:
                    targets = await resp.json()
                for target in targets:
                    if target.get("type") == "page":
                        return str(target["webSocketDebuggerUrl"])
            await asyncio.sleep(0.1)


def _devtools_port(port_file: Path) -> int | None:
    """The port in Chromium's DevToolsActivePort file, once it is written."""
    try:
        return int(port_file.read_text(encoding="utf-8").split()[0])
    except OSError, ValueError, IndexError:
        return None


def home_assistant_errors(home: devhome.DevHome, limit: int = 25) -> str:
    """The first ERROR lines of Home Assistant's log (for a failure message)."""
    try:
        text = (home.config_dir / "home-assistant.log").read_text(errors="replace")
    except OSError:
        return "(no home-assistant.log)"
    errors = [line[:240] for line in text.splitlines() if " ERROR " in line]
    return "\n".join(errors[:limit]) or "(no ERROR lines)"
