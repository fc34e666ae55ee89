"""The console widget: a shell per node, buttons that start and stop nodes, each node's
status, and a live drawing of the cluster (in the style of the Convoy app).

    from clusterkit.lab import Lab
    lab = Lab()
    lab.console()            # or lab.console(lang="es")

The logic is in plain methods of `Console` that tests call (`start_node`, `stop_node`,
`kill_node`, `submit`, `refresh`, `topology`, `status`, `svg`); the widgets are a thin
layer over them. Everything that changes the console's state runs on the lab's own loop
thread, so a button's handler returns at once and the notebook's kernel stays free.
Background work only sets widget values: it never prints into a cell.

How the pieces work:

- The shells. Each node's shell is a small anywidget (`console_assets/shell.js`):
  standard ipywidgets cannot see the arrow keys, and anywidget is the supported way to
  ship a few lines of front-end code that JupyterLab 4 loads without a build step (its
  lab extension comes with the `anywidget` package). Enter sends the line to Python,
  which runs it on the node with `Lab.arun` (so the output is the same as `%%on`'s);
  ArrowUp / ArrowDown walk the history, kept here in `history` and synced to the page.
  What a node prints outside any command (a nodeup line from an observer, "Invalid
  challenge reply") shows up in its shell as it arrives, dimmed, without taking it from
  the lab's backlog (so `%%on` and `%cluster logs` still see it).
- The drawing. The console opens its own client on each node kernel (one per node,
  beside the lab's) and runs there, silently, `watch_node()` below: a thread in the node
  that calls `net_kernel.monitor_nodes(True)` and, at each nodeup or nodedown, sends the
  node's `sorted(Node.list())` (visible and hidden) on a comm. The comm message reaches
  only the console's client; nothing is printed and the node's execution count does not
  move. The drawing is an SVG (nodes on a circle, a line per connection) recomputed
  from those reports whenever one changes or a node kernel starts, stops, is killed,
  frozen or dies (the lab's `listeners`). `refresh()` asks every running node again.
"""
from __future__ import annotations

import ast
import asyncio
import concurrent.futures
import html
import json
import math
import pathlib
import queue
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import anywidget
import ipywidgets as W
import traitlets as T
from jupyter_client.session import Session

from .core import _ANSI, Lab, LabError, NodeKernel, RunResult, full_name, iopub_messages

ASSETS = pathlib.Path(__file__).with_name("console_assets")
COMM_TARGET = "clusterkit.console"
_REPORT_KEY = "clusterkit_console"
_MAX_ENTRIES = 2000

LABELS: dict[str, dict[str, Any]] = {
    "en": {
        "title": "clusterkit console",
        "subtitle": "one shell per node",
        "cluster": "the cluster",
        "start": "Start",
        "stop": "Stop",
        "kill": "Kill",
        "add": "Add node",
        "add_placeholder": "d",
        "placeholder_off": "start the node to use its shell",
        "placeholder_on": "",
        "hint": "Enter runs · ↑ ↓ history · Ctrl+C interrupts",
        "not_running": "{node} is not running: start it first",
        "states": {
            "not_started": "not started",
            "starting": "starting…",
            "running": "running",
            "stopping": "stopping…",
            "stopped": "stopped",
            "killed": "killed",
            "frozen": "frozen",
            "dead": "died",
            "external": "other node",
        },
        "nodes": ("{n} node", "{n} nodes"),
        "running": "{n} running",
        "edges": ("{n} connection", "{n} connections"),
        "hidden": "hidden",
        "interrupted": "interrupt sent",
    },
    "es": {
        "title": "consola de clusterkit",
        "subtitle": "un shell por nodo",
        "cluster": "el clúster",
        "start": "Arrancar",
        "stop": "Detener",
        "kill": "Matar",
        "add": "Añadir nodo",
        "add_placeholder": "d",
        "placeholder_off": "arranca el nodo para usar su shell",
        "placeholder_on": "",
        "hint": "Intro ejecuta · ↑ ↓ historial · Ctrl+C interrumpe",
        "not_running": "{node} no está en marcha: arráncalo primero",
        "states": {
            "not_started": "sin arrancar",
            "starting": "arrancando…",
            "running": "en marcha",
            "stopping": "deteniéndose…",
            "stopped": "detenido",
            "killed": "matado",
            "frozen": "congelado",
            "dead": "caído",
            "external": "otro nodo",
        },
        "nodes": ("{n} nodo", "{n} nodos"),
        "running": "{n} en marcha",
        "edges": ("{n} conexión", "{n} conexiones"),
        "hidden": "oculta",
        "interrupted": "interrupción enviada",
    },
}

