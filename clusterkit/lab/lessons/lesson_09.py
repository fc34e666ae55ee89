"""Lesson 09, "meet the BEAM": the exercise check.

The exercise: on the Python node a, a GenServer registered as "Adder" answers the
request {:add, x, y} with x + y. The check calls it from the real Elixir node e:

    from clusterkit.lab.lessons.lesson_09 import check_exercise
    check_exercise()

    ✔ ck.whereis('Adder') on a: #PID<a@127.0.0.1.7.0>
    ✔ GenServer.call({:Adder, :"a@127.0.0.1"}, {:add, 2, 3}) on e: 5
    ✔ GenServer.call({:Adder, :"a@127.0.0.1"}, {:add, 40, 2}) on e: 42
    3/3
"""
from __future__ import annotations

from ..exercises import node_value, report

SERVER = "Adder"
HOME = "a"
CALLER = "e"
CASES = (((2, 3), "5"), ((40, 2), "42"))


def _call(x: int, y: int) -> str:
    return f'GenServer.call({{:{SERVER}, :"a@127.0.0.1"}}, {{:add, {x}, {y}}})'


def _from_elixir(lab, code: str) -> str:
    """What iex would print for code on e, or the kind of exit the call ended with."""
    from ..core import LabError
    guarded = (f"try do\n  {code}\ncatch\n  :exit, {{reason, _}} when is_atom(reason) -> reason\n"
               f"  :exit, _ -> :exit\nend")
    try:
        result = lab.run(CALLER, guarded, timeout=30, keep_backlog=True)
    except LabError:
        return "None"
    return (result.value or "None") if result.ok else "error"


def check_exercise() -> None:
    """Print what is right and what is still missing (✔ / ✘ and a score)."""
    from ..magics import shared_lab

    lab = shared_lab()
    where = node_value(lab, HOME, f"ck.whereis({SERVER!r})") or "None"
    registered = where != "None"
    checks = [(registered, f"ck.whereis({SERVER!r}) on {HOME}: {where}")]
    for (x, y), want in CASES:
        # Nothing registered: the call could only exit with noproc; do not make it.
        answer = _from_elixir(lab, _call(x, y)) if registered else "noproc"
        checks.append((answer == want, f"{_call(x, y)} on {CALLER}: {answer}"))
    report(checks)
