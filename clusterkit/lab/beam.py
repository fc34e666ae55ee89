"""Real BEAM nodes in the lab: `%cluster start e --elixir` (or `--erlang`).

The node is a real `elixir` (or `erl`) VM with the lab's cookie, EPMD and HOME. It
runs a small evaluator (beam_assets/ck_lab_eval.erl) that the lab talks to over an
inherited socket, one length-prefixed ETF term each way; so a cell's code never
goes through a terminal, and the node's stdout stays its log. `%%on e` then shows
what the code printed and its value as iex (or erl) prints it, or the error text.

A BeamNode has the same fields the lab and the magics read on a Python node kernel
(name, label, state, backlog, unseen, pid), so stop, kill, freeze, thaw, logs and
wait work on it unchanged.
"""
from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import signal
import socket
import struct
from dataclasses import dataclass, field
from pathlib import Path

from .. import epmd
from ..etf import Atom, decode, encode

EVALUATOR = Path(__file__).with_name("beam_assets") / "ck_lab_eval.erl"
INSTALL_HINT = ("install Erlang and Elixir with `sudo apt-get install -y "
                "--no-install-recommends erlang-base erlang-crypto elixir`")
KINDS = ("elixir", "erlang")
# How long a cell that took too long may take to be stopped, once asked.
ABORT_GRACE = 5.0
# A reply frame is one cell's output; past this the node is misbehaving.
MAX_FRAME = 64 * 1024 * 1024


def executable(kind: str) -> str | None:
    return shutil.which("elixir" if kind == "elixir" else "erl")


def available(kind: str = "elixir") -> bool:
    return executable(kind) is not None and shutil.which("erl") is not None


def missing_text(kind: str) -> str:
    what = "Elixir" if kind == "elixir" else "Erlang/OTP"
    return f"{what} is not installed: {INSTALL_HINT}"


@dataclass
class BeamNode:
    name: str
    label: str
    cookie: str
    kind: str                                   # "elixir" or "erlang"
    state: str = "starting"
    backlog: list = field(default_factory=list)
    unseen: list = field(default_factory=list)
    beam: bool = True                           # what the lab looks at to tell nodes apart
    closing: bool = False                       # set by close(): its exit is expected
    proc: asyncio.subprocess.Process | None = None
    _reader: asyncio.StreamReader | None = None
    _writer: asyncio.StreamWriter | None = None
    _tasks: list = field(default_factory=list)
    _waiting: dict = field(default_factory=dict)   # request id -> future
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _ready: asyncio.Future | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _busy: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def connection_file(self) -> None:
        return None

    def remote_shell(self) -> str:
        """The command that opens a shell on this node from a terminal."""
        if self.kind == "elixir":
            return (f"iex --name shell_{os.getpid()}@127.0.0.1 --cookie {self.cookie} "
                    f"--remsh {self.name}")
        return f"erl -name shell_{os.getpid()}@127.0.0.1 -setcookie {self.cookie} -remsh {self.name}"

    # --- output and replies ------------------------------------------------------------
    def _log(self, kind: str, text: str) -> None:
        from .core import Output
        item = Output(kind, text)
        self.backlog.append(item)
        self.unseen.append(item)
        self._changed.set()
        self._changed = asyncio.Event()

    async def _read_stdout(self, stream: asyncio.StreamReader, on_exit) -> None:
        while True:
            line = await stream.readline()
            if not line:
                break
            self._log("stdout", line.decode("utf-8", "replace"))
        await self.proc.wait()
        on_exit(self)

    async def _read_replies(self) -> None:
        try:
            while True:
                size = struct.unpack(">I", await self._reader.readexactly(4))[0]
                if size > MAX_FRAME:
                    raise ValueError(f"reply of {size} bytes")
                self._on_reply(decode(await self._reader.readexactly(size)))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except Exception as exc:       # a broken frame: say so once; the node is unusable
            self._log("stderr", f"[lab] bad reply from {self.name}: {exc}\n")
        self._fail_all(f"{self.name} went away")

    def _on_reply(self, message) -> None:
        if message[0] == "ready":
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(message[1])
            return
        if message[0] == "reply":
            _, request_id, status, printed, text = message
            future = self._waiting.pop(request_id, None)
            if future is not None and not future.done():
                future.set_result((status == "ok", _text(printed), _text(text)))

    def _fail_all(self, why: str) -> None:
        from .core import LabError
        for future in [self._ready, *self._waiting.values()]:
            if future is not None and not future.done():
                future.set_exception(LabError(why))
        self._waiting.clear()

    def _send(self, term) -> None:
        data = encode(term)
        self._writer.write(struct.pack(">I", len(data)) + data)

    # --- running code ------------------------------------------------------------------
    async def execute(self, code: str, timeout: float, keep_backlog: bool = False):
        from .core import LabError, Output, RunResult
        async with self._busy:
            if keep_backlog:
                backlog = []
            else:
                backlog, self.backlog = self.backlog, []
            self.unseen.clear()
            request_id = next(self._ids)
            future = asyncio.get_running_loop().create_future()
            self._waiting[request_id] = future
            self._send((Atom("eval"), request_id, code))
            try:
                ok, printed, text = await asyncio.wait_for(asyncio.shield(future), timeout)
            except asyncio.TimeoutError:
                # Stop the cell on the node, so that the node can take the next one.
                self._send((Atom("abort"), request_id))
                try:
                    await asyncio.wait_for(future, ABORT_GRACE)
                except Exception:
                    pass
                raise LabError(f"{self.name} did not finish within {timeout} s "
                               "(is it waiting for a message?); the cell was stopped") from None
            finally:
                self._waiting.pop(request_id, None)
        outputs = []
        if printed:
            outputs.append(Output("stdout", printed))
        if ok:
            outputs.append(Output("result", text + "\n"))
            return RunResult(self.name, backlog, outputs)
        outputs.append(Output("error", text + "\n"))
        return RunResult(self.name, backlog, outputs, ok=False, error=text)

    # --- stopping ----------------------------------------------------------------------
    async def close(self, now: bool) -> None:
        """Stop the VM: init:stop() when asked nicely, SIGKILL when not (or too slow)."""
        self.closing = True
        if self.proc is None:
            return
        if not now and self.proc.returncode is None and self._writer is not None:
            try:
                self._send(Atom("stop"))
                await asyncio.wait_for(self.proc.wait(), 10)
            except Exception:
                pass
        if self.proc.returncode is None:
            try:
                os.killpg(self.proc.pid, signal.SIGCONT)
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            await self.proc.wait()
        if self._writer is not None:
            self._writer.close()
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        self._fail_all(f"{self.name} went away")


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def command(kind: str, name: str, cookie: str, options: dict) -> list[str]:
    """The erl or elixir command line for a lab node."""
    erl_flags = ["-start_epmd", "false"]
    ticktime = options.get("net_ticktime")
    if ticktime is not None:
        erl_flags += ["-kernel", "net_ticktime", str(int(ticktime))]
    if kind == "elixir":
        args = [executable("elixir"), "--name", name, "--cookie", cookie]
        if options.get("hidden"):
            args.append("--hidden")
        args += ["--erl", " ".join(erl_flags), "-e",
                 "{:ok, m, b} = :compile.file(String.to_charlist(System.fetch_env!(\"CK_LAB_EVAL\")),"
                 " [:binary, :report]); {:module, _} = :code.load_binary(m, 'ck_lab_eval.erl', b);"
                 " m.main(:elixir)"]
        return args
    args = [executable("erlang"), "-noshell", "-noinput", "-name", name, "-setcookie", cookie,
            *erl_flags]
    if options.get("hidden"):
        args.append("-hidden")
    args += ["-eval",
             "{ok, M, B} = compile:file(os:getenv(\"CK_LAB_EVAL\"), [binary, report]),"
             " {module, _} = code:load_binary(M, \"ck_lab_eval.erl\", B), M:main(erlang)."]
    return args


