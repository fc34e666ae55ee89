"""The console widget, headless: real node kernels, the widgets on a recording comm.

Buttons are pressed with `Button.click()` and a line typed in a shell arrives as the
front end sends it (a custom message), so the same paths run as in JupyterLab; the
browser test (test_console_browser.py) checks the page itself.
"""
from __future__ import annotations

import re

import comm
import pytest
from comm.base_comm import BaseComm

from conftest import wait_for

from clusterkit.lab import Lab
from clusterkit.lab.console import LABELS, Console, render_svg

A, B, C = "a@127.0.0.1", "b@127.0.0.1", "c@127.0.0.1"
START_TIMEOUT = 90


@pytest.fixture
def widget_messages(monkeypatch):
    """Widgets talk to a recording comm instead of a front end."""
    sent: list[tuple[str, str, dict]] = []

    class RecordingComm(BaseComm):
        def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
            sent.append((self.comm_id, msg_type, data or {}))

    monkeypatch.setattr(comm, "create_comm", lambda *args, **kw: RecordingComm(*args, **kw))
    return sent


def _states_sent(sent, comm_id: str) -> list[dict]:
    return [data.get("state", {}) for cid, kind, data in sent
            if cid == comm_id and kind == "comm_msg" and data.get("method") == "update"]


def _edges(svg: str) -> list[tuple[str, str]]:
    return re.findall(r'<line class="ck-edge[^"]*" data-a="([^"]+)" data-b="([^"]+)"', svg)


def _drawn_nodes(svg: str) -> dict[str, str]:
    return dict(re.findall(r'data-node="([^"]+)" data-state="([^"]+)"', svg))


# --- no kernels needed ----------------------------------------------------------------
def test_labels_exist_in_english_and_spanish():
    assert set(LABELS) == {"en", "es"}
    assert LABELS["en"].keys() == LABELS["es"].keys()
    assert LABELS["en"]["states"].keys() == LABELS["es"]["states"].keys()
    for key, value in LABELS["en"].items():
        if isinstance(value, str) and value:
            assert LABELS["es"][key], key


def test_render_svg_places_nodes_and_draws_a_line_per_connection():
    nodes = [(A, "running"), (B, "running"), (C, "stopped"), ("e@127.0.0.1", "external")]
    edges = [(A, B, "visible"), (A, "e@127.0.0.1", "hidden")]
    svg = render_svg(nodes, edges, LABELS["en"])
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert _drawn_nodes(svg) == {A: "running", B: "running", C: "stopped",
                                 "e@127.0.0.1": "external"}
    assert _edges(svg) == [(A, B), (A, "e@127.0.0.1")]
    assert 'ck-edge-hidden' in svg and 'stroke-dasharray' in svg
    assert "4 nodes · 2 running · 2 connections" in svg
    es = render_svg(nodes[:2], edges[:1], LABELS["es"])
    assert "2 nodos · 2 en marcha · 1 conexión" in es and "el clúster" in es
    one = render_svg([(A, "not_started")], [], LABELS["en"])
    assert "1 node · 0 running · 0 connections" in one


def test_console_builds_its_widgets_without_kernels(widget_messages):
    lab = Lab()
    try:
        widget = lab.console(lang="es")
        console = widget.console
        assert isinstance(console, Console) and "ck-lang-es" in widget._dom_classes
        assert console.names == [A, B, "c@127.0.0.1"]
        assert console.status("a") == "not_started"
        assert console.status_text("a") == "sin arrancar"
        card = console._cards[A]
        assert card.start.description == "Arrancar" and not card.start.disabled
        assert card.stop.disabled and card.kill.disabled and not card.shell.enabled
        assert console.add_node("d") == "d@127.0.0.1"
        assert _drawn_nodes(console.svg()) == {A: "not_started", B: "not_started",
                                               C: "not_started",
                                               "d@127.0.0.1": "not_started"}
        assert console.submit("a", "1 + 1") is None      # not running: said in its shell
        assert "no está en marcha" in console.transcript("a")
        with pytest.raises(ValueError):
            Console(lab, lang="fr")
        console.close()
    finally:
        lab.shutdown()


