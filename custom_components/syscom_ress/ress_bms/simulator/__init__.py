"""A protocol-exact simulator of a Syscom RESS stack (PACE VER 0x25).

For tests, demos and the benchmark. It answers through the library's own codecs; see
docs/simulator.md.

    async with Simulator(packs=3, seed=1) as sim:
        sim.url                      # "socket://127.0.0.1:PORT"
        sim.advance(60)              # step physics and the BMS by one simulated minute
        sim.pack(2).physics.soc      # state of the pack at address 2
        sim.faults.once("drop")      # lose the next reply

A hostile gateway in front of it (late, foreign-master, half-open; see gateway.py):
``Gateway(sim.host, sim.port, packs=3)``.
"""

from __future__ import annotations

from .bms import LIMITS, Bms, Limit
from .faults import FAULT_KINDS, Delivery, Faults, FaultSettings
from .firmware import DEFAULT_PROFILE, PROFILES, FirmwareProfile
from .gateway import GATEWAY_FAULTS, Gateway, GatewaySettings
from .pack import Pack
from .physics import LOAD_PROFILES, PackPhysics
from .protocol import respond
from .server import Simulator
from .stack import Stack

__all__ = [
    "DEFAULT_PROFILE",
    "FAULT_KINDS",
    "GATEWAY_FAULTS",
    "LIMITS",
    "LOAD_PROFILES",
    "PROFILES",
    "Bms",
    "Delivery",
    "FaultSettings",
    "Faults",
    "FirmwareProfile",
    "Gateway",
    "GatewaySettings",
    "Limit",
    "Pack",
    "PackPhysics",
    "Simulator",
    "Stack",
    "respond",
]
