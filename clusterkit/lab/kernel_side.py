"""What runs inside each node kernel: the watchdog, the log format, and ck.start."""
from __future__ import annotations

import os
import threading
import time


def _watch_lab(lab_pid: int) -> None:
    """Exit when the lab's process is gone, even if it died by SIGKILL.

    A killed lab cannot clean up after itself, so each node kernel checks on it.
    """
    while True:
        time.sleep(0.5)
        try:
            os.kill(lab_pid, 0)
        except ProcessLookupError:
            os._exit(0)
        except PermissionError:
            pass


def boot(settings: dict) -> None:
    import clusterkit as ck
    from clusterkit.runtime.loop import tune_switch_interval
    tune_switch_interval()      # this kernel exists to be a node (see loop.py)
    lab_pid = int(settings["lab_pid"])
    threading.Thread(target=_watch_lab, args=(lab_pid,), name="clusterkit-lab-watchdog",
                     daemon=True).start()
    ck.start(settings["name"], cookie=settings["cookie"], **settings.get("options", {}))
    topologies = settings.get("topologies")
    if topologies:
        # As Cluster.Supervisor among an application's children: discovery starts with the
        # node. start returns after each strategy's first round, so the lab's next node
        # boots once this one has looked for the others (outputs stay in order).
        ck.cluster.start(topologies, timeout=30)
    try:
        from IPython import get_ipython
        shell = get_ipython()
    except ImportError:
        shell = None
    if shell is not None:
        # The names a lesson cell uses, as `from clusterkit import *` would give them.
        shell.user_ns.update({name: getattr(ck, name) for name in ck.__all__})
        shell.user_ns["ck"] = ck
