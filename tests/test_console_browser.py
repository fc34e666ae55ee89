"""The console in a real JupyterLab, driven by headless Chromium (Playwright).

Needs Debian's chromium (`apt-get install -y --no-install-recommends chromium`) and the
`playwright` Python package; without them the test is skipped with the reason. Only
loopback is used. A screenshot of the console is saved to test-artifacts/console.png.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from conftest import free_port, wait_for

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
TOKEN = "clusterkit-console-test"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic", "--disable-dev-shm-usage"]
A, B = "a@127.0.0.1", "b@127.0.0.1"

try:
    from playwright.sync_api import expect, sync_playwright
    HAVE_PLAYWRIGHT = True
except ImportError:
    HAVE_PLAYWRIGHT = False

pytestmark = [
    pytest.mark.skipif(not os.path.exists(CHROMIUM),
                       reason=f"{CHROMIUM} not found: install Debian's chromium with "
                              "`apt-get install -y --no-install-recommends chromium`"),
    pytest.mark.skipif(not HAVE_PLAYWRIGHT,
                       reason="the playwright Python package is not installed "
                              "(`pip install playwright`; no browser download is needed)"),
]

NOTEBOOK = {
    "cells": [{
        "cell_type": "code", "execution_count": None, "id": "console", "metadata": {},
        "outputs": [],
        "source": ["from clusterkit.lab import Lab\n", "lab = Lab()\n", "lab.console()"],
    }],
    "metadata": {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python",
                       "name": "python3"},
        "language_info": {"name": "python"},
    },
    "nbformat": 4, "nbformat_minor": 5,
}


def _server_up(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={TOKEN}",
                                    timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _processes_with_env(name: str, value: str) -> list[int]:
    """Pids whose environment has name=value (this test's own EPMD port)."""
    wanted = f"{name}={value}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if wanted in f.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:
            pass
    return found


@pytest.fixture
def jupyterlab(tmp_path, procs, clusterkit_epmd):
    """JupyterLab on a free loopback port, on a folder with the console notebook."""
    root = tmp_path / "notebooks"
    root.mkdir()
    (root / "console.ipynb").write_text(json.dumps(NOTEBOOK))
    settings = tmp_path / "lab-settings"
    notification = settings / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    # No news or update checks: nothing from outside, and no pop-up over the page.
    (notification / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    port = free_port()
    env = {"JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime"),
           "ERL_EPMD_PORT": str(clusterkit_epmd), "PYTHONUNBUFFERED": "1"}
    log = open(tmp_path / "jupyterlab.log", "wb")
    server = procs.start(
        [str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser", "--allow-root",
         "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         "--ServerApp.port_retries=0", f"--ServerApp.token={TOKEN}",
         f"--ServerApp.root_dir={root}", f"--LabApp.user_settings_dir={settings}",
         f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}"],
        env=env, stdout=log, stderr=subprocess.STDOUT, stdin=None)
    try:
        wait_for(lambda: server.poll() is not None or _server_up(port), timeout=90,
                 interval=0.2, what="JupyterLab to answer")
        if server.poll() is not None:
            raise AssertionError("JupyterLab exited:\n" +
                                 (tmp_path / "jupyterlab.log").read_text()[-3000:])
        yield f"http://127.0.0.1:{port}/lab/tree/console.ipynb?token={TOKEN}"
    finally:
        # A clean stop first: the server shuts its kernels down, and the lab's node
        # kernels follow their lab kernel (its watchdog).
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except Exception:
                pass
        # Then make sure: nothing started for this test's EPMD port may outlive it.
        ours = {os.getpid()} | {p.pid for p in procs.procs if p is not server}
        try:
            wait_for(lambda: not (set(_processes_with_env("ERL_EPMD_PORT",
                                                          str(clusterkit_epmd))) - ours),
                     timeout=15, interval=0.2, what="kernels to exit")
        except AssertionError:
            for pid in set(_processes_with_env("ERL_EPMD_PORT", str(clusterkit_epmd))) - ours:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        log.close()


def test_console_in_jupyterlab(jupyterlab):
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            page.set_default_timeout(60_000)
            try:
                _drive(page, jupyterlab)
            except Exception:
                page.screenshot(path=str(ARTIFACTS / "console-failure.png"))
                raise
        finally:
            browser.close()


def _drive(page, url: str) -> None:
    page.goto(url)
    editor = page.locator(".jp-Notebook .jp-Cell .cm-content").first
    editor.wait_for(state="visible", timeout=120_000)
    # Wait until the notebook's kernel is connected and idle, then run the cell.
    expect(page.locator(".jp-StatusBar-Widget", has_text="| Idle").first).to_be_visible(
        timeout=120_000)
    editor.click()
    page.keyboard.press("Shift+Enter")
    expect(page.locator(".jp-Notebook .jp-Cell .jp-InputPrompt").first).not_to_have_text(
        "[ ]:", timeout=30_000)
    console = page.locator(".ck-console")
    console.wait_for(state="visible", timeout=120_000)

    card_a, card_b = page.locator(".ck-node-a"), page.locator(".ck-node-b")
    expect(card_a.locator(".ck-status")).to_have_attribute("data-state", "not_started")
    expect(card_a.locator(".ck-status")).to_have_text("not started")

    # Start a and b with their buttons.
    card_a.locator("button.ck-start").click()
    card_b.locator("button.ck-start").click()
    for card in (card_a, card_b):
        expect(card.locator(".ck-status")).to_have_attribute("data-state", "running",
                                                             timeout=120_000)
        expect(card.locator(".ck-status")).to_have_text("running")
        expect(card.locator("button.ck-start")).to_be_disabled()
        expect(card.locator("button.ck-stop")).to_be_enabled()

    # Type in a's shell, key by key, as a learner does (letters such as a and b are
    # also notebook shortcuts: they must stay in the shell).
    cells = page.locator(".jp-Notebook .jp-Cell")
    cell_count = cells.count()
    shell = card_a.locator("input.ck-shell-input")
    output = card_a.locator(".ck-shell-out")
    expect(shell).to_be_enabled()
    shell.click()
    shell.press_sequentially('Node.connect("b@127.0.0.1")')
    shell.press("Enter")
    expect(output).to_contain_text('(a@127.0.0.1)1> Node.connect("b@127.0.0.1")')
    expect(output.locator(".ck-out-result").first).to_have_text("True", timeout=30_000)
    expect(shell).to_have_value("")
    shell.press_sequentially("Node.list()")
    shell.press("Enter")
    expect(output.locator(".ck-out-result").nth(1)).to_have_text("[Atom('b@127.0.0.1')]",
                                                                 timeout=30_000)
    expect(card_a.locator(".ck-shell-prompt")).to_have_text("(a@127.0.0.1)3>")

    # History: up, up, down, down (back to the empty line being typed).
    shell.press("ArrowUp")
    expect(shell).to_have_value("Node.list()")
    shell.press("ArrowUp")
    expect(shell).to_have_value('Node.connect("b@127.0.0.1")')
    shell.press("ArrowDown")
    expect(shell).to_have_value("Node.list()")
    shell.press("ArrowDown")
    expect(shell).to_have_value("")
    # The keys stayed in the shell: no cell was added or moved.
    expect(cells).to_have_count(cell_count)

    # The drawing: both nodes running and one line between a and b.
    drawing = console.locator(".ck-map svg")
    expect(drawing.locator(f'g.ck-node[data-node="{A}"]')).to_have_attribute(
        "data-state", "running")
    expect(drawing.locator(f'g.ck-node[data-node="{B}"]')).to_have_attribute(
        "data-state", "running")
    expect(drawing.locator(f'line.ck-edge[data-a="{A}"][data-b="{B}"]')).to_have_count(
        1, timeout=30_000)
    expect(drawing.locator("line.ck-edge")).to_have_count(1)
    expect(drawing.locator(".ck-summary")).to_have_text("3 nodes · 2 running · 1 connection")

    console.scroll_into_view_if_needed()
    console.screenshot(path=str(ARTIFACTS / "console.png"))

    # The same lab in Spanish: a second console, in the next cell, sees the same nodes.
    next_cell = cells.nth(1).locator(".cm-content")
    next_cell.click()
    page.keyboard.insert_text('lab.console(lang="es")')
    page.keyboard.press("Shift+Enter")
    spanish = page.locator(".ck-console.ck-lang-es")
    spanish.wait_for(state="visible", timeout=60_000)
    for node in ("a", "b"):
        status = spanish.locator(f".ck-node-{node} .ck-status")
        expect(status).to_have_attribute("data-state", "running")
        expect(status).to_have_text("en marcha")
    expect(spanish.locator(".ck-node-c .ck-status")).to_have_text("sin arrancar")
    expect(spanish.locator(".ck-node-c button.ck-start")).to_have_text("Arrancar")
    expect(spanish.locator(".ck-map svg .ck-summary")).to_have_text(
        "3 nodos · 2 en marcha · 1 conexión", timeout=30_000)
    spanish.scroll_into_view_if_needed()
    spanish.screenshot(path=str(ARTIFACTS / "console-es.png"))

    # A node started from a cell (not from a button) gets a card in both consoles:
    # widgets made on the lab's own thread reach the page too.
    cells.nth(2).locator(".cm-content").click()
    page.keyboard.insert_text('lab.start("d")')
    page.keyboard.press("Shift+Enter")
    for lang in ("en", "es"):
        expect(page.locator(f".ck-lang-{lang} .ck-node-d .ck-status")).to_have_attribute(
            "data-state", "running", timeout=120_000)
        expect(page.locator(f'.ck-lang-{lang} .ck-map svg g.ck-node[data-node="d@127.0.0.1"]')
               ).to_have_attribute("data-state", "running")

    # Nothing was printed into the cells (the console's background work only sets
    # widget values).
    expect(page.locator(".jp-Notebook .jp-OutputArea-output"
                        "[data-mime-type='application/vnd.jupyter.stderr']")).to_have_count(0)
