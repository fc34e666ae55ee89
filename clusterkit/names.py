"""Node names: short and long names, their host part, and the errors learners meet.

Erlang has two kinds of node names, and a node uses one kind for its whole life:

* a short name (`iex --sname a`) is `a@host`, where the host has no dot;
* a long name (`iex --name a@127.0.0.1`) has a host with a dot or an IP address.

A short-name node and a long-name node cannot talk to each other.
"""
from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass

from .etf import Atom

# The alive part as epmd accepts it in practice: letters, digits, '_' and '-'.
_ALIVE_RE = re.compile(r"^[A-Za-z0-9_\-]{1,255}$")
_HOST_RE = re.compile(r"^[A-Za-z0-9_\-.]+$")


class InvalidNodeName(ValueError):
    """A node name that Erlang would refuse, with what to write instead."""


@dataclass(frozen=True)
class NodeName:
    alive: str
    host: str
    long: bool

    @property
    def atom(self) -> Atom:
        return Atom(f"{self.alive}@{self.host}")

    def __str__(self) -> str:
        return f"{self.alive}@{self.host}"


def is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def is_long_host(host: str) -> bool:
    """Erlang's rule: a host for long names has a dot in it (an IPv4 address does)."""
    return "." in host or is_ip_address(host)


def short_host_name() -> str:
    """The host part Erlang picks for `-sname a`: the host name up to its first dot."""
    return socket.gethostname().split(".")[0]


def long_host_name() -> str | None:
    """The host part Erlang picks for `-name a`: the fully qualified name, if it has a dot."""
    fqdn = socket.getfqdn()
    return fqdn if "." in fqdn else None


def split(name: str) -> tuple[str, str | None]:
    name = str(name)
    if name.count("@") > 1:
        raise InvalidNodeName(f"node name {name!r} has more than one '@'")
    if "@" in name:
        alive, host = name.split("@")
        return alive, host
    return name, None


def _check_alive(alive: str, name: str) -> None:
    if not alive:
        raise InvalidNodeName(f"node name {name!r} has nothing before the '@'")
    if not _ALIVE_RE.match(alive):
        raise InvalidNodeName(
            f"node name {name!r}: the part before '@' may only hold letters, digits, "
            "'_' and '-' (at most 255 of them)")


def parse_local(name: str, longnames: bool | None = None) -> NodeName:
    """Validate the name this node starts with, as `-sname`/`-name` would.

    `longnames=None` picks the kind from the host part: a host with a dot or an IP
    address gives a long name, anything else a short one.
    """
    alive, host = split(name)
    _check_alive(alive, name)
    if host == "":
        raise InvalidNodeName(f"node name {name!r} has nothing after the '@'")
    if host is not None and not _HOST_RE.match(host):
        raise InvalidNodeName(f"node name {name!r}: the host part {host!r} is not a host name")
    if longnames is None:
        longnames = host is not None and is_long_host(host)
    if host is None:
        if longnames:
            host = long_host_name()
            if host is None:
                raise InvalidNodeName(
                    f"cannot give {alive!r} a long name: this machine's host name "
                    f"{socket.gethostname()!r} has no domain part. "
                    f"Write the host yourself, e.g. ck.start('{alive}@127.0.0.1').")
        else:
            host = short_host_name()
    if longnames and not is_long_host(host):
        raise InvalidNodeName(
            f"{alive}@{host} cannot be a long name: a long name needs a host with a dot "
            f"or an IP address, and {host!r} has neither. Write "
            f"ck.start('{alive}@127.0.0.1') for a long name, or "
            f"ck.start('{alive}@{host}') for a short name.")
    if not longnames and "." in host:
        raise InvalidNodeName(
            f"{alive}@{host} cannot be a short name: a short name's host has no dots. "
            f"Drop longnames=False to make it a long name, "
            f"or write ck.start('{alive}') for a short one.")
    return NodeName(alive, host, longnames)


def parse_remote(name: str) -> NodeName:
    """Validate a node name we are asked to reach, such as `b@127.0.0.1`."""
    alive, host = split(name)
    if host is None:
        raise InvalidNodeName(
            f"{name!r} is not a node name: it needs a host part, like '{name}@127.0.0.1'")
    _check_alive(alive, name)
    if not host or not _HOST_RE.match(host):
        raise InvalidNodeName(f"node name {name!r}: the host part {host!r} is not a host name")
    return NodeName(alive, host, is_long_host(host))


def mixing_error(this: NodeName, other: NodeName) -> str:
    """Erlang's own lines when short and long names meet, plus what to do about it."""
    if this.long:
        head = (f"** System running to use fully qualified hostnames **\n"
                f"** Hostname {other.host} is illegal **")
        hint = (f"{this} has a long name, so it can only reach long names "
                f"(with a dot or an IP address in the host), such as {other.alive}@127.0.0.1.")
    else:
        head = (f"** System NOT running to use fully qualified hostnames **\n"
                f"** Hostname {other.host} is illegal **")
        hint = (f"{this} has a short name, so it can only reach short names "
                f"(a host without dots), such as {other.alive}@{this.host}.")
    return f"{head}\n{hint}"
