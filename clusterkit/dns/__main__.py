"""`clusterkit dns` (also `python -m clusterkit.dns`): serve zone files.

    clusterkit dns --zone railway.internal.zone --port 5353
    clusterkit dns --zone z.zone --port 5353 --daemon        # detached; prints its pid
    clusterkit dns --zone z.zone --tsig-key ddns:c2VjcmV0   # updates must be signed
"""
from __future__ import annotations

import argparse
import ipaddress
import logging
import sys


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="clusterkit dns", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--zone", action="append", required=True, metavar="FILE",
                   help="a master file; its $ORIGIN, or its name without .zone, names the zone")
    p.add_argument("--port", type=int, default=5353)
    p.add_argument("--address", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument("--allow-update-from", action="append", metavar="NET",
                   help="networks allowed to send UPDATE (default 127.0.0.0/8 and ::1)")
    p.add_argument("--tsig-key", action="append", metavar="[ALG:]NAME:SECRET",
                   help="accept only updates signed with one of these keys")
    p.add_argument("--daemon", action="store_true", help="run detached, like epmd -daemon")
    p.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    from .authority import Policy, keyring_from_text
    from . import server
    policy = Policy()
    try:
        if args.allow_update_from:
            policy.update_from = [ipaddress.ip_network(n, strict=False)
                                  for n in args.allow_update_from]
        if args.tsig_key:
            policy.keyring = keyring_from_text(args.tsig_key)
    except ValueError as exc:
        print(f"clusterkit dns: {exc}", file=sys.stderr)
        return 2
    if args.daemon:
        extra = []
        for n in args.allow_update_from or ():
            extra += ["--allow-update-from", n]
        for k in args.tsig_key or ():
            extra += ["--tsig-key", k]
        try:
            proc = server.spawn(args.zone, args.port, args.address, extra_args=extra)
        except (OSError, TimeoutError) as exc:
            print(f"clusterkit dns: {exc}", file=sys.stderr)
            return 1
        print(f"clusterkit dns running as pid {proc.pid} on {args.address} port {proc.port}")
        return 0
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s clusterkit dns: %(message)s", stream=sys.stderr)
    return server.run(args.zone, args.port, args.address, policy=policy,
                      ready_fd=args.ready_fd)


if __name__ == "__main__":
    sys.exit(main())
