"""The distribution protocol, sans-I/O: handshake, flags, framing, control messages, and
the connection that chains them with the tick rules (`connection.py`).

Contract: pure functions and state machines. Bytes and a clock go in; events and bytes
come out. No sockets, threads, asyncio or time reads.
May import: `clusterkit.etf`, `clusterkit.names`, the standard library.
Imported by: `clusterkit.runtime` (and tests). Never imports `runtime`, `api` or `lab`.
"""
