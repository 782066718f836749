"""Shared by the benchmarks: generate realistic traffic files once, measure peak RSS."""

from __future__ import annotations

import os
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from node.sim.accesslog import combined_line  # noqa: E402

CACHE = Path(os.environ.get("PALISADE_BENCH_DIR", "/tmp/palisade-bench"))


def sim_log(min_records: int, seed: int = 11) -> Path:
    """A combined log of at least `min_records` simulated requests (humans and every bot
    family), generated once and cached."""
    from node.sim import Scenario, simulate, to_records

    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"sim-{min_records}-{seed}.log"
    if path.exists():
        return path
    scale = max(1.0, min_records / 56_000 * 1.05)
    tmp = path.with_suffix(".tmp")
    n = 0
    with open(tmp, "w") as f:
        for r in to_records(simulate(Scenario.default(scale=scale, seed=seed)), seed=seed):
            f.write(combined_line(r))
            n += 1
    if n < min_records:
        raise SystemExit(f"simulator produced {n} records, fewer than {min_records}")
    tmp.rename(path)
    return path


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
