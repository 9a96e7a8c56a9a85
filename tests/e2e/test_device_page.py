"""End to end: the stack device page of a real Home Assistant, in headless Chromium.

What ``script/develop`` starts (simulator: 3 packs, solar-day, x60; Home Assistant onboarded,
the integration added through its config flow over the REST API) is opened logged in at
``/config/devices/device/<stack>``; the rendered page (text read through every shadow root) must
show the live stack state of charge with a % value and the three packs. The screenshot goes to
the test's temporary folder; with ``RESS_SCREENSHOT=1`` it replaces docs/images/stack-device.png,
which the README shows (so an ordinary run leaves the tree clean).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from pathlib import Path
import re
import time

import pytest

from .conftest import ROOT, DevTools, devhome, home_assistant_errors

SCREENSHOT = ROOT / "docs" / "images" / "stack-device.png"

DEEP_TEXT = """
(() => {
  const out = [];
  const skip = new Set(["SCRIPT", "STYLE", "TEMPLATE", "NOSCRIPT"]);
  const walk = (node) => {
    if (!node) return;
    if (node.nodeType === Node.TEXT_NODE) {
      const text = node.textContent.replace(/\\s+/g, " ").trim();
      if (text) out.push(text);
      return;
    }
    if (node.nodeType === Node.ELEMENT_NODE && skip.has(node.tagName)) return;
    if (node.shadowRoot) walk(node.shadowRoot);
    for (const child of node.childNodes) walk(child);
  };
  walk(document.documentElement);
  return out.join("\\n");
})()
"""
"""Every visible text of the page, one text node a line, shadow roots included."""

PERCENT = re.compile(r"^\d+(?:[.,]\d+)?\s?%$")


def _soc_shown(lines: list[str]) -> str | None:
    """The value the page shows right after "State of charge" (e.g. "47.8 %"), if any."""
    for index, line in enumerate(lines):
        if line == "State of charge":
            for following in lines[index + 1 : index + 4]:
                if PERCENT.match(following):
                    return following
    return None


async def _device_names(home: devhome.DevHome) -> tuple[str, list[str]]:
    assert home.api is not None
    (devices,) = await home.api.ws({"type": "config/device_registry/list"})
    by_id = {d["id"]: d for d in devices}

    def name(device_id: str) -> str:
        device = by_id[device_id]
        return str(device.get("name_by_user") or device["name"])

    assert home.stack_device_id is not None
    return name(home.stack_device_id), [name(d) for d in home.pack_device_ids]


# First run on a new machine: apt-get installs Chromium and devhome the frontend (minutes); the
# test itself keeps to its own timeouts (Home Assistant 300 s, the page 120 s).
@pytest.mark.timeout(900)
async def test_stack_device_page(
    dev_home: devhome.DevHome, browser: DevTools, tmp_path: Path
) -> None:
    """The stack device page renders the live SOC and the pack devices; screenshot saved."""
    home = dev_home
    assert home.api is not None
    assert len(home.pack_device_ids) == 3
    stack_name, pack_names = await _device_names(home)

    # Log in the way the login page does: an authorization code from the login flow, handed
    # to the frontend in the redirect (it trades the code for tokens itself).
    code = await home.api.login_code()
    state = base64.b64encode(
        json.dumps({"hassUrl": home.url, "clientId": home.api.client_id}).encode()
    ).decode()
    page = f"{home.url}/config/devices/device/{home.stack_device_id}"
    await browser.call("Page.navigate", url=f"{page}?auth_callback=1&code={code}&state={state}")

    lines: list[str] = []
    deadline = time.monotonic() + 90
    async with asyncio.timeout(120):
        while time.monotonic() < deadline:
            try:
                text = await browser.evaluate(DEEP_TEXT) or ""
            except RuntimeError:  # between two documents while the page loads
                text = ""
            lines = text.splitlines()
            if (
                _soc_shown(lines)
                and stack_name in lines
                and all(any(name in line for line in lines) for name in pack_names)
            ):
                break
            await asyncio.sleep(0.5)
    shown = "\n".join(lines) + f"\n--- Home Assistant's errors:\n{home_assistant_errors(home)}"
    assert "Log in" not in lines, f"the page asks for a login:\n{shown}"
    assert stack_name in lines, f"no stack device name {stack_name!r}:\n{shown}"
    assert "RESS rack battery" in shown, f"no stack model:\n{shown}"
    soc = _soc_shown(lines)
    assert soc is not None, f"no 'State of charge' with a % value:\n{shown}"
    for name in pack_names:
        assert any(name in line for line in lines), f"pack {name!r} not listed:\n{shown}"

    # The value is the live one: what Home Assistant holds for the entity (the simulator runs
    # at x60, so a refresh in between may have moved it a little).
    assert home.soc_entity_id is not None
    state_now = await home.api.get(f"/api/states/{home.soc_entity_id}")
    shown_soc = float(soc.rstrip("% ").replace(",", "."))
    assert abs(shown_soc - float(state_now["state"])) <= 5.0, (soc, state_now)

    await asyncio.sleep(1.0)  # icons and fonts of the last render
    shot = await browser.call("Page.captureScreenshot", format="png")
    png = base64.b64decode(shot["data"])
    assert png.startswith(b"\x89PNG")
    target = SCREENSHOT if os.environ.get("RESS_SCREENSHOT") == "1" else tmp_path / SCREENSHOT.name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(png)
