"""``ress-bms simulate``'s options refuse what is no probability or no address, and the
program prints where to connect before it serves."""

from __future__ import annotations

import argparse
import asyncio
import re

import pytest

from ress_bms.simulator.cli import add_arguments, run

pytestmark = pytest.mark.usefixtures("socket_enabled")


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ress-bms simulate")
    add_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--drop", "1.5"], "1.5 is not a probability between 0 and 1"),
        (["--corrupt-checksum", "-0.1"], "-0.1 is not a probability between 0 and 1"),
        (["--listen", "gateway:modbus"], "'gateway:modbus' is not HOST:PORT"),
    ],
)
def test_a_bad_option_is_one_clear_usage_error(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse(*argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_listen_takes_off_a_bare_port_or_host_and_port() -> None:
    assert parse("--listen", "off").listen is None
    assert parse("--listen", ":6000").listen == ("127.0.0.1", 6000)
    assert parse("--listen", "0.0.0.0:5001").listen == ("0.0.0.0", 5001)
    assert parse("--drop", "0.25").drop == 0.25


async def test_it_prints_where_to_connect_then_serves(capsys: pytest.CaptureFixture[str]) -> None:
    task = asyncio.create_task(run(parse("--listen", "127.0.0.1:0", "--packs", "2")))
    try:
        for _ in range(100):
            await asyncio.sleep(0.02)
            if "control:" in (out := capsys.readouterr().out):
                break
        tcp = re.search(r"^tcp: socket://127\.0\.0\.1:(\d+)$", out, re.MULTILINE)
        assert tcp, out
        assert out.startswith("ress-bms simulate: 2 pack(s) of 16 cells, dialect pace")
        assert re.search(r"^control: \S+:\d+$", out, re.MULTILINE), out
        _reader, writer = await asyncio.open_connection("127.0.0.1", int(tcp[1]))
        writer.close()
        await writer.wait_closed()
        assert not task.done()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
