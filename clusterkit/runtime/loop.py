"""The runtime thread: one asyncio loop per node, beside whatever the caller runs.

A Jupyter kernel's main thread runs cells and a script's main thread runs the script;
neither can host our sockets. So the node's I/O lives on its own thread and loop, and
the public, blocking API hands coroutines to it.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import threading


# Every message crosses between the runtime thread and a user thread. With CPython's
# default 5 ms GIL switch interval, a thread woken by a message can wait up to 5 ms for
# the GIL while the other thread runs on: a round trip measured 7.7 ms. At 0.5 ms it
# measured about 0.4 ms.
SWITCH_INTERVAL = 0.0005


def tune_switch_interval() -> None:
    """Lower the interpreter's GIL switch interval to SWITCH_INTERVAL (never raise it).

    It is a setting of the whole interpreter, so the runtime never sets it by itself:
    only processes that exist to be nodes call this (the lab's node kernels,
    `clusterkit node`, the benchmark and test agents). A script or notebook that hosts a
    node may call it too; without it, messages still flow, with up to 5 ms more latency.
    """
    if sys.getswitchinterval() > SWITCH_INTERVAL:
        sys.setswitchinterval(SWITCH_INTERVAL)


class Runtime:
    def __init__(self, name: str = "clusterkit-runtime"):
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._started = threading.Event()
        self._thread.start()
        self._started.wait()

    @property
    def thread_ident(self) -> int | None:
        return self._thread.ident

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._started.set)
        self.loop.run_forever()

    @property
    def in_loop_thread(self) -> bool:
        return threading.get_ident() == self._thread.ident

    def run(self, coro, timeout: float | None = None):
        """Run `coro` on the loop and wait for its result from the calling thread."""
        if self.in_loop_thread:
            coro.close()
            raise RuntimeError("a blocking clusterkit call was made from the runtime thread")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError("the clusterkit runtime did not answer in time") from None
        except KeyboardInterrupt:
            future.cancel()
            raise

    def call_soon(self, fn, *args) -> None:
        """Run fn(*args) on the loop, later: never at once, whichever thread calls."""
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:        # the loop is closed: the node has stopped
            pass

    def stop(self, timeout: float = 5.0) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        if not self.in_loop_thread:
            self._thread.join(timeout)
            if not self._thread.is_alive():
                self.loop.close()
