"""Host parts of node names, resolved through a chosen nameserver.

`ck.start(..., resolver=("127.0.0.1", 5353))` (or CLUSTERKIT_RESOLVER) makes a node
named `convoy@convoy2.railway.internal` reachable: the runtime calls `resolve_host`
before it asks EPMD and dials. Names the nameserver does not know fall back to the
system's resolver, so `localhost`-style names keep working. `listen_address` picks
where a node listens: a loopback host listens there only, as Erlang does with
`inet_dist_use_interface`.
"""
from __future__ import annotations

import ipaddress
import os

from .client import ENV, LookupFailed, resolver_from


def _literal(host: str):
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def host_resolver(resolver=None):
    """A blocking host -> address function, or None when no nameserver is chosen."""
    if resolver is None and not os.environ.get(ENV):
        return None
    if callable(resolver) and not hasattr(resolver, "addresses"):
        fn = resolver
    else:
        ns = resolver_from(resolver)
        fn = ns.addresses

    def resolve(host: str) -> str:
        if _literal(host) is not None:
            return host
        try:
            found = sorted(str(a) for a in fn(host))
        except LookupFailed:
            found = []
        except Exception as exc:       # a resolver function that failed
            raise OSError(f"resolving {host}: {exc}") from None
        v4 = [a for a in found if ":" not in a]
        return (v4 or found or [host])[0]
    return resolve


def listen_address(host: str, resolve=None) -> str:
    """Where a node named ...@host listens: host's address when it is loopback (one
    loopback address per node), else every interface."""
    address = host
    if _literal(host) is None and resolve is not None:
        try:
            address = resolve(host)
        except OSError:
            address = host
    ip = _literal(address)
    if ip is not None and ip.is_loopback:
        return str(ip)
    if host in ("localhost",):
        return "127.0.0.1"
    return "0.0.0.0"


def epmd_host(listen: str) -> str:
    """The EPMD to register with: the node's own 127.x address, else 127.0.0.1."""
    ip = _literal(listen)
    if ip is not None and ip.version == 4 and ip.is_loopback:
        return str(ip)
    return "127.0.0.1"


def inetrc(server) -> str:
    """The `inetrc` text that makes a real `erl` resolve through the kit's nameserver
    (`erl -kernel inetrc '"FILE"'`). `{resolv_conf, []}` matters: without it, Erlang
    reloads /etc/resolv.conf and its nameservers replace this one."""
    from .client import _address
    host, port = _address(server)
    ip = ipaddress.ip_address(host)
    if ip.version == 4:
        erl_ip = "{" + ",".join(str(b) for b in ip.packed) + "}"
    else:
        erl_ip = "{" + ",".join(str(int.from_bytes(ip.packed[i:i + 2], "big"))
                                for i in range(0, 16, 2)) + "}"
    return (f"{{lookup, [file, dns]}}.\n{{resolv_conf, []}}.\n"
            f"{{nameserver, {erl_ip}, {port}}}.\n")
