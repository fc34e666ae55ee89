"""clusterkit's DNS server, asked by dnspython, `dig` and `nsupdate` on loopback."""
from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.tsig
import dns.tsigkeyring
import dns.update
import pytest

from clusterkit import dns as ckdns
from clusterkit.dns.authority import Policy
from conftest import free_port, wait_for

ZONE = """$ORIGIN lab.internal.
$TTL 5
@        IN SOA ns admin 1 60 60 600 5
@        IN NS  ns
ns       IN A    127.0.0.1
app      IN A    127.0.0.2
app      IN A    127.0.0.3
app      IN AAAA ::1
www      IN CNAME app
note     IN TXT  "hello"
_app._tcp IN SRV 0 0 4369 app
"""
# Sixty addresses do not fit in 512 bytes: UDP must truncate.
BIG = "".join(f"big IN A 127.0.1.{i}\n" for i in range(1, 61))
SECRET = base64.b64encode(b"a lesson secret").decode()

have_dig = pytest.mark.skipif(shutil.which("dig") is None or shutil.which("nsupdate") is None,
                              reason="dig/nsupdate not found: apt-get install bind9-dnsutils")


@pytest.fixture
def zone_file(tmp_path):
    path = tmp_path / "lab.internal.zone"
    path.write_text(ZONE + BIG)
    return path


@pytest.fixture
def server(zone_file):
    with ckdns.ServerThread([zone_file]) as srv:
        yield srv


def ask(srv, name, rdtype, tcp=False, **kw):
    q = dns.message.make_query(name, rdtype, **kw)
    send = dns.query.tcp if tcp else dns.query.udp
    return send(q, "127.0.0.1", port=srv.port, timeout=3)


def answers(reply):
    return sorted(r.to_text() for rrset in reply.answer for r in rrset)


def test_a_aaaa_txt_cname(server):
    r = ask(server, "app.lab.internal.", "A")
    assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA
    assert not r.flags & dns.flags.RA                         # never recursive
    assert answers(r) == ["127.0.0.2", "127.0.0.3"]
    assert answers(ask(server, "app.lab.internal.", "AAAA")) == ["::1"]
    assert answers(ask(server, "note.lab.internal.", "TXT")) == ['"hello"']
    assert answers(ask(server, "www.lab.internal.", "A")) == ["127.0.0.2", "127.0.0.3",
                                                               "app.lab.internal."]


def test_srv_with_glue_and_ptr(server):
    r = ask(server, "_app._tcp.lab.internal.", "SRV")
    assert answers(r) == ["0 0 4369 app.lab.internal."]
    glue = sorted(x.to_text() for rrset in r.additional for x in rrset)
    assert glue == ["127.0.0.2", "127.0.0.3", "::1"]
    r = ask(server, "2.0.0.127.in-addr.arpa.", "PTR")
    assert answers(r) == ["app.lab.internal."]


