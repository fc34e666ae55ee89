"""Erlang's `pg` module: process groups across the cluster, named like OTP's.

    from clusterkit import pg
    pg.start("my_scope")                          # pg:start(my_scope)
    pg.join("my_scope", "workers", ck.self())     # pg:join(my_scope, workers, self())
    pg.get_members("my_scope", "workers")         # every member, on every node

As in Erlang, each call takes the scope first, or leaves it out for the default scope
`pg` (which, as in Erlang, is only there once started: `pg.start("pg")`). A group is any
term; an Erlang node's `pg:join(my_scope, workers, Pid)` and ours name the same group when
the terms are equal (`Atom("workers")` for the atom, `"workers"` for a binary).
The wire protocol and what is left out: see clusterkit/runtime/pg.py.
"""
from __future__ import annotations

from typing import Any

from .runtime import current
from .runtime import pg as _pg
from .runtime.pg import _ALL

DEFAULT_SCOPE = "pg"

__all__ = ["start", "join", "leave", "get_members", "get_local_members", "which_groups",
           "which_local_groups", "monitor_scope", "monitor", "demonitor"]


def _scope_and(args: tuple, n: int, what: str):
    """Erlang's two arities: (Scope, ...) with n arguments, or the default scope."""
    if len(args) == n:
        return _pg.get(current.node(), args[0]), args[1:]
    if len(args) == n - 1:
        return _pg.get(current.node(), DEFAULT_SCOPE), args
    raise TypeError(f"pg.{what} takes {n - 1} or {n} arguments (the scope first)")


def start(scope: str) -> tuple:
    """Start a scope on this node: ('ok', pid) or ('error', ('already_started', pid))."""
    return _pg.start(current.node(), scope)


def join(*args) -> Any:
    """join([scope,] group, pid_or_pids): local processes join group; a process that
    joins twice is a member twice."""
    scope, (group, pid_or_pids) = _scope_and(args, 3, "join")
    pids = scope.check_local(pid_or_pids)
    return scope.call(scope.join_local, _pg.freeze(group), pids, pid_or_pids)


def leave(*args) -> Any:
    """leave([scope,] group, pid_or_pids): 'ok', or 'not_joined'."""
    scope, (group, pid_or_pids) = _scope_and(args, 3, "leave")
    pids = scope.check_local(pid_or_pids)
    return scope.call(scope.leave_local, _pg.freeze(group), pids, pid_or_pids)


def get_members(*args) -> list:
    scope, (group,) = _scope_and(args, 2, "get_members")
    return scope.get_members(group)


def get_local_members(*args) -> list:
    scope, (group,) = _scope_and(args, 2, "get_local_members")
    return scope.get_local_members(group)


def which_groups(scope: str = DEFAULT_SCOPE) -> list:
    return _pg.get(current.node(), scope).which_groups()


def which_local_groups(scope: str = DEFAULT_SCOPE) -> list:
    return _pg.get(current.node(), scope).which_local_groups()


def monitor_scope(scope: str = DEFAULT_SCOPE) -> tuple:
    """(ref, {group: members}); then ({ref}, 'join'|'leave', group, pids) messages."""
    s = _pg.get(current.node(), scope)
    return s.call(s.add_watcher, current.node().current_process().pid, _ALL)


def monitor(*args) -> tuple:
    """monitor([scope,] group): (ref, members), then join/leave messages for that group."""
    scope, (group,) = _scope_and(args, 2, "monitor")
    return scope.call(scope.add_watcher, current.node().current_process().pid,
                      _pg.freeze(group))


def demonitor(*args) -> Any:
    scope, (ref,) = _scope_and(args, 2, "demonitor")
    return scope.call(scope.remove_watcher, ref)
