"""A development Home Assistant on a simulated battery stack.

Shared by ``script/develop`` (run with ``.venv/bin/python script/devhome.py``) and the end-to-end
test (``tests/e2e``). :class:`DevHome` does, in a state folder of its own:

1. installs into the running venv the packages a real Home Assistant run needs (the frontend and
   the requirements of every integration it sets up, as their manifests pin them; the two that
   have no wheel for Python 3.14 are built with Debian's Python headers), so that ``hass`` runs
   with ``--skip-pip`` and installs nothing itself;
2. starts the simulator (``python -m ress_bms simulate``: 3 packs, solar-day profile, accelerated,
   fixed seed) on a local port; for ``script/develop`` at 10:30 of today with the packs half full,
   and with its control socket (``ress-bms control``), whose recipes the banner prints;
3. writes a minimal ``configuration.yaml`` (frontend, config, api, http, history, logbook,
   energy, logger with debug for the integration), links the repository's ``custom_components``
   into the config folder and starts ``hass`` with it;
4. onboards through the REST API (user, core config, analytics, integration; the suggested
   integrations that cannot work offline are removed again) or, when that was done on an
   earlier start, logs in through the login flow; confirms the ``http:`` settings Home
   Assistant moved from YAML into its store on the first start;
5. sets the integration up through its real config flow over the REST API (menu -> network ->
   form -> confirm), or, when the entry exists but the simulator moved to another port, moves
   the entry with the reconfigure flow;
6. waits for the stack device, its pack devices and a live state of charge.

Nothing is written into Home Assistant's ``.storage`` by hand. Stopping ends Home Assistant
(SIGTERM, its clean shutdown) and then the simulator. The children die with this process too
(``PR_SET_PDEATHSIG``), so nothing lingers after a crash.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Iterable
import contextlib
import ctypes
from datetime import datetime
import json
import os
from pathlib import Path
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from typing import Any, Self
from urllib.parse import urlsplit

import aiohttp

from ress_bms.dialects import DIALECTS

ROOT = Path(__file__).resolve().parent.parent
INTEGRATION_DIR = ROOT / "custom_components" / "syscom_ress"
DOMAIN = "syscom_ress"
LIST_FOR_DISPLAY: dict[str, Any] = {"type": "config/entity_registry/list_for_display"}
"""The entity list every frontend loads. ``config/entity_registry/list`` would make Home Assistant
cache a JSON copy in each registry entry, disabled ones included (about 5 MiB for 16 packs),
which only its entity settings page does: a tool that lists entities should not add that."""


def ours_for_display(listed: dict[str, Any]) -> list[dict[str, Any]]:
    """The integration's entries of a :data:`LIST_FOR_DISPLAY` answer.

    Each has ``ei`` (entity id), ``di`` (device id) and ``tk`` (translation key).
    """
    return [e for e in listed["entities"] if e.get("pl") == DOMAIN]


DEV_NAME = "Developer"
DEV_USER = "dev"
DEV_PASSWORD = "ress-develop"  # a fixed, documented login of a local development instance
DEV_COUNTRY = "NL"
DEV_LANGUAGE = "en"
DEMO_START_HOUR = 10
"""script/develop's simulated stack starts at 10:30 of today..."""
DEMO_SOC = 50.0
"""...with its packs about half full (each within 3 % of it)."""

CONFIG_DOMAINS = ("frontend", "config", "api", "http", "history", "logbook", "energy", "logger")
"""What configuration.yaml sets up (Home Assistant adds its default integrations)."""

ONBOARDING_SUGGESTIONS = ("google_translate", "met", "radio_browser")
"""Integrations the onboarding's core config step adds (shopping_list works and stays)."""

HTTP_TIMEOUT = aiohttp.ClientTimeout(total=30)

Log = Callable[[str], None]


def _say(message: str) -> None:
    print(f"develop: {message}", flush=True)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether ``port`` can be bound on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


# -- what Home Assistant needs at run time -------------------------------------------------------


def integrations_to_set_up() -> set[str]:
    """Every integration the development configuration sets up, dependencies included."""
    from homeassistant import bootstrap  # noqa: PLC0415 - the venv's Home Assistant
    from homeassistant.const import BASE_PLATFORMS  # noqa: PLC0415

    components = Path(bootstrap.__file__).parent / "components"
    todo = [*CONFIG_DOMAINS, *bootstrap.DEFAULT_INTEGRATIONS, *BASE_PLATFORMS, DOMAIN]
    seen: set[str] = set()
    while todo:
        domain = todo.pop()
        if domain in seen:
            continue
        seen.add(domain)
        todo.extend(_manifest(components, domain).get("dependencies", []))
    return seen


def _manifest(components: Path, domain: str) -> dict[str, Any]:
    path = INTEGRATION_DIR if domain == DOMAIN else components / domain
    manifest = path / "manifest.json"
    if not manifest.is_file():
        return {}
    data: dict[str, Any] = json.loads(manifest.read_text(encoding="utf-8"))
    return data


