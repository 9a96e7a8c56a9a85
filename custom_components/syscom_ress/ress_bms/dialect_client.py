"""A stack in any dialect with a :class:`~.dialects.base.Reader`: each pack at its own address.

:class:`DialectClient` is a :class:`~.client.StackClient` whose discovery and polls go through
the dialect's reader; what the dialect cannot do (its :class:`~.dialects.base.DialectInfo`
says so, with the reason) raises :class:`~.errors.UnsupportedCapabilityError` before a byte is
sent. :func:`make_client` picks the client a dialect needs: code above this module asks for a
dialect by its key and never branches on it.

Attribution: every request carries the pack's bus address and the link drops replies from
another address, late replies owed to a request that timed out, and another master's traffic;
each pack's cell and sensor counts are learned from its first reading and required of every
later one, as on PACE (:mod:`.attribution`).
"""

from __future__ import annotations

from collections.abc import Callable
import logging
import time
from typing import Any, Final, NoReturn

from .client import (
    MAX_PACKS,
    PackInfo,
    PackSample,
    PollMode,
    StackClient,
    StackInfo,
    StackSample,
)
from .device import Serials
from .dialects import DIALECTS, READERS
from .dialects.base import Capability, DialectInfo, Identity, Reader, Reading
from .errors import BmsError, BmsTimeoutError, DecodeError, LinkError, UnsupportedCapabilityError
from .link import Link

_LOGGER = logging.getLogger(__name__)

FIRST_PACK: Final = 1
READ: Final = frozenset({Capability.TELEMETRY, Capability.ALARMS})
"""What the client does through a reader."""
MISSES_ENDING_THE_SCAN: Final = 2
"""Discovery looks at pack numbers from 1 up and stops after this many silent ones in a row:
one pack that is off at set-up does not hide the packs after it."""


class _Ask:
    """The link, asked by a reader.

    The request's own address is expected back; a pack that may not be there gets the probe
    timeout and no retry.
    """

    def __init__(self, link: Link[Any], *, probing: bool, timeout: float) -> None:
        self._link = link
        self._timeout: float | None = timeout if probing else None
        self._retries: int | None = 0 if probing else None

    async def __call__[T](self, request: bytes, decode: Callable[[Any], T], /) -> T:
        return await self._link.exchange(
            request,
            decode,
            timeout=self._timeout,
            retries=self._retries,
            expect_adr=self._link.framing.address(request),
        )


