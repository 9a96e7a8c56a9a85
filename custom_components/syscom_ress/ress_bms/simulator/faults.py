"""Wire faults: what a flaky gateway or a noisy RS485 line does to the replies.

Each reply gets at most one fault. Queued one-shot faults (:meth:`Faults.once`) come first, in
order; otherwise each kind is rolled with its probability, in the order of :data:`FAULT_KINDS`,
from a generator seeded by the simulator's seed (so a run is repeatable).
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, fields
import random
from typing import Final

from ..frame import EOI, SOI

FAULT_KINDS: Final = (
    "corrupt_checksum",
    "truncate",
    "glue",
    "garbage",
    "drop",
    "late",
    "disconnect",
)
"""Every kind of wire fault, in the order their probabilities are rolled."""


@dataclass(slots=True)
class FaultSettings:
    """Probability (0..1) of each fault per reply, and how late a late reply comes."""

    corrupt_checksum: float = 0.0
    """The reply's CHKSUM is wrong (the client must raise a checksum error and retry)."""
    truncate: float = 0.0
    """The reply loses its tail; the CR is still sent, so the frame is short for its LENID."""
    glue: float = 0.0
    """The previous reply is sent again, glued in front of this one in a single write."""
    garbage: float = 0.0
    """1-16 bytes of line noise (never ``~`` or CR) arrive before the reply."""
    drop: float = 0.0
    """No reply at all."""
    late: float = 0.0
    """The reply comes ``late_delay`` seconds after its turnaround: past the client's timeout."""
    disconnect: float = 0.0
    """The TCP connection is closed instead of replying (no effect on a pseudo-terminal)."""
    late_delay: float = 2.0

    def update(self, **values: float) -> None:
        """Change some settings; unknown names raise ``KeyError``."""
        names = {f.name for f in fields(self)}
        for name, given in values.items():
            if name not in names:
                raise KeyError(f"unknown fault {name!r}; known: {', '.join(sorted(names))}")
            value = float(given)
            if name != "late_delay" and not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}: probability {value} outside 0..1")
            setattr(self, name, value)


@dataclass(frozen=True, slots=True)
class Delivery:
    """What actually goes on the wire for one reply."""

    data: bytes
    """Sent after the turnaround (empty: nothing now)."""
    late: bytes = b""
    """Sent ``delay`` seconds later."""
    delay: float = 0.0
    disconnect: bool = False
    fault: str | None = None


class Faults:
    """Fault settings, one-shot queue and the counters tests assert on."""

    def __init__(self, seed: int = 0, settings: FaultSettings | None = None) -> None:
        self.settings = settings or FaultSettings()
        self.rng = random.Random(f"{seed}:faults")
        self.queue: deque[str] = deque()
        self.injected: Counter[str] = Counter()
        """How many replies each fault has hit so far."""
        self._previous: bytes | None = None

    def set(self, **probabilities: float) -> None:
        """Set fault probabilities, e.g. ``sim.faults.set(drop=0.1, late_delay=1.5)``."""
        self.settings.update(**probabilities)

    def once(self, kind: str, count: int = 1) -> None:
        """Hit the next ``count`` replies with ``kind`` (whatever the probabilities)."""
        if kind not in FAULT_KINDS:
            raise KeyError(f"unknown fault {kind!r}; known: {', '.join(FAULT_KINDS)}")
        self.queue.extend([kind] * count)

    def clear(self) -> None:
        """No more faults: zero probabilities, empty queue."""
        self.settings = FaultSettings(late_delay=self.settings.late_delay)
        self.queue.clear()

    def _pick(self) -> str | None:
        if self.queue:
            return self.queue.popleft()
        for kind in FAULT_KINDS:
            probability = getattr(self.settings, kind)
            if probability and self.rng.random() < probability:
                return kind
        return None

    def apply(self, reply: bytes, *, modbus: bool = False) -> Delivery:
        """Decide what happens to ``reply`` (a whole frame, CR included).

        ``modbus``: the reply is a Modbus RTU frame: a corrupt checksum is a wrong CRC, a
        truncated reply simply loses its tail (RTU has no end marker).
        """
        previous, self._previous = self._previous, reply
        kind = self._pick()
        if kind is None:
            return Delivery(reply)
        self.injected[kind] += 1
        match kind:
            case "corrupt_checksum" if modbus:
                wrong = reply[-2:][0] ^ (1 + self.rng.randrange(0xFF))
                return Delivery(reply[:-2] + bytes((wrong, reply[-1])), fault=kind)
            case "truncate" if modbus:
                return Delivery(reply[: self.rng.randrange(1, len(reply))], fault=kind)
            case "corrupt_checksum":
                wrong = (int(reply[-5:-1], 16) + 1 + self.rng.randrange(0xFFFE)) & 0xFFFF
                return Delivery(reply[:-5] + b"%04X" % wrong + b"\r", fault=kind)
            case "truncate":
                cut = self.rng.randrange(2, len(reply) - 1)
                return Delivery(reply[:cut] + b"\r", fault=kind)
            case "glue":
                return Delivery((previous or reply) + reply, fault=kind)
            case "garbage":
                noise = bytes(
                    self.rng.choice([b for b in range(256) if b not in (SOI, EOI)])
                    for _ in range(self.rng.randint(1, 16))
                )
                return Delivery(noise + reply, fault=kind)
            case "drop":
                return Delivery(b"", fault=kind)
            case "late":
                return Delivery(b"", reply, self.settings.late_delay, fault=kind)
            case _:
                return Delivery(b"", disconnect=True, fault=kind)
