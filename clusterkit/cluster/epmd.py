"""libcluster's Cluster.Strategy.Epmd: connect to a fixed list of nodes.

    {"strategy": "epmd", "config": {"hosts": ["a@127.0.0.1", "b@127.0.0.1"],
                                    "timeout": 30_000}}

`hosts` is the list (empty: the strategy does nothing, as libcluster's returns
:ignore). `timeout` (milliseconds) connects again that long after each round, so a
node that was down at start, or that went away, is joined when it comes (back);
the default, "infinity", connects once.
"""
from __future__ import annotations

from .base import STRATEGIES, Strategy


class Epmd(Strategy):
    name = "epmd"
    defaults = {"hosts": [], "timeout": "infinity"}
    aliases = {"nodes": "hosts", "partners": "hosts", "polling_interval": "timeout",
               "poll_interval": "timeout", "interval": "timeout"}

    def validate(self) -> None:
        self.hosts = self.check_nodes("hosts")
        self.every = self.check_ms("timeout", infinity=True)

    def start(self) -> None:
        if self.hosts:          # libcluster: an empty list starts nothing
            super().start()

    def init(self) -> None:
        self.connect_hosts()

    def connect_hosts(self) -> None:
        self.connect_nodes(self.hosts)
        if self.every is not None:
            self.call_later(self.every, self.connect_hosts)


STRATEGIES[Epmd.name] = Epmd
