"""The gossip benchmark's own correctness on a tiny run: meshes form, every row is filled,
every process it started is gone. No timing is asserted."""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.__main__ import annotate  # noqa: E402
from benchmarks.gossip import gossip  # noqa: E402
from benchmarks.harness import HAVE_ERLANG, Session  # noqa: E402


def test_gossip_figure_forms_meshes_and_cleans_up():
    s = Session()
    s.start_epmd()
    try:
        out = gossip(s, sizes=(3,), rounds=1, bound_rounds=1, cpu_window=0.5)
        procs = list(s.procs)
    finally:
        s.close()
    conv, cpu = (annotate(f) for f in out["figures"])
    kinds = ["ck", "erl"] if HAVE_ERLANG else ["ck"]
    after = {r["pair"]: r for r in conv["rows"] if r["case"] == "after last start"}
    for k in kinds:
        assert after[f"{k} N=3"]["n"] == 1 and after[f"{k} N=3"]["ratio"] is not None
        assert after[f"{k} bound"]["median"] > 0
    assert sorted(r["pair"] for r in cpu["rows"]) == sorted(f"{k} N=3" for k in kinds)
    assert all(r["n"] == 3 for r in cpu["rows"])
    assert all(p.poll() is not None for p in procs)