class DialectClient(StackClient):
    """Discover and poll a stack through its dialect's reader."""

    def __init__(self, link: Link[Any], reader: Reader) -> None:
        super().__init__(link, master_address=FIRST_PACK, poll_mode=PollMode.DIRECT)
        self.reader = reader
        self.dialect = reader.info
        self.status_keys = reader.status_keys
        self.mode_reason = f"{reader.info.title}: each pack at its own address"

    def _asker(self, *, probing: bool = False) -> _Ask:
        return _Ask(self.link, probing=probing, timeout=self._probe_timeout)

    # -- discovery -----------------------------------------------------------------------------

    async def discover(self, *, scan: bool = False) -> StackInfo:
        """Pack 1 must answer; the packs after it are looked for until two in a row are silent.

        ``scan`` is accepted for the caller's sake: every dialect here is scanned.
        """
        self.attribution.forget()
        first = await self.reader.read(self._asker(), FIRST_PACK)
        packs = [await self._found(FIRST_PACK, first)]
        misses = 0
        for number in range(FIRST_PACK + 1, MAX_PACKS + 1):
            try:
                found = await self.reader.read(self._asker(probing=True), number)
            except LinkError as err:
                if not isinstance(err, BmsTimeoutError):
                    raise
                misses += 1
                if misses >= MISSES_ENDING_THE_SCAN:
                    break
                continue
            except DecodeError as err:
                _LOGGER.debug("%s: pack %s answers what is not a reading: %s", self, number, err)
                break
            misses = 0
            packs.append(await self._found(number, found))
        self.stack = StackInfo(FIRST_PACK, tuple(packs))
        return self.stack

    async def _found(self, number: int, first: Reading) -> PackInfo:
        self.attribution.learn(number, first.analog)
        try:
            identity = await self.reader.identify(self._asker(), number)
        except BmsError as err:
            _LOGGER.debug("%s: pack %s tells nothing of itself: %s", self, number, err)
            identity = Identity()
        return PackInfo(
            number,
            identity.version,
            identity.serial,
            identity.pack_serial,
            direct=True,
            model=identity.model,
        )

    async def detect_protocol(self) -> int:
        """The pack count, by discovering the stack again."""
        return len((await self.discover()).packs)

    async def read_serials(self, address: int | None = None) -> Serials:
        """The pack's serials as it tells them now (empty where the dialect sends none)."""
        number = FIRST_PACK if address is None else address
        identity = await self.reader.identify(self._asker(), number)
        return Serials(identity.serial or "", identity.pack_serial)

    def __str__(self) -> str:
        return f"{self.dialect.name} on {self.link.url}"

    # -- polling -------------------------------------------------------------------------------

    async def poll(self) -> StackSample:
        """Every pack's reading, one after the other; one pack's failure stays its own."""
        started = time.monotonic()
        numbers = self._addresses()
        samples: dict[int, PackSample] = {}
        probing = self._last_silent
        for number in numbers:
            try:
                found = await self.reader.read(self._asker(probing=probing), number)
            except BmsError as err:
                samples[number] = PackSample(number, error=err)
                if isinstance(err, LinkError) and not isinstance(err, BmsTimeoutError):
                    for rest in numbers[len(samples) :]:
                        samples[rest] = PackSample(rest, error=err)
                    break
                continue
            samples[number] = self._sample(number, found)
            probing = False
        self.mode = PollMode.DIRECT
        self._last_silent = all(isinstance(s.error, LinkError) for s in samples.values())
        return StackSample(samples, PollMode.DIRECT, started, time.monotonic() - started)

    def _sample(self, number: int, found: Reading) -> PackSample:
        try:
            self.attribution.check(number, found.analog)
        except DecodeError as err:
            self.attribution.misfit(number)
            return PackSample(number, error=err)
        self.attribution.learn(number, found.analog)
        return PackSample(number, found.analog, found.status.status)

    # -- what the dialect cannot do ------------------------------------------------------------

    def can(self, capability: Capability) -> bool:
        """Values and alarms: what a reader reads.

        A dialect's own parameter reads are the library's, not mapped to the shared table.
        """
        return capability in READ and self.dialect.can(capability)

    def why_not(self, capability: Capability) -> str:
        """The dialect's reason; a read it does have is not mapped to the shared table."""
        if capability not in self.dialect.reasons and self.dialect.can(capability):
            return "read by the library (ress-bms), not mapped to the shared parameter table"
        return super().why_not(capability)

    def _refuse(self, capability: Capability) -> NoReturn:
        raise UnsupportedCapabilityError(
            f"{self.dialect.title}: no {capability}: {self.why_not(capability)}"
        )

    async def read_parameters(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Refused: the shared parameter table is PACE 0x25's."""
        self._refuse(Capability.PARAMETERS_READ)

    async def write_parameters(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Refused: no write is sent in this dialect."""
        self._refuse(Capability.PARAMETERS_WRITE)

    async def set_switch(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Refused."""
        self._refuse(Capability.CONTROLS)

    async def set_mos(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Refused."""
        self._refuse(Capability.CONTROLS)

    async def shutdown(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Refused."""
        self._refuse(Capability.CONTROLS)

    async def read_clock(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Refused."""
        self._refuse(Capability.CLOCK)

    async def set_clock(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Refused."""
        self._refuse(Capability.CLOCK)

    async def read_capacities(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Refused (PACE's C5H)."""
        self._refuse(Capability.PARAMETERS_READ)

    async def read_history(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Refused."""
        self._refuse(Capability.HISTORY)


def dialect_info(name: str) -> DialectInfo:
    """The dialect called ``name``; :class:`ValueError` for a name no dialect has."""
    try:
        return DIALECTS[name]
    except KeyError:
        raise ValueError(f"no dialect {name!r}; known: {', '.join(DIALECTS)}") from None


def make_client(link: Link[Any], dialect: str, **options: Any) -> StackClient:
    """The client for a stack speaking ``dialect`` on ``link``.

    ``options`` are PACE's poll mode and master address, which the other dialects do not have.
    """
    dialect_info(dialect)
    reader = READERS.get(dialect)
    if reader is None:
        return StackClient(link, **options)
    return DialectClient(link, reader())


__all__ = ["DialectClient", "dialect_info", "make_client"]