def runtime_requirements() -> dict[str, list[str]]:
    """Requirement -> the integrations that ask for it, for everything that is set up."""
    from homeassistant import bootstrap  # noqa: PLC0415

    components = Path(bootstrap.__file__).parent / "components"
    wanted: dict[str, list[str]] = {}
    for domain in sorted(integrations_to_set_up()):
        for requirement in _manifest(components, domain).get("requirements", []):
            wanted.setdefault(requirement, []).append(domain)
    return wanted


def _satisfied(requirement: str) -> bool:
    from importlib import metadata  # noqa: PLC0415

    from packaging.requirements import Requirement  # noqa: PLC0415

    req = Requirement(requirement)
    try:
        version = metadata.version(req.name)
    except metadata.PackageNotFoundError:
        return False
    return req.specifier.contains(version, prereleases=True)


GIVEN_UP_FILE = Path(sys.prefix) / ".ress-develop-given-up"
"""Requirements that could not be installed into this venv as pinned (not retried; delete the
file to retry)."""


def ensure_requirements(log: Log = _say) -> None:
    """Install the missing runtime requirements into this venv, as their manifests pin them.

    The frontend and every integration Home Assistant sets up here pin exact versions. Home
    Assistant imports every base platform (to validate service descriptions for the frontend), so
    all of them must import, the voice assistant's too: ``pymicro-vad`` and ``pyspeex-noise``
    ship no wheel for every Python and are built from source, with the interpreter's C headers
    (:func:`python_headers`). Should a pinned version still not install, the newest release with
    a wheel is installed instead (said on the console); that is remembered in the venv.
    """
    wanted = runtime_requirements()
    given_up = set()
    if GIVEN_UP_FILE.is_file():
        given_up = set(GIVEN_UP_FILE.read_text(encoding="utf-8").split())
    missing = [r for r in sorted(wanted) if not _satisfied(r) and r not in given_up]
    if not missing:
        return
    log(f"installing what Home Assistant needs at run time: {' '.join(missing)}")
    env = dict(os.environ)
    if (headers := python_headers(log)) is not None:
        env["CPPFLAGS"] = f"-I{headers} {env.get('CPPFLAGS', '')}".strip()
    if _pip_install(missing, env):
        return
    for requirement in missing:
        if _pip_install([requirement], env):
            continue
        name = requirement.split("=")[0].split("<")[0].split(">")[0]
        substituted = _pip_install(["--only-binary", ":all:", name], env)
        log(
            f"could not install {requirement} (needed by {', '.join(wanted[requirement])}); "
            + ("installed the newest release with a wheel instead" if substituted else "skipped")
        )
        given_up.add(requirement)
    GIVEN_UP_FILE.write_text("\n".join(sorted(given_up)) + "\n", encoding="utf-8")


def _pip_install(requirements: list[str], env: dict[str, str]) -> bool:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
         *requirements],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )  # fmt: skip
    return result.returncode == 0


PYTHON_HEADERS = Path(sys.prefix) / "python-headers"
"""Where :func:`python_headers` puts the interpreter's C headers when it has none."""


def python_headers(log: Log = _say) -> Path | None:
    """A folder with this interpreter's C headers, or None when the compiler finds them anyway.

    The private Python that script/bootstrap unpacks from Debian's binary packages has no
    headers; they are Debian's ``libpython3.X-dev`` of the same suite (sid), fetched with
    ``apt-get download`` on a private apt configuration (nothing on the system changes) and
    unpacked into the venv. None as well when that is impossible (not Debian, no apt-get).
    """
    if (Path(sysconfig.get_paths()["include"]) / "Python.h").is_file():
        return None
    if (PYTHON_HEADERS / "Python.h").is_file():
        return PYTHON_HEADERS
    version = sysconfig.get_config_var("VERSION")
    multiarch = sysconfig.get_config_var("MULTIARCH")
    keyring = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
    if not (shutil.which("apt-get") and shutil.which("dpkg") and multiarch and keyring.is_file()):
        return None
    package = f"libpython{version}-dev"
    log(f"fetching the C headers of Python {version} ({package} from Debian sid)")
    with tempfile.TemporaryDirectory() as tmp:
        apt = Path(tmp)
        for folder in ("lists/partial", "cache/archives/partial", "sources.d", "preferences.d"):
            (apt / folder).mkdir(parents=True)
        (apt / "sources.list").write_text(
            f"deb [signed-by={keyring}] {_debian_mirror()} sid main\n", encoding="utf-8"
        )
        settings = {
            "Dir::Etc::SourceList": apt / "sources.list",
            "Dir::Etc::SourceParts": apt / "sources.d",
            "Dir::Etc::Preferences": apt / "preferences",
            "Dir::Etc::PreferencesParts": apt / "preferences.d",
            "Dir::State::Lists": apt / "lists",
            "Dir::Cache": apt / "cache",
            "Dir::Cache::pkgcache": apt / "cache/pkgcache.bin",
            "Dir::Cache::srcpkgcache": apt / "cache/srcpkgcache.bin",
            "Acquire::Languages": "none",
            "APT::Sandbox::User": "root",
        }
        options = [f"-o{key}={value}" for key, value in settings.items()]
        for command in (["update", "-qq"], ["download", "-qq", package]):
            done = subprocess.run(
                ["apt-get", *options, *command], cwd=apt, capture_output=True, check=False
            )
            if done.returncode != 0:
                log(f"apt-get {command[0]} failed: {done.stderr.decode(errors='replace')[-300:]}")
                return None
        (deb,) = apt.glob("*.deb")
        subprocess.run(["dpkg", "-x", str(deb), str(apt / "root")], check=True)
        include = apt / "root" / "usr" / "include"
        staging = PYTHON_HEADERS.with_name(PYTHON_HEADERS.name + ".new")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(include / f"python{version}", staging)
        # Debian's pyconfig.h includes <MULTIARCH/pythonX.Y/pyconfig.h>: put the real one there.
        shutil.copy2(include / multiarch / f"python{version}" / "pyconfig.h", staging)
        shutil.rmtree(PYTHON_HEADERS, ignore_errors=True)
        staging.rename(PYTHON_HEADERS)
    return PYTHON_HEADERS


