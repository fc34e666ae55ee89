"""`%cluster` and `%%on`: thin IPython magics over one shared `Lab` (ipyparallel's style).

    %cluster start a b c --cookie secret_token
    %cluster start a b c --topology epmd          # discovery starts with each node
    %cluster start a b c --topology gossip --secret s --topology-config port=45893
    %cluster start b --sys-config sys.config      # ck.start(..., config="sys.config")
    %cluster stop|kill|freeze|thaw b
    %cluster status
    %cluster logs a
    %cluster wait a "nodeup"          # wait (with a deadline) until a prints that

    %%on a b
    Node.list()
"""
from __future__ import annotations

import ast
import atexit
import os
import sys

from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from .core import Lab, LabError, Output, RunResult

_lab: Lab | None = None


def shared_lab(create: bool = True) -> Lab | None:
    global _lab
    if _lab is None and create:
        _lab = Lab()
        atexit.register(_lab.shutdown)
    return _lab


def show(result: RunResult, file=None) -> None:
    """Print a node's outputs under its prompt; an error is that node's, not the cell's."""
    out = file or sys.stdout
    print(f"({result.node})", file=out, flush=True)
    _print_items(result.backlog, out)
    _print_items(result.outputs, out)


def _print_items(items: list[Output], out) -> None:
    for item in items:
        stream = sys.stderr if item.kind in ("stderr", "error") and out is sys.stdout else out
        stream.write(item.text)
        stream.flush()
    out.flush()


def _key_values(items: list[str]) -> dict:
    """KEY=VALUE pairs; a VALUE that reads as a Python literal (5000, [..]) is one."""
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise LabError(f"--topology-config takes KEY=VALUE, not {item!r}")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


@magics_class
class ClusterMagics(Magics):
    @property
    def lab(self) -> Lab:
        return shared_lab()

    @magic_arguments()
    @argument("action", choices=["start", "stop", "kill", "freeze", "thaw", "status", "logs",
                                 "wait", "shutdown"])
    @argument("nodes", nargs="*", help="node names: a, or a@127.0.0.1")
    @argument("--cookie", default=None, help="the cookie for the nodes started")
    @argument("--hidden", action="store_true", help="start hidden nodes")
    @argument("--net-ticktime", type=float, default=None)
    @argument("--sys-config", default=None, help="a sys.config for ck.start(config=...)")
    @argument("--topology", default=None,
              help="a ck.cluster strategy each node starts with: epmd, local_epmd, ...")
    @argument("--topology-config", action="append", default=[], metavar="KEY=VALUE",
              help="a config key of that strategy (repeat for more)")
    @argument("--secret", default=None, help="short for --topology-config secret=...")
    @argument("--timeout", type=float, default=10.0, help="for wait: seconds")
    @line_magic
    def cluster(self, line: str):
        """Start, stop and inspect the lab's node kernels."""
        args = parse_argstring(self.cluster, line)
        lab = self.lab
        try:
            if args.action == "start":
                options = {}
                if args.hidden:
                    options["hidden"] = True
                if args.net_ticktime is not None:
                    options["net_ticktime"] = args.net_ticktime
                if args.sys_config is not None:
                    # The kernels' working directory need not be the notebook's.
                    options["config"] = os.path.abspath(args.sys_config)
                topology_config = _key_values(args.topology_config)
                if args.secret is not None:
                    topology_config["secret"] = args.secret
                if args.topology is not None:
                    options["topology"] = args.topology
                    options["topology_config"] = topology_config
                elif topology_config:
                    raise LabError("--topology-config and --secret need --topology")
                started = lab.start(*args.nodes, cookie=args.cookie, **options)
                for name in started:
                    print(f"started {name}")
            elif args.action in ("stop", "kill", "freeze", "thaw"):
                for name in args.nodes:
                    getattr(lab, args.action)(name)
                    print(f"{args.action} {lab.node(name).name}: {lab.node(name).state}")
            elif args.action == "status":
                self._status()
            elif args.action == "logs":
                for name in args.nodes or list(lab.nodes):
                    print(f"({lab.node(name).name})", flush=True)
                    _print_items(lab.logs(name), sys.stdout)
            elif args.action == "wait":
                if len(args.nodes) != 2:
                    raise LabError('%cluster wait takes a node and a text: '
                                   '%cluster wait a "nodeup"')
                name, text = args.nodes
                print(lab.wait_for_output(name, text.strip("\"'"), args.timeout))
            elif args.action == "shutdown":
                lab.shutdown()
                print("all node kernels stopped")
        except LabError as exc:
            print(f"clusterkit lab: {exc}", file=sys.stderr)

    def _status(self) -> None:
        lab = self.lab
        if not lab.nodes:
            print("no nodes yet: %cluster start a b")
            return
        for info in lab.status():
            print(f"{info['node']:<24} {info['state']}")
        print("\nTo open a console on a node kernel, run in a terminal:")
        for info in lab.status():
            if info["state"] in ("running", "frozen"):
                print(f"  jupyter console --existing {info['connection_file']}")

    @magic_arguments()
    @argument("nodes", nargs="+", help="the nodes to run the cell on: a b")
    @argument("--timeout", type=float, default=60.0)
    @cell_magic
    def on(self, line: str, cell: str):
        """Run this cell on the named nodes and show what each printed."""
        args = parse_argstring(self.on, line)
        for name in args.nodes:
            try:
                result = self.lab.run(name, cell, timeout=args.timeout)
            except LabError as exc:
                print(f"clusterkit lab: {exc}", file=sys.stderr)
                continue
            show(result)
