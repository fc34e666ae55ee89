"""The `clusterkit` command: shell | node | epmd | dns | doctor.

    clusterkit shell --sname a --cookie secret      # like `iex --sname a --cookie secret`
    clusterkit node --name a@127.0.0.1 --cookie s   # a headless node, until Ctrl-C
    clusterkit epmd [--names | --kill]              # like `epmd`, `epmd -names`, `epmd -kill`
    clusterkit dns --zone FILE --port 5353          # a small authoritative DNS server
    clusterkit doctor                               # checks what trips people up
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading


def _add_node_options(p: argparse.ArgumentParser) -> None:
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--sname", help="short name, like iex --sname a")
    who.add_argument("--name", help="long name, like iex --name a@127.0.0.1")
    p.add_argument("--cookie", help="the magic cookie (default: ~/.erlang.cookie)")
    p.add_argument("--hidden", action="store_true", help="start as a hidden node")
    p.add_argument("--config", help="a sys.config file (kernel section)")
    p.add_argument("--net-ticktime", type=float, default=None)
    p.add_argument("--epmd-port", type=int, default=None)


def _start_node(args) -> str:
    import clusterkit as ck
    from clusterkit.runtime.loop import tune_switch_interval
    tune_switch_interval()      # this process exists to be a node (see loop.py)
    name = args.sname or args.name
    return ck.start(name, cookie=args.cookie, hidden=args.hidden,
                    longnames=bool(args.name), net_ticktime=args.net_ticktime,
                    epmd_port=args.epmd_port, config=args.config)


def cmd_node(args) -> int:
    import clusterkit as ck
    try:
        me = _start_node(args)
    except Exception as exc:
        print(f"clusterkit node: {exc}", file=sys.stderr)
        return 1
    print(f"node {me} is up (distribution port {ck.node().port}); Ctrl-C stops it",
          flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    ck.stop()
    return 0


def cmd_shell(args) -> int:
    try:
        me = _start_node(args)
    except Exception as exc:
        print(f"clusterkit shell: {exc}", file=sys.stderr)
        return 1
    from . import shell
    return shell.run(me)


def cmd_epmd(argv) -> int:
    from .epmd.__main__ import main
    return main(argv)


def cmd_dns(argv) -> int:
    from .dns.__main__ import main
    return main(argv)


def cmd_doctor(args) -> int:
    from . import doctor
    return doctor.main(args)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["epmd"]:
        # epmd has its own parser (shared with `python -m clusterkit.epmd`).
        return cmd_epmd(argv[1:])
    if argv[:1] == ["dns"]:
        return cmd_dns(argv[1:])
    parser = argparse.ArgumentParser(prog="clusterkit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("shell", help="an IPython shell with a node started")
    _add_node_options(p)
    p.set_defaults(func=cmd_shell)
    p = sub.add_parser("node", help="a headless node")
    _add_node_options(p)
    p.set_defaults(func=cmd_node)
    sub.add_parser("epmd", help="run EPMD, or ask it: --names, --kill")
    sub.add_parser("dns", help="a small authoritative DNS server: --zone FILE --port P")
    p = sub.add_parser("doctor", help="check host names, EPMD, cookie and multicast")
    p.add_argument("--epmd-port", type=int, default=None)
    p.set_defaults(func=cmd_doctor)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
