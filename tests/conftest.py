"""Root test configuration, shared by the library tests and the Home Assistant tests.

pytest-homeassistant-custom-component registers its pytest plugin for the whole run, so every test,
including the plain library tests under tests/ress_bms, runs under it: sockets other than Unix
sockets are blocked unless a test asks for the `socket_enabled` fixture (and then only 127.0.0.1 is
reachable), and each test must leave no thread, task or timer behind. Home Assistant-only fixtures
(custom integrations enabled) live in tests/integration/conftest.py.

`tests/__init__.py` matters: with it, pytest puts the repository root (not tests/) on sys.path, so
`custom_components` is importable and `tests/ress_bms` never shadows the `ress_bms` library.
"""

from __future__ import annotations

from pathlib import Path
import sys

REPO_ROOT = Path(__file__).resolve().parent.parent
LIBRARY_DIR = REPO_ROOT / "custom_components" / "syscom_ress" / "ress_bms"

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
