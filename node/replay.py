"""`palisade replay`: offline detection over access logs or recorded request records."""

from __future__ import annotations

import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import TextIO

from node.config import BOT_TYPES, Config
from node.engine import Baselines, Decision, Engine
from node.errors import InputError
from node.logs import LogReader
from node.term import Progress, escape


@dataclass
class ReplayResult:
    decisions: list[Decision] = field(default_factory=list)
    records: int = 0
    lines: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    engine: Engine | None = None
    formats: list[str] = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    unknown_files: list[str] = field(default_factory=list)


def replay(paths: list[str], config: Config, *, fmt: str | None = None,
           log_format: str | None = None, model: str | None = None, dns: str | None = None,
           on_decision=None, progress: Progress | None = None) -> ReplayResult:
    """Stream every record of `paths` through one engine, in file order."""
    baselines = None
    if model:
        import os

        if os.path.exists(model):
            baselines = Baselines.load(model, config.engine.limits.templates)
    verifier = None
    if dns:
        from node.goodbots import DnsResolver, GoodBotVerifier, SystemResolver

        if dns == "system":
            resolver = SystemResolver()
        else:
            host, _, port = dns.rpartition(":") if dns.count(":") == 1 else (dns, "", "53")
            resolver = DnsResolver(host or dns, int(port or 53))
        verifier = GoodBotVerifier(resolver, sync=True)   # replay may wait: it has no clients
    engine = Engine(config.engine, baselines=baselines, verifier=verifier)
    reader = LogReader(paths, fmt=fmt, log_format=log_format, skip_unknown=len(paths) > 1)
    res = ReplayResult(engine=engine)
    started = time.perf_counter()
    process = engine.process
    n = 0
    for rec in reader:
        n += 1
        ds = process(rec)
        if ds:
            for d in ds:
                res.decisions.append(d)
                if on_decision:
                    on_decision(d)
        if progress is not None and not n & 4095:
            progress.update(reader.bytes_read, reader.total_bytes, n)
    res.stats = engine.stats()
    for d in engine.finish():         # detections still settling at the end of the input
        res.decisions.append(d)
        if on_decision:
            on_decision(d)
    res.stats["decisions"] = engine.decisions
    res.seconds = time.perf_counter() - started
    res.unknown_files = list(reader.unknown_files)
    if not n and reader.unknown_files:
        raise InputError(reader.unknown_files[0])
    res.records = n
    res.lines = reader.lines_read
    res.skipped = dict(reader.skipped)
    res.formats = [f for f in reader.formats if f]
    if progress is not None:
        progress.done()
    if model:
        engine.baselines.save(model)
    return res


def print_summary(res: ReplayResult, out: TextIO, top: int = 10) -> None:
    w = out.write
    by_type: dict[str, set[str]] = defaultdict(set)
    best: dict[str, Decision] = {}
    for d in res.decisions:
        for ip in d.ips:
            by_type[d.bot_type].add(ip)
        cur = best.get(d.ip)
        if cur is None or d.confidence > cur.confidence:
            best[d.ip] = d
    w(f"Read {res.lines} lines ({', '.join(res.formats) or 'no format'}): "
      f"{res.records} records")
    skipped = sum(res.skipped.values())
    if skipped:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(res.skipped.items(),
                                                           key=lambda kv: -kv[1]))
        w(f", {skipped} skipped ({reasons})")
    w(".\n\n")
    if not res.decisions:
        w("No bots detected.\n")
    else:
        w("Bots found per type (distinct addresses):\n")
        for t in BOT_TYPES:
            if by_type.get(t):
                w(f"  {t:<22} {len(by_type[t])}\n")
        reactions = Counter(d.reaction for d in res.decisions)
        w("Reactions: " + ", ".join(f"{k} {v}" for k, v in reactions.most_common()) + "\n\n")
        w(f"Top {min(top, len(best))} addresses by confidence:\n")
        w(f"  {'IP':<40} {'bot type':<21} {'conf':>5} {'TTD':>12}  detectors\n")
        ranked = sorted(best.values(), key=lambda d: (-d.confidence, -d.ttd_requests))
        for d in ranked[:top]:
            dets = ", ".join(f"{n}={v}" for n, v, _ in d.detectors)
            ttd = f"{d.ttd_requests}r/{d.ttd_seconds:.0f}s"
            ip = d.ip if len(d.ips) <= 1 else f"{d.ip} (+{len(d.ips) - 1})"
            w(f"  {escape(ip):<40} {d.bot_type:<21} {d.confidence:>5.2f} {ttd:>12}  "
              f"{escape(dets)}\n")
    for msg in res.unknown_files:
        w(f"skipped file: {escape(msg)}\n")
    st = res.stats
    rate = res.records / res.seconds if res.seconds > 0 else 0.0
    w(f"\n{res.records} records in {res.seconds:.2f} s: {rate:,.0f} records/s; "
      f"{len(res.decisions)} detections; sessions tracked at end {st.get('sessions', 0)}, "
      f"evicted {sum(st.get('evictions', {}).values())}.\n")


def run(args) -> int:
    from node.config import load_config

    config = load_config(args.config)
    out = sys.stdout
    progress = Progress(sys.stderr) if sys.stderr.isatty() and not args.no_progress else None

    def emit(d: Decision) -> None:
        out.write(d.to_json() + "\n")

    res = replay(args.files, config, fmt=args.format, log_format=args.log_format,
                 model=args.model, dns=args.dns, on_decision=emit if args.json else None,
                 progress=progress)
    if args.json:
        rate = res.records / res.seconds if res.seconds > 0 else 0.0
        skipped = sum(res.skipped.values())
        sys.stderr.write(f"palisade replay: {res.records} records, {skipped} lines skipped, "
                         f"{len(res.decisions)} detections, {rate:,.0f} records/s\n")
    else:
        print_summary(res, out, top=args.top)
    if getattr(args, "truth", None):
        from node.evaluate import evaluate_against, evaluation_dict, load_truth, print_evaluation

        report = evaluate_against(res.decisions, load_truth(args.truth))
        print_evaluation(report, sys.stderr if args.json else out)
        if args.json:  # the summary as the last line, beside the detections
            import json

            out.write(json.dumps({"evaluation": evaluation_dict(report)}) + "\n")
    return 0