def _debian_mirror() -> str:
    """The system's first Debian mirror (as script/bootstrap picks it), deb.debian.org else."""
    sources = [*Path("/etc/apt/sources.list.d").glob("*.sources")]
    lines: list[str] = []
    for path in sources:
        with contextlib.suppress(OSError):
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip().startswith("URIs:"):
                    lines.extend(line.split(":", 1)[1].split())
    for path in (Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*.list")):
        with contextlib.suppress(OSError):
            for line in path.read_text(encoding="utf-8").splitlines():
                words = re.sub(r"\[[^]]*\]", "", line).split()
                if len(words) > 1 and words[0] == "deb":
                    lines.append(words[1])
    for uri in lines:
        if re.fullmatch(r"(https?|ftp)://\S*/debian/?", uri):
            return uri.rstrip("/")
    return "http://deb.debian.org/debian"


# -- child processes -----------------------------------------------------------------------------


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGTERM when this process dies (Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except OSError, AttributeError:
        return None
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)

    return preexec


class Child:
    """A child process with its output in a log file."""

    def __init__(self, name: str, args: list[str], log_path: Path, **kwargs: Any) -> None:
        self.name = name
        self.args = args
        self.log_path = log_path
        self.kwargs = kwargs
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start (the log file is truncated)."""
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # the terminal's Ctrl-C goes to us; we stop them in order
                preexec_fn=_die_with_parent(),  # noqa: PLW1509 - only calls prctl
                **self.kwargs,
            )

    @property
    def returncode(self) -> int | None:
        """The exit status, or None while running."""
        return None if self.proc is None else self.proc.poll()

    def tail(self, lines: int = 30) -> str:
        """The last lines of the log."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    async def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 30.0) -> None:
        """Send ``sig``, wait up to ``timeout`` seconds, then kill."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
            if not await _exited(proc, timeout):
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await _exited(proc, 10.0)
        # Helpers it left behind in its own process group (a browser's renderers, say).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


async def _exited(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Poll ``proc`` (no thread, no child watcher) until it exits or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


# -- Home Assistant's APIs -----------------------------------------------------------------------


class ApiError(RuntimeError):
    """A REST or websocket call that did not answer as expected."""


class HassApi:
    """The REST and websocket APIs of one Home Assistant, as the frontend uses them."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url.rstrip("/")
        self.client_id = f"{self.url}/"
        self.redirect_uri = f"{self.url}/?auth_callback=1"
        self.token: str | None = None

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def request(
        self, method: str, path: str, payload: Any = None, *, expect: Iterable[int] = (200,)
    ) -> Any:
        """Call ``path`` with a JSON body; the decoded JSON answer (or the text of another)."""
        async with self.session.request(
            method,
            f"{self.url}{path}",
            json=payload,
            headers=self._headers(),
            timeout=HTTP_TIMEOUT,
        ) as resp:
            text = await resp.text()
            if resp.status not in set(expect):
                raise ApiError(f"{method} {path}: HTTP {resp.status}: {text[:300]}")
            if resp.content_type != "application/json":
                return text
            return json.loads(text) if text else None

    async def get(self, path: str) -> Any:
        """GET ``path``."""
        return await self.request("GET", path)

    async def post(self, path: str, payload: Any = None) -> Any:
        """POST ``payload`` to ``path``."""
        return await self.request("POST", path, payload if payload is not None else {})

    # -- authentication

    async def exchange_code(self, code: str) -> dict[str, Any]:
        """Trade an authorization code for tokens; use the access token from now on."""
        async with self.session.post(
            f"{self.url}/auth/token",
            data={"grant_type": "authorization_code", "code": code, "client_id": self.client_id},
            timeout=HTTP_TIMEOUT,
        ) as resp:
            if resp.status != 200:
                raise ApiError(f"/auth/token: HTTP {resp.status}: {await resp.text()}")
            tokens: dict[str, Any] = await resp.json()
        self.token = tokens["access_token"]
        return tokens

    async def login_code(self, username: str = DEV_USER, password: str = DEV_PASSWORD) -> str:
        """An authorization code for ``client_id``, through the login flow (the login page's)."""
        flow = await self.post(
            "/auth/login_flow",
            {
                "client_id": self.client_id,
                "handler": ["homeassistant", None],
                "redirect_uri": self.redirect_uri,
            },
        )
        result = await self.post(
            f"/auth/login_flow/{flow['flow_id']}",
            {"client_id": self.client_id, "username": username, "password": password},
        )
        if result.get("type") != "create_entry":
            raise ApiError(f"login of {username!r} refused: {result.get('errors')}")
        return str(result["result"])

    # -- websocket

    async def ws(self, *commands: dict[str, Any]) -> list[Any]:
        """Run websocket commands in order on one connection; their results."""
        results: list[Any] = []
        async with self.session.ws_connect(
            f"{self.url}/api/websocket", timeout=aiohttp.ClientWSTimeout(ws_close=10)
        ) as ws:
            await self._ws_receive(ws, "auth_required")
            await ws.send_json({"type": "auth", "access_token": self.token})
            await self._ws_receive(ws, "auth_ok")
            for number, command in enumerate(commands, start=1):
                await ws.send_json({"id": number, **command})
                reply = await self._ws_receive(ws, "result")
                if not reply.get("success"):
                    raise ApiError(f"websocket {command['type']}: {reply.get('error')}")
                results.append(reply["result"])
        return results

    @staticmethod
    async def _ws_receive(ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict[str, Any]:
        async with asyncio.timeout(30):
            while True:
                message: dict[str, Any] = await ws.receive_json()
                if message.get("type") == kind:
                    return message
                if message.get("type") == "auth_invalid":
                    raise ApiError(f"websocket auth refused: {message.get('message')}")


# -- the development instance --------------------------------------------------------------------


HTTP_YAML = """
http:
  server_host: {host}
  server_port: {port}
"""
"""Only on the first start: Home Assistant (2026.8+) moves it into its HTTP config store once,
as a trial that :meth:`DevHome._promote_http_config` confirms, and ignores the YAML after that."""

CONFIGURATION_YAML = """\
# Written by script/develop (devhome.py) on every start: edit packages/*.yaml instead.
homeassistant:
  name: RESS develop
  unit_system: metric
  time_zone: {time_zone}
  packages: !include_dir_named packages

frontend:
config:
api:
history:
logbook:
energy:
{http}
logger:
  default: info
  logs:
    custom_components.syscom_ress: debug
"""


def _time_zone() -> str:
    """The machine's IANA time zone, UTC when it cannot be told."""
    with contextlib.suppress(OSError):
        zone = Path("/etc/timezone").read_text(encoding="utf-8").strip()
        if zone:
            return zone
    with contextlib.suppress(OSError, ValueError):
        target = os.readlink("/etc/localtime")
        if "zoneinfo/" in target:
            return target.split("zoneinfo/", 1)[1]
    return "UTC"


class DevHome:
    """Simulator + Home Assistant + onboarding + the config entry, under ``state_dir``.

    ``state_dir/config`` is Home Assistant's config folder, ``state_dir/develop.json`` remembers
    the simulator port (the entry is moved with the reconfigure flow when it changes),
    ``state_dir/simulator.log`` and ``state_dir/hass.console.log`` are the children's output.
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        http_host: str = "127.0.0.1",
        http_port: int | None = None,
        sim_port: int | None = None,
        packs: int = 3,
        profile: str = "solar-day",
        speed: float = 60.0,
        seed: int = 1,
        poll_mode: str = "auto",
        dialect: str = "pace",
        control: bool = False,
        log: Log = _say,
    ) -> None:
        self.state_dir = state_dir.resolve()
        self.config_dir = self.state_dir / "config"
        self.http_host = http_host
        self.http_port = http_port
        self.sim_port = sim_port
        self.packs = packs
        self.profile = profile
        self.speed = speed
        self.seed = seed
        self.poll_mode = poll_mode
        """The config flow's advanced "poll mode" (auto, broadcast, relay, direct)."""
        self.dialect = dialect
        """What the simulated stack speaks (``ress-bms simulate --dialect``), chosen in the flow."""
        self.simulator_args: list[str] = []
        """More ``ress-bms simulate`` flags (``--start``, ``--step``: bench/ha_cost.py)."""
        self.control = control
        self.control_port: int | None = None
        """The simulator's control socket (``ress-bms control``), when ``control`` is set."""
        self.log = log
        self.simulator: Child | None = None
        self.hass: Child | None = None
        self.session: aiohttp.ClientSession | None = None
        self.api: HassApi | None = None
        self.entry_id: str | None = None
        self.stack_device_id: str | None = None
        self.pack_device_ids: list[str] = []
        self.soc_entity_id: str | None = None
        self.ha_version: str | None = None
        self._onboarding_suggestions = False

    # -- properties

    @property
    def url(self) -> str:
        """Where the frontend is (127.0.0.1 when served on every interface)."""
        host = "127.0.0.1" if self.http_host in ("0.0.0.0", "::", "") else self.http_host
        return f"http://{host}:{self.http_port}"

    @property
    def sim_url(self) -> str:
        """The simulator as a gateway URL, the way a user types it into the config flow."""
        return f"socket://127.0.0.1:{self.sim_port}"

    @property
    def log_path(self) -> Path:
        """Home Assistant's log file."""
        return self.config_dir / "home-assistant.log"

    def rss_kib(self) -> int | None:
        """Resident memory of the Home Assistant process (KiB), None when it is not running."""
        proc = self.hass.proc if self.hass is not None else None
        if proc is None or proc.poll() is not None:
            return None
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return None

    @property
    def _state_file(self) -> Path:
        return self.state_dir / "develop.json"

    def _load_state(self) -> dict[str, Any]:
        with contextlib.suppress(OSError, ValueError):
            data: dict[str, Any] = json.loads(self._state_file.read_text(encoding="utf-8"))
            return data
        return {}

    def _save_state(self, **changes: Any) -> None:
        state = self._load_state() | changes
        self._state_file.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")

    # -- lifecycle

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    async def start(self, *, install: bool = True) -> None:
        """Everything, in order; raises with the children's last output when a step fails."""
        started = time.monotonic()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if install:
            await asyncio.to_thread(ensure_requirements, self.log)
        self._choose_ports()
        self._start_simulator()
        self._write_config()
        self._start_hass()
        self.session = aiohttp.ClientSession()
        self.api = HassApi(self.session, self.url)
        try:
            await self._wait_for_simulator()
            await self._wait_for_http()
            await self._onboard_or_login()
            await self._wait_running()
            await self._promote_http_config()
            await self._ensure_entry()
            await self._wait_for_stack()
            if self._onboarding_suggestions:
                await self._remove_failed_suggestions()
        except BaseException as err:
            if not isinstance(err, asyncio.CancelledError | KeyboardInterrupt):
                self._report_children()
            raise
        self.log(f"ready in {time.monotonic() - started:.0f} s")

    async def stop(self) -> None:
        """Home Assistant first (clean shutdown), then the simulator; close the HTTP session."""
        if self.session is not None:
            await self.session.close()
            self.session = None
        if self.hass is not None:
            await self.hass.stop(signal.SIGTERM, timeout=60)
        if self.simulator is not None:
            await self.simulator.stop(signal.SIGINT, timeout=10)

    async def run(self) -> int:
        """Supervise until a child exits; restart Home Assistant when it asks (exit 100)."""
        assert self.hass is not None
        assert self.simulator is not None
        while True:
            if (code := self.simulator.returncode) is not None:
                self.log(f"the simulator exited ({code}); its log:\n{self.simulator.tail()}")
                return 1
            if (code := self.hass.returncode) is not None:
                if code != 100:
                    self.log(f"Home Assistant exited ({code}); last output:\n{self.hass.tail()}")
                    return 0 if code == 0 else 1
                self.log("Home Assistant asked for a restart: restarting it")
                self.hass.start()
            await asyncio.sleep(0.5)

    def _report_children(self) -> None:
        for child in (self.simulator, self.hass):
            if child is not None:
                self.log(f"--- last output of {child.name} ({child.log_path}):\n{child.tail()}")

    # -- steps

    def _choose_ports(self) -> None:
        state = self._load_state()
        stored = state.get("http_port") if state.get("http_stored") else None
        if stored is not None:
            # Home Assistant keeps its HTTP settings in its own store after the first start.
            if self.http_port not in (None, stored):
                raise RuntimeError(
                    f"this Home Assistant serves on port {stored}, set on its first start; "
                    "start over (--fresh) for another port"
                )
            self.http_port = int(stored)
            if not port_is_free(self.http_port, self.http_host):
                raise RuntimeError(
                    f"port {self.http_port} is in use (is another script/develop running?)"
                )
        elif self.http_port is None:
            self.http_port = 8123 if port_is_free(8123, self.http_host) else free_port()
        if self.sim_port is None:
            previous = state.get("simulator_port")
            self.sim_port = (
                previous if isinstance(previous, int) and port_is_free(previous) else free_port()
            )
        if self.control and self.control_port is None:
            port = state.get("control_port")
            while not isinstance(port, int) or port == self.sim_port or not port_is_free(port):
                port = free_port()
            self.control_port = port
            self._save_state(control_port=port)

    def _start_simulator(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(INTEGRATION_DIR), env.get("PYTHONPATH", "")) if p
        )
        env["PYTHONUNBUFFERED"] = "1"
        self.simulator = Child(
            "the simulator",
            [
                sys.executable,
                *f"-m ress_bms simulate --packs {self.packs} --profile {self.profile}".split(),
                *f"--dialect {self.dialect}".split(),
                *f"--speed {self.speed} --seed {self.seed}".split(),
                *(
                    ["--control", str(self.control_port)]
                    if self.control_port is not None
                    else ["--no-control"]
                ),
                *f"--listen 127.0.0.1:{self.sim_port}".split(),
                *self.simulator_args,
            ],
            self.state_dir / "simulator.log",
            env=env,
            cwd=self.state_dir,
        )
        self.simulator.start()

    def _write_config(self) -> None:
        self.config_dir.mkdir(parents=True, exist_ok=True)
        (self.config_dir / "packages").mkdir(exist_ok=True)
        (self.config_dir / "configuration.yaml").write_text(
            CONFIGURATION_YAML.format(
                time_zone=_time_zone(),
                http=""
                if self._load_state().get("http_stored")
                else HTTP_YAML.format(host=self.http_host, port=self.http_port),
            ),
            encoding="utf-8",
        )
        link = self.config_dir / "custom_components"
        target = ROOT / "custom_components"
        if link.is_symlink() and link.resolve() != target.resolve():
            link.unlink()
        if not link.is_symlink():
            if link.exists():
                shutil.rmtree(link)
            link.symlink_to(target, target_is_directory=True)

    def _start_hass(self) -> None:
        hass = Path(sys.executable).parent / "hass"
        command = [str(hass)] if hass.exists() else [sys.executable, "-m", "homeassistant"]
        self.hass = Child(
            "Home Assistant",
            # --skip-pip: ensure_requirements installed what is needed; Home Assistant installs
            # nothing (and the onboarding's suggested cloud integrations stay uninstalled).
            [*command, "--config", str(self.config_dir), "--skip-pip", "--log-no-color"],
            self.state_dir / "hass.console.log",
            cwd=self.state_dir,
        )
        self.hass.start()
        self.log(f"Home Assistant starting on {self.url} (config {self.config_dir})")

    def _check_children(self) -> None:
        for child in (self.simulator, self.hass):
            if child is not None and child.returncode is not None:
                raise RuntimeError(f"{child.name} exited with status {child.returncode}")

    async def _until(
        self, what: str, probe: Callable[[], Any], timeout: float, interval: float = 0.5
    ) -> Any:
        """Call the coroutine function ``probe`` until it returns something true."""
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while True:
            self._check_children()
            try:
                if result := await probe():
                    return result
            except (aiohttp.ClientError, ApiError, OSError, ValueError) as err:
                last_error = err
            if time.monotonic() > deadline:
                detail = f" (last error: {last_error})" if last_error else ""
                raise TimeoutError(f"gave up waiting for {what} after {timeout:.0f} s{detail}")
            await asyncio.sleep(interval)

    async def _wait_for_simulator(self) -> None:
        assert self.simulator is not None

        async def listening() -> bool:
            return "tcp: socket://" in self.simulator.tail(10) if self.simulator else False

        await self._until("the simulator", listening, timeout=30, interval=0.1)
        self._save_state(simulator_port=self.sim_port)
        self.log(
            f"simulator: {self.packs} packs, {self.profile} profile, x{self.speed:g} time, "
            f"seed {self.seed} on {self.sim_url}"
        )

    async def _wait_for_http(self) -> None:
        async def answers() -> bool:
            await self._onboarding_steps()
            return True

        await self._until("Home Assistant's HTTP server", answers, timeout=180)

    async def _onboarding_steps(self) -> dict[str, bool]:
        """Which onboarding steps are done (the API is gone, 404, once all of them are)."""
        assert self.api is not None
        steps = await self.api.request("GET", "/api/onboarding", expect=(200, 404))
        if not isinstance(steps, list):
            return {"user": True, "core_config": True, "analytics": True, "integration": True}
        return {step["step"]: step["done"] for step in steps}

    async def _onboard_or_login(self) -> None:
        """Onboard (first start) or log in; the API client holds an access token afterwards."""
        assert self.api is not None
        api = self.api
        steps = await self._onboarding_steps()
        if not steps.get("user"):
            answer = await api.post(
                "/api/onboarding/users",
                {
                    "client_id": api.client_id,
                    "name": DEV_NAME,
                    "username": DEV_USER,
                    "password": DEV_PASSWORD,
                    "language": DEV_LANGUAGE,
                },
            )
            await api.exchange_code(answer["auth_code"])
            self.log(f"onboarded: user {DEV_USER!r} created")
        else:
            await api.exchange_code(await api.login_code())
        if not steps.get("core_config"):
            await api.post("/api/onboarding/core_config")
            # The frontend's onboarding asks for a country; without one Home Assistant raises a
            # repair issue that would badge every screen of the demo.
            await api.ws({"type": "config/core/update", "country": DEV_COUNTRY})
            self._onboarding_suggestions = True
        if not steps.get("analytics"):
            await api.post("/api/onboarding/analytics")
        if not steps.get("integration"):
            await api.post(
                "/api/onboarding/integration",
                {"client_id": api.client_id, "redirect_uri": api.redirect_uri},
            )

    async def _wait_running(self) -> None:
        assert self.api is not None
        api = self.api

        async def running() -> Any:
            config = await api.get("/api/config")
            if config.get("state") == "RUNNING":
                return config
            return None

        config = await self._until("Home Assistant to finish starting", running, timeout=180)
        self.ha_version = config.get("version")

    async def _promote_http_config(self) -> None:
        """Confirm the HTTP settings taken from configuration.yaml on the first start.

        Home Assistant 2026.8+ moves ``http:`` from YAML into its store as a trial that it
        reverts (with a restart) unless confirmed within five minutes; the frontend asks for the
        confirmation in a dialog. This confirms it the way that dialog does.
        """
        assert self.api is not None
        try:
            (config,) = await self.api.ws({"type": "http/config"})
            if config.get("pending") is not None:
                await self.api.ws({"type": "http/config/promote"})
                # Its repair ("move http: out of YAML") is moot: the YAML goes from the next start.
                with contextlib.suppress(ApiError):
                    await self.api.ws(
                        {
                            "type": "repairs/ignore_issue",
                            "domain": "http",
                            "issue_id": "deprecated_yaml",
                            "ignore": True,
                        }
                    )
        except ApiError as err:  # a Home Assistant that takes http: from YAML on every start
            self.log(f"HTTP settings stay in configuration.yaml ({err})")
            return
        self._save_state(http_port=self.http_port, http_stored=True)

    async def _ensure_entry(self) -> None:
        assert self.api is not None
        entries = await self.api.get(f"/api/config/config_entries/entry?domain={DOMAIN}")
        if not entries:
            self.entry_id = await self._config_flow()
            self._save_state(entry_device=self.sim_url)
            self.log(f"integration set up through the config flow on {self.sim_url}")
            return
        self.entry_id = entries[0]["entry_id"]
        if self._load_state().get("entry_device") != self.sim_url:
            await self._config_flow(reconfigure=self.entry_id)
            self._save_state(entry_device=self.sim_url)
            self.log(f"integration moved to {self.sim_url} through the reconfigure flow")

    async def _config_flow(self, reconfigure: str | None = None) -> str:
        """Run the real config (or reconfigure) flow: menu -> network -> form (-> confirm)."""
        assert self.api is not None
        api = self.api
        start: dict[str, Any] = {"handler": DOMAIN, "show_advanced_options": False}
        if reconfigure:
            start["entry_id"] = reconfigure
        result = await api.post("/api/config/config_entries/flow", start)
        flow = f"/api/config/config_entries/flow/{result['flow_id']}"
        if result["type"] != "menu" or "network" not in result["menu_options"]:
            raise ApiError(f"expected the connection menu, got {result}")
        result = await api.post(flow, {"next_step_id": "network"})
        if result["type"] != "form" or result["step_id"] != "network":
            raise ApiError(f"expected the network form, got {result}")
        result = await api.post(
            flow,
            {
                "device": self.sim_url,
                "advanced": {
                    # chosen: no detection, the confirm step comes at once
                    "dialect": self.dialect,
                    "baudrate": str(DIALECTS[self.dialect].baudrates[0]),
                    "poll_mode": self.poll_mode,
                    "master_address": 1,
                    "timeout": 1.0,
                },
            },
        )
        if reconfigure:
            if result["type"] != "abort" or result.get("reason") != "reconfigure_successful":
                raise ApiError(f"reconfigure did not succeed: {result}")
            return reconfigure
        if result["type"] != "form" or result["step_id"] != "confirm":
            raise ApiError(f"expected the confirm step, got {result}")
        placeholders = result.get("description_placeholders") or {}
        self.log(
            f"config flow found {placeholders.get('packs')} packs, "
            f"firmware {placeholders.get('firmware')}, serial {placeholders.get('serial')}"
        )
        result = await api.post(flow, {})
        if result["type"] != "create_entry":
            raise ApiError(f"expected a new entry, got {result}")
        return str(result["result"]["entry_id"])

    async def _remove_failed_suggestions(self) -> None:
        """Remove the onboarding's suggested entries that cannot work here.

        Their packages are not installed and there is no internet: Google Translate, Met.no,
        Radio Browser fail to set up (or to start their flow).
        """
        assert self.api is not None
        for entry in await self.api.get("/api/config/config_entries/entry"):
            if entry["domain"] in ONBOARDING_SUGGESTIONS and entry["state"] != "loaded":
                await self.api.request(
                    "DELETE", f"/api/config/config_entries/entry/{entry['entry_id']}"
                )

    async def _wait_for_stack(self) -> None:
        """Until the stack device, every pack device and a numeric stack SOC are there."""
        assert self.api is not None
        api = self.api

        async def ready() -> bool:
            devices, listed = await api.ws(
                {"type": "config/device_registry/list"}, LIST_FOR_DISPLAY
            )
            entities = ours_for_display(listed)
            mine = [d for d in devices if self.entry_id in d.get("config_entries", [])]
            stacks = [d for d in mine if not d.get("via_device_id")]
            if len(stacks) != 1:
                return False
            stack = stacks[0]
            packs = [d for d in mine if d.get("via_device_id") == stack["id"]]
            soc = next(
                (e["ei"] for e in entities if e.get("di") == stack["id"] and e.get("tk") == "soc"),
                None,
            )
            if len(packs) < self.packs or soc is None:
                return False
            state = await api.get(f"/api/states/{soc}")
            try:
                float(state["state"])
            except TypeError, ValueError:
                return False
            pack_entities = {e.get("di") for e in entities}
            if not all(p["id"] in pack_entities for p in packs):
                return False
            self.stack_device_id = stack["id"]
            self.pack_device_ids = [p["id"] for p in packs]
            self.soc_entity_id = soc
            return True

        await self._until("the stack's devices and a live state of charge", ready, timeout=120)

    async def ensure_long_lived_token(self) -> Path:
        """A long-lived access token in ``state_dir/token`` (made once, checked every start)."""
        assert self.api is not None
        path = self.state_dir / "token"
        if path.is_file():
            token = path.read_text(encoding="utf-8").strip()
            assert self.session is not None
            async with self.session.get(
                f"{self.url}/api/",
                headers={"Authorization": f"Bearer {token}"},
                timeout=HTTP_TIMEOUT,
            ) as resp:
                if resp.status == 200:
                    return path
        (token,) = await self.api.ws(
            {
                "type": "auth/long_lived_access_token",
                "client_name": f"script/develop {int(time.time())}",
                "lifespan": 3650,
            }
        )
        path.write_text(f"{token}\n", encoding="utf-8")
        path.chmod(0o600)
        return path


# -- script/develop ------------------------------------------------------------------------------


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="script/develop",
        description="Home Assistant with the integration on a simulated stack, under .develop/.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (127.0.0.1)")
    parser.add_argument("--port", type=int, help="HTTP port (default 8123, or a free one)")
    parser.add_argument("--packs", type=int, default=3, help="packs in the stack (3)")
    parser.add_argument("--profile", default="solar-day", help="simulator profile (solar-day)")
    parser.add_argument("--speed", type=float, default=60.0, help="simulated time factor (60)")
    parser.add_argument(
        "--dialect",
        default="pace",
        choices=tuple(DIALECTS),
        help="what the stack speaks (pace); after changing it, start with --fresh",
    )
    parser.add_argument(
        "--fresh", action="store_true", help="delete .develop/ first (new user, new entry)"
    )
    return parser.parse_args(argv)


