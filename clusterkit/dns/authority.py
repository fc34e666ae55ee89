"""The answer logic of clusterkit's DNS server, sans-I/O: bytes in, bytes (or nothing) out.

`Authority` holds zones in memory (dnspython `dns.zone.Zone` objects) and turns one
request packet into one reply packet. It answers only for its own zones (REFUSED
otherwise), never recurses, truncates UDP replies (TC) that do not fit, and applies
RFC 2136 UPDATE messages from peers it allows (loopback by default, TSIG when keys
are configured). No sockets, no threads: the server in `server.py` moves the bytes.
"""
from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdataset
import dns.rdtypes.ANY.PTR
import dns.reversename
import dns.rrset
import dns.tsig
import dns.tsigkeyring
import dns.zone

log = logging.getLogger("clusterkit.dns")

A, AAAA, CNAME, PTR, SRV, SOA, NS, ANY = (dns.rdatatype.A, dns.rdatatype.AAAA,
                                          dns.rdatatype.CNAME, dns.rdatatype.PTR,
                                          dns.rdatatype.SRV, dns.rdatatype.SOA,
                                          dns.rdatatype.NS, dns.rdatatype.ANY)
IN = dns.rdataclass.IN
UDP_MIN = 512           # the payload every resolver accepts (RFC 1035)
UDP_MAX = 4096          # we never promise more over UDP, whatever EDNS asks
CNAME_DEPTH = 8         # a chain this long is a loop


class ZoneError(ValueError):
    """A zone file that cannot be read; the message names the file and the line."""


@dataclass
class Policy:
    """Who may send UPDATE messages."""
    update_from: list = field(default_factory=lambda: [ipaddress.ip_network("127.0.0.0/8"),
                                                        ipaddress.ip_network("::1/128")])
    keyring: dict | None = None     # name -> dns.tsig.Key; with keys, updates must be signed

    def allows(self, peer_ip: str | None) -> bool:
        if peer_ip is None:
            return False
        try:
            ip = ipaddress.ip_address(peer_ip.split("%")[0])
        except ValueError:
            return False
        if getattr(ip, "ipv4_mapped", None):
            ip = ip.ipv4_mapped
        return any(ip in net for net in self.update_from)


def keyring_from_text(specs) -> dict:
    """`["name:base64secret", "hmac-sha256:name:secret"]` -> a dnspython keyring."""
    ring = {}
    for spec in specs:
        parts = spec.split(":")
        if len(parts) == 2:
            algorithm, (name, secret) = dns.tsig.default_algorithm, parts
        elif len(parts) == 3:
            algorithm, name, secret = parts
        else:
            raise ValueError(f"TSIG key {spec!r}: expected NAME:SECRET or ALGORITHM:NAME:SECRET")
        try:
            key = dns.tsig.Key(name, secret, algorithm)
        except Exception as exc:   # binascii.Error, dns.name errors: say which key
            raise ValueError(f"TSIG key {name!r}: {exc}") from None
        ring[key.name] = key
    return ring


def load_zone(path, origin=None) -> dns.zone.Zone:
    """A master file; its origin is `origin`, else its $ORIGIN, else its file name
    without a `.zone`/`.db` ending (how BIND's configurations usually name them)."""
    path = Path(path)
    text = path.read_text()
    if origin is None and "$ORIGIN" not in text.upper():
        stem = path.name
        for end in (".zone", ".db"):
            if stem.endswith(end):
                stem = stem[: -len(end)]
        origin = stem
    try:
        return dns.zone.from_file(str(path), origin=origin, relativize=False,
                                  filename=str(path))
    except dns.exception.DNSException as exc:
        text = str(exc)       # dnspython's syntax errors already say "file:line: ..."
        raise ZoneError(text if str(path) in text else f"{path}: {text}") from None


def _reverse_ip(name: dns.name.Name) -> str | None:
    try:
        return dns.reversename.to_address(name)
    except Exception:
        return None


