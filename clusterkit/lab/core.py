"""The lab: one Jupyter kernel per node, driven from a lesson notebook (or a test).

`Lab` is a plain object: the `%cluster` / `%%on` magics and the console widget are thin
layers over it, and tests call it directly. Its API is async first (`astart`, `arun`,
...); the plain methods are sync wrappers that run the coroutine on the lab's own loop
thread, so they also work inside a running kernel, whose loop is busy running the cell.

Every message a node kernel publishes is read as it arrives. What belongs to the cell
being run comes back from `run`; anything else (a nodeup line, "Invalid challenge
reply" logged by a background thread) is kept, in order, in that node's backlog and
shown before the next `run` on that node, or by `logs`.
"""
from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from jupyter_client import AsyncKernelManager

from ..runtime.loop import Runtime

DEFAULT_HOST = "127.0.0.1"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class LabError(RuntimeError):
    pass


@dataclass
class Output:
    """One piece of what a node printed or returned."""
    kind: str          # "stdout", "stderr", "result", "display" or "error"
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass
class RunResult:
    node: str
    backlog: list[Output]       # printed by the node since the last run, outside any cell
    outputs: list[Output]       # this run's own output
    ok: bool = True
    error: str | None = None    # "ValueError: ..." when the code raised

    @property
    def text(self) -> str:
        return "".join(o.text for o in self.outputs if o.kind in ("stdout", "stderr"))

    @property
    def value(self) -> str | None:
        results = [o.text for o in self.outputs if o.kind == "result"]
        return results[-1].rstrip("\n") if results else None


@dataclass
class _Request:
    outputs: list
    future: asyncio.Future
    error: str | None = None


@dataclass
class NodeKernel:
    name: str
    label: str
    cookie: str
    manager: AsyncKernelManager
    client: Any
    state: str = "starting"             # running, stopped, killed, frozen, dead
    backlog: list[Output] = field(default_factory=list)
    # output since the node's last run or wait, for `await_output` to look through
    unseen: list[Output] = field(default_factory=list)
    _requests: dict = field(default_factory=dict)         # msg_id -> _Request
    _reader: asyncio.Task | None = None
    _changed: asyncio.Event | None = None

    @property
    def pid(self) -> int | None:
        process = getattr(self.manager.provisioner, "process", None)
        return process.pid if process is not None else None

    @property
    def connection_file(self) -> str:
        return self.manager.connection_file


async def iopub_messages(client, manager):
    """Every message a kernel publishes, until the kernel is gone.

    Waits a second at a time: a kernel that dies publishes nothing more, so the only
    way to notice is to look at its process between messages.
    """
    while True:
        try:
            msg = await client.get_iopub_msg(timeout=1.0)
        except asyncio.CancelledError:
            raise
        except Exception:
            if not await manager.is_alive():
                return
            continue
        yield msg


def lab_topologies(topology, config: dict | None, names: list[str]) -> dict | None:
    """What the lab's nodes pass to ck.cluster.start (see Lab.astart)."""
    if topology is None:
        if config:
            raise LabError("topology_config needs a topology, such as topology='epmd'")
        return None
    from ..cluster import ConfigError, resolve_strategy
    if isinstance(topology, dict):
        if config:
            raise LabError("with a dict of topologies, put each one's config inside it")
        topologies = topology
    elif isinstance(topology, str):
        topologies = {topology: {"strategy": topology, "config": dict(config or {})}}
    else:
        raise LabError(f"topology is a strategy name or a dict of topologies, not "
                       f"{topology!r}")
    out = {}
    for tname, spec in topologies.items():
        if not isinstance(spec, dict):
            raise LabError(f"topology {tname}: a topology is a dict like "
                           "{'strategy': 'epmd', 'config': {...}}")
        try:
            cls = resolve_strategy(str(tname), spec.get("strategy"))
        except ConfigError as e:
            raise LabError(str(e)) from None
        conf = dict(spec.get("config") or {})
        if "hosts" in cls.defaults and "hosts" not in conf:
            conf["hosts"] = [str(n) for n in names]
        # The kernel gets the spec as a literal: a class travels as its registered name.
        out[str(tname)] = {**spec, "strategy": cls.name, "config": conf}
    return out