# Colours of the drawing, by state (the cards use the same ones, in console.css).
_COLOURS = {
    "running": "#22c55e", "starting": "#eab308", "stopping": "#eab308",
    "frozen": "#60a5fa", "killed": "#ef4444", "dead": "#ef4444",
    "stopped": "#52525b", "not_started": "#3f3f46", "external": "#c084fc",
}


def _plural(forms: tuple[str, str], n: int) -> str:
    return (forms[0] if n == 1 else forms[1]).format(n=n)


# --- what runs inside each node kernel ------------------------------------------------
_watcher: threading.Thread | None = None
_watcher_lock = threading.Lock()


def node_report() -> dict:
    """This node kernel's view of the cluster (runs inside a node kernel)."""
    from clusterkit import Node
    alive = bool(Node.alive())
    return {"node": str(Node.self()), "alive": alive,
            "visible": sorted(str(n) for n in Node.list()) if alive else [],
            "hidden": sorted(str(n) for n in Node.list("hidden")) if alive else []}


def watch_node() -> str:
    """Start (once) the watcher thread of this node kernel; return its report as JSON.

    The thread is a process of the node that gets nodeup / nodedown messages
    (`net_kernel.monitor_nodes(True, node_type="all")`) and, at each, sends the node's
    report on a comm: consoles read it; nothing is printed into any cell.
    """
    global _watcher
    with _watcher_lock:
        if _watcher is None or not _watcher.is_alive():
            _watcher = threading.Thread(target=_watch_loop, name="clusterkit-console-watcher",
                                        daemon=True)
            _watcher.start()
    return json.dumps(node_report())


def _watch_loop() -> None:
    import clusterkit as ck
    from comm import create_comm
    last = node_report()
    channel = create_comm(target_name=COMM_TARGET, data={_REPORT_KEY: last})
    watched = None
    while True:
        try:
            try:
                current = ck.node()
            except ck.NotAlive:
                current = None
            if current is not watched:
                # A new node in this kernel (ck.stop() then ck.start()): watch it instead.
                watched = current
                if current is not None:
                    ck.net_kernel.monitor_nodes(True, node_type="all")
            if current is None:
                time.sleep(0.5)
            else:
                # Wakes at once on nodeup / nodedown; the timeout notices a stopped node.
                ck.receive(timeout=1.0, default=None)
            report = node_report()
            if report != last:
                last = report
                channel.send({_REPORT_KEY: report})
        except Exception:
            time.sleep(0.5)


# --- the widgets -----------------------------------------------------------------------
class ShellWidget(anywidget.AnyWidget):
    """Output, prompt and input line of one node (front end: console_assets/shell.js)."""
    _esm = ASSETS / "shell.js"
    _css = ASSETS / "console.css"
    node = T.Unicode("").tag(sync=True)
    prompt = T.Unicode("").tag(sync=True)
    entries = T.List([]).tag(sync=True)     # [kind, text] pairs
    history = T.List([]).tag(sync=True)
    enabled = T.Bool(False).tag(sync=True)
    busy = T.Bool(False).tag(sync=True)
    placeholder = T.Unicode("").tag(sync=True)
    hint = T.Unicode("").tag(sync=True)


