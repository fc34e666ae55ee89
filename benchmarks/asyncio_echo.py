"""The floor of any Python node: two plain asyncio processes and nothing else.

No term codec, no processes, no mailboxes: 4-byte length-prefixed frames over one TCP
connection on loopback, the same framing as Erlang distribution after the handshake.
`server` echoes every frame back (or, in sink mode, answers once after N frames);
`client` times sequential round trips, or a one-way burst, and prints one JSON line.

    python -m benchmarks.asyncio_echo server            # prints "@@PORT <port>"
    python -m benchmarks.asyncio_echo client PORT rtt N
    python -m benchmarks.asyncio_echo client PORT tput N
"""
from __future__ import annotations

import asyncio
import json
import struct
import sys
import time

# About the size of the round-trip figure's {Pid, I} RegSend frame.
PAYLOAD = b"\x83h\x02" + b"p" * 40
HEADER = struct.Struct(">I")


async def _serve_one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readexactly(4)
            (n,) = HEADER.unpack(head)
            body = await reader.readexactly(n)
            if body.startswith(b"T"):          # "T" + count: a one-way burst follows
                count = int(body[1:])
                for _ in range(count):
                    (k,) = HEADER.unpack(await reader.readexactly(4))
                    await reader.readexactly(k)
                writer.write(HEADER.pack(4) + b"done")
            else:
                writer.write(head + body)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


async def server() -> None:
    srv = await asyncio.start_server(_serve_one, "127.0.0.1", 0)
    print(f"@@PORT {srv.sockets[0].getsockname()[1]}", flush=True)
    async with srv:
        await srv.serve_forever()


async def client(port: int, mode: str, n: int) -> dict:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    frame = HEADER.pack(len(PAYLOAD)) + PAYLOAD
    out: dict = {}
    if mode == "rtt":
        times = []
        for _ in range(n):
            t0 = time.perf_counter_ns()
            writer.write(frame)
            (k,) = HEADER.unpack(await reader.readexactly(4))
            await reader.readexactly(k)
            times.append(time.perf_counter_ns() - t0)
        out = {"times": times}
    else:
        start = b"T" + str(n).encode()
        t0 = time.perf_counter_ns()
        writer.write(HEADER.pack(len(start)) + start)
        for i in range(n):
            writer.write(frame)
            if i % 256 == 255:
                await writer.drain()
        await writer.drain()
        await reader.readexactly(8)
        out = {"ns": time.perf_counter_ns() - t0, "n": n}
    writer.close()
    return out


def main(argv: list[str]) -> None:
    if argv[0] == "server":
        asyncio.run(server())
    else:
        port, mode, n = int(argv[1]), argv[2], int(argv[3])
        print(json.dumps(asyncio.run(client(port, mode, n))), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