def develop_home(args: argparse.Namespace, state_dir: Path) -> DevHome:
    """script/develop's instance: the simulator starts at a pleasant point, with its control.

    Late morning of today, the packs half full, the sun coming up to its best (solar-day):
    nothing near a protection for days of simulated time, until the owner raises one with
    ``ress-bms control`` (the banner says how).
    """
    home = DevHome(
        state_dir,
        http_host=args.host,
        http_port=args.port,
        packs=args.packs,
        profile=args.profile,
        speed=args.speed,
        dialect=args.dialect,
        control=True,
    )
    start = datetime.now().replace(hour=DEMO_START_HOUR, minute=30, second=0, microsecond=0)
    home.simulator_args += ["--start", start.isoformat(), "--soc", f"{DEMO_SOC:g}"]
    return home


async def _develop(args: argparse.Namespace) -> int:
    state_dir = ROOT / ".develop"
    if args.fresh and state_dir.exists():
        shutil.rmtree(state_dir)
        _say("deleted .develop/")
    home = develop_home(args, state_dir)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        starting = asyncio.ensure_future(home.start())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
            _say("interrupted while starting")
            return 130
        stopping.cancel()
        if starting.exception() is not None:
            _say(f"failed: {starting.exception()}")
            return 1
        token = await home.ensure_long_lived_token()
        _banner(home, token)
        running = asyncio.ensure_future(home.run())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if running.done():
            return running.result()
        running.cancel()
        _say("stopping Home Assistant and the simulator...")
        return 0
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await home.stop()
        _say("stopped")