@dataclass
class _Card:
    """One node's part of the console: its bar (name, status, buttons) and shell."""
    name: str
    label: str
    shell: ShellWidget
    status: W.HTML
    start: W.Button
    stop: W.Button
    kill: W.Button
    box: W.VBox
    count: int = 1                      # the prompt's number, as in iex
    pending: str | None = None          # "starting" / "stopping" while a button works
    lock: asyncio.Lock | None = None    # made on the loop thread, at the first command
    history: list[str] = field(default_factory=list)


@dataclass
class _Link:
    """The console's own client on one node kernel, for the watcher's reports."""
    node: NodeKernel
    client: Any
    lock: asyncio.Lock
    tasks: list = field(default_factory=list)
    shown: list = field(default_factory=list)    # backlog items already in the shell


class Console:
    def __init__(self, lab: Lab, lang: str = "en", nodes=("a", "b", "c"),
                 timeout: float | None = None):
        if lang not in LABELS:
            raise ValueError(f"lang is one of {sorted(LABELS)}, not {lang!r}")
        self.lab = lab
        self.lang = lang
        self.text = LABELS[lang]
        self.timeout = timeout              # for a shell command; None: wait, like iex
        self._runtime = lab.runtime
        self._cards: dict[str, _Card] = {}
        self._links: dict[str, _Link] = {}
        self._reports: dict[str, dict] = {}
        self._closed = False
        self._draw_lock = threading.Lock()

        t = self.text
        self._map = W.HTML(layout=W.Layout(width="296px"))
        self._map.add_class("ck-map")
        self._cards_box = W.HBox(layout=W.Layout(flex_flow="row wrap"))
        self._cards_box.add_class("ck-cards")
        self._new_name = W.Text(placeholder=t["add_placeholder"], layout=W.Layout(width="90px"))
        self._add_button = W.Button(description=t["add"], icon="plus")
        self._add_button.add_class("ck-btn")
        self._add_button.add_class("ck-add-button")
        self._add_button.on_click(lambda _b: self._add_from_field())
        title = W.HTML(f'<span class="ck-title">{html.escape(t["title"])}'
                       f'<span class="ck-sub">{html.escape(t["subtitle"])}</span></span>')
        add = W.HBox([self._new_name, self._add_button])
        add.add_class("ck-add")
        header = W.HBox([title, add])
        header.add_class("ck-header")
        body = W.HBox([self._map, self._cards_box], layout=W.Layout(flex_flow="row wrap"))
        body.add_class("ck-body")
        self.widget = W.VBox([header, body])
        self.widget.add_class("ck-console")
        self.widget.add_class(f"ck-lang-{lang}")
        self.widget.console = self          # lab.console().console reaches this object

        for name in list(nodes) + list(lab.nodes):
            self.add_node(name)
        self._draw()
        lab.listeners.append(self._on_lab_event)
        for node in list(lab.nodes.values()):
            if node.state in ("running", "frozen"):
                self._spawn(self._attach(node))

    # --- public, plain methods ---------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return list(self._cards)

    def key(self, name: str) -> str:
        return full_name(name, self.lab.host)

    def add_node(self, name: str) -> str:
        """Add a card (shell, status, buttons) for a node; it is not started."""
        key = self.key(name)
        if key not in self._cards:
            self._cards[key] = self._make_card(key)
            self._cards_box.children = tuple(c.box for c in self._cards.values())
            self._update_card(key)
            if hasattr(self, "_map"):
                self._draw()
        return key

    def start_node(self, name: str, wait: bool = True, **options):
        """Start the node's kernel (the Start button). Raises LabError if it fails."""
        key = self.add_node(name)
        return self._call(self._astart(key, options), wait)

    def stop_node(self, name: str, wait: bool = True):
        """Stop the node cleanly (the Stop button): its peers see nodedown at once."""
        return self._call(self._astop(self.key(name), "stop"), wait)

    def kill_node(self, name: str, wait: bool = True):
        """SIGKILL the node's kernel (the Kill button)."""
        return self._call(self._astop(self.key(name), "kill"), wait)

    def submit(self, name: str, code: str, wait: bool = True) -> RunResult | None:
        """Run a line in the node's shell, as if typed there and sent with Enter."""
        key = self.key(name)
        if key not in self._cards:
            raise LabError(f"no shell for {key} in this console")
        return self._call(self._asubmit(key, code), wait)

    def interrupt(self, name: str, wait: bool = True):
        """Interrupt what the node's shell is running (Ctrl+C in the shell)."""
        return self._call(self._ainterrupt(self.key(name)), wait)

    def history(self, name: str) -> list[str]:
        return list(self._cards[self.key(name)].history)

    def transcript(self, name: str) -> str:
        """The node's shell as text, as the page shows it."""
        return "".join(text if text.endswith("\n") else text + "\n"
                       for _kind, text in self._cards[self.key(name)].shell.entries)

    def status(self, name: str) -> str:
        """The node's state: not_started, starting, running, stopping, stopped, killed,
        frozen or dead."""
        key = self.key(name)
        card = self._cards.get(key)
        if card is not None and card.pending:
            return card.pending
        node = self.lab.nodes.get(key)
        return node.state if node is not None else "not_started"

    def status_text(self, name: str) -> str:
        return self.text["states"][self.status(name)]

    def refresh(self, timeout: float = 10.0) -> dict:
        """Ask every running node for its connections now; redraw; return topology()."""
        return self._call(self._arefresh(timeout), True)

    def topology(self) -> dict:
        """{"nodes": {name: state}, "edges": [(a, b, "visible" | "hidden")]}."""
        return self._call(self._atopology(), True)

    def svg(self) -> str:
        return self._map.value

    def close(self) -> None:
        """Stop listening to the lab and close the console's clients and widgets."""
        if self._closed:
            return
        self._closed = True
        try:
            self.lab.listeners.remove(self._on_lab_event)
        except ValueError:
            pass
        if self.lab._runtime is self._runtime and self._runtime.loop.is_running():
            try:
                self._call(self._adetach_all(), True)
            except Exception:
                pass
        _close_tree(self.widget)

    # --- plumbing -----------------------------------------------------------------------
    def _call(self, coro, wait: bool):
        runtime = self.lab.runtime
        if runtime is not self._runtime:
            # The lab was shut down and has a new loop: its old node kernels are gone,
            # and so is the loop that ran this console's readers (they cannot be
            # cancelled any more; let them go without asyncio's "destroyed" warning).
            self._runtime = runtime
            for link in self._links.values():
                for task in link.tasks:
                    task._log_destroy_pending = False
            self._links.clear()
            self._reports.clear()
        if runtime.in_loop_thread:
            coro.close()
            raise RuntimeError("a blocking console call was made from the lab's loop thread")
        future = asyncio.run_coroutine_threadsafe(coro, runtime.loop)
        if not wait:
            return future
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            raise LabError("the lab stopped") from None

    def _spawn(self, coro) -> None:
        """Run a coroutine on the lab's loop, from any thread, without waiting for it.
        It never raises: what goes wrong shows in a shell or the drawing, not in a cell."""
        async def guarded():
            try:
                await coro
            except asyncio.CancelledError:
                pass
            except Exception:
                pass
        runtime = self._runtime
        if runtime.in_loop_thread:
            runtime.loop.create_task(guarded())
        else:
            asyncio.run_coroutine_threadsafe(guarded(), runtime.loop)

    def _make_card(self, key: str) -> _Card:
        t = self.text
        label = key.split("@")[0] if key.split("@", 1)[1] == self.lab.host else key
        slug = re.sub(r"[^A-Za-z0-9_-]", "-", label)
        name = W.HTML(f'<span class="ck-node-name">{html.escape(key)}</span>')
        status = W.HTML()
        buttons = []
        for kind, icon in (("start", "play"), ("stop", "stop"), ("kill", "power-off")):
            button = W.Button(description=t[kind], icon=icon, tooltip=f"{t[kind]} {key}")
            button.add_class("ck-btn")
            button.add_class(f"ck-{kind}")
            buttons.append(button)
        start, stop, kill = buttons
        start.on_click(lambda _b: self._from_button(self.start_node, key))
        stop.on_click(lambda _b: self._from_button(self.stop_node, key))
        kill.on_click(lambda _b: self._from_button(self.kill_node, key))
        who = W.HBox([name, status])
        who.add_class("ck-who")
        actions = W.HBox([start, stop, kill])
        actions.add_class("ck-actions")
        bar = W.HBox([who, actions])
        bar.add_class("ck-card-bar")
        shell = ShellWidget(node=key, hint=t["hint"])
        shell.on_msg(lambda _w, content, _buffers: self._on_shell_msg(key, content))
        box = W.VBox([bar, shell])
        box.add_class("ck-card")
        box.add_class(f"ck-node-{slug}")
        return _Card(key, label, shell, status, start, stop, kill, box)

    def _from_button(self, method, key: str) -> None:
        if not self._closed:
            method(key, wait=False)

    def _add_from_field(self) -> None:
        name = self._new_name.value.strip()
        if not name:
            return
        try:
            self.add_node(name)
        except Exception:
            return
        self._new_name.value = ""

    def _on_shell_msg(self, key: str, content: dict) -> None:
        if not isinstance(content, dict) or self._closed:
            return
        if content.get("type") == "submit":
            self.submit(key, str(content.get("code", "")), wait=False)
        elif content.get("type") == "interrupt":
            self.interrupt(key, wait=False)

    def _on_lab_event(self, event: str, node: NodeKernel) -> None:
        """A lab listener: called on the lab's loop thread."""
        if self._closed:
            return
        if node.name not in self._cards:
            self.add_node(node.name)
        card = self._cards[node.name]
        if event == "started":
            card.pending = None         # the card shows "running" from now on
            self._spawn(self._attach(node))
        elif event in ("stopped", "killed", "died"):
            self._reports.pop(node.name, None)
            self._detach(node.name)
        self._update_card(node.name)
        self._draw()

    # --- shells ---------------------------------------------------------------------------
    def _append(self, key: str, kind: str, text: str) -> None:
        self._append_many(key, [(kind, text)])

    def _append_many(self, key: str, items: list[tuple[str, str]]) -> None:
        """Add lines to a shell in one update; adjacent pieces of one stream join."""
        lines: list[list[str]] = []
        for kind, text in items:
            text = _ANSI.sub("", text)
            if lines and lines[-1][0] == kind and kind in ("stdout", "stderr", "log") \
                    and not lines[-1][1].endswith("\n"):
                lines[-1][1] += text
            else:
                lines.append([kind, text])
        for line in lines:
            if line[1].endswith("\n"):
                line[1] = line[1][:-1]
        if lines:
            shell = self._cards[key].shell
            shell.entries = (list(shell.entries) + lines)[-_MAX_ENTRIES:]

    def _prompt(self, card: _Card) -> str:
        return f"({card.name}){card.count}>"

    async def _asubmit(self, key: str, code: str) -> RunResult | None:
        card = self._cards[key]
        if card.lock is None:
            card.lock = asyncio.Lock()
        async with card.lock:           # one command at a time per shell, in order
            return await self._asubmit_locked(card, key, code)

    async def _asubmit_locked(self, card: _Card, key: str, code: str) -> RunResult | None:
        code = code.rstrip()
        if not code.strip():
            return None
        if not card.history or card.history[-1] != code:
            card.history.append(code)
            card.shell.history = list(card.history)
        self._append(key, "input", f"{self._prompt(card)} {code}")
        card.count += 1
        node = self.lab.nodes.get(key)
        if node is None or node.state != "running":
            card.shell.prompt = self._prompt(card)
            self._append(key, "error", self.text["not_running"].format(node=key))
            return None
        card.shell.busy = True
        try:
            result = await self.lab.arun(key, code, timeout=self.timeout)
        except LabError as exc:
            card.shell.busy = False
            card.shell.prompt = self._prompt(card)
            self._append(key, "error", str(exc))
            return None
        # Not busy before the output appears, so the next line is taken at once.
        card.shell.busy = False
        card.shell.prompt = self._prompt(card)
        link = self._links.get(key)
        shown = link.shown if link is not None else []
        lines = [("log", item.text) for item in result.backlog
                 if not any(item is s for s in shown)]
        if link is not None:
            link.shown = [s for s in link.shown if any(s is b for b in node.backlog)]
        lines += [(item.kind if item.kind != "display" else "result", item.text)
                  for item in result.outputs]
        self._append_many(key, lines)
        return result

    async def _ainterrupt(self, key: str) -> None:
        node = self.lab.nodes.get(key)
        if node is None or node.state != "running":
            return
        try:
            await node.manager.interrupt_kernel()
            self._append(key, "info", self.text["interrupted"])
        except Exception as exc:
            self._append(key, "error", str(exc))

    def _show_background(self, link: _Link) -> None:
        """Show, dimmed, what the node printed outside any command (not taking it)."""
        node = link.node
        key = node.name
        if key not in self._cards:
            return
        link.shown = [s for s in link.shown if any(s is b for b in node.backlog)]
        lines = []
        for item in list(node.backlog):
            if not any(item is s for s in link.shown):
                link.shown.append(item)
                lines.append(("log", item.text))
        self._append_many(key, lines)

    async def _tail(self, link: _Link) -> None:
        node = link.node
        while True:
            changed = node._changed
            self._show_background(link)
            if changed is None:
                return
            await changed.wait()

    # --- starting and stopping --------------------------------------------------------
    async def _astart(self, key: str, options: dict) -> None:
        card = self._cards[key]
        if card.pending:
            raise LabError(f"{key} is {card.pending}")
        card.pending = "starting"
        self._update_card(key)
        self._draw()
        try:
            await self.lab.astart(key, **options)
        except LabError as exc:
            self._append(key, "error", str(exc))
            raise
        finally:
            card.pending = None
            self._update_card(key)
            self._draw()

    async def _astop(self, key: str, how: str) -> None:
        card = self._cards.get(key)
        if card is None or key not in self.lab.nodes:
            raise LabError(f"{key} is not running")
        if card.pending:
            raise LabError(f"{key} is {card.pending}")
        card.pending = "stopping"
        self._update_card(key)
        self._draw()
        try:
            await (self.lab.astop(key) if how == "stop" else self.lab.akill(key))
        except LabError as exc:
            self._append(key, "error", str(exc))
            raise
        finally:
            card.pending = None
            node = self.lab.nodes.get(key)
            if node is None or node.state not in ("running", "frozen"):
                self._reports.pop(key, None)
                self._detach(key)
            self._update_card(key)
            self._draw()

    def _update_card(self, key: str) -> None:
        card = self._cards.get(key)
        if card is None:
            return
        state = self.status(key)
        text = self.text["states"][state]
        card.status.value = (f'<span class="ck-status ck-state-{state}" data-state="{state}">'
                             f'<span class="ck-dot"></span>{html.escape(text)}</span>')
        busy = state in ("starting", "stopping")
        live = state in ("running", "frozen")
        card.start.disabled = busy or live
        card.stop.disabled = busy or not live
        card.kill.disabled = busy or not live
        running = state == "running"
        card.shell.enabled = running
        card.shell.placeholder = self.text["placeholder_on" if running else "placeholder_off"]
        card.shell.prompt = self._prompt(card)

    # --- the watchers and the drawing ------------------------------------------------
    async def _attach(self, node: NodeKernel) -> None:
        """Open the console's client on a node kernel and start its watcher thread."""
        self._detach(node.name)
        if self._closed or node.state not in ("running", "frozen"):
            return
        if getattr(node, "beam", False):
            return      # a real elixir/erl node has no kernel to watch; its shell still works
        # A session of its own: clients that share one also share the shell socket's
        # identity, and the kernel would answer only one of them (the lab's would hang).
        own = node.manager.session
        session = Session(key=own.key, signature_scheme=own.signature_scheme,
                          username=own.username)
        client = node.manager.client(session=session)
        client.start_channels(shell=True, iopub=True, stdin=False, hb=False, control=False)
        link = _Link(node, client, asyncio.Lock())
        self._links[node.name] = link
        loop = asyncio.get_running_loop()
        link.tasks = [loop.create_task(self._read_reports(link)),
                      loop.create_task(self._tail(link))]
        try:
            report = await self._query(link, "watch_node", 30.0)
        except Exception:
            return
        self._set_report(link, report)

    def _detach(self, key: str) -> None:
        link = self._links.pop(key, None)
        if link is None:
            return
        for task in link.tasks:
            task.cancel()
        try:
            link.client.stop_channels()
        except Exception:
            pass

    async def _adetach_all(self) -> None:
        for key in list(self._links):
            self._detach(key)

    async def _query(self, link: _Link, function: str, timeout: float) -> dict:
        """Call a function of this module in the node kernel, silently (no output, no
        execution count), through user_expressions; return its JSON answer."""
        expression = (f"__import__('clusterkit.lab.console', fromlist=['_'])"
                      f".{function}()")
        async with link.lock:
            msg_id = link.client.execute("", silent=True, store_history=False,
                                         user_expressions={"r": expression},
                                         allow_stdin=False)
            deadline = time.monotonic() + timeout
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise LabError(f"{link.node.name} did not answer within {timeout} s")
                try:
                    reply = await link.client.get_shell_msg(timeout=left)
                except queue.Empty:
                    continue
                if reply.get("parent_header", {}).get("msg_id") == msg_id:
                    break
        value = reply["content"].get("user_expressions", {}).get("r", {})
        if value.get("status") != "ok":
            raise LabError(f"{link.node.name}: {value.get('ename')}: {value.get('evalue')}")
        return json.loads(ast.literal_eval(value["data"]["text/plain"]))

    async def _read_reports(self, link: _Link) -> None:
        async for msg in iopub_messages(link.client, link.node.manager):
            if msg["header"]["msg_type"] not in ("comm_open", "comm_msg"):
                continue
            data = msg["content"].get("data") or {}
            report = data.get(_REPORT_KEY) if isinstance(data, dict) else None
            if isinstance(report, dict):
                self._set_report(link, report)

    def _set_report(self, link: _Link, report: dict) -> None:
        key = link.node.name
        if self._links.get(key) is not link:
            return                      # a report from a kernel the console left
        if self._reports.get(key) != report:
            self._reports[key] = report
            self._draw()

    async def _arefresh(self, timeout: float) -> dict:
        for key, link in list(self._links.items()):
            if link.node.state != "running":
                continue
            try:
                report = await self._query(link, "node_report", timeout)
            except Exception:
                continue
            self._set_report(link, report)
        self._draw()
        return await self._atopology()

    async def _atopology(self) -> dict:
        nodes, edges = self._model()
        return {"nodes": dict(nodes), "edges": edges}

    def _model(self) -> tuple[list[tuple[str, str]], list[tuple[str, str, str]]]:
        # Snapshots: the loop thread may change these while another thread draws.
        nodes: dict[str, str] = {key: self.status(key) for key in list(self._cards)}
        for key in list(self.lab.nodes):
            nodes.setdefault(key, self.status(key))
        kinds: dict[tuple[str, str], str] = {}
        for key, report in sorted(dict(self._reports).items()):
            # Only a running node's word counts: a frozen node cannot notice that its
            # peers dropped it, so its lines go when they see nodedown (net_ticktime).
            state = self.lab.nodes[key].state if key in self.lab.nodes else None
            if state != "running" or not report.get("alive"):
                continue
            for kind in ("visible", "hidden"):
                for peer in report.get(kind, []):
                    nodes.setdefault(peer, "external")
                    pair = tuple(sorted((key, peer)))
                    if kinds.get(pair) != "visible":
                        kinds[pair] = kind
        edges = [(a, b, kind) for (a, b), kind in sorted(kinds.items())]
        return list(nodes.items()), edges

    def _draw(self) -> None:
        """Recompute the drawing (from any thread: a lock keeps the newest one)."""
        with self._draw_lock:
            nodes, edges = self._model()
            svg = render_svg(nodes, edges, self.text, self.lab.host)
            if self._map.value != svg:
                self._map.value = svg


