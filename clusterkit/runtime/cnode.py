"""What C nodes (erl_call, erl_interface's ei_rpc) ask of `rex`, and the Erlang-only
requests a Python node turns down with words instead of silence.

ei_rpc does not use gen_server: it sends `{Pid, {call, M, F, A, GroupLeader}}` to `rex`
and waits for `{rex, Result}`. OTP's rpc.erl serves that form in handle_info ("special
for hidden C nodes"); so do we. GroupLeader is `user` (output stays on this node) or
`send_stdout_to_caller` (erl_call -fetch_stdout); Python's stdout is one per process, so
output stays here in both cases and only the result travels.

`erl_call -e` asks rex for erl_eval on Erlang source, `-m` for c:c, and `erl -remsh`
for shell:start. None of that can run here; the caller gets a `notsup` that says so
(and the remote shell's user reads it on the terminal, see `refuse_remote_shell`).
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..etf import Atom, Pid

if TYPE_CHECKING:
    from .node import LocalNode

log = logging.getLogger("clusterkit")

CALL, REX, NOTSUP = Atom("call"), Atom("rex"), Atom("notsup")

_CALL_PYTHON = "Call a Python function instead, e.g. erl_call -a 'math sqrt [16]'"
_OWN_SHELL = "Use a shell of your own and rpc, e.g. rpc:call('{node}', math, sqrt, [16])"

# (module, function or None for any): what needs an Erlang VM, and what to do instead.
_ERLANG_ONLY = {
    ("erl_eval", None): ("it cannot evaluate Erlang source (erl_call -e)", _CALL_PYTHON),
    ("lib", "eval_str"): ("it cannot evaluate Erlang source (erl_call -e)", _CALL_PYTHON),
    ("c", "c"): ("it cannot compile Erlang modules (erl_call -m)", _CALL_PYTHON),
    ("compile", None): ("it cannot compile Erlang modules", _CALL_PYTHON),
    ("shell", None): ("it has no Erlang shell to offer (erl -remsh)", _OWN_SHELL),
}


def erlang_only(node: "LocalNode", module: Any, function: Any) -> str | None:
    """The refusal text for a call only an Erlang node can serve, or None."""
    module, function = str(module), str(function)
    entry = _ERLANG_ONLY.get((module, function)) or _ERLANG_ONLY.get((module, None))
    if entry is None:
        return None
    why, hint = entry
    return f"{node.atom} is a clusterkit node (Python): {why}. " + hint.format(node=node.atom)


def not_in_rpc_allow(node: "LocalNode", module: Any) -> str | None:
    """The refusal text when ck.start(rpc_allow=[...]) leaves module out, or None."""
    allow = getattr(node, "rpc_allow", None)
    if allow is None or str(module) in allow:
        return None
    return (f"{node.atom} lets other nodes call only the modules in its rpc_allow list "
            f"({', '.join(sorted(allow)) or 'none'}), not {module}")


def refused(node: "LocalNode", module: Any, function: Any) -> str | None:
    """erlang_only or not in rpc_allow, and one log line on this node when it refuses."""
    text = not_in_rpc_allow(node, module) or erlang_only(node, module, function)
    if text is not None:
        log.warning("refused %s:%s: %s", module, function, text)
    return text


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


def is_remote_shell(execute_call_args: Any) -> bool:
    """erpc:execute_call(Ref, shell, start, Args): what `erl -remsh` asks for."""
    return (isinstance(execute_call_args, list) and len(execute_call_args) == 4
            and execute_call_args[1] == "shell" and execute_call_args[2] == "start")


def refuse_remote_shell(node: "LocalNode", peer: Any, group_leader: Any, ref: Any) -> tuple:
    """Answer `erl -remsh` so that its user reads why there is no shell.

    remsh runs rpc:call(Node, shell, start, []) from its group process, which is also the
    request's group leader, and waits: an error here ends it with only OTP's
    "*** ERROR: Shell process terminated! ***", the reason unsaid. So we answer with
    the pid of a process that has already written the reason to that group leader
    (Erlang's I/O protocol: an io_request put_chars) and ended. The group links to it,
    prints what waits in its mailbox, gets the link's exit (noproc) and terminates,
    and OTP prints its usual line under our text. Returns erpc's {Ref, return, Pid}.
    """
    text = erlang_only(node, "shell", "start")
    log.warning("%s asked for a remote shell (erl -remsh): %s", peer, text)
    me = node.spawn_process(label="remsh refusal")
    if isinstance(group_leader, Pid) and group_leader.node != node.atom:
        node.send(group_leader, (Atom("io_request"), me.pid, me.pid,
                                 (Atom("put_chars"), Atom("unicode"),
                                  f"*** {text}\n".encode())))
    node.exit_process(me, NOTSUP)
    return (ref, Atom("return"), me.pid)
