"""Asking a nameserver, and changing records in it, with dnspython.

`Nameserver(("127.0.0.1", 5353))` is the resolver that strategies and `ck.start(...,
resolver=...)` use: UDP first, TCP when the answer is truncated, no search domains,
no system configuration. `add_record` / `delete_record` send RFC 2136 UPDATEs, the way
a service announces itself in Railway's or Heroku's internal DNS.
"""
from __future__ import annotations

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver
import dns.update


class LookupFailed(Exception):
    """A DNS failure; `.reason` is "timeout", "SERVFAIL", "NXDOMAIN", "REFUSED", ..."""

    def __init__(self, name, rdtype, reason):
        super().__init__(f"{name} {rdtype}: {reason}")
        self.reason = reason


def _address(server) -> tuple[str, int]:
    """("127.0.0.1", 5353), "127.0.0.1:5353", "[::1]:5353" or "127.0.0.1" (port 53)."""
    if isinstance(server, str):
        if server.startswith("["):
            host, _, port = server[1:].partition("]")
            port = port.lstrip(":")
        elif server.count(":") == 1:
            host, _, port = server.partition(":")
        else:
            host, port = server, ""
        return (host, int(port) if port else 53)
    host, port = server
    return (str(host), int(port))


class Nameserver:
    """One nameserver, asked directly (no recursion wanted: ours is authoritative)."""

    def __init__(self, server, timeout: float = 2.0):
        self.host, self.port = _address(server)
        self.timeout = timeout

    def __repr__(self):
        return f"Nameserver(({self.host!r}, {self.port}))"

    def query(self, name: str, rdtype: str) -> list:
        """The rdatas of `name`'s `rdtype` records, after any CNAME; [] when the name
        exists without that type. LookupFailed for timeouts and error codes."""
        qname = dns.name.from_text(name)
        request = dns.message.make_query(qname, rdtype)
        try:
            reply = dns.query.udp(request, self.host, port=self.port, timeout=self.timeout)
            if reply.flags & dns.flags.TC:
                reply = dns.query.tcp(request, self.host, port=self.port, timeout=self.timeout)
        except dns.exception.Timeout:
            raise LookupFailed(name, rdtype, "timeout") from None
        except (OSError, dns.exception.DNSException) as exc:
            raise LookupFailed(name, rdtype, f"{type(exc).__name__}: {exc}") from None
        rcode = reply.rcode()
        if rcode != dns.rcode.NOERROR:
            raise LookupFailed(name, rdtype, dns.rcode.to_text(rcode))
        want = dns.rdatatype.from_text(rdtype)
        out = []
        for rrset in reply.answer:
            if rrset.rdtype == want:
                out.extend(rrset)
        return out

    def addresses(self, name: str) -> list[str]:
        """A then AAAA, as libcluster's DNSPoll asks; the first failure is raised only
        when both fail."""
        found, errors = [], []
        for rdtype in ("A", "AAAA"):
            try:
                found += [r.address for r in self.query(name, rdtype)]
            except LookupFailed as exc:
                errors.append(exc)
        if len(errors) == 2:
            raise errors[0]
        return found

    def __call__(self, host: str) -> list[str]:
        return self.addresses(host)


def lookup(server, name: str, rdtype: str = "A") -> list[str]:
    """Text of each answer, sorted: `lookup(("127.0.0.1", 5353), "app.local", "A")`."""
    return sorted(r.to_text() for r in Nameserver(server).query(name, rdtype))


def _send(server, update, timeout=2.0) -> None:
    host, port = _address(server)
    reply = dns.query.tcp(update, host, port=port, timeout=timeout)
    if reply.rcode() != dns.rcode.NOERROR:
        raise LookupFailed(str(update.zone[0].name), "UPDATE", dns.rcode.to_text(reply.rcode()))


def add_record(server, zone: str, name: str, rdtype: str, value: str, ttl: int = 5, *,
               keyring=None) -> None:
    """Like `nsupdate`'s `update add NAME TTL TYPE VALUE`; names are relative to zone
    unless they end with a dot."""
    update = dns.update.UpdateMessage(zone, keyring=keyring)
    update.add(name, ttl, rdtype, value)
    _send(server, update)


def delete_record(server, zone: str, name: str, rdtype: str | None = None,
                  value: str | None = None, *, keyring=None) -> None:
    """`update delete NAME [TYPE [VALUE]]`."""
    update = dns.update.UpdateMessage(zone, keyring=keyring)
    if rdtype is None:
        update.delete(name)
    elif value is None:
        update.delete(name, rdtype)
    else:
        update.delete(name, rdtype, value)
    _send(server, update)


class SystemResolver(Nameserver):
    """The machine's resolvers (/etc/resolv.conf), as libcluster's `:inet_res` uses them."""

    def __init__(self, timeout: float = 2.0):
        self.timeout = timeout
        self.host, self.port = "system", 53

    def __repr__(self):
        return "SystemResolver()"

    def query(self, name: str, rdtype: str) -> list:
        try:
            res = dns.resolver.Resolver()
            res.lifetime = self.timeout
            return list(res.resolve(name, rdtype, search=False))
        except dns.resolver.NoAnswer:
            return []
        except dns.resolver.NXDOMAIN:
            raise LookupFailed(name, rdtype, "NXDOMAIN") from None
        except dns.exception.Timeout:
            raise LookupFailed(name, rdtype, "timeout") from None
        except dns.exception.DNSException as exc:
            raise LookupFailed(name, rdtype, type(exc).__name__) from None


ENV = "CLUSTERKIT_RESOLVER"     # "127.0.0.1:5353": the nameserver the lab's kernels use


def resolver_from(value=None):
    """A resolver from a config value: None (CLUSTERKIT_RESOLVER, else the system's), an
    address ("127.0.0.1:5353" or ("127.0.0.1", 5353)), or a Nameserver. ValueError if not."""
    import os
    if value is None:
        value = os.environ.get(ENV) or None
        if value is None:
            return SystemResolver()
    if isinstance(value, Nameserver):
        return value
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return Nameserver(tuple(value))
    if isinstance(value, str) and value:
        try:
            return Nameserver(value)
        except ValueError:
            pass
    raise ValueError(f"a resolver is a nameserver address like ('127.0.0.1', 5353) or "
                     f"'127.0.0.1:5353', or a function from the query to a list of "
                     f"addresses; not {value!r}")
