"""libcluster's Cluster.Strategy.LocalEpmd: every node the local EPMD knows.

    {"strategy": "local_epmd"}

At start it asks the EPMD on this machine for its names and connects to each as
`name@<this node's host>`, once, as libcluster does. A node that starts later finds
the ones before it, so nodes started one after another still end in a full mesh.
"""
from __future__ import annotations

from . import _epmd
from .base import STRATEGIES, Strategy


class LocalEpmd(Strategy):
    name = "local_epmd"
    defaults: dict = {}

    def __init__(self, *args, names: _epmd.NamesCall | None = None, **kw):
        super().__init__(*args, **kw)
        self.names = names or _epmd.names_call(self.epmd_port)

    def init(self) -> None:
        self.connect_nodes(self.discover())

    def discover(self) -> list:
        host = str(self.self_node).partition("@")[2]
        try:
            found = self.names("localhost")
        except Exception as e:      # no EPMD here: nothing to join
            self.warn(f"unable to list nodes in the local epmd: {e}")
            return []
        return [f"{name}@{host}" for name, _port in found]


STRATEGIES[LocalEpmd.name] = LocalEpmd
