"""Exercise checks: what a lesson's `check_exercise()` prints.

The output is the same in the English and the Spanish lesson (both are checked by
nbval against the same stored outputs), so each line states a fact in code form:
`✔ Node.list() on b: ['a@127.0.0.1']` or `✘ ck.whereis('Moebi') on c: None`.
"""
from __future__ import annotations


def report(checks: list[tuple[bool, str]]) -> bool:
    """Print one line per check and a score; return True when every check holds."""
    for ok, fact in checks:
        print(("✔ " if ok else "✘ ") + fact)
    done = sum(1 for ok, _ in checks if ok)
    print(f"{done}/{len(checks)}")
    return done == len(checks)


def node_value(lab, node: str, expression: str):
    """Evaluate an expression on a lab node and return its repr text (None if it fails).

    The node's backlog (say, a log line explaining why a check fails) stays for the
    learner's next cell instead of being swallowed by the check.
    """
    from .core import LabError
    try:
        result = lab.run(node, f"print(repr(({expression})))", timeout=30,
                         keep_backlog=True)
    except LabError:
        return None
    if not result.ok:
        return None
    return "".join(o.text for o in result.outputs if o.kind == "stdout").strip()
