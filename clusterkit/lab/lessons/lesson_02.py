"""Lesson 02, "cookies": the exercise check.

The exercise: a, b and c are one cluster, with the cookie secret_token. A new node, d,
starts with the cookie another_cookie. Make d part of the cluster: give it the cluster's
cookie and connect it to ONE node; the transitive mesh does the rest, so every node ends
up seeing d, and d sees all three.

    from clusterkit.lab.lessons.lesson_02 import check_exercise
    check_exercise()

The check reaches the nodes through the notebook's shared lab and prints one line per
fact, in code form, so the English and the Spanish lesson show the same lines:

    ✔ 'd@127.0.0.1' in Node.list() on a: True
    ✔ 'd@127.0.0.1' in Node.list() on b: True
    ✔ 'd@127.0.0.1' in Node.list() on c: True
    ✔ sorted(Node.list()) on d: [Atom('a@127.0.0.1'), Atom('b@127.0.0.1'), Atom('c@127.0.0.1')]
    4/4
"""
from __future__ import annotations

import time

from ...etf import Atom
from ..exercises import node_value, report

HOST = "127.0.0.1"
NEWCOMER = "d"
MEMBERS = ("a", "b", "c")
NEWCOMER_NODE = f"{NEWCOMER}@{HOST}"
SEES_NEWCOMER = f"{NEWCOMER_NODE!r} in Node.list()"
LIST = "sorted(Node.list())"
WANT_LIST = repr(sorted(Atom(f"{m}@{HOST}") for m in MEMBERS))


def _take_logs(lab, logged: dict) -> None:
    """Keep what the nodes logged outside cells (node_value would drop it unseen)."""
    from ..core import LabError
    for name in (*MEMBERS, NEWCOMER):
        try:
            items = lab.logs(name)
        except LabError:
            continue
        if items:
            logged.setdefault(lab.node(name).name, []).extend(items)


def _facts(lab) -> list[tuple[bool, str]]:
    checks = []
    for member in MEMBERS:
        seen = node_value(lab, member, SEES_NEWCOMER) or "None"
        checks.append((seen == "True", f"{SEES_NEWCOMER} on {member}: {seen}"))
    listed = node_value(lab, NEWCOMER, LIST) or "None"
    checks.append((listed == WANT_LIST, f"{LIST} on {NEWCOMER}: {listed}"))
    return checks


def check_exercise(timeout: float = 10.0) -> None:
    """Print what is right and what is still missing (✔ / ✘ and a score).

    The mesh takes a moment to form after d connects to its first node, so while d is
    connected to someone but the facts do not all hold yet, the check looks again, for
    up to `timeout` seconds. When d is connected to nobody there is nothing to wait for.
    Lines the nodes logged outside cells meanwhile (an "Invalid challenge reply" when d
    has the wrong cookie for a node) are printed before the facts.
    """
    from ..magics import shared_lab

    lab = shared_lab()
    logged: dict = {}
    deadline = time.monotonic() + timeout
    while True:
        _take_logs(lab, logged)
        checks = _facts(lab)
        if all(ok for ok, _ in checks) or time.monotonic() >= deadline:
            break
        if node_value(lab, NEWCOMER, "len(Node.list())") in (None, "0"):
            break
        time.sleep(0.2)
    _take_logs(lab, logged)
    # What the nodes logged meanwhile, such as a rejected handshake, tells the learner why
    # a fact does not hold; show it as %cluster logs would (on stdout, in code form).
    for name, items in logged.items():
        print(f"({name})")
        for item in items:
            print(item.text, end="" if item.text.endswith("\n") else "\n")
    report(checks)