async def start(lab, name: str, cookie: str, options: dict, on_exit) -> BeamNode:
    """Start a real node for the lab and wait until its evaluator is ready."""
    from .core import LabError
    kind = options["beam"]
    if kind not in KINDS:
        raise LabError(f"unknown node kind {kind!r}: use elixir or erlang")
    if not available(kind):
        raise LabError(missing_text(kind))
    unknown = set(options) - {"beam", "hidden", "net_ticktime"}
    if unknown:
        raise LabError(f"{name}: {', '.join(sorted(unknown))} is not an option for "
                       f"{kind} nodes (they take hidden and net_ticktime)")
    node = BeamNode(name, name.split("@")[0], cookie, kind)
    lab.nodes[name] = node
    loop = asyncio.get_running_loop()
    # Real nodes are started with -start_epmd false: the lab's EPMD (the kit's, or a
    # real epmd already running) serves them, and none is left behind.
    await loop.run_in_executor(None, epmd.ensure_running, lab.epmd_port)
    ours, theirs = socket.socketpair()
    env = dict(os.environ)
    env.update({"ERL_EPMD_PORT": str(lab.epmd_port), "CK_LAB_FD": str(theirs.fileno()),
                "CK_LAB_EVAL": str(EVALUATOR),
                "ERL_CRASH_DUMP": os.path.join(lab.log_dir, f"{name}.erl_crash.dump")})
    try:
        node.proc = await asyncio.create_subprocess_exec(
            *command(kind, name, cookie, options), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            pass_fds=(theirs.fileno(),), env=env, cwd=lab.log_dir, start_new_session=True)
    finally:
        theirs.close()
    node._reader, node._writer = await asyncio.open_unix_connection(sock=ours)
    node._ready = loop.create_future()
    node._tasks = [loop.create_task(node._read_stdout(node.proc.stdout, on_exit)),
                   loop.create_task(node._read_replies())]
    try:
        await asyncio.wait_for(node._ready, lab.startup_timeout)
    except Exception as exc:
        node.state = "dead"
        await node.close(now=True)
        said = "".join(o.text for o in node.backlog).strip().splitlines()[-5:]
        detail = ("; it printed: " + " | ".join(said)) if said else ""
        raise LabError(f"{name} did not start: {exc or 'no answer'}{detail}") from None
    node.state = "running"
    return node
