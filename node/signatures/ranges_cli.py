"""`palisade ranges`: update, show and query the cloud providers' ranges (node.signatures.cloud).

`update` reads providers' published files and writes a ranges file (by default
`<state-dir>/cloud_ranges.txt`); each provider in the files replaces that provider's ranges,
the others are kept from the existing file or the packaged data. Point `engine.cloud_ranges`
at the file to use it; no release is needed.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from node.signatures import cloud

DEFAULT_STATE_DIR = os.environ.get("PALISADE_STATE_DIR", "state")


def add_ranges_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("ranges", help="update or look up cloud providers' ranges",
                              description=__doc__.strip().splitlines()[0])
    sub = p.add_subparsers(dest="ranges_cmd", required=True, metavar="ACTION")
    u = sub.add_parser("update", help="read providers' published files into a ranges file")
    u.add_argument("files", nargs="+", metavar="FILE",
                   help="ip-ranges.json, cloud.json, ServiceTags_Public_*.json, "
                        "public_ip_ranges.json, a CIDR list or geofeed CSV (with --provider)")
    u.add_argument("--provider", help="whose a CIDR list / CSV is (e.g. hetzner)")
    u.add_argument("-o", "--out", help="ranges file to write "
                   "(default: <state-dir>/cloud_ranges.txt)")
    u.add_argument("--state-dir", default=DEFAULT_STATE_DIR,
                   help="node state directory (default: $PALISADE_STATE_DIR or ./state)")
    for name, text in (("show", "providers with their networks and publication dates"),
                       ("lookup", "the provider of each address")):
        s = sub.add_parser(name, help=text)
        if name == "lookup":
            s.add_argument("ips", nargs="+", metavar="IP")
        s.add_argument("--file", help="a ranges file (default: the packaged ranges)")
    return p


def ranges_command(args: argparse.Namespace) -> int:
    if args.ranges_cmd == "update":
        out = args.out or os.path.join(args.state_dir, cloud.DATA_FILE)
        base = cloud.load(out) if os.path.exists(out) else cloud.default_ranges()
        update = [p for f in args.files for p in cloud.parse_published(f, args.provider)]
        merged = base.merged(update)
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        cloud.write(merged, out)
        names = {p.name for p in update}
        for line in merged.summary():
            print(("updated " if line.split(":", 1)[0] in names else "kept    ") + line)
        print(f"wrote {out}; the node reads it with engine.cloud_ranges: {out}")
        return 0
    ranges = cloud.load(args.file) if args.file else cloud.default_ranges()
    if args.ranges_cmd == "show":
        print("\n".join(ranges.summary()))
        return 0
    for ip in args.ips:
        print(f"{ip}\t{ranges.provider(ip) or '-'}")
    return 0
