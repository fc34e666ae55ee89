"""Remote-controlled node processes for tests: clusterkit nodes and real `erl` nodes.

Each runs as its own OS process on loopback. A test sends it code on stdin and reads
the answer; everything else the process prints (its log) is collected so the test can
wait for a line with a deadline.
"""
from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import time

from clusterkit import etf

PY_AGENT = r"""
import json, sys, traceback
import clusterkit as ck
from clusterkit import *
from clusterkit.runtime.loop import tune_switch_interval
tune_switch_interval()
ns = {"ck": ck, **{n: getattr(ck, n) for n in ck.__all__}}
print("@@READY", flush=True)
for line in sys.stdin:
    req = json.loads(line)
    try:
        try:
            code = compile(req["code"], "<test>", "eval")
        except SyntaxError:
            exec(compile(req["code"], "<test>", "exec"), ns)
            value = None
        else:
            value = eval(code, ns)
        out = {"ok": True, "repr": repr(value)}
        try:
            import base64
            out["etf"] = base64.b64encode(ck.etf.encode(value)).decode()
        except Exception:
            pass
    except BaseException as exc:
        out = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    print("@@RESULT " + json.dumps(out), flush=True)
"""

ERL_AGENT = (
    'io:format("@@READY~n"), '
    'Loop = fun L() -> case io:get_line("") of eof -> halt(); Line -> '
    'R = try {ok, Toks, _} = erl_scan:string(Line), {ok, Exprs} = erl_parse:parse_exprs(Toks), '
    '{value, V, _} = erl_eval:exprs(Exprs, erl_eval:new_bindings()), {ok, V} '
    'catch C:E -> {error, {C, E}} end, '
    'io:format("@@RESULT ~s~n", [base64:encode(term_to_binary(R))]), L() end end, Loop().'
)


class AgentError(AssertionError):
    pass


class _Agent:
    def __init__(self, proc: subprocess.Popen, name: str):
        self.proc = proc
        self.name = name
        self.lines: list[str] = []
        self._results: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._wait(lambda: any(l.startswith("@@READY") for l in self.lines), 30,
                   f"{name} to start")

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._cond:
                if line.startswith("@@RESULT "):
                    self._results.append(line[9:])
                else:
                    self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def _wait(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not predicate()):
                    raise AgentError(f"timed out waiting for {what}; output so far:\n"
                                     + "\n".join(self.lines[-40:]))
                self._cond.wait(min(left, 0.2))

    def _send(self, text: str, timeout: float) -> str:
        with self._cond:
            n = len(self._results)
        self.proc.stdin.write(text.encode() + b"\n")
        self.proc.stdin.flush()
        self._wait(lambda: len(self._results) > n, timeout, f"{self.name} to answer {text!r}")
        return self._results[n]

    def wait_log(self, fragment: str, timeout: float = 10.0) -> str:
        self._wait(lambda: any(fragment in l for l in self.lines), timeout,
                   f"{fragment!r} in the log of {self.name}")
        return next(l for l in self.lines if fragment in l)

    def log_text(self) -> str:
        with self._cond:
            return "\n".join(self.lines)


class PyNode(_Agent):
    """A clusterkit node in its own Python process."""

    def __init__(self, procs, name: str, cookie: str = "secret_token", start: bool = True,
                 env=None, **start_kw):
        proc = procs.start([sys.executable, "-u", "-c", PY_AGENT], env=env,
                           stderr=subprocess.STDOUT)
        super().__init__(proc, name)
        if start:
            kw = "".join(f", {k}={v!r}" for k, v in start_kw.items())
            self.eval(f"ck.start({name!r}, cookie={cookie!r}{kw})")

    def eval(self, code: str, timeout: float = 30.0):
        """Run code there; returns the value (decoded from ETF when it can be)."""
        answer = json.loads(self._send(json.dumps({"code": code}), timeout))
        if not answer["ok"]:
            raise AgentError(f"{self.name}: {answer['error']}")
        if "etf" in answer:
            return etf.decode(base64.b64decode(answer["etf"]))
        return answer["repr"]

    def run(self, code: str, timeout: float = 30.0) -> None:
        self.eval(code, timeout)


class ErlNode(_Agent):
    """A real Erlang node (`erl`), driven with Erlang expressions."""

    def __init__(self, procs, name: str, cookie: str = "secret_token",
                 extra_args: tuple = (), env=None):
        kind = "-name" if "." in name.split("@")[-1] else "-sname"
        # -start_epmd false: the test's own EPMD is already up, and an erl that starts
        # its own `epmd -daemon` would leave it behind.
        if "-start_epmd" not in extra_args:
            extra_args = ("-start_epmd", "false", *extra_args)
        proc = procs.start(["erl", "-noshell", kind, name, "-setcookie", cookie,
                            *extra_args, "-eval", ERL_AGENT], env=env,
                           stderr=subprocess.STDOUT)
        super().__init__(proc, name)

    def eval(self, expr: str, timeout: float = 30.0):
        """Evaluate Erlang expressions (end with a dot); returns the decoded value."""
        expr = expr.strip()
        if not expr.endswith("."):
            expr += "."
        result = etf.decode(base64.b64decode(self._send(expr, timeout)))
        if result[0] == "error":
            raise AgentError(f"{self.name}: {result[1]!r}")
        return result[1]
