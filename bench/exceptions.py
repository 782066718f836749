"""Engine cost of the exception list: records/s with 0, 10, 1,000 and 10,000 exception
networks, in one run, as a ratio to the empty list.

    python bench/exceptions.py [--records 60000] [--rounds 3]

The engine checks every decision's address against the list (node/engine/core.py
`_excepted`, a NetMatcher: one dict probe per prefix length present). Records: simulated
humans and bots (node.sim), none of them on the list, so every lookup misses — the
worst case for a scan.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from ipaddress import ip_network
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from node.config.model import EngineConfig  # noqa: E402
from node.engine import Engine  # noqa: E402
from node.sim import Scenario, simulate, to_records  # noqa: E402


def exceptions(n: int) -> tuple:
    """n networks of mixed prefix lengths, v4 and v6, none holding a simulated client."""
    nets = []
    for i in range(n):
        if i % 4 == 3:
            nets.append(ip_network(f"2001:db8:ffff:{i:x}::/64"))
        else:
            nets.append(ip_network(f"100.{64 + (i >> 16) % 64}.{(i >> 8) % 256}.{i % 256}"
                                   + ("/32", "/30", "/28")[i % 3], strict=False))
    return tuple(nets)


def rate(records: list, n: int) -> float:
    eng = Engine(EngineConfig(exceptions=exceptions(n)))
    t = time.process_time()
    for r in records:
        eng.process(r)
    return len(records) / (time.process_time() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=60_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    sc = Scenario.default(scale=max(0.2, args.records / 56_000), seed=5)
    records = list(itertools.islice(to_records(simulate(sc), seed=5), args.records))
    sizes = (0, 10, 1000, 10_000)
    best = dict.fromkeys(sizes, 0.0)
    for _ in range(args.rounds):            # interleaved: the machine's noise hits all alike
        for n in sizes:
            best[n] = max(best[n], rate(records, n))
    print(f"{len(records):,} records, best of {args.rounds} interleaved rounds (CPU time)")
    print(f"{'exceptions':>10} {'records/s':>10} {'vs none':>8}")
    for n in sizes:
        print(f"{n:>10,} {best[n]:>10,.0f} {best[n] / best[0]:>8.2f}")


if __name__ == "__main__":
    main()
