"""Modbus RTU framing: CRC-16, read requests, replies sized by function code and byte count.

The framing layer of the Modbus dialects (PACE Modbus RTU V1.3, Seplos V3 / XZH), beside the
ASCII ``~...CR`` codec of :mod:`.frame`. Sources: MODBUS over Serial Line V1.02 (CRC, RTU
framing), [PACE-MODBUS] 1-3 and [XZH] 1-2 as summarised in the team's dialects reference
(function codes, exceptions):

* a frame is ``unit, function, data..., CRC-16`` (polynomial 0xA001 reflected, initial 0xFFFF,
  low byte first on the wire);
* only reads are encoded here: function 0x03 (holding registers), 0x04 (input registers) and
  0x01 (coils). Writes belong to a dialect that defines them precisely, not to the framing;
* a read reply is ``unit, function, byte count, data, CRC``; an exception reply is ``unit,
  function | 0x80, code, CRC`` and becomes :class:`ModbusExceptionError`;
* RTU has no start or end marker: over a serial line a frame ends with 3.5 character times of
  silence, over a TCP gateway replies can arrive split or glued. :class:`ReplyCutter` cuts the
  reply to one known request out of a byte stream, resynchronising past noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from .errors import BmsError, ChecksumError, DecodeError, FrameError, ResponseError

READ_COILS: Final = 0x01
READ_HOLDING: Final = 0x03
READ_INPUT: Final = 0x04
READ_FUNCTIONS: Final = frozenset({READ_COILS, READ_HOLDING, READ_INPUT})
MAX_REGISTERS: Final = 0x7D
"""Most registers one read may ask for (Modbus; [PACE-MODBUS] 0x03: 1..0x7D)."""
MAX_COILS: Final = 0x7D0
EXCEPTION_FLAG: Final = 0x80
EXCEPTION_CODES: Final[dict[int, str]] = {
    0x01: "illegal function",
    0x02: "illegal data address",
    0x03: "illegal data value",
    0x04: "slave device failure",
    0x05: "acknowledge",
    0x06: "slave device busy",
    0x08: "memory parity error",
    0x0A: "gateway path unavailable",
    0x0B: "gateway target device failed to respond",
    0x81: "no history record",
}
"""Modbus exception codes; 0x81 is the Seplos V3 (XZH) "no history record"."""


def crc16(data: bytes) -> int:
    """The Modbus CRC-16 of ``data`` (sent low byte first)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def with_crc(body: bytes) -> bytes:
    """``body`` followed by its CRC, low byte first."""
    return body + crc16(body).to_bytes(2, "little")


def character_seconds(baudrate: int, bits: int = 10) -> float:
    """Seconds one character takes on the line (8N1: 10 bits)."""
    return bits / baudrate


def frame_gap(baudrate: int) -> float:
    """The 3.5 character times of silence that end an RTU frame (1.75 ms above 19200 baud)."""
    return 0.00175 if baudrate > 19200 else 3.5 * character_seconds(baudrate)


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """One read: ``count`` registers (or coils) from ``start`` at ``unit``."""

    unit: int
    function: int
    start: int
    count: int

    def __post_init__(self) -> None:
        if not 0 <= self.unit <= 0xFF:
            raise ValueError(f"unit {self.unit} outside 0..255")
        if self.function not in READ_FUNCTIONS:
            raise ValueError(f"function {self.function:02X}H is not a read")
        limit = MAX_COILS if self.function == READ_COILS else MAX_REGISTERS
        if not 1 <= self.count <= limit:
            raise ValueError(f"count {self.count} outside 1..{limit}")
        if not 0 <= self.start <= 0xFFFF or self.start + self.count > 0x10000:
            raise ValueError(f"registers {self.start}+{self.count} outside the address space")

    @property
    def reply_bytes(self) -> int:
        """Data bytes the reply carries: 2 per register, or one bit per coil padded to bytes."""
        return (self.count + 7) // 8 if self.function == READ_COILS else 2 * self.count

    @property
    def reply_length(self) -> int:
        """Length of the whole reply frame: unit, function, byte count, data, CRC."""
        return 3 + self.reply_bytes + 2

    def encode(self) -> bytes:
        """The request frame."""
        body = bytes((self.unit, self.function)) + self.start.to_bytes(2) + self.count.to_bytes(2)
        return with_crc(body)


def decode_request(raw: bytes) -> ReadRequest:
    """A read request frame (to tell another master's requests apart from replies)."""
    if len(raw) != 8:
        raise FrameError(f"a read request has 8 bytes, not {len(raw)}")
    _check_crc(raw)
    try:
        return ReadRequest(raw[0], raw[1], int.from_bytes(raw[2:4]), int.from_bytes(raw[4:6]))
    except ValueError as err:
        raise FrameError(f"not a read request: {err}") from None


class ModbusExceptionError(ResponseError):
    """The device answered with a Modbus exception (function | 0x80, code)."""

    def __init__(self, unit: int, function: int, code: int) -> None:
        BmsError.__init__(
            self,
            f"unit {unit} answered function {function:02X}H with exception {code:02X}H "
            f"({EXCEPTION_CODES.get(code, 'unknown exception code')})",
        )
        self.unit = unit
        self.function = function
        self.code = code
        self.command = function
        self.meaning = EXCEPTION_CODES.get(code, "unknown exception code")

    @property
    def retryable(self) -> bool:
        """Only "slave device busy" is worth asking again at once."""
        return self.code == 0x06


