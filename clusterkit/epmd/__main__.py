"""`clusterkit epmd`: run the daemon, or talk to any EPMD like `epmd` does.

    clusterkit epmd                 the daemon, in the foreground (Ctrl-C stops it)
    clusterkit epmd --daemon        the daemon, detached, like `epmd -daemon`
    clusterkit epmd --names         like `epmd -names`
    clusterkit epmd --kill          like `epmd -kill`

--names and --kill print what `epmd -names` / `epmd -kill` print, word for word,
and exit with the same status, so lessons can show either.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

from .client import EpmdNoReply, EpmdUnavailable, default_port, kill_sync, names_sync
from .protocol import EpmdError, ProtocolError


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="clusterkit epmd",
        description="clusterkit's Erlang Port Mapper Daemon, and a client for any EPMD.")
    ap.add_argument("--port", type=int, default=None,
                    help="EPMD port (default: ERL_EPMD_PORT, else 4369)")
    # Like Erlang's epmd, ERL_EPMD_ADDRESS gives the default (so a lab can keep to loopback).
    ap.add_argument("--address", default=os.environ.get("ERL_EPMD_ADDRESS") or None,
                    help="comma-separated IP addresses to listen on; loopback is always "
                         "added (default: ERL_EPMD_ADDRESS, else every interface)")
    ap.add_argument("--daemon", action="store_true",
                    help="run detached from the terminal, like `epmd -daemon`")
    ap.add_argument("--relaxed-command-check", action="store_true",
                    help="like `epmd -relaxed_command_check`: allow --kill while nodes "
                         "are registered, and STOP requests")
    # Internal: ensure_running's pipe, told whether this daemon got the port.
    ap.add_argument("--ready-fd", type=int, default=None, help=argparse.SUPPRESS)
    what = ap.add_mutually_exclusive_group()
    what.add_argument("--names", action="store_true", help="list registered names, like `epmd -names`")
    what.add_argument("--kill", action="store_true", help="stop the EPMD, like `epmd -kill`")
    return ap


def _print_names(port: int) -> int:
    # The texts, streams and statuses of `epmd -names` (OTP 25).
    try:
        reply = names_sync("127.0.0.1", port)
    except (EpmdNoReply, ProtocolError):
        print("epmd: no response from local epmd")
        return 1
    except EpmdUnavailable:
        print("epmd: Cannot connect to local epmd", file=sys.stderr)
        return 1
    out = [f"epmd: up and running on port {reply.port} with data:\n"]
    out += [f"name {name} at port {node_port}\n" for name, node_port in reply.nodes]
    sys.stdout.write("".join(out))
    sys.stdout.flush()
    return 0


def _kill(port: int) -> int:
    # The texts, streams and statuses of `epmd -kill` (OTP 25).
    try:
        answer = kill_sync("127.0.0.1", port)
    except EpmdNoReply:
        print("epmd: failed to read answer from local epmd")
        return 1
    except EpmdUnavailable:
        print("epmd: Cannot connect to local epmd", file=sys.stderr)
        return 1
    if answer == "OK":
        print("Killed")
        return 0
    if len(answer) == 2:
        print("Killing not allowed - living nodes in database.")
        return 1
    # epmd shows an empty answer for a reply cut short (measured with 0 and 1 byte).
    print("epmd: local epmd responded with <>")
    return 1


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        port = default_port() if args.port is None else args.port
    except EpmdError as err:
        print(f"clusterkit epmd: {err}", file=sys.stderr)
        return 2
    if args.names:
        return _print_names(port)
    if args.kill:
        return _kill(port)

    from .daemon import run  # only the daemon needs the server side

    relaxed = args.relaxed_command_check or bool(os.environ.get("ERL_EPMD_RELAXED_COMMAND_CHECK"))
    logger = logging.getLogger("clusterkit.epmd")
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("clusterkit epmd: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    return run(port, args.address, relaxed=relaxed, daemon=args.daemon, ready_fd=args.ready_fd)


if __name__ == "__main__":
    sys.exit(main())