class Authority:
    """The zones and the rules. `handle(wire, peer_ip, tcp)` -> reply bytes or None."""

    def __init__(self, zones=(), policy: Policy | None = None, *, synth_ptr: bool = True):
        self.zones: dict[dns.name.Name, dns.zone.Zone] = {}
        self.policy = policy or Policy()
        # Like the internal DNS of Docker, Railway or Kubernetes: an address that one of
        # our A/AAAA records names answers PTR with that record's name.
        self.synth_ptr = synth_ptr
        for zone in zones:
            self.add_zone(zone)

    # --- zones ------------------------------------------------------------------
    def add_zone(self, zone: dns.zone.Zone) -> None:
        self.zones[zone.origin] = zone

    def zone_for(self, name: dns.name.Name) -> dns.zone.Zone | None:
        best = None
        for origin, zone in self.zones.items():
            if name.is_subdomain(origin) and (best is None or len(origin) > len(best.origin)):
                best = zone
        return best

    def records(self) -> list[str]:
        """Every record, one master-file line each, sorted (for lessons and tests)."""
        lines = []
        for zone in self.zones.values():
            for name, node in zone.nodes.items():
                for rdataset in node.rdatasets:
                    for rdata in rdataset:
                        lines.append(f"{name} {rdataset.ttl} "
                                     f"{dns.rdatatype.to_text(rdataset.rdtype)} {rdata}")
        return sorted(lines)

    # --- packets ----------------------------------------------------------------
    def handle(self, wire: bytes, peer_ip: str | None = None, tcp: bool = False) -> bytes | None:
        """One request in, one reply out; None means drop it (too short to answer)."""
        try:
            query = dns.message.from_wire(wire, keyring=self.policy.keyring or None)
        except (dns.message.UnknownTSIGKey, dns.tsig.PeerError, dns.tsig.BadSignature,
                dns.tsig.BadTime) as exc:
            log.warning("TSIG check failed from %s: %s", peer_ip, exc or type(exc).__name__)
            return _header_reply(wire, dns.rcode.NOTAUTH)
        except Exception as exc:   # any parse failure: one line, then FORMERR or drop
            log.warning("malformed DNS packet from %s (%d bytes): %s", peer_ip, len(wire),
                        exc or type(exc).__name__)
            return _header_reply(wire, dns.rcode.FORMERR)
        if query.flags & dns.flags.QR:
            log.warning("dropped a DNS response sent to the server from %s", peer_ip)
            return None
        try:
            opcode = query.opcode()
            if opcode == dns.opcode.QUERY:
                reply = self._query(query)
            elif opcode == dns.opcode.UPDATE:
                reply = self._update(query, peer_ip)
            else:
                reply = _response(query, dns.rcode.NOTIMP)
            return self._render(query, reply, tcp)
        except Exception as exc:     # a bug must cost one answer, not the server
            log.error("cannot answer %s from %s: %s", query.question, peer_ip, exc)
            return _header_reply(wire, dns.rcode.SERVFAIL)

    def _render(self, query, reply, tcp: bool) -> bytes:
        if tcp:
            return reply.to_wire(max_size=65535, want_shuffle=False)
        limit = UDP_MIN
        if query.edns >= 0:
            limit = max(UDP_MIN, min(query.payload, UDP_MAX))
        # No shuffling: the same answer in the same order on every run, for lessons.
        return reply.to_wire(max_size=limit, prefer_truncation=True, want_shuffle=False)

    # --- QUERY ------------------------------------------------------------------
    def _query(self, query) -> dns.message.Message:
        if len(query.question) != 1:
            return _response(query, dns.rcode.FORMERR)
        q = query.question[0]
        reply = _response(query)
        if q.rdclass not in (IN, dns.rdataclass.ANY):
            reply.set_rcode(dns.rcode.REFUSED)
            return reply
        zone = self.zone_for(q.name)
        if zone is None:
            if q.rdtype in (PTR, ANY) and self.synth_ptr and self._synth_ptr(q.name, reply):
                reply.flags |= dns.flags.AA
                return reply
            reply.set_rcode(dns.rcode.REFUSED)      # not ours: no recursion, ever
            return reply
        reply.flags |= dns.flags.AA
        name, seen = q.name, 0
        while True:
            node = zone.get_node(name)
            if node is None or len(node) == 0:      # a deleted name leaves an empty node
                if seen == 0:
                    reply.set_rcode(dns.rcode.NXDOMAIN)
                self._soa(zone, reply)
                return reply
            if q.rdtype == ANY:
                for rdataset in node.rdatasets:
                    reply.answer.append(_rrset(name, rdataset.ttl,
                                                                  list(rdataset)))
                break
            found = node.get_rdataset(IN, q.rdtype)
            if found is not None:
                reply.answer.append(_rrset(name, found.ttl, list(found)))
                break
            cname = node.get_rdataset(IN, CNAME)
            if cname is not None and q.rdtype != CNAME and seen < CNAME_DEPTH:
                reply.answer.append(_rrset(name, cname.ttl, list(cname)))
                name, seen = cname[0].target, seen + 1
                zone = self.zone_for(name)
                if zone is None:        # points outside: the resolver follows it
                    return reply
                continue
            self._soa(zone, reply)      # the name exists, the type does not: NODATA
            return reply
        if q.rdtype == SRV:
            self._glue(reply)
        return reply

    def _soa(self, zone, reply) -> None:
        soa = zone.get_rdataset(zone.origin, SOA)
        if soa is not None:
            reply.authority.append(_rrset(zone.origin, soa.ttl, list(soa)))

    def _glue(self, reply) -> None:
        """The addresses of SRV targets we know, so one query is enough."""
        for rrset in list(reply.answer):
            if rrset.rdtype != SRV:
                continue
            for srv in rrset:
                zone = self.zone_for(srv.target)
                if zone is None:
                    continue
                for rdtype in (A, AAAA):
                    found = zone.get_rdataset(srv.target, rdtype)
                    if found is not None:
                        reply.additional.append(
                            _rrset(srv.target, found.ttl, list(found)))

    def _synth_ptr(self, qname, reply) -> bool:
        address = _reverse_ip(qname)
        if address is None:
            return False
        names = []
        for zone in self.zones.values():
            for name, node in zone.nodes.items():
                for rdtype in (A, AAAA):
                    rdataset = node.get_rdataset(IN, rdtype)
                    if rdataset is not None and any(r.address == address for r in rdataset):
                        names.append((name, rdataset.ttl, len(rdataset)))
        if not names:
            return False
        # A host's own name has one address; a service name lists many. Prefer hosts.
        hosts = [n for n in names if n[2] == 1]
        names = [(n, t) for n, t, _ in (hosts or names)]
        rdatas = [dns.rdtypes.ANY.PTR.PTR(IN, PTR, n) for n, _ in sorted(set(names))]
        reply.answer.append(_rrset(qname, min(t for _, t in names), rdatas))
        return True

    # --- UPDATE (RFC 2136) ------------------------------------------------------
    def _update(self, msg, peer_ip) -> dns.message.Message:
        reply = _response(msg)
        if self.policy.keyring:
            if not msg.had_tsig:
                log.warning("refused an unsigned update from %s (a TSIG key is required)",
                            peer_ip)
                reply.set_rcode(dns.rcode.REFUSED)
                return reply
        elif not self.policy.allows(peer_ip):
            log.warning("refused an update from %s (updates are accepted from %s)", peer_ip,
                        ", ".join(map(str, self.policy.update_from)))
            reply.set_rcode(dns.rcode.REFUSED)
            return reply
        if len(msg.zone) != 1 or msg.zone[0].rdtype != SOA:
            reply.set_rcode(dns.rcode.FORMERR)
            return reply
        zone = self.zones.get(msg.zone[0].name)
        if zone is None:
            reply.set_rcode(dns.rcode.NOTAUTH)
            return reply
        rcode = self._prerequisites(zone, msg.prerequisite)
        if rcode == dns.rcode.NOERROR:
            rcode = self._apply(zone, msg.update)
        reply.set_rcode(rcode)
        return reply

    def _prerequisites(self, zone, section) -> int:
        for rr in section:
            if rr.ttl != 0 or not rr.name.is_subdomain(zone.origin):
                return dns.rcode.NOTZONE if rr.ttl == 0 else dns.rcode.FORMERR
            node = zone.get_node(rr.name)
            if node is not None and len(node) == 0:
                node = None
            rdclass = _wire_class(rr)
            if rdclass == dns.rdataclass.ANY:            # "exists"
                if rr.rdtype == ANY:
                    if node is None:
                        return dns.rcode.NXDOMAIN
                elif node is None or node.get_rdataset(IN, rr.rdtype) is None:
                    return dns.rcode.NXRRSET
            elif rdclass == dns.rdataclass.NONE:            # "does not exist"
                if rr.rdtype == ANY:
                    if node is not None:
                        return dns.rcode.YXDOMAIN
                elif node is not None and node.get_rdataset(IN, rr.rdtype) is not None:
                    return dns.rcode.YXRRSET
            elif rdclass == IN:                             # "exists with this value"
                have = zone.get_rdataset(rr.name, rr.rdtype)
                if have is None or set(have) != set(rr):
                    return dns.rcode.NXRRSET
            else:
                return dns.rcode.FORMERR
        return dns.rcode.NOERROR

    def _apply(self, zone, section) -> int:
        for rr in section:              # check everything before changing anything
            if not rr.name.is_subdomain(zone.origin):
                return dns.rcode.NOTZONE
            if _wire_class(rr) not in (IN, dns.rdataclass.ANY, dns.rdataclass.NONE):
                return dns.rcode.FORMERR
        changed = False
        with zone.writer() as txn:
            for rr in section:
                apex = rr.name == zone.origin
                rdclass = _wire_class(rr)
                if rdclass == IN:
                    if apex and rr.rdtype == SOA:
                        continue            # the serial is ours to keep
                    for rdata in rr:
                        txn.add(rr.name, rr.ttl, rdata)
                    changed = True
                elif rdclass == dns.rdataclass.ANY:
                    if rr.rdtype == ANY:
                        if apex:
                            for rdataset in list(txn.get_node(rr.name) or []):
                                if rdataset.rdtype not in (SOA, NS):
                                    txn.delete(rr.name, rdataset.rdtype)
                        elif txn.name_exists(rr.name):
                            txn.delete(rr.name)
                    elif not (apex and rr.rdtype in (SOA, NS)):
                        if txn.get(rr.name, rr.rdtype) is not None:
                            txn.delete(rr.name, rr.rdtype)
                    changed = True
                else:                            # NONE: delete these values
                    if apex and rr.rdtype == SOA:
                        continue
                    have = txn.get(rr.name, rr.rdtype)
                    if have is not None:
                        gone = {r.to_text() for r in rr}
                        keep = [r for r in have if r.to_text() not in gone]
                        if keep:
                            txn.replace(rr.name, dns.rdataset.from_rdata_list(have.ttl, keep))
                        else:
                            txn.delete(rr.name, rr.rdtype)
                    changed = True
            if changed:
                soa = txn.get(zone.origin, SOA)
                if soa is not None:
                    new = soa[0].replace(serial=(soa[0].serial + 1) % 2**32)
                    txn.replace(zone.origin, dns.rdataset.from_rdata(soa.ttl, new))
        return dns.rcode.NOERROR


def _wire_class(rr) -> int:
    # dnspython keeps an UPDATE's class ANY/NONE in `deleting`, and the zone's in rdclass.
    return rr.deleting if rr.deleting is not None else rr.rdclass


def _rrset(name, ttl, rdatas) -> dns.rrset.RRset:
    # Sorted, so that `dig` shows the same order on every run (lessons compare outputs).
    return dns.rrset.from_rdata_list(name, ttl, sorted(rdatas, key=lambda r: r.to_text()))


def _response(query, rcode=dns.rcode.NOERROR) -> dns.message.Message:
    reply = dns.message.make_response(query, our_payload=UDP_MAX)
    reply.flags &= ~dns.flags.RA       # never recursive
    reply.set_rcode(rcode)
    return reply


def _header_reply(wire: bytes, rcode: int) -> bytes | None:
    """A bare reply with the request's id: for packets too broken to parse. None
    (drop) when there is no full header, or when it is itself a response."""
    if len(wire) < 12 or wire[2] & 0x80:
        return None
    flags = 0x8000 | (wire[2] & 0x79) << 8 | (rcode & 0xF)  # QR, opcode and RD kept
    return wire[:2] + flags.to_bytes(2, "big") + bytes(8)
