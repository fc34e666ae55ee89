"""`clusterkit doctor`: check what trips people up, and print the fix for each problem.

Each check returns (ok, what it found, the fix). Outside lookups (host name, resolver,
EPMD, file system) go through plain functions so tests can point them elsewhere.
"""
from __future__ import annotations

import os
import socket
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

from . import cookie as cookie_file
from .epmd import EpmdError, names_sync


@dataclass
class Check:
    name: str
    ok: bool
    found: str
    fix: str = ""


def _resolves(host: str) -> list[int]:
    try:
        return sorted({info[0] for info in socket.getaddrinfo(host, None)})
    except OSError:
        return []


def check_short_name(hostname: str | None = None) -> Check:
    host = (hostname or socket.gethostname()).split(".")[0]
    families = _resolves(host)
    if not families:
        return Check("short names", False, f"the host name {host!r} does not resolve",
                     f"add `127.0.1.1 {host}` to /etc/hosts, or use long names on "
                     "127.0.0.1: ck.start('a@127.0.0.1')")
    if socket.AF_INET not in families:
        return Check("short names", False, f"{host!r} resolves to IPv6 only",
                     "Erlang distribution uses IPv4 by default: add an IPv4 line for "
                     f"{host} to /etc/hosts, or use ck.start('a@127.0.0.1')")
    return Check("short names", True, f"a@{host} works: {host!r} resolves")


def check_long_name(fqdn: str | None = None) -> Check:
    fqdn = fqdn or socket.getfqdn()
    if "." not in fqdn:
        return Check("long names", True,
                     f"the host name {fqdn!r} has no domain, so `ck.start('a', "
                     "longnames=True)` cannot pick a host; a@127.0.0.1 always works",
                     "")
    if not _resolves(fqdn):
        return Check("long names", False, f"{fqdn!r} does not resolve",
                     "use an IP address as the host: ck.start('a@127.0.0.1')")
    return Check("long names", True, f"a@{fqdn} works; so does a@127.0.0.1")


def _listener_command(port: int) -> str | None:
    """Which program listens on 127.0.0.1:port (Linux /proc), or None if unknown."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            local, state, inode = parts[1], parts[3], parts[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{inode}]")
    if not inodes:
        return None
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") in inodes for fd in fds):
                raw = Path(f"/proc/{pid}/cmdline").read_bytes()
                return " ".join(a.decode(errors="replace") for a in raw.split(b"\0") if a)
        except OSError:
            continue
    return None


def check_epmd(port: int) -> Check:
    try:
        _port, nodes = names_sync("127.0.0.1", port)
    except EpmdError as exc:
        return Check("EPMD", True, f"nothing answers on port {port} yet ({exc}); "
                     "ck.start starts clusterkit's EPMD there, as erl starts epmd", "")
    command = _listener_command(port) or ""
    if "clusterkit" in command:
        kind = "clusterkit's EPMD"
    elif command.split(" ")[0].endswith("epmd"):
        kind = "Erlang's epmd"
    else:
        kind = "an EPMD (could not tell whose)"
    listed = ", ".join(f"{n} (port {p})" for n, p in nodes) or "no nodes"
    found = f"{kind} answers on port {port}, with {listed}"
    if kind != "clusterkit's EPMD":
        # DNSPoll names nodes basename@ip; on one machine that needs a registry per address.
        found += ("; it keeps one registry for the whole machine, so `app@127.0.0.2` and "
                  "`app@127.0.0.3` cannot both register (lesson 06, DNSPoll). Fix: one "
                  "`epmd -address 127.0.0.N` per address, distinct basenames, or clusterkit's "
                  "EPMD, which keeps one registry per loopback address")
    return Check("EPMD", True, found)


def check_cookie(path: Path | None = None) -> Check:
    path = path or cookie_file.cookie_path()
    if not path.exists():
        return Check("cookie file", True, f"{path} does not exist yet; the first node "
                     "started without a cookie creates it (20 capitals, mode 400)")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return Check("cookie file", False, f"{path} has mode {mode:o}: others can read it, "
                     "and Erlang refuses such a file", f"chmod 400 {path}")
    if not path.read_text(errors="replace").strip():
        return Check("cookie file", False, f"{path} is empty",
                     f"rm {path} (the next node creates a new one)")
    return Check("cookie file", True, f"{path} exists with mode {mode:o}")


def check_multicast(group: str = "233.252.1.32", port: int = 45892) -> Check:
    """Send one datagram to the gossip group over loopback only (TTL 0) and read it back."""
    fix = ("the gossip lesson needs multicast on loopback: "
           "`sudo ip route add 224.0.0.0/4 dev lo` and `sudo ip link set lo multicast on`")
    rx = tx = None
    try:
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        rx.bind(("", port))
        rx.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                      socket.inet_aton(group) + socket.inet_aton("127.0.0.1"))
        rx.settimeout(1.0)
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
        tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, struct.pack("b", 0))
        tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        probe = b"clusterkit-doctor-" + os.urandom(4).hex().encode()
        tx.sendto(probe, (group, port))
        while True:
            data, _ = rx.recvfrom(2048)
            if data == probe:
                return Check("multicast", True, f"{group}:{port} works on loopback")
    except socket.timeout:
        return Check("multicast", False, "a multicast datagram sent on loopback never "
                     "arrived", fix)
    except OSError as exc:
        return Check("multicast", False, f"multicast on loopback failed: {exc}", fix)
    finally:
        for s in (rx, tx):
            if s is not None:
                s.close()


def run_checks(epmd_port: int) -> list[Check]:
    return [check_short_name(), check_long_name(), check_epmd(epmd_port), check_cookie(),
            check_multicast()]


def main(args) -> int:
    port = args.epmd_port or int(os.environ.get("ERL_EPMD_PORT", "4369"))
    checks = run_checks(port)
    for c in checks:
        print(f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {c.found}")
        if not c.ok and c.fix:
            print(f"     fix: {c.fix}")
    bad = [c for c in checks if not c.ok]
    print("all good" if not bad else f"{len(bad)} problem(s) found")
    return 1 if bad else 0