def test_nxdomain_nodata_and_refused(server):
    r = ask(server, "nobody.lab.internal.", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN and r.authority   # with the SOA
    r = ask(server, "note.lab.internal.", "A")
    assert r.rcode() == dns.rcode.NOERROR and not r.answer
    for name in ("example.com.", "9.9.9.10.in-addr.arpa."):
        assert ask(server, name, "A").rcode() == dns.rcode.REFUSED


def test_truncation_over_udp_full_answer_over_tcp(server):
    r = ask(server, "big.lab.internal.", "A")
    assert r.flags & dns.flags.TC
    r = ask(server, "big.lab.internal.", "A", tcp=True)
    assert not r.flags & dns.flags.TC and len(answers(r)) == 60


def test_update_add_and_delete(server):
    at = ("127.0.0.1", server.port)
    ckdns.add_record(at, "lab.internal", "b", "A", "127.0.0.7")
    assert ckdns.lookup(at, "b.lab.internal", "A") == ["127.0.0.7"]   # at once
    ckdns.add_record(at, "lab.internal", "b", "A", "127.0.0.8")
    ckdns.delete_record(at, "lab.internal", "b", "A", "127.0.0.7")
    assert ckdns.lookup(at, "b.lab.internal", "A") == ["127.0.0.8"]
    ckdns.delete_record(at, "lab.internal", "b")
    assert ask(server, "b.lab.internal.", "A").rcode() == dns.rcode.NXDOMAIN
    soa = ask(server, "lab.internal.", "SOA").answer[0][0]
    assert soa.serial == 5                                   # one bump per update


def test_update_prerequisite_and_outside_zone(server):
    u = dns.update.UpdateMessage("lab.internal")
    u.absent("app")                                          # app exists: YXDOMAIN
    u.add("c", 5, "A", "127.0.0.9")
    assert dns.query.tcp(u, "127.0.0.1", port=server.port).rcode() == dns.rcode.YXDOMAIN
    u = dns.update.UpdateMessage("elsewhere.test")
    u.add("c", 5, "A", "127.0.0.9")
    assert dns.query.tcp(u, "127.0.0.1", port=server.port).rcode() == dns.rcode.NOTAUTH


def test_update_refused_from_outside_the_allowed_networks(zone_file):
    policy = Policy(update_from=[__import__("ipaddress").ip_network("10.0.0.0/8")])
    with ckdns.ServerThread([zone_file], policy=policy) as srv:
        u = dns.update.UpdateMessage("lab.internal")
        u.add("c", 5, "A", "127.0.0.9")
        assert dns.query.tcp(u, "127.0.0.1", port=srv.port).rcode() == dns.rcode.REFUSED


def test_tsig(zone_file):
    ring = ckdns.keyring_from_text([f"ddns:{SECRET}"])
    with ckdns.ServerThread([zone_file], policy=Policy(keyring=ring)) as srv:
        def send(keyring):
            u = dns.update.UpdateMessage("lab.internal", keyring=keyring)
            u.add("s", 5, "A", "127.0.0.9")
            return dns.query.tcp(u, "127.0.0.1", port=srv.port, timeout=3)
        assert send(None).rcode() == dns.rcode.REFUSED        # unsigned
        wrong = dns.tsigkeyring.from_text({"ddns": base64.b64encode(b"wrong").decode()})
        with pytest.raises(dns.exception.DNSException):
            send(wrong)                                      # an unsigned NOTAUTH
        assert send(ring).rcode() == dns.rcode.NOERROR
        assert ckdns.lookup(("127.0.0.1", srv.port), "s.lab.internal") == ["127.0.0.9"]


def test_malformed_packets_are_dropped_or_formerr(server):
    junk = [b"", b"\x01", b"\x12\x34" + b"\x01\x00" + b"\x00\x05" + b"\x00" * 6 + b"\xff" * 9,
            os.urandom(300), b"\x12\x34\x81\x80" + bytes(8)]       # the last is a response
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.3)
        for packet in junk:
            s.sendto(packet, ("127.0.0.1", server.port))
            try:
                reply, _ = s.recvfrom(512)
            except socket.timeout:
                continue                                      # dropped
            assert reply[:2] == packet[:2] and reply[3] & 0x0F == dns.rcode.FORMERR
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(b"\x00\x03abc")                             # a broken TCP message
        s.settimeout(3)
        assert len(s.recv(100)) in (0, 14)                    # closed, or FORMERR
    assert answers(ask(server, "app.lab.internal.", "A")) == ["127.0.0.2", "127.0.0.3"]


@have_dig
def test_dig_and_nsupdate_against_the_daemon(zone_file, tmp_path):
    port = free_port()
    proc = ckdns.spawn([zone_file], port, extra_args=["--tsig-key", f"ddns:{SECRET}"],
                       log_file=tmp_path / "dns.log")
    try:
        def dig(*args):
            return subprocess.run(["dig", "@127.0.0.1", "-p", str(port), "+time=2", "+tries=1",
                                   *args], capture_output=True, text=True, timeout=20).stdout
        assert dig("+short", "app.lab.internal", "A").split() == ["127.0.0.2", "127.0.0.3"]
        assert "status: REFUSED" in dig("example.com")
        out = dig("+notcp", "+noedns", "+ignore", "big.lab.internal")
        assert " tc " in out.split("flags:")[1].split(";")[0] + " "
        assert len(dig("+tcp", "+short", "big.lab.internal").split()) == 60

        def nsupdate(script, *args):
            return subprocess.run(["nsupdate", *args], input=script, capture_output=True,
                                  text=True, timeout=20)
        add = (f"server 127.0.0.1 {port}\nzone lab.internal\n"
               "update add n.lab.internal 5 A 127.0.0.9\nsend\n")
        assert nsupdate(add).returncode != 0                        # no key: refused
        done = nsupdate(add, "-y", f"hmac-sha256:ddns:{SECRET}")
        assert done.returncode == 0, done.stderr
        assert dig("+short", "n.lab.internal").split() == ["127.0.0.9"]
        done = nsupdate(f"server 127.0.0.1 {port}\nzone lab.internal\n"
                        "update delete n.lab.internal A\nsend\n", "-y", f"hmac-sha256:ddns:{SECRET}")
        assert done.returncode == 0, done.stderr
        assert "status: NXDOMAIN" in dig("n.lab.internal")
        # SIGHUP: the edited file is served again.
        zone_file.write_text(ZONE + "later IN A 127.0.0.4\n")
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: dig("+short", "later.lab.internal").split() == ["127.0.0.4"],
                 what="the reloaded zone")
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_command_names_a_bad_zone_file(tmp_path):
    bad = tmp_path / "bad.zone"
    bad.write_text("$ORIGIN bad.\n@ IN SOA ns admin 1 60 60 600 5\nwww IN A not-an-address\n")
    out = subprocess.run([__import__("sys").executable, "-m", "clusterkit", "dns", "--zone",
                          str(bad), "--port", str(free_port())],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert "bad.zone:" in out.stderr and "malformed" in out.stderr
    assert "Traceback" not in out.stderr