def _close_tree(widget) -> None:
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    widget.close()


def render_svg(nodes: list[tuple[str, str]], edges: list[tuple[str, str, str]],
               text: dict, host: str = "127.0.0.1", size: int = 280) -> str:
    """The cluster as an SVG: nodes on a circle, coloured by state; a line per
    connection (dashed when hidden); a count at the bottom."""
    width, height = size, size + 44
    cx, cy = size / 2, size / 2 + 12
    radius = 0 if len(nodes) <= 1 else size / 2 - 48
    r = 22
    places: dict[str, tuple[float, float]] = {}
    for i, (name, _state) in enumerate(nodes):
        angle = -math.pi / 2 + 2 * math.pi * i / max(len(nodes), 1)
        places[name] = (cx + radius * math.cos(angle), cy + radius * math.sin(angle))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="ck-drawing" '
             f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             f'role="img" aria-label="{html.escape(text["cluster"])}">',
             f'<text x="10" y="20" fill="#a1a1aa" font-size="13" '
             f'font-family="system-ui, sans-serif">{html.escape(text["cluster"])}</text>']
    for a, b, kind in edges:
        (x1, y1), (x2, y2) = places[a], places[b]
        # From rim to rim, so that a line never crosses a node's circle.
        length = math.hypot(x2 - x1, y2 - y1) or 1.0
        dx, dy = (x2 - x1) / length * (r + 2), (y2 - y1) / length * (r + 2)
        dash = ' stroke-dasharray="6 5"' if kind == "hidden" else ""
        colour = "#71717a" if kind == "hidden" else "#a5b4fc"
        hidden = f' ({html.escape(text["hidden"])})' if kind == "hidden" else ""
        parts.append(f'<line class="ck-edge ck-edge-{kind}" data-a="{html.escape(a)}" '
                     f'data-b="{html.escape(b)}" x1="{x1 + dx:.1f}" y1="{y1 + dy:.1f}" '
                     f'x2="{x2 - dx:.1f}" y2="{y2 - dy:.1f}" stroke="{colour}" '
                     f'stroke-width="2.5" stroke-linecap="round"{dash}>'
                     f'<title>{html.escape(a)} — {html.escape(b)}{hidden}</title></line>')
    for name, state in nodes:
        x, y = places[name]
        colour = _COLOURS.get(state, "#52525b")
        label = html.escape(text["states"].get(state, state))
        # The full name goes on the outer side of the circle, away from the lines.
        name_y = y - r - 8 if y < cy - 1 else y + r + 15
        parts.append(
            f'<g class="ck-node ck-state-{state}" data-node="{html.escape(name)}" '
            f'data-state="{state}"><title>{html.escape(name)} — {label}</title>'
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="#18181b" stroke="{colour}" '
            f'stroke-width="3"/>'
            f'<text x="{x:.1f}" y="{y + 5:.1f}" text-anchor="middle" fill="#fafafa" '
            f'font-size="15" font-weight="600" font-family="ui-monospace, monospace">'
            f'{html.escape(name.split("@")[0][:6])}</text>'
            f'<text x="{x:.1f}" y="{name_y:.1f}" text-anchor="middle" fill="{colour}" '
            f'font-size="10.5" font-family="ui-monospace, monospace">{html.escape(name)}'
            f'</text></g>')
    running = sum(1 for _n, s in nodes if s == "running")
    summary = (f'{_plural(text["nodes"], len(nodes))} · {text["running"].format(n=running)}'
               f' · {_plural(text["edges"], len(edges))}')
    parts.append(f'<text class="ck-summary" x="{width / 2:.1f}" y="{height - 10}" '
                 f'text-anchor="middle" fill="#a1a1aa" font-size="12" '
                 f'font-family="system-ui, sans-serif">{html.escape(summary)}</text>')
    parts.append("</svg>")
    return "".join(parts)
