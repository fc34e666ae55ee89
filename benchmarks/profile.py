"""Where a clusterkit node spends its time in the round-trip and throughput loops.

    .venv/bin/pip install py-spy          # not a dependency: only for this script
    .venv/bin/python -m benchmarks.profile [--trips 20000] [--messages 40000] [--top 25]

Starts two clusterkit nodes (client and server, as in `make bench`), attaches py-spy to
both while the client runs round trips, then one-way throughput, and prints for each
process the threads' share of samples and the functions with the most samples (self
and inclusive). The raw collapsed stacks stay in a temporary directory, printed at the
end, for a flame graph (`py-spy record --format flamegraph` takes the same options).

py-spy here counts a thread blocked in a system call (epoll, a lock, a socket write)
as busy: read `select`, `Condition.wait` and `_write_to_self` as waiting time.
"""
from __future__ import annotations

import argparse
import collections
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from .harness import Session, median, percentile


def summarize(path: str, top: int) -> str:
    self_c, incl, threads = collections.Counter(), collections.Counter(), collections.Counter()
    total = 0
    with open(path) as f:
        for line in f:
            line = line.rstrip()
            if not line:
                continue
            stack, count = line.rsplit(" ", 1)
            count = int(count)
            frames = stack.split(";")
            threads[frames[0]] += count
            total += count
            names = [fr.split(" (")[0] + " (" + fr.split(" (")[1].rsplit("/", 1)[-1]
                     if " (" in fr else fr for fr in frames[1:]]
            if names:
                self_c[names[-1]] += count
            for name in set(names):
                incl[name] += count
    if not total:
        return "  no samples\n"
    out = [f"  {total} samples"]
    out += [f"  {100 * c / total:5.1f}%  {t}" for t, c in threads.most_common()]
    out.append("  -- self")
    out += [f"  {100 * c / total:5.1f}%  {n}" for n, c in self_c.most_common(top)]
    out.append("  -- inclusive")
    out += [f"  {100 * c / total:5.1f}%  {n}" for n, c in incl.most_common(top)]
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trips", type=int, default=20000)
    p.add_argument("--messages", type=int, default=40000)
    p.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    p.add_argument("--top", type=int, default=25)
    args = p.parse_args(argv)
    py_spy = shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable), "py-spy")
    if not os.path.exists(py_spy):
        print("py-spy is not installed: .venv/bin/pip install py-spy", file=sys.stderr)
        return 2
    outdir = tempfile.mkdtemp(prefix="clusterkit-profile-")
    with Session() as s:
        s.start_epmd()
        client = s.py_agent(s.fresh_name("client"), "bench_profile")
        server = s.py_agent(s.fresh_name("server"), "bench_profile")
        server.echo_server()
        server.sink_server()
        assert client.ping(server.name) == "pong"
        client.rtt(server.name, 1000)
        client.tput(server.name, 5000)
        for what in ("round_trip", "throughput"):
            spies = {}
            for tag, agent in (("client", client), ("server", server)):
                path = os.path.join(outdir, f"{what}-{tag}.txt")
                spies[tag] = (path, subprocess.Popen(
                    [py_spy, "record", "--pid", str(agent.pid), "--threads", "--rate",
                     str(args.rate), "--format", "raw", "--output", path, "--nonblocking"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
            time.sleep(1.5)                 # py-spy attaches
            t0 = time.monotonic()
            if what == "round_trip":
                times, _ = client.rtt(server.name, args.trips)
                result = (f"{args.trips} round trips: median {median(times) / 1e3:.0f} µs, "
                          f"p99 {percentile(times, 99) / 1e3:.0f} µs")
            else:
                ns, _count, _err = client.tput(server.name, args.messages)
                result = f"{args.messages} messages: {args.messages / ns * 1e9:,.0f} msg/s"
            elapsed = time.monotonic() - t0
            for path, spy in spies.values():
                spy.send_signal(signal.SIGINT)
            for tag, (path, spy) in spies.items():
                _out, err = spy.communicate(timeout=30)
                print(f"\n== {what}, {tag} ({result}; {elapsed:.1f} s under py-spy)")
                if not os.path.exists(path):
                    print("  py-spy wrote nothing: " + err.decode(errors="replace")[-500:])
                    continue
                print(summarize(path, args.top), end="")
    print(f"\nraw stacks: {outdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
