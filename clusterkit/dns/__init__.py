"""A small authoritative DNS server for one-machine lessons, on dnspython.

`authority.py` is the answer logic, sans-I/O (a packet in, a packet out); `server.py`
serves it over asyncio UDP and TCP; `client.py` is what nodes and strategies use to
ask it and to add or remove their own records (RFC 2136 UPDATE, like `nsupdate`).

    clusterkit dns --zone railway.internal.zone --port 5353

Contract:
May import: dnspython, the standard library.
Imported by: `clusterkit.api`, `clusterkit.cluster`, `clusterkit.lab`, `clusterkit.cli`.
Never imports the runtime or anything above it.

What it does not do: recursion or forwarding (other names are REFUSED), zone transfers
(AXFR/IXFR), DNSSEC, NOTIFY, wildcards, or a journal (a SIGHUP reload or a restart
forgets dynamic updates).
"""
import importlib

# Loaded on first use: `from clusterkit.dns import hosts`, which every node start does,
# must not pay for dnspython.
_EXPORTS = {
    "Authority": "authority", "Policy": "authority", "ZoneError": "authority",
    "keyring_from_text": "authority", "load_zone": "authority",
    "LookupFailed": "client", "Nameserver": "client", "SystemResolver": "client",
    "add_record": "client", "delete_record": "client", "lookup": "client",
    "resolver_from": "client",
    "DnsServer": "server", "ServerThread": "server", "spawn": "server",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'clusterkit.dns' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
