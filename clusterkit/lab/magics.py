"""`%cluster` and `%%on`: thin IPython magics over one shared `Lab` (ipyparallel's style).

    %cluster start a b c --cookie secret_token
    %cluster stop|kill|freeze|thaw b
    %cluster status
    %cluster logs a
    %cluster wait a "nodeup"          # wait (with a deadline) until a prints that

    %%on a b
    Node.list()
"""
from __future__ import annotations

import atexit
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
    @argument("--elixir", action="store_true", help="start real Elixir nodes (elixir)")
    @argument("--erlang", action="store_true", help="start real Erlang nodes (erl)")
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
                if args.elixir or args.erlang:
                    options["beam"] = "elixir" if args.elixir else "erlang"
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
                node = lab.node(info["node"])
                if getattr(node, "beam", False):        # a real node: a remote shell
                    print(f"  {node.remote_shell()}")
                else:
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
