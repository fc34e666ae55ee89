"""Lesson 07, "PubSub": the exercise check.

The exercise: on d, start a GenServer registered as "Lobby" that subscribes to the topic
"room:lobby" of the PubSub "Talkies.PubSub" in its init, keeps every message it receives
in its state (handle_info), and answers the call "messages" with that list.

    from clusterkit.lab.lessons.lesson_07 import check_exercise
    check_exercise()

The check asks d whether Lobby runs and is subscribed, then broadcasts a probe from b and
waits (a few seconds at most) for Lobby to have it. One line per fact, in code form, so
the English and the Spanish lesson show the same lines:

    ✔ ck.whereis('Lobby') is not None on d: True
    ✔ ck.whereis('Lobby') in PubSub.subscribers('Talkies.PubSub', 'room:lobby') on d: True
    ✔ ('probe', 'from b') in GenServer.call('Lobby', 'messages') on d: True
    3/3
"""
from __future__ import annotations

import time

from ..exercises import node_value, report

PUBSUB, TOPIC, SERVER = "Talkies.PubSub", "room:lobby", "Lobby"
HOME, SENDER = "d", "b"
PROBE = ("probe", "from b")
RUNS = f"ck.whereis({SERVER!r}) is not None"
SUBSCRIBED = f"ck.whereis({SERVER!r}) in PubSub.subscribers({PUBSUB!r}, {TOPIC!r})"
GOT = f"{PROBE!r} in GenServer.call({SERVER!r}, 'messages')"


def check_exercise(timeout: float = 5.0) -> None:
    """Print what is right and what is still missing (✔ / ✘ and a score)."""
    from ..magics import shared_lab

    lab = shared_lab()
    runs = node_value(lab, HOME, RUNS) or "False"
    subscribed = node_value(lab, HOME, SUBSCRIBED) if runs == "True" else "False"
    got = "False"
    if subscribed == "True":
        node_value(lab, SENDER, f"PubSub.broadcast({PUBSUB!r}, {TOPIC!r}, {PROBE!r})")
        deadline = time.monotonic() + timeout
        while True:
            # A server without handle_call, or a wrong reply, reads False, not an error.
            got = node_value(lab, HOME, f"{RUNS} and {GOT}") or "False"
            if got == "True" or time.monotonic() >= deadline:
                break
            time.sleep(0.1)
    report([(runs == "True", f"{RUNS} on {HOME}: {runs}"),
            (subscribed == "True", f"{SUBSCRIBED} on {HOME}: {subscribed or 'False'}"),
            (got == "True", f"{GOT} on {HOME}: {got}")])
