"""What C nodes (erl_call, erl_interface's ei_rpc) ask of `rex`, and the Erlang-only
requests a Python node turns down with words instead of silence.

ei_rpc does not use gen_server: it sends `{Pid, {call, M, F, A, GroupLeader}}` to `rex`
and waits for `{rex, Result}`. OTP's rpc.erl serves that form in handle_info ("special
for hidden C nodes"); so do we. GroupLeader is `user` (output stays on this node) or
`send_stdout_to_caller` (erl_call -fetch_stdout); Python's stdout is one per process, so
output stays here in both cases and only the result travels.

`erl_call -e` asks rex for erl_eval on Erlang source, `-m` for c:c, and `erl -remsh`
for shell:start. None of that can run here; the caller gets a `notsup` that says so
(and the remote shell's terminal is told too, see `tell_group_leader`).
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..etf import Atom, Pid

if TYPE_CHECKING:
    from .node import LocalNode

log = logging.getLogger("clusterkit")

CALL, REX, NOTSUP = Atom("call"), Atom("rex"), Atom("notsup")

# (module, function or None for any): what needs an Erlang VM, and what to do instead.
_ERLANG_ONLY = {
    ("erl_eval", None): "it cannot evaluate Erlang source (erl_call -e)",
    ("lib", "eval_str"): "it cannot evaluate Erlang source (erl_call -e)",
    ("c", "c"): "it cannot compile Erlang modules (erl_call -m)",
    ("compile", None): "it cannot compile Erlang modules",
    ("shell", None): "it has no Erlang shell to offer (erl -remsh)",
}


def erlang_only(node: "LocalNode", module: Any, function: Any) -> str | None:
    """The refusal text for a call only an Erlang node can serve, or None."""
    module, function = str(module), str(function)
    why = _ERLANG_ONLY.get((module, function)) or _ERLANG_ONLY.get((module, None))
    if why is None:
        return None
    return (f"{node.atom} is a clusterkit node (Python): {why}. "
            f"Call a Python function instead, e.g. erl_call -a 'math sqrt [16]'")


def charlist(text: str) -> list[int]:
    """An Erlang string (a list of character codes): erl_call prints it as "...",
    where a binary would print as #Bin<N>."""
    return [ord(c) for c in text]


def refusal(text: str) -> tuple:
    """What rex answers for an Erlang-only call: {badrpc, {'EXIT', {notsup, Text}}}."""
    return (Atom("badrpc"), (Atom("EXIT"), (NOTSUP, charlist(text))))


def is_plain_call(message: Any) -> bool:
    return (type(message) is tuple and len(message) == 2 and isinstance(message[0], Pid)
            and type(message[1]) is tuple and len(message[1]) == 5
            and message[1][0] == CALL)


def serve_plain_call(node: "LocalNode", message: tuple, apply, pool) -> None:
    """ei_rpc's `{Pid, {call, M, F, A, GroupLeader}}`: run it on a worker thread and
    answer `{rex, Result}` to Pid (a bad result becomes a badrpc, never silence)."""
    caller, (_, module, function, args, _group_leader) = message

    def run():
        result = apply(node, module, function, list(args) if isinstance(args, list)
                       else [args])
        try:
            node.etf_check(result)
        except Exception as exc:   # a result Erlang cannot receive
            result = (Atom("badrpc"), (Atom("EXIT"), (Atom("badarg"), str(exc))))
        node.send(caller, (REX, result))
    pool.submit(run)


def tell_group_leader(node: "LocalNode", group_leader: Any, text: str) -> None:
    """Print `text` on the caller's terminal through Erlang's I/O protocol.

    `erl -remsh` asks for shell:start from its group process, which is also the
    request's group leader; an io_request put_chars to it shows on the user's screen
    before the shell gives up. The reply (`{io_reply, ...}`) comes back to a pid we
    never hand to anyone else, so it is simply dropped.
    """
    if not isinstance(group_leader, Pid) or group_leader.node == node.atom:
        return
    me = node.spawn_process(label="io")
    request = (Atom("io_request"), me.pid, me.pid,
               (Atom("put_chars"), Atom("unicode"), f"*** {text}\n".encode()))
    try:
        node.send(group_leader, request)
    finally:
        node.exit_process(me)
