"""Replay throughput: the full engine vs merely parsing the same file, measured in one run.

    python bench/replay.py [--records 200000] [--rounds 3]

Generates (once, cached in /tmp/palisade-bench) a realistic mixed nginx combined log from the
traffic simulator — humans, shared IPs and every bot family — then times, alternately,
`LogReader` alone and `replay()` (reader + engine + decisions). Prints records/s of each (best
round, CPU time of this process) and the ratio. Target: >= 50,000 records/s for the full
engine on one core.
"""

from __future__ import annotations

import argparse
import time

from _common import sim_log

from node.config import load_config
from node.logs import LogReader
from node.replay import replay


def parse_only(path: str) -> tuple[int, float]:
    t = time.process_time()
    n = sum(1 for _ in LogReader([path]))
    return n, time.process_time() - t


def full_engine(path: str) -> tuple[int, float, int]:
    cfg = load_config(None)
    t = time.process_time()
    res = replay([path], cfg)
    return res.records, time.process_time() - t, len(res.decisions)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    path = str(sim_log(args.records))
    best_parse = best_full = float("inf")
    n = decisions = 0
    for _ in range(args.rounds):           # interleaved: load on the machine hits both alike
        n, t = parse_only(path)
        best_parse = min(best_parse, t)
        n2, t2, decisions = full_engine(path)
        best_full = min(best_full, t2)
    parse_rate = n / best_parse
    full_rate = n / best_full
    print(f"file: {path} ({n:,} records)")
    print(f"parse only : {parse_rate:>10,.0f} records/s  ({1e6 / parse_rate:.1f} µs/record)")
    print(f"full engine: {full_rate:>10,.0f} records/s  ({1e6 / full_rate:.1f} µs/record, "
          f"{decisions} detections)")
    print(f"ratio full/parse: {full_rate / parse_rate:.2f}; engine alone ≈ "
          f"{1e6 / full_rate - 1e6 / parse_rate:.1f} µs/record; target >= 50,000 records/s: "
          f"{'met' if full_rate >= 50_000 else 'NOT met'}")


if __name__ == "__main__":
    main()
