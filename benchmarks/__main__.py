"""`make bench`: clusterkit measured side by side with real Erlang nodes.

    python -m benchmarks                      # every figure (about 5 minutes)
    python -m benchmarks --only round_trip,codec
    python -m benchmarks --quick              # tiny counts: checks that it runs, no figures
    python -m benchmarks --out path.json      # default: benchmarks/results.json

Prints a table and writes the results as JSON. See benchmarks/README.md for what each
figure means and how to read the ratios.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path

from . import figures
from .harness import HAVE_ERLANG, BenchError, Session, install_signal_handlers

HERE = Path(__file__).resolve().parent

# Each figure's budget. A full run is about 5 minutes on 2 cores; `make bench` must stay
# under 10, so grow these only with that in mind.
FULL = {
    "round_trip": dict(rounds=5, per_round=2000, warmup=1000),
    "throughput": dict(rounds=5, per_round=20000, warmup=5000),
    "connect": dict(rounds=6, reconnects=3),
    "failure": dict(kill_rounds=8, stop_rounds=8),
    "startup": dict(rounds=6, lab_rounds=3),
    "codec": dict(rounds=5, min_time=0.3),
    "floor": dict(rounds=5, per_round=2000, burst=20000),
    "slow_peer": dict(rounds=3, n=5000),
    "pubsub": dict(rounds=3, latency_samples=200),
}
QUICK = {
    "round_trip": dict(rounds=2, per_round=200, warmup=50),
    "throughput": dict(rounds=2, per_round=2000, warmup=200),
    "connect": dict(rounds=1, reconnects=1),
    "failure": dict(kill_rounds=1, stop_rounds=1),
    "startup": dict(rounds=1, lab_rounds=1, idle=0.2),
    "codec": dict(rounds=1, min_time=0.02, erl_iters=1000),
    "floor": dict(rounds=1, per_round=100, burst=500),
    "slow_peer": dict(rounds=1, n=300),
    "pubsub": dict(rounds=1, latency_samples=10, broadcasts={1: 100, 10: 50, 100: 20}),
}
ORDER = ["round_trip", "throughput", "floor", "slow_peer", "connect", "failure", "startup",
         "codec", "pubsub"]


def log(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# --- ratios and verdicts -------------------------------------------------------------

def _involves_clusterkit(pair: str) -> bool:
    return "ck" in pair or "clusterkit" in pair or "lab" in pair


def _find(fig, pair, case):
    for row in fig["rows"]:
        if row["pair"] == pair and row.get("case") == case:
            return row
    return None


def annotate(fig: dict) -> dict:
    """Add to each row its ratio to the figure's baseline, and its verdict."""
    for row in fig.get("rows", []):
        base_pair = fig.get("baselines", {}).get(row["pair"], fig.get("baseline"))
        base = _find(fig, base_pair, row.get("case")) if base_pair else None
        row["baseline"] = base_pair if base else None
        row["ratio"] = (row["median"] / base["median"]
                        if base and base["median"] else None)
        target = row.get("target") or fig.get("target")
        row["verdict"] = None
        if not target or not _involves_clusterkit(row["pair"]):
            continue
        if target.get("case") and target["case"] != row.get("case"):
            continue
        row["target_text"] = target["text"]
        if "abs" in target:
            value = row["median"]
        elif "against" in target:
            other = _find(fig, target["against"], row.get("case"))
            if other is None:
                continue
            value = row["median"] / other["median"]
            if fig["better"] == "lower":
                value = 1 / value           # "times faster"
            row["vs_" + target["against"]] = value
        else:
            value = row["ratio"]
        if value is None:
            continue
        op, goal = target["op"], target.get("abs", target.get("ratio"))
        ok = {"<=": value <= goal, ">=": value >= goal, ">": value > goal,
              "<": value < goal, "within": abs(value - 1) <= goal}[op]
        row["verdict"] = "meets" if ok else "misses"
    return fig


# --- the table -----------------------------------------------------------------------

