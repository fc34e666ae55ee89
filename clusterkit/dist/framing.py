"""4-byte length framing of a distribution connection after the handshake.

A zero-length frame is a tick (a keep-alive). Any other frame is one distribution
message: 'p' (pass-through, since we offer no atom cache), then the control
message term, then for some controls the message term (see control.py).
"""
from __future__ import annotations

import struct

_U32 = struct.Struct(">I")

TICK_FRAME = b"\x00\x00\x00\x00"
PASS_THROUGH = 112              # 'p'

# Larger frames are refused rather than buffered: a bogus length must not make us
# allocate gigabytes. Real messages this large have no place in a teaching kit.
MAX_FRAME = 64 * 1024 * 1024


class FramingError(Exception):
    pass


def frame(payload: bytes) -> bytes:
    return _U32.pack(len(payload)) + payload


class FrameDecoder:
    """Bytes in, whole frames out. `receive_data` returns a list of frame bodies."""

    def __init__(self, max_frame: int = MAX_FRAME):
        self._buf = bytearray()
        self._max = max_frame

    def receive_data(self, data: bytes) -> list[bytes]:
        buf = self._buf
        buf += data
        frames = []
        pos = 0
        end = len(buf)
        while end - pos >= 4:
            (length,) = _U32.unpack_from(buf, pos)
            if length > self._max:
                raise FramingError(f"frame of {length} bytes announced; the limit is {self._max}")
            if end - pos - 4 < length:
                break
            frames.append(bytes(buf[pos + 4:pos + 4 + length]))
            pos += 4 + length
        if pos:
            del buf[:pos]
        return frames
