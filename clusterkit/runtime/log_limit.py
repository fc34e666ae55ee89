"""Rate-limited log lines: a flood of bad connections must not fill a disk or a notebook.

One line per key (a peer's address and what went wrong) per interval; the lines dropped meanwhile are
counted and the next line that gets through says how many there were. The clock is
passed in so tests can move it.
"""
from __future__ import annotations

import time

INTERVAL = 10.0
MAX_KEYS = 1024     # past this, the key seen longest ago is forgotten (and may log again)


class LogLimiter:
    def __init__(self, interval: float = INTERVAL, clock=time.monotonic,
                 max_keys: int = MAX_KEYS):
        self.interval = interval
        self.clock = clock
        self.max_keys = max_keys
        self._last: dict = {}          # key -> [time of its last line, lines dropped since]

    def check(self, key) -> int | None:
        """None: drop this line. Otherwise log it: the number of lines dropped before it."""
        now = self.clock()
        entry = self._last.get(key)
        if entry is not None and now - entry[0] < self.interval:
            entry[1] += 1
            return None
        dropped = entry[1] if entry is not None else 0
        self._last.pop(key, None)
        if len(self._last) >= self.max_keys:
            self._last.pop(next(iter(self._last)))
        self._last[key] = [now, 0]
        return dropped

    def line(self, key, text: str) -> str | None:
        """text, with how many like it were dropped, or None to drop it too."""
        dropped = self.check(key)
        if dropped is None:
            return None
        if dropped:
            return (f"{text}\n({dropped} more like this in the last "
                    f"{self.interval:g} s were not logged)")
        return text


# One per node process: rejections are about peers, whichever local node they hit.
REJECTIONS = LogLimiter()


def host_of(peername: str | None) -> str:
    """'127.0.0.1:40123' -> '127.0.0.1' (the port changes with every attempt)."""
    if not peername:
        return "an unknown peer"
    host, sep, port = peername.rpartition(":")
    return host if sep and port.isdigit() else peername
