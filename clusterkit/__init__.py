"""clusterkit: learn Erlang/Elixir clustering with real distribution nodes.

    import clusterkit as ck
    ck.start("a@127.0.0.1", cookie="secret_token")
    ck.Node.ping("b@127.0.0.1")      # Atom('pong')
"""
from .api import (Node, NotAlive, demonitor, flush, link, monitor, net_adm, net_kernel, node,
                  receive, register, rpc, self, send, spawn, spawn_link, start, stop,
                  unregister, whereis)
from .etf import Atom, ETFError, ImproperList, Opaque, Pid, Port, Reference
from .names import InvalidNodeName
from . import pg
from .pubsub import PubSub
from .runtime.genserver import GenServer
from .runtime.errors import BadArg, CallError, CallTimeout, ProcessExit, ReceiveTimeout

__version__ = "0.1.0"


def __getattr__(name):
    # ck.cluster is imported on first use: most programs never load its strategies.
    if name == "cluster":
        import importlib
        return importlib.import_module(".cluster", __name__)
    raise AttributeError(f"module 'clusterkit' has no attribute {name!r}")

__all__ = [
    "Atom", "BadArg", "CallError", "CallTimeout", "ETFError", "GenServer", "ImproperList",
    "InvalidNodeName", "Node", "NotAlive", "Opaque", "Pid", "Port", "PubSub", "ProcessExit",
    "ReceiveTimeout", "Reference", "demonitor", "flush", "link", "monitor", "net_adm",
    "net_kernel", "node", "pg", "receive", "register", "rpc", "self", "send", "spawn",
    "spawn_link", "start", "stop", "unregister", "whereis",
]