def full_name(name: str, host: str = DEFAULT_HOST) -> str:
    """Lessons say `a`; the node is `a@127.0.0.1` (long names give the same output
    on every machine)."""
    return name if "@" in name else f"{name}@{host}"


class Lab:
    def __init__(self, cookie: str = "secret_token", host: str = DEFAULT_HOST,
                 epmd_port: int | None = None, kernel_name: str = "python3",
                 startup_timeout: float = 60.0):
        self.cookie = cookie
        self.host = host
        self.epmd_port = int(epmd_port or os.environ.get("ERL_EPMD_PORT", "4369"))
        self.kernel_name = kernel_name
        self.startup_timeout = startup_timeout
        self.nodes: dict[str, NodeKernel] = {}
        self.log_dir = tempfile.mkdtemp(prefix="clusterkit-lab-")
        self._runtime: Runtime | None = None
        self.listeners: list = []      # callables(event, node) for the console widget

    # --- plumbing --------------------------------------------------------------------
    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            self._runtime = Runtime("clusterkit-lab")
        return self._runtime

    def _sync(self, coro, timeout: float | None = None):
        return self.runtime.run(coro, timeout)

    def node(self, name: str) -> NodeKernel:
        key = full_name(name, self.host)
        if key not in self.nodes:
            known = ", ".join(self.nodes) or "none yet"
            raise LabError(f"no node {key} in this lab (nodes: {known}); "
                           f"start it with %cluster start {name.split('@')[0]}")
        return self.nodes[key]

    def _emit(self, event: str, node: NodeKernel) -> None:
        for listener in list(self.listeners):
            try:
                listener(event, node)
            except Exception:
                pass

    # --- starting and stopping ---------------------------------------------------------
    async def astart(self, *names: str, cookie: str | None = None, topology=None,
                     topology_config: dict | None = None, **start_options) -> list[str]:
        """Start a kernel per name, each running ck.start(name, cookie=...).

        With `topology`, each node also starts discovery as it comes up, like an
        application with Cluster.Supervisor among its children: a strategy name
        ("epmd", "gossip", ...; the topology takes its name) with `topology_config`, or a
        dict of topologies as ck.cluster.start takes them (literal values only: they
        travel to the kernels as text). A strategy with a `hosts` key and none given gets
        the names started here. The kernels start together; the nodes then boot one
        after another, in the order given, each once the one before has looked for the
        others, so what they log comes in a fixed order.
        """
        wanted = [full_name(n, self.host) for n in names]
        for name in wanted:
            existing = self.nodes.get(name)
            if existing is not None and existing.state in ("running", "frozen", "starting"):
                raise LabError(f"{name} is already running in this lab")
        topologies = lab_topologies(topology, topology_config, wanted)
        cookie = cookie or self.cookie
        if topologies is None:
            await asyncio.gather(*(self._start_one(n, cookie, start_options)
                                   for n in wanted))
            return wanted
        launched = await asyncio.gather(*(self._launch(n, cookie) for n in wanted),
                                        return_exceptions=True)
        failed = next((e for e in launched if isinstance(e, BaseException)), None)
        if failed is not None:
            for node in launched:
                if not isinstance(node, BaseException):
                    node.state = "dead"
                    await self._shutdown(node, now=True)
            raise failed
        for i, node in enumerate(launched):
            try:
                await self._boot(node, start_options, topologies)
            except BaseException:
                for rest in launched[i + 1:]:     # the nodes after it never boot
                    rest.state = "dead"
                    await self._shutdown(rest, now=True)
                raise
        return wanted

    async def _start_one(self, name: str, cookie: str, options: dict) -> None:
        if options.get("beam"):             # a real elixir/erl node (beam.py)
            if options.get("topology") or options.get("config"):
                raise LabError("a real Elixir/Erlang node takes no --topology or "
                               "--sys-config here: start it with its own libcluster or "
                               "-config instead")
            from . import beam
            node = await beam.start(self, name, cookie, options, self._beam_exited)
            self._emit("started", node)
            return
        node = await self._launch(name, cookie)
        await self._boot(node, options)

    async def _launch(self, name: str, cookie: str) -> NodeKernel:
        """A kernel for `name`, ready, with its output read; not yet a node."""
        env = dict(os.environ)
        env.update({"CLUSTERKIT_LAB_PID": str(os.getpid()),
                    "ERL_EPMD_PORT": str(self.epmd_port), "PYTHONUNBUFFERED": "1"})
        # So that `!clusterkit ...` and `!epmd` work in node cells as in a terminal.
        bindir = os.path.dirname(sys.executable)
        if bindir not in env.get("PATH", "").split(os.pathsep):
            env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
        manager = AsyncKernelManager(kernel_name=self.kernel_name)
        # The kernel process's own stdout/stderr (its start-up warnings, a crash) go to a
        # file per node, not into the lesson; what the node prints comes over iopub.
        log_path = os.path.join(self.log_dir, f"{name}.log")
        with open(log_path, "ab") as log_file:
            await manager.start_kernel(env=env, stdout=log_file, stderr=log_file)
        client = manager.client()
        client.start_channels()
        node = NodeKernel(name, name.split("@")[0], cookie, manager, client)
        node._changed = asyncio.Event()
        self.nodes[name] = node
        try:
            await client.wait_for_ready(timeout=self.startup_timeout)
            node._reader = asyncio.get_running_loop().create_task(self._read_iopub(node))
        except Exception as exc:
            node.state = "dead"
            await self._shutdown(node, now=True)
            raise LabError(f"{name} did not start: {exc}") from None
        return node

    async def _boot(self, node: NodeKernel, options: dict,
                    topologies: dict | None = None) -> None:
        name = node.name
        try:
            boot = {"name": name, "cookie": node.cookie, "lab_pid": os.getpid(),
                    "options": options}
            if topologies:
                boot["topologies"] = topologies
            result = await self._execute(
                node, f"import clusterkit.lab.kernel_side as _ck_lab\n"
                      f"_ck_lab.boot({boot!r})", self.startup_timeout)
        except Exception as exc:
            node.state = "dead"
            await self._shutdown(node, now=True)
            raise LabError(f"{name} did not start: {exc}") from None
        if not result.ok:
            node.state = "dead"
            await self._shutdown(node, now=True)
            raise LabError(f"{name} did not start: {result.error}")
        if topologies:
            # What discovery logged while the node booted ("connected to ...") is the
            # node's to show, before its next cell, like any line logged outside a cell.
            node.backlog[:0] = [o for o in result.outputs if o.kind in ("stdout", "stderr")]
        node.state = "running"
        self._emit("started", node)

    async def astop(self, name: str) -> None:
        """A clean stop: the node leaves the cluster at once (others see nodedown)."""
        node = self.node(name)
        if node.state == "frozen":
            await self.athaw(name)
        if node.state == "running" and not getattr(node, "beam", False):
            try:
                await self._execute(node, "import clusterkit as _ck; _ck.stop()", 10)
            except Exception:
                pass
        await self._shutdown(node, now=False)
        node.state = "stopped"
        self._emit("stopped", node)

    async def akill(self, name: str) -> None:
        """SIGKILL: the node vanishes; its peers see nodedown when its sockets close."""
        node = self.node(name)
        await self._signal(node, signal.SIGKILL)
        await self._shutdown(node, now=True)
        node.state = "killed"
        self._emit("killed", node)

    async def afreeze(self, name: str) -> None:
        """SIGSTOP: the node stays connected but silent, until net_ticktime drops it."""
        node = self.node(name)
        await self._signal(node, signal.SIGSTOP)
        node.state = "frozen"
        self._emit("frozen", node)

    async def athaw(self, name: str) -> None:
        node = self.node(name)
        await self._signal(node, signal.SIGCONT)
        node.state = "running"
        self._emit("thawed", node)

    async def ashutdown(self) -> None:
        """Stop every node kernel (the lab's end)."""
        for node in list(self.nodes.values()):
            if node.state == "dead" and not getattr(node, "beam", False):
                await self._shutdown(node, now=True)    # idempotent; frees its sockets
            if node.state in ("running", "frozen", "starting"):
                try:
                    if node.state == "frozen":
                        await self._signal(node, signal.SIGCONT)
                    await self._shutdown(node, now=True)
                except Exception:
                    pass
                node.state = "stopped"
                self._emit("stopped", node)
        self.nodes.clear()

    async def _signal(self, node: NodeKernel, signum: int) -> None:
        if node.pid is None:
            raise LabError(f"{node.name} has no process")
        try:
            os.kill(node.pid, signum)
        except ProcessLookupError:
            pass

    async def _shutdown(self, node: NodeKernel, now: bool) -> None:
        if getattr(node, "beam", False):
            await node.close(now)
            return
        if node._reader is not None:
            node._reader.cancel()
        try:
            node.client.stop_channels()
        except Exception:
            pass
        try:
            await asyncio.wait_for(node.manager.shutdown_kernel(now=now), 15)
        except Exception:
            try:
                await node.manager.shutdown_kernel(now=True)
            except Exception:
                pass
        for request in node._requests.values():
            if not request.future.done():
                request.future.set_exception(LabError(f"{node.name} went away"))

    # --- running code ------------------------------------------------------------------
    async def arun(self, name: str, code: str, timeout: float = 60.0,
                   keep_backlog: bool = False) -> RunResult:
        node = self.node(name)
        if node.state == "frozen":
            raise LabError(f"{node.name} is frozen; %cluster thaw {node.label} first")
        if node.state != "running":
            raise LabError(f"{node.name} is {node.state}; %cluster start {node.label} "
                           "starts it again")
        return await self._execute(node, code, timeout, keep_backlog)

    async def _execute(self, node: NodeKernel, code: str, timeout: float,
                       keep_backlog: bool = False) -> RunResult:
        """Run code; the backlog is handed over with the result (or left, if kept)."""
        if getattr(node, "beam", False):
            return await node.execute(code, timeout, keep_backlog)
        if keep_backlog:
            backlog = []
        else:
            backlog, node.backlog = node.backlog, []
        node.unseen.clear()
        future = asyncio.get_running_loop().create_future()
        outputs: list[Output] = []
        msg_id = node.client.execute(code, store_history=True, allow_stdin=False)
        node._requests[msg_id] = _Request(outputs, future)
        try:
            error = await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            raise LabError(f"{node.name} did not finish within {timeout} s "
                           "(is it frozen, or waiting for a message?)") from None
        finally:
            node._requests.pop(msg_id, None)
        return RunResult(node.name, backlog, outputs, ok=error is None, error=error)

    async def _read_iopub(self, node: NodeKernel) -> None:
        async for msg in iopub_messages(node.client, node.manager):
            self._on_iopub(node, msg)
        if node.state in ("running", "frozen"):
            node.state = "dead"
            log_file = os.path.join(self.log_dir, f"{node.name}.log")
            for request in node._requests.values():
                if not request.future.done():
                    request.future.set_exception(LabError(
                        f"{node.name} died; its kernel's own log is {log_file}"))
            # Close its channels now: a dead kernel's ZMQ sockets would keep reconnecting
            # to its old ports, and greet whatever binds one of them next (a node's
            # distribution port, say) with ZMTP bytes.
            node._reader = None
            await self._shutdown(node, now=True)
            self._emit("died", node)

    def _beam_exited(self, node) -> None:
        """A real node's VM ended without the lab stopping it (halt, a crash)."""
        if not node.closing and node.state in ("running", "frozen"):
            node.state = "dead"
            node._fail_all(f"{node.name} died; what it printed is in %cluster logs "
                           f"{node.label}")
            self._emit("died", node)

    def _on_iopub(self, node: NodeKernel, msg: dict) -> None:
        kind = msg["header"]["msg_type"]
        parent = msg.get("parent_header", {}).get("msg_id")
        content = msg["content"]
        request = node._requests.get(parent)
        item = None
        if kind == "stream":
            item = Output(content["name"], content["text"])
        elif kind in ("execute_result", "display_data"):
            text = content.get("data", {}).get("text/plain", "")
            item = Output("result" if kind == "execute_result" else "display", text + "\n")
        elif kind == "error":
            text = f"{content['ename']}: {content['evalue']}"
            item = Output("error", text + "\n")
            if request is not None:
                request.error = text
        elif kind == "status" and content.get("execution_state") == "idle":
            if request is not None and not request.future.done():
                request.future.set_result(request.error)
            return
        if item is None:
            return
        node.unseen.append(item)
        if request is not None:
            request.outputs.append(item)
        else:
            node.backlog.append(item)
        node._changed.set()
        node._changed = asyncio.Event()

    # --- logs and waiting --------------------------------------------------------------
    def logs(self, name: str) -> list[Output]:
        """What the node printed outside cells since the last run (taken, in order)."""
        node = self.node(name)

        async def take():
            items, node.backlog = node.backlog, []
            return items
        return self._sync(take())

    async def await_output(self, name: str, fragment: str, timeout: float = 10.0) -> str:
        """Wait until the node prints a line containing `fragment`; returns that line."""
        node = self.node(name)
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for i, item in enumerate(node.unseen[seen:], start=seen):
                for line in _ANSI.sub("", item.text).splitlines():
                    if fragment in line:
                        del node.unseen[:i + 1]
                        return line
            seen = len(node.unseen)
            left = deadline - time.monotonic()
            if left <= 0:
                raise LabError(f"{node.name} did not print {fragment!r} within {timeout} s")
            changed = node._changed
            try:
                await asyncio.wait_for(changed.wait(), left)
            except asyncio.TimeoutError:
                pass

    # --- sync wrappers (usable inside a running kernel) ---------------------------------
    def start(self, *names: str, cookie: str | None = None, topology=None,
              topology_config: dict | None = None, **options) -> list[str]:
        return self._sync(self.astart(*names, cookie=cookie, topology=topology,
                                      topology_config=topology_config, **options))

    def stop(self, name: str) -> None:
        self._sync(self.astop(name))

    def kill(self, name: str) -> None:
        self._sync(self.akill(name))

    def freeze(self, name: str) -> None:
        self._sync(self.afreeze(name))

    def thaw(self, name: str) -> None:
        self._sync(self.athaw(name))

    def run(self, name: str, code: str, timeout: float = 60.0,
            keep_backlog: bool = False) -> RunResult:
        return self._sync(self.arun(name, code, timeout, keep_backlog))

    def wait_for_output(self, name: str, fragment: str, timeout: float = 10.0) -> str:
        return self._sync(self.await_output(name, fragment, timeout))

    def shutdown(self) -> None:
        if self._runtime is not None:
            try:
                self._sync(self.ashutdown(), 60)
            finally:
                self._runtime.stop()
                self._runtime = None

    def status(self) -> list[dict]:
        return [{"node": n.name, "state": n.state, "pid": n.pid,
                 "connection_file": n.connection_file} for n in self.nodes.values()]

    def console(self, lang: str = "en"):
        from .console import Console
        return Console(self, lang=lang).widget

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()

    def __del__(self):
        # The interpreter may be going down; never let this raise.
        try:
            if self._runtime is not None and not sys.is_finalizing():
                self.shutdown()
        except Exception:
            pass
