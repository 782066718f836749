"""Cloud ranges: load time of the packaged file and cost of `provider(ip)`, against a linear
scan of the same networks with `ipaddress` (the baseline), measured in the same run.

    python bench/cloud_ranges.py
"""

from __future__ import annotations

import ipaddress
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from node.iplists.matcher import format_network  # noqa: E402
from node.signatures import cloud  # noqa: E402


def main() -> None:
    t = time.perf_counter()
    ranges = cloud.loads(cloud.resources.files("node").joinpath(
        "data", cloud.DATA_FILE).read_text(encoding="utf-8"))
    load_s = time.perf_counter() - t
    rng = random.Random(7)
    # Half inside some provider's range, half random public IPv4 (mostly no provider).
    inside = [format_network(k).split("/")[0] for p in ranges.providers.values()
              for k in p.networks if k.version == 4]
    ips = [rng.choice(inside) for _ in range(5000)] + [
        str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(5000)]
    t = time.perf_counter()
    hits = sum(ranges.provider(ip) is not None for ip in ips)
    fast = (time.perf_counter() - t) / len(ips)
    nets = [(ipaddress.ip_network(format_network(k)), p.name)
            for p in ranges.providers.values() for k in p.networks if k.version == 4]
    sample = ips[::50]
    t = time.perf_counter()
    for ip in sample:
        a = ipaddress.ip_address(ip)
        next((name for net, name in nets if a in net), None)
    slow = (time.perf_counter() - t) / len(sample)
    print(f"networks: {len(ranges.matcher)} in {len(ranges.providers)} providers, "
          f"loaded in {load_s * 1000:.0f} ms")
    print(f"provider(ip): {fast * 1e6:.2f} us per lookup ({hits} of {len(ips)} hit); "
          f"linear ipaddress scan: {slow * 1e6:.0f} us; ratio {slow / fast:.0f}x")


if __name__ == "__main__":
    main()