# --- real node kernels -------------------------------------------------------------------
def test_console_starts_nodes_runs_shells_and_draws_the_cluster(clusterkit_epmd,
                                                                 widget_messages):
    lab = Lab()
    consoles = []
    try:
        en = Console(lab)
        es = Console(lab, lang="es")
        consoles += [en, es]
        assert lab.epmd_port == clusterkit_epmd

        def shown_running(console, name):
            card = console._cards[name]
            return (console.status(name) == "running"
                    and 'data-state="running"' in card.status.value
                    and not card.stop.disabled and card.shell.enabled)

        # Two nodes, started with the buttons of the English console.
        en._cards[A].start.click()
        en._cards[B].start.click()
        wait_for(lambda: all(shown_running(c, n) for c in (en, es) for n in (A, B)),
                 timeout=START_TIMEOUT, what="a and b to start from the buttons")
        for console, running in ((en, "running"), (es, "en marcha")):
            for name in (A, B):
                card = console._cards[name]
                assert console.status_text(name) == running
                assert running in card.status.value
                assert card.start.disabled and not card.stop.disabled and card.shell.enabled
        assert en.status_text("c") == "not started" and es.status_text("c") == "sin arrancar"

        # A line typed in a's shell, as the front end sends it on Enter.
        shell_a = en._cards[A].shell
        shell_a._handle_custom_msg({"type": "submit", "code": 'Node.connect("b@127.0.0.1")'}, [])
        wait_for(lambda: "True" in en.transcript("a") and not shell_a.busy,
                 timeout=30, what="Node.connect in a's shell")
        result = en.submit("a", "Node.list()")
        assert result.ok and result.value == "[Atom('b@127.0.0.1')]"
        text = en.transcript("a")
        assert '(a@127.0.0.1)1> Node.connect("b@127.0.0.1")\nTrue\n' in text
        assert "(a@127.0.0.1)2> Node.list()\n[Atom('b@127.0.0.1')]\n" in text
        assert shell_a.prompt == "(a@127.0.0.1)3>"
        assert en.history("a") == ['Node.connect("b@127.0.0.1")', "Node.list()"]
        assert shell_a.history == en.history("a")
        # The shell's state went to the front end over the widget's comm.
        sent = _states_sent(widget_messages, shell_a.comm.comm_id)
        assert any("[Atom('b@127.0.0.1')]" in str(state.get("entries")) for state in sent)
        # The other console shows its own shells; b's shell saw nothing.
        assert "Node.list()" not in es.transcript("a") and en.transcript("b") == ""

        # The drawing: nodeup reached the watchers, both consoles show a -- b.
        for console in (en, es):
            wait_for(lambda console=console: _edges(console.svg()) == [(A, B)],
                     timeout=15, what="the edge a -- b in the drawing")
            drawn = _drawn_nodes(console.svg())
            assert drawn[A] == drawn[B] == "running" and drawn[C] == "not_started"
        assert "3 nodes · 2 running · 1 connection" in en.svg()
        assert "3 nodos · 2 en marcha · 1 conexión" in es.svg()
        assert en.refresh()["edges"] == [(A, B, "visible")]

        # A console opened later attaches to the running nodes; a node started outside
        # the consoles (as %cluster start does) gets a card in each.
        late = Console(lab, nodes=())
        consoles.append(late)
        assert late.names == [A, B]
        wait_for(lambda: _edges(late.svg()) == [(A, B)], timeout=15,
                 what="the late console to draw a -- b")
        lab.start("d")
        D = "d@127.0.0.1"
        wait_for(lambda: all(D in c.names and shown_running(c, D) for c in (en, es, late)),
                 timeout=START_TIMEOUT, what="d's card in every console")
        wait_for(lambda: _drawn_nodes(late.svg()).get(D) == "running", timeout=10,
                 what="d in the drawing")
        assert en.submit("d", "Node.self()").value == "Atom('d@127.0.0.1')"

        # Errors, and output a node prints in the background, in its shell.
        en.submit("b", "1/0")
        assert ["error", "ZeroDivisionError: division by zero"] in en._cards[B].shell.entries
        en.submit("a", "import threading\n"
                       "threading.Timer(0.2, lambda: print('tick from a')).start()")
        wait_for(lambda: ["log", "tick from a"] in shell_a.entries, timeout=10,
                 what="a's background line in its shell")
        # ... without taking it from the lab: %%on and %cluster logs still see it.
        assert "tick from a" in "".join(o.text for o in lab.logs("a"))

        # History is kept across nodes separately, and repeated lines once.
        en.submit("a", "Node.list()")
        assert en.history("a") == ['Node.connect("b@127.0.0.1")', "Node.list()",
                                   "import threading\n"
                                   "threading.Timer(0.2, lambda: print('tick from a')).start()",
                                   "Node.list()"]
        assert en.history("b") == ["1/0"]

        # Ctrl+C in a shell interrupts what the node runs.
        shell_b = en._cards[B].shell
        shell_b._handle_custom_msg({"type": "submit", "code": "import time; "
                                    "print('sleeping', flush=True); time.sleep(60)"}, [])
        wait_for(lambda: shell_b.busy and any("sleeping" in o.text
                                              for o in lab.nodes[B].unseen),
                 timeout=10, what="b's shell to run the command")
        shell_b._handle_custom_msg({"type": "interrupt"}, [])
        wait_for(lambda: "KeyboardInterrupt" in en.transcript("b") and not shell_b.busy,
                 timeout=20, what="the interrupt to stop b's command")
        assert en.submit("b", "21 * 2").value == "42"

        # A frozen node: its status, a shell that waits, the drawing in blue.
        lab.freeze("b")
        wait_for(lambda: en.status("b") == "frozen" and not en._cards[B].shell.enabled,
                 timeout=10, what="b to be frozen")
        assert es.status_text("b") == "congelado" and not en._cards[B].shell.enabled
        assert not en._cards[B].stop.disabled and en._cards[B].start.disabled
        wait_for(lambda: _drawn_nodes(en.svg())[B] == "frozen", timeout=10,
                 what="b drawn frozen")
        assert _edges(en.svg()) == [(A, B)]          # a still counts b in (net_ticktime)
        lab.thaw("b")
        wait_for(lambda: en.status("b") == "running" and en._cards[B].shell.enabled,
                 timeout=10, what="b to thaw")

        # Stop b with its button: a sees nodedown, the line goes.
        en._cards[B].stop.click()
        wait_for(lambda: en.status("b") == "stopped" and not en._cards[B].start.disabled,
                 timeout=30, what="b to stop")
        for console in (en, es):
            wait_for(lambda console=console: _edges(console.svg()) == [],
                     timeout=15, what="the edge to go on nodedown")
        assert es.status_text("b") == "detenido"
        assert not en._cards[B].shell.enabled and not en._cards[B].start.disabled
        wait_for(lambda: _drawn_nodes(en.svg())[B] == "stopped", timeout=10,
                 what="b drawn stopped")
        assert en.submit("a", "Node.list()").value == "[]"

        # Kill a with its button.
        es._cards[A].kill.click()
        wait_for(lambda: es.status("a") == "killed" and _drawn_nodes(es.svg())[A] == "killed",
                 timeout=30, what="a to be killed")
        assert es.status_text("a") == "matado" and en.status_text("a") == "killed"
    finally:
        for console in consoles:
            console.close()
        lab.shutdown()
