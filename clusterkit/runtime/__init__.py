"""The node's runtime: the only layer with sockets and threads.

One asyncio loop thread per node (`loop.py`) owns connections (`connection.py` adapts the
sans-I/O `dist.connection` to a `channel.py` socket), the connection decisions
(`peers.py`), delivery of what arrives (`inbound.py`), and the services every node runs
(`services.py`: net_kernel, `rex.py`, `global_.py`). User threads are processes
(`process.py`), GenServers (`genserver.py`) among them. `current.py` says which node a
thread means; `errors.py` and `atoms.py` are shared by all of the above.

Contract:
May import: `clusterkit.dist`, `clusterkit.epmd`, `clusterkit.etf`, `clusterkit.names`,
the standard library.
Imported by: `clusterkit.api`, `clusterkit.config`, and the layers above them (`cluster`,
`pubsub`, `lab`). Never imports `api`, `config`, `cluster`, `pubsub` or `lab`.
Rules: loop-owned state is changed on the loop only; a user thread that needs a change
hands it over (`runtime.run`, `runtime.call_soon`). No lock is held across a call that
can call back into clusterkit code (see channel.py for the one lock on the write path).
"""
