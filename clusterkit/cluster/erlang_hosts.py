"""libcluster's Cluster.Strategy.ErlangHosts: the hosts in `.hosts.erlang`, and their EPMD.

    {"strategy": "erlang_hosts", "config": {"timeout": 30_000}}

The file is found as `net_adm:host_file/0` finds it: `.hosts.erlang` in the current
directory, then in the home directory (Erlang also looks in its own root directory;
a Python process has none). It holds Erlang terms, one host each:

    '127.0.0.1'.
    'b.example.org'.

Each host's EPMD is asked for its names, and every `name@host` is connected. With no
file, libcluster's warning is logged and nothing starts. A file that does not parse
stops ck.cluster.start with its `file:line:column:` error, where Erlang's
net_adm:host_file/0 would just return {error, ...}.

`timeout` (ms) asks again that long after each round (default "infinity": once);
`name_match` keeps only some names: an Atom (that name), a str (names containing it),
a list (names in it), a compiled regex, or a function name -> bool.
"""
from __future__ import annotations

import os
import re
from typing import Any

from .. import erlterm
from ..etf import Atom
from . import _epmd
from .base import STRATEGIES, Strategy

HOST_FILE = ".hosts.erlang"


def host_file_dirs() -> list[str]:
    """Where net_adm:host_file/0 looks, in order (without Erlang's root directory)."""
    dirs = ["."]
    home = os.environ.get("HOME")
    if home:
        dirs.append(home)
    return dirs


def find_host_file(dirs: list[str] | None = None) -> str | None:
    for d in host_file_dirs() if dirs is None else dirs:
        path = os.path.join(d, HOST_FILE)
        if os.path.isfile(path):
            return path
    return None


def read_host_file(path: str) -> list[str]:
    """The hosts in a .hosts.erlang file; TermError (path:line:column) when malformed."""
    text = erlterm.read_text(path, HOST_FILE)
    hosts = []
    for value, loc in erlterm.parse_located(text, path):
        if not isinstance(value, str) or isinstance(value, bool) or not value:
            raise erlterm.TermError(
                f"expected a host name, like '127.0.0.1' or 'host1.example.org', but found "
                f"{erlterm.show(text[loc.start:loc.end])}", path, loc.line, loc.col)
        hosts.append(str(value))
    return hosts


class ErlangHosts(Strategy):
    name = "erlang_hosts"
    defaults = {"timeout": "infinity", "name_match": None}
    aliases = {"polling_interval": "timeout", "poll_interval": "timeout",
               "interval": "timeout", "match": "name_match"}

    def __init__(self, *args, names: _epmd.NamesCall | None = None,
                 dirs: list[str] | None = None, **kw):
        self.dirs = dirs
        super().__init__(*args, **kw)
        self.names = names or _epmd.names_call(self.epmd_port)

    def validate(self) -> None:
        self.every = self.check_ms("timeout", infinity=True)
        self.matcher = self._matcher(self.config["name_match"])
        self.path = find_host_file(self.dirs)
        self.hosts: list[str] | None = None
        if self.path is None:
            self.warn("couldn't find .hosts.erlang file - not joining cluster")
            return
        try:
            self.hosts = read_host_file(self.path)
        except erlterm.TermError as e:
            err = self.config_error(str(e), HOST_FILE)
            err.path, err.line, err.column = e.path, e.line, e.column
            raise err from None

    def _matcher(self, m: Any):
        if m is None:
            return None
        if type(m) is Atom:
            return lambda name: name == m
        if isinstance(m, str):
            return lambda name: m in name
        if isinstance(m, (list, tuple, set, frozenset)):
            wanted = {str(x) for x in m}
            return lambda name: name in wanted
        if isinstance(m, re.Pattern):
            return lambda name: m.search(name) is not None
        if callable(m):
            return lambda name: bool(m(name))
        raise self.config_error(f"name_match is an Atom, a str, a list of names, a regex or "
                                f"a function, not {m!r}", "name_match")

    def start(self) -> None:
        if self.hosts is not None:
            super().start()

    def init(self) -> None:
        self.connect_hosts()

    def discover(self) -> list[str]:
        nodes = []
        for host in self.hosts or []:
            try:
                found = self.names(host)
            except Exception as e:      # net_adm:names/1 gave {error, _}: skip the host
                self.debug(f"cannot list the nodes of {host}: {e}")
                continue
            for name, _port in found:
                if self.matcher is None or self.matcher(name):
                    nodes.append(f"{name}@{host}")
        return nodes

    def connect_hosts(self) -> None:
        self.connect_nodes(self.discover())
        if self.every is not None:
            self.call_later(self.every, self.connect_hosts)


STRATEGIES[ErlangHosts.name] = ErlangHosts
