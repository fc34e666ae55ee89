"""Lesson 01, "manual connect": the exercise check.

The exercise: node c already runs Moebi (it answers "chicken?" to everything). Make c
answer pings too: start a GenServer on c, registered as "PingPong", that answers the
request "ping" with Atom("pong"). The class PingPong was defined on b, and c is another
kernel, so the learner defines it again on c.

    from clusterkit.lab.lessons.lesson_01 import check_exercise
    check_exercise()

The check reaches the nodes through the notebook's shared lab and prints one line per
fact, in code form, so the English and the Spanish lesson show the same lines:

    ✔ ck.whereis('PingPong') on c: #PID<c@127.0.0.1.6.0>
    ✔ GenServer.call(('PingPong', 'c@127.0.0.1'), 'ping') on a: Atom('pong')
    ✔ GenServer.call(('PingPong', 'c@127.0.0.1'), 'ping') on b: Atom('pong')
    3/3
"""
from __future__ import annotations

from ..exercises import node_value, report

SERVER = "PingPong"
HOME = "c"
HOME_NODE = "c@127.0.0.1"
CALLERS = ("a", "b")
WANT = "Atom('pong')"
CALL = f"GenServer.call(({SERVER!r}, {HOME_NODE!r}), 'ping')"


def _call_from(lab, caller: str) -> str:
    """Run the call on `caller`; its reply's repr, or the exception's class name."""
    from ..core import LabError
    try:
        result = lab.run(caller, CALL, timeout=30)
    except LabError:
        return "None"
    if not result.ok:
        return (result.error or "error").split(":", 1)[0]
    return (result.value or "").strip() or "None"     # a None result shows nothing


def check_exercise() -> None:
    """Print what is right and what is still missing (✔ / ✘ and a score)."""
    from ..magics import shared_lab

    lab = shared_lab()
    # node_value gives None when c cannot run the code, and "" when the result is None
    # (IPython shows nothing for None): both read None.
    where = node_value(lab, HOME, f"ck.whereis({SERVER!r})") or "None"
    registered = where != "None"
    checks = [(registered, f"ck.whereis({SERVER!r}) on {HOME}: {where}")]
    for caller in CALLERS:
        if registered:
            answer = _call_from(lab, caller)
        else:
            # Nothing is registered, so the call would exit with noproc. Not making it
            # keeps c from logging a dropped message into the learner's next cell.
            answer = "noproc"
        checks.append((answer == WANT, f"{CALL} on {caller}: {answer}"))
    report(checks)
