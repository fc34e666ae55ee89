"""Lesson 03, "static cluster": the exercise check.

The exercise: node w starts with PARTNERS=a@127.0.0.1,q@127.0.0.1, and q is not up yet.
Start a topology named talkies on w with libcluster's Epmd strategy, the hosts from
PARTNERS, and a timeout of 1000 ms, so that w keeps trying and joins q when q comes up.

    from clusterkit.lab.lessons.lesson_03 import check_exercise
    check_exercise()

The check plays the late partner: it starts q, gives w a few seconds to reach it, and
stops q again, so the exercise can be tried again. It prints one line per fact, in
code form, so the English and the Spanish lesson show the same lines:

    ✔ sorted(ck.cluster.status()) on w: ['talkies']
    ✔ ck.cluster.running('talkies').name on w: 'epmd'
    ✔ ck.cluster.running('talkies').config['hosts'] on w: ['a@127.0.0.1', 'q@127.0.0.1']
    ✔ ck.cluster.running('talkies').config['timeout'] on w: 1000
    ✔ 'q@127.0.0.1' in Node.list() on w, after q came up: True
    5/5
"""
from __future__ import annotations

import time

from ..exercises import node_value, report

HOST = "127.0.0.1"
NODE = "w"
LATE = "q"
LATE_NODE = f"{LATE}@{HOST}"
HOSTS = [f"a@{HOST}", LATE_NODE]
TOPOLOGY = "talkies"
STRATEGY = f"ck.cluster.running({TOPOLOGY!r})"

FACTS = [
    ("sorted(ck.cluster.status())", repr([TOPOLOGY])),
    (f"{STRATEGY}.name", repr("epmd")),
    (f"{STRATEGY}.config['hosts']", repr(HOSTS)),
    (f"{STRATEGY}.config['timeout']", "1000"),
]
JOINED = f"{LATE_NODE!r} in Node.list()"


def _value(lab, expression: str) -> str:
    return node_value(lab, NODE, expression) or "None"


def check_exercise(timeout: float = 10.0) -> None:
    """Print what is right and what is still missing (✔ / ✘ and a score)."""
    from ..core import LabError
    from ..magics import shared_lab

    lab = shared_lab()
    checks = []
    for expression, want in FACTS:
        got = _value(lab, expression)
        checks.append((got == want, f"{expression} on {NODE}: {got}"))
    joined = "False"
    running = _value(lab, f"{STRATEGY} is not None and {STRATEGY}.running") == "True"
    if running:
        # q comes up late, as a partner that boots after w does.
        started = False
        try:
            if LATE_NODE not in lab.nodes or lab.nodes[LATE_NODE].state != "running":
                lab.start(LATE)
                started = True
            deadline = time.monotonic() + timeout
            while True:
                joined = _value(lab, JOINED)
                if joined == "True" or time.monotonic() >= deadline:
                    break
                time.sleep(0.2)
        except LabError as e:
            joined = f"None ({e})"
        finally:
            if started:
                lab.stop(LATE)
    checks.append((joined == "True", f"{JOINED} on {NODE}, after {LATE} came up: {joined}"))
    report(checks)
