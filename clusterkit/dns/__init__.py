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
from .authority import Authority, Policy, ZoneError, keyring_from_text, load_zone
from .client import (LookupFailed, Nameserver, SystemResolver, add_record, delete_record,
                     lookup, resolver_from)
from .server import DnsServer, ServerThread, spawn

__all__ = ["Authority", "DnsServer", "LookupFailed", "Nameserver", "SystemResolver", "resolver_from", "Policy", "ServerThread", "ZoneError",
           "add_record", "delete_record", "keyring_from_text", "load_zone", "lookup", "spawn"]
