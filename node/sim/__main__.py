"""`python -m node.sim`: write simulated request records (JSON lines or an nginx log) and
their ground truth.

    python -m node.sim --scale 1 --seed 7 -o traffic.jsonl --truth truth.json
    python -m node.sim --world payments -o pay.jsonl --truth pay-truth.json
    python -m node.sim --world all --format combined -o access.log --truth truth.json
    python -m node.sim --only scanner --only account_takeover --humans 0.2 -o t.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from node.sim import REGISTRIES, WORLDS, Scenario, simulate, to_records, truth
from node.sim.accesslog import combined_line


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m node.sim", description=__doc__.splitlines()[0])
    p.add_argument("--world", default="shop", choices=[*WORLDS, "all"],
                   help="which API and population (all: every world, each on its own host)")
    p.add_argument("--scale", type=float, default=1.0, help="actor count multiplier")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--start", type=float, default=None, help="unix time of the first second")
    p.add_argument("--duration", type=float, default=3600.0, help="seconds")
    p.add_argument("--only", action="append", metavar="NAME",
                   help="a family or bot type (repeatable); families: "
                        + "; ".join(f"{w}: {', '.join(r)}" for w, r in REGISTRIES.items()))
    p.add_argument("--humans", type=float, default=0.0,
                   help="with --only: human background at this scale")
    p.add_argument("--format", choices=("jsonl", "combined"), default="jsonl",
                   help="jsonl: request records; combined: an nginx access log with "
                        "$request_time (no cookies, users or host)")
    p.add_argument("-o", "--out", default="-", help="records file (default stdout)")
    p.add_argument("--truth", metavar="FILE", help="write ground truth JSON here")
    a = p.parse_args(argv)
    kw = {"seed": a.seed, "duration": a.duration, "world": a.world}
    if a.start is not None:
        kw["start"] = a.start
    try:
        sc = (Scenario.only(*a.only, scale=a.scale, humans=a.humans, **kw) if a.only
              else Scenario.default(scale=a.scale, **kw))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    intents = list(simulate(sc)) if a.truth else simulate(sc)
    try:
        out = sys.stdout if a.out == "-" else open(a.out, "w", encoding="utf-8")
    except OSError as e:
        print(f"error: {a.out}: {e.strerror or e}", file=sys.stderr)
        return 2
    line = combined_line if a.format == "combined" else (lambda r: r.to_json() + "\n")
    n = 0
    try:
        for r in to_records(intents, seed=a.seed):
            out.write(line(r))
            n += 1
    finally:
        if out is not sys.stdout:
            out.close()
    if a.truth:
        with open(a.truth, "w", encoding="utf-8") as f:
            json.dump(truth(sc, intents), f)
    dt = time.perf_counter() - t0
    print(f"{n} records in {dt:.1f} s ({n / dt:.0f}/s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
