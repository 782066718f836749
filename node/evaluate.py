"""Score detections against ground truth: recall, precision, false-positive rate on humans
and time to detection, per bot type (`palisade replay --truth LABELS.json`).

Truth is the simulator's format (`python -m node.sim --truth`): `{"ips": {ip: label},
"sessions": {sid: label}, "actors": {id: {"label", "family", "ips", "first_ts", "requests"}}}`
with label "human" or a bot type. A detection covers the addresses in its `ips` (IP-level
reactions) or one session (`deny_session`); monitor-only detections count as detections but
block nobody.
"""

from __future__ import annotations

import ipaddress
import json
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, TextIO

from node.config import BOT_TYPES
from node.engine import Decision
from node.errors import InputError

IP_REACTIONS = ("denylist", "graylist")


def load_truth(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            truth = json.load(f)
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None
    except ValueError as e:
        raise InputError(f"{path}: not JSON: {e}") from None
    if not isinstance(truth, dict) or not isinstance(truth.get("actors"), dict):
        raise InputError(f"{path}: expected an object with an 'actors' mapping")
    return truth


@dataclass
class TypeScore:
    actors: int = 0
    detected: int = 0            # detected as any bot type
    typed: int = 0               # detected as this bot type
    decisions: int = 0           # decisions of this type
    correct: int = 0             # ... whose actor is a bot
    ttd_requests: list[int] = field(default_factory=list)
    ttd_seconds: list[float] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.detected / self.actors if self.actors else 0.0

    @property
    def precision(self) -> float:
        return self.correct / self.decisions if self.decisions else 1.0


@dataclass
class Evaluation:
    types: dict[str, TypeScore]
    families: dict[str, TypeScore]       # the same per simulator family (bots only)
    human_ips: int
    human_ips_blocked: set[str]          # humans' addresses hit by an IP-level reaction
    human_sessions_denied: int
    humans_detected: int                 # human actors with any detection (monitor included)
    human_actors: int
    shared_human_ips_blocked: set[str]   # of those, addresses several humans share


def _cover(ip: str, nets: list) -> bool:
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(a in n for n in nets)


def evaluate_against(decisions: list[Decision], truth: dict[str, Any]) -> Evaluation:
    actors = truth["actors"]
    ip_actors: dict[str, list[str]] = defaultdict(list)
    for aid, a in actors.items():
        for ip in a.get("ips", []):
            ip_actors[ip].append(aid)
    session_label = truth.get("sessions", {})
    # Which actors each decision reaches, and whether it blocks them at IP level.
    hit: dict[str, list[Decision]] = defaultdict(list)
    human_ips_blocked: set[str] = set()
    human_sessions_denied = 0
    types = {t: TypeScore() for t in BOT_TYPES}
    families: dict[str, TypeScore] = {}
    for d in decisions:
        reached: set[str] = set()
        if d.reaction == "deny_session" or d.reaction == "monitor":
            reached.update(a for a in ip_actors.get(d.ip, [])
                           if d.session is None or d.session not in session_label
                           or session_label[d.session] == actors[a]["label"])
            if d.reaction == "deny_session" and session_label.get(d.session) == "human":
                human_sessions_denied += 1
        for target in d.ips:
            if "/" in target:
                net = ipaddress.ip_network(target, strict=False)
                covered = [ip for ip in ip_actors if _cover(ip, [net])]
            else:
                covered = [target]
            for ip in covered:
                reached.update(ip_actors.get(ip, []))
                if d.reaction in IP_REACTIONS and any(
                        actors[a]["label"] == "human" for a in ip_actors.get(ip, [])):
                    human_ips_blocked.add(ip)
        ts = types.setdefault(d.bot_type, TypeScore())
        ts.decisions += 1
        if any(actors[a]["label"] != "human" for a in reached):
            ts.correct += 1
        for a in reached:
            hit[a].append(d)
    humans_detected = 0
    human_actors = 0
    for aid, a in actors.items():
        label = a["label"]
        if label == "human":
            human_actors += 1
            humans_detected += bool(hit.get(aid))
            continue
        fs = families.setdefault(a.get("family", label), TypeScore())
        for ts in (types.setdefault(label, TypeScore()), fs):
            ts.actors += 1
            ds = hit.get(aid)
            if not ds:
                continue
            ts.detected += 1
            if any(d.bot_type == label for d in ds):
                ts.typed += 1
            first = min(ds, key=lambda d: d.ts)
            ts.ttd_seconds.append(max(0.0, first.ts - a.get("first_ts", first.ts)))
            ts.ttd_requests.append(first.ttd_requests)
    human_ips = {ip for ip, ids in ip_actors.items()
                 if any(actors[a]["label"] == "human" for a in ids)}
    shared = {ip for ip in human_ips_blocked
              if sum(actors[a]["label"] == "human" for a in ip_actors[ip]) > 1}
    return Evaluation(types, families, len(human_ips), human_ips_blocked,
                      human_sessions_denied, humans_detected, human_actors, shared)


def print_evaluation(ev: Evaluation, out: TextIO) -> None:
    w = out.write
    w("\nEvaluation against ground truth:\n")
    w(f"  {'bot type':<22} {'actors':>6} {'recall':>7} {'typed':>6} {'precision':>9} "
      f"{'TTD median':>16}\n")
    for t in BOT_TYPES:
        s = ev.types.get(t)
        if s is None or (not s.actors and not s.decisions):
            continue
        ttd = (f"{statistics.median(s.ttd_requests):.0f}r/"
               f"{statistics.median(s.ttd_seconds):.0f}s") if s.ttd_requests else "-"
        w(f"  {t:<22} {s.actors:>6} {s.recall:>7.3f} {s.typed:>6} {s.precision:>9.3f} "
          f"{ttd:>16}\n")
    fpr = len(ev.human_ips_blocked) / ev.human_ips if ev.human_ips else 0.0
    w(f"  human IPs blocked at IP level: {len(ev.human_ips_blocked)} of {ev.human_ips} "
      f"(false-positive rate {100 * fpr:.2f} %), shared human IPs blocked: "
      f"{len(ev.shared_human_ips_blocked)}\n")
    w(f"  human sessions denied: {ev.human_sessions_denied}; human actors with any detection "
      f"(monitor included): {ev.humans_detected} of {ev.human_actors}\n")
    if ev.families:
        w("  per family (detected/actors, time to detection median and max):\n")
        for name, s in sorted(ev.families.items()):
            ttd = (f"{statistics.median(s.ttd_seconds):.0f}s / {max(s.ttd_seconds):.0f}s"
                   if s.ttd_seconds else "-")
            w(f"    {name:<28} {s.detected:>3}/{s.actors:<3} {ttd:>16}\n")