@dataclass(frozen=True, slots=True)
class ReadReply:
    """The data of a read reply, with the request it answers."""

    request: ReadRequest
    data: bytes

    @property
    def registers(self) -> tuple[int, ...]:
        """The registers as unsigned 16-bit big-endian words (fc 03/04)."""
        if self.request.function == READ_COILS:
            raise DecodeError("a coil reply has bits, not registers")
        return tuple(int.from_bytes(self.data[i : i + 2]) for i in range(0, len(self.data), 2))

    def register(self, number: int) -> int:
        """Register ``number`` (an absolute register address within the request)."""
        offset = number - self.request.start
        if not 0 <= offset < self.request.count or self.request.function == READ_COILS:
            raise DecodeError(f"register {number} is not in this reply")
        return int.from_bytes(self.data[2 * offset : 2 * offset + 2])

    def coil(self, number: int) -> bool:
        """Coil ``number`` (absolute address) of a coil reply, LSB of the first byte first."""
        offset = number - self.request.start
        if not 0 <= offset < self.request.count or self.request.function != READ_COILS:
            raise DecodeError(f"coil {number} is not in this reply")
        return bool(self.data[offset // 8] >> (offset % 8) & 1)


def _check_crc(raw: bytes) -> None:
    if len(raw) < 4:
        raise FrameError(f"{len(raw)} bytes are not a Modbus frame")
    if crc16(raw[:-2]) != int.from_bytes(raw[-2:], "little"):
        raise ChecksumError("Modbus CRC mismatch")


def decode_reply(raw: bytes, request: ReadRequest) -> ReadReply:
    """Decode the reply to ``request``.

    Raises :class:`ModbusExceptionError` for an exception reply, :class:`ChecksumError` for a
    bad CRC, :class:`FrameError` for bytes of the wrong length and :class:`DecodeError` for a
    valid frame that answers another request (other unit, function or byte count).
    """
    _check_crc(raw)
    unit, function = raw[0], raw[1]
    if function == request.function | EXCEPTION_FLAG:
        if len(raw) != 5:
            raise FrameError(f"an exception reply has 5 bytes, not {len(raw)}")
        if unit != request.unit:
            raise DecodeError(f"exception from unit {unit}, asked unit {request.unit}")
        raise ModbusExceptionError(unit, request.function, raw[2])
    if unit != request.unit or function != request.function:
        raise DecodeError(
            f"reply of unit {unit} function {function:02X}H, asked unit {request.unit} "
            f"function {request.function:02X}H"
        )
    if len(raw) < 5 or raw[2] != request.reply_bytes or len(raw) != request.reply_length:
        raise DecodeError(
            f"reply of {len(raw)} bytes (count {raw[2] if len(raw) > 2 else '-'}), "
            f"expected {request.reply_length} (count {request.reply_bytes})"
        )
    return ReadReply(request, raw[3:-2])


class ReplyCutter:
    """Cut the reply to one request out of a byte stream (TCP gateways split and glue).

    Bytes are fed as they come; :meth:`feed` returns the frames found, each either the full
    reply length or an exception reply, whose CRC holds. Bytes that cannot start such a frame
    (noise, another exchange's tail) are skipped one at a time and counted in
    :attr:`discarded`, so the cutter finds the reply again after garbage.
    """

    __slots__ = ("_buffer", "discarded", "request")

    def __init__(self, request: ReadRequest) -> None:
        self.request = request
        self._buffer = bytearray()
        self.discarded = 0

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the complete frames found so far."""
        buf = self._buffer
        buf += data
        frames: list[bytes] = []
        while len(buf) >= 2:
            length = self._length_at_start()
            if length is None:
                del buf[0]
                self.discarded += 1
                continue
            if len(buf) < length:
                break
            candidate = bytes(buf[:length])
            if crc16(candidate[:-2]) == int.from_bytes(candidate[-2:], "little"):
                frames.append(candidate)
                del buf[:length]
            else:
                del buf[0]
                self.discarded += 1
        return frames

    def _length_at_start(self) -> int | None:
        """The frame length the buffer's first bytes announce, or None if they start none."""
        buf, request = self._buffer, self.request
        if buf[0] != request.unit:
            return None
        if buf[1] == request.function | EXCEPTION_FLAG:
            return 5
        if buf[1] != request.function:
            return None
        if len(buf) >= 3 and buf[2] != request.reply_bytes:
            return None
        return request.reply_length

    @property
    def pending(self) -> int:
        """Bytes held that may still become a frame."""
        return len(self._buffer)

    @property
    def awaited(self) -> int:
        """Bytes the reply begun in the buffer still needs (0: none begun)."""
        if len(self._buffer) < 2:
            return 0
        length = self._length_at_start()
        return 0 if length is None else max(0, length - len(self._buffer))

    def clear(self) -> int:
        """Drop what is held; return how many bytes were dropped."""
        dropped = len(self._buffer)
        self.discarded += dropped
        self._buffer.clear()
        return dropped