def _num(x, unit=""):
    if x is None:
        return "-"
    if unit == "msg/s" or abs(x) >= 10000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def table(results: list[dict]) -> str:
    head = ["pair", "case", "median", "p99", "n", "× base", "target", "verdict"]
    lines = []
    for fig in results:
        lines.append("")
        if "error" in fig:
            lines.append(f"## {fig['id']}: FAILED: {fig['error']}")
            continue
        base = fig.get("baseline")
        ratio = f"× base = median / median of {base}" if base else "no baseline"
        lines.append(f"## {fig['title']}  [{fig['unit']}, {fig['better']} is better; "
                     f"{ratio}]")
        body = []
        for row in fig["rows"]:
            verdict = row.get("verdict") or ""
            target = row.get("target_text", "")
            if "vs_erlang_py" in row:
                verdict = f"{verdict} ({row['vs_erlang_py']:.2f}× erlang_py)"
            body.append([row["pair"], row.get("case") or "", _num(row["median"], fig["unit"]),
                         _num(row.get("p99"), fig["unit"]), str(row["n"]),
                         f"{row['ratio']:.2f}" if row.get("ratio") is not None else "-",
                         target, verdict])
        widths = [max(len(r[i]) for r in body + [head]) for i in range(len(head))]
        fmt = lambda r: "  ".join(c.rjust(w) if 2 <= i <= 5 else c.ljust(w)
                                  for i, (c, w) in enumerate(zip(r, widths))).rstrip()
        lines.append(fmt(head))
        lines.append(fmt(["-" * w for w in widths]))
        lines += [fmt(r) for r in body]
        checks = {k: v for k, v in fig.get("checks", {}).items() if v}
        bad = {k: v for k, v in checks.items()
               if (isinstance(v, dict) and any(v.values())) or
               (not isinstance(v, dict) and v)}
        if bad:
            lines.append(f"   CHECK FAILED: {bad}")
        for note in fig.get("notes", []):
            lines.append(f"   · {note}")
    return "\n".join(lines)


# --- running -------------------------------------------------------------------------

def _otp_release() -> str | None:
    if not HAVE_ERLANG:
        return None
    try:
        out = subprocess.run(["erl", "-noshell", "-eval",
                              'io:format("~s", [erlang:system_info(otp_release)]), halt().'],
                             capture_output=True, text=True, timeout=30)
        return out.stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        return None


def run(only: list[str], budgets: dict, out_path: Path | None) -> int:
    started = time.time()
    meta = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "python": platform.python_version(), "otp": _otp_release(),
            "platform": platform.platform(), "cpus": os.cpu_count(),
            "loadavg_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
            "budgets": {k: budgets[k] for k in only}}
    if not HAVE_ERLANG:
        log("erl/epmd/erlc not found: clusterkit is measured alone, with no ratios "
            "(install erlang-base to compare)")
    results: list[dict] = []
    interrupted = False
    failed = False
    session = Session()
    try:
        session.start_epmd()
        log(f"private epmd on port {session.epmd_port}")
        for fid in only:
            t0 = time.monotonic()
            log(f"{fid} ...")
            try:
                out = getattr(figures, {"round_trip": "round_trip"}.get(fid, fid))(
                    session, log=log, **budgets[fid])
            except BenchError as exc:
                failed = True
                log(f"{fid} failed: {exc}")
                results.append({"id": fid, "error": str(exc)})
                continue
            for fig in out.get("figures", [out]):
                fig["seconds"] = round(time.monotonic() - t0, 1)
                results.append(annotate(fig))
            log(f"{fid} done in {time.monotonic() - t0:.0f} s")
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted: stopping every process started")
    except Exception:
        failed = True
        traceback.print_exc()
    finally:
        session.close()
    meta["seconds"] = round(time.time() - started, 1)
    meta["loadavg_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    meta["interrupted"] = interrupted
    if out_path is not None:            # first, so that a closed stdout cannot lose it
        out_path.write_text(json.dumps({"meta": meta, "figures": results}, indent=1,
                                       ensure_ascii=False) + "\n")
    print(table(results))
    print(f"\n{meta['seconds']:.0f} s; Python {meta['python']}, OTP {meta['otp']}, "
          f"{meta['cpus']} CPUs, load {meta['loadavg_start'][0]:.2f} at start"
          if meta["loadavg_start"] else "")
    if out_path is not None:
        print(f"results: {out_path}")
    if interrupted:
        return 130
    return 1 if failed else 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", help="comma-separated figures: " + ",".join(ORDER))
    p.add_argument("--quick", action="store_true",
                   help="tiny counts: checks that everything runs; the numbers mean little")
    p.add_argument("--out", default=str(HERE / "results.json"),
                   help="where to write the JSON results ('-' for nowhere)")
    args = p.parse_args(argv)
    only = ORDER if not args.only else [f.strip() for f in args.only.split(",") if f.strip()]
    unknown = [f for f in only if f not in ORDER]
    if unknown:
        p.error(f"unknown figure(s) {', '.join(unknown)}; choose from {', '.join(ORDER)}")
    install_signal_handlers()
    out = None if args.out == "-" else Path(args.out)
    return run(only, QUICK if args.quick else FULL, out)


if __name__ == "__main__":
    sys.exit(main())
