"""The owner's report (``ress-bms report``, the diagnostics download) hides the gateway's host
wherever it appears, keeps only the packs asked for, and still builds when serialx is missing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError

import pytest

from ress_bms import report
from ress_bms.analog import PackAnalog
from ress_bms.capture import REDACTED
from ress_bms.client import PackSample, PollMode, StackSample
from ress_bms.device import Capacities
from ress_bms.errors import BmsTimeoutError
from ress_bms.link import Link

URL = "socket://192.168.1.50:8899"


def offline(address: int) -> PackAnalog:
    return PackAnalog(address, False, (), (), 0.0, 0.0, 0.0, 0.0, 0.0, 0)


def test_the_host_is_hidden_in_the_link_the_errors_and_the_reads() -> None:
    link = Link(URL)
    sample = StackSample(
        {
            1: PackSample(1, error=BmsTimeoutError(f"no reply from {URL} to 42H")),
            2: PackSample(2, offline(2)),
            3: PackSample(3, error=BmsTimeoutError("pack 3 silent")),
        },
        PollMode.DIRECT,
        0.0,
        0.1,
    )
    data = report.build_report(
        source="test",
        sample=sample,
        parameters={1: {"cell_over_voltage_alarm": 3.6}, 2: f"timeout at {URL}", 3: "x"},
        link=link,
        poll_mode=PollMode.DIRECT,
        errors={"scan": f"cannot open {URL}"},
        addresses={1, 2},
        created=datetime(2026, 1, 1, tzinfo=UTC),
    )
    hidden = f"socket://{REDACTED}:8899"
    assert data["link"]["url"] == hidden and data["link"]["poll_mode"] == "direct"
    assert data["errors"] == {"scan": f"cannot open {hidden}"}
    assert data["status"]["packs"] == [
        {"address": 1, "online": False, "error": f"no reply from {hidden} to 42H"},
        {"address": 2, "online": False},
    ]
    assert data["parameters"] == [
        {"address": 1, "values": {"cell_over_voltage_alarm": 3.6}},
        {"address": 2, "error": f"timeout at {hidden}"},
    ]
    assert "192.168.1.50" not in str(data)
    assert data["created"] == "2026-01-01T00:00:00+00:00"


def test_without_redaction_the_report_keeps_the_host() -> None:
    data = report.build_report(
        source="test", link=Link(URL), errors={"scan": f"cannot open {URL}"}, redact=False
    )
    assert data["link"]["url"] == URL and data["errors"]["scan"] == f"cannot open {URL}"
    assert data["redacted"] is False


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("socket://10.0.0.7:4196", f"socket://{REDACTED}:4196"),
        ("rfc2217://gateway.local", f"rfc2217://{REDACTED}"),
        ("/dev/serial/by-id/usb-FTDI_A10K3J2Z-if00", REDACTED),  # a path names the adapter
    ],
)
def test_a_url_keeps_its_scheme_and_port_only(url: str, shown: str) -> None:
    assert report.redact_url(url) == shown


def test_an_offline_pack_is_only_its_address_and_capacities_have_their_names() -> None:
    assert report.analog_json(offline(4)) == {"address": 4, "online": False}
    assert report.capacities_json(Capacities(52.5, 98.0, 100.0)) == {
        "remaining_capacity": 52.5,
        "full_capacity": 98.0,
        "design_capacity": 100.0,
    }


def test_the_versions_say_when_serialx_is_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> str:
        raise PackageNotFoundError(name)

    monkeypatch.setattr(report, "version", missing)
    versions = report.versions_json({"homeassistant": "2026.1.0"})
    assert versions["serialx"] == "not installed"
    assert versions["homeassistant"] == "2026.1.0"
    assert versions["ress_bms"]