def _banner(home: DevHome, token: Path) -> None:
    rel = token.relative_to(ROOT) if token.is_relative_to(ROOT) else token
    host = urlsplit(home.url).netloc
    lines = [
        "",
        f"  Home Assistant {home.ha_version} on a simulated {home.packs}-pack stack "
        f"({home.profile}, x{home.speed:g} time)",
        "",
        f"  open     {home.url}",
        f"  stack    {home.url}/config/devices/device/{home.stack_device_id}",
        f"  login    {DEV_USER} / {DEV_PASSWORD}",
        f'  API      curl -H "Authorization: Bearer $(cat {rel})" http://{host}/api/states',
        f"  logs     {home.config_dir.relative_to(ROOT)}/home-assistant.log, "
        f".develop/simulator.log",
    ]
    if home.control_port is not None:
        control = f".venv/bin/ress-bms control --port {home.control_port}"
        lines += [
            "",
            "  try it   (the simulator's control socket; docs/simulator.md#control-socket)",
            f"    {control} raise pack=2 protection=cell_over_voltage",
            f"    {control} clear pack=2",
            f"    {control} offline pack=3 offline=true",
            f"    {control} set pack=1 current=-60",
            f"    {control} state pack=1",
        ]
    lines += ["", "  Ctrl-C stops Home Assistant and the simulator.", ""]
    print("\n".join(lines), flush=True)


def main(argv: list[str] | None = None) -> int:
    """``script/develop``."""
    return asyncio.run(_develop(_parse(argv)))


if __name__ == "__main__":
    sys.exit(main())
