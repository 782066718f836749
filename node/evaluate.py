"""Score detections against ground truth: recall, precision, false-positive rate on humans
and time to detection, per bot type, and the same per simulated world
(`palisade replay --truth LABELS.json`).

Truth is the simulator's format (`python -m node.sim --truth`): `{"ips": {ip: label},
"sessions": {sid: label}, "actors": {id: {"label", "family", "world", "kind", "ips",
"first_ts", "requests"}}}` with label "human" or a bot type, kind "person", "integration" (a
customer's program, labelled human) or "bot"; truth without world/kind reads as the shop's
people. A detection covers the addresses in its `ips` (IP-level reactions, and monitor
decisions about an address or a network) or one session (`deny_session`, and monitor
decisions about a session): the actors on the decision's address whose label is the
session's. Monitor-only detections count as detections but block nobody.
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
    worlds: dict[str, WorldScore] = field(default_factory=dict)


def _cover(ip: str, nets: list) -> bool:
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(a in n for n in nets)


@dataclass
class WorldScore:
    """One world's share: recall per bot type, whether an actor's first detection named its
    type, and what the reactions did to its people and its customers' programs."""

    types: dict[str, TypeScore] = field(default_factory=dict)
    bots_detected: int = 0
    first_typed: int = 0         # detected bots whose first detection is of their own type
    persons: int = 0
    person_ips: set[str] = field(default_factory=set)
    person_ips_ip_blocked: set[str] = field(default_factory=set)
    persons_ip_blocked: int = 0
    persons_session_denied: int = 0  # reached by deny_session, no IP-level block
    persons_monitor_only: int = 0    # reached by monitor decisions only
    integrations: int = 0
    integrations_ip_blocked: list[str] = field(default_factory=list)  # actor ids
    integration_families_blocked: dict[str, int] = field(default_factory=dict)
    integrations_session_denied: int = 0
    integrations_monitor_only: int = 0

    @property
    def first_type_accuracy(self) -> float:
        return self.first_typed / self.bots_detected if self.bots_detected else 0.0


def _kind(a: dict[str, Any]) -> str:
    return a.get("kind") or ("person" if a["label"] == "human" else "bot")


def _session_level(d: Decision) -> bool:
    return d.reaction == "deny_session" or (d.reaction == "monitor" and d.actor == "session")


def _world_scores(actors: dict[str, Any], hit: dict[str, list[Decision]],
                  ip_blocked: set[str]) -> dict[str, WorldScore]:
    worlds: dict[str, WorldScore] = {}
    for aid, a in actors.items():
        ws = worlds.setdefault(a.get("world") or "shop", WorldScore())
        ds = hit.get(aid, [])
        kind, label = _kind(a), a["label"]
        if kind == "bot":
            ts = ws.types.setdefault(label, TypeScore())
            ts.actors += 1
            if ds:
                ts.detected += 1
                ws.bots_detected += 1
                first = min(ds, key=lambda d: d.ts)
                ws.first_typed += first.bot_type == label
                ts.typed += any(d.bot_type == label for d in ds)
            continue
        blocked = [ip for ip in a.get("ips", []) if ip in ip_blocked]
        session = not blocked and any(d.reaction == "deny_session" for d in ds)
        monitor = bool(ds) and all(d.reaction == "monitor" for d in ds)
        if kind == "integration":
            ws.integrations += 1
            if blocked:
                ws.integrations_ip_blocked.append(aid)
                fb = ws.integration_families_blocked
                fb[a.get("family", "?")] = fb.get(a.get("family", "?"), 0) + 1
            ws.integrations_session_denied += session
            ws.integrations_monitor_only += monitor
        else:
            ws.persons += 1
            ws.person_ips.update(a.get("ips", []))
            ws.person_ips_ip_blocked.update(blocked)
            ws.persons_ip_blocked += bool(blocked)
            ws.persons_session_denied += session
            ws.persons_monitor_only += monitor
    return worlds


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
    ip_blocked: set[str] = set()  # every address under an IP-level reaction
    for d in decisions:
        reached: set[str] = set()
        if d.reaction == "deny_session" or d.reaction == "monitor":
            reached.update(a for a in ip_actors.get(d.ip, [])
                           if d.session is None or d.session not in session_label
                           or session_label[d.session] == actors[a]["label"])
            if d.reaction == "deny_session" and session_label.get(d.session) == "human":
                human_sessions_denied += 1
        for target in () if _session_level(d) else d.ips:
            if "/" in target:
                net = ipaddress.ip_network(target, strict=False)
                covered = [ip for ip in ip_actors if _cover(ip, [net])]
            else:
                covered = [target]
            for ip in covered:
                reached.update(ip_actors.get(ip, []))
                if d.reaction in IP_REACTIONS:
                    ip_blocked.add(ip)
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
                      human_sessions_denied, humans_detected, human_actors, shared,
                      _world_scores(actors, hit, ip_blocked))


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
    if ev.worlds:
        print_worlds(ev, out)


def print_worlds(ev: Evaluation, out: TextIO) -> None:
    w = out.write
    w("  per world (from the truth's \"world\"; first type: the first detection of an actor "
      "names its label):\n")
    for name, ws in sorted(ev.worlds.items()):
        w(f"    {name}: bots detected {ws.bots_detected}/"
          f"{sum(s.actors for s in ws.types.values())}, first type right "
          f"{ws.first_typed}/{ws.bots_detected} ({100 * ws.first_type_accuracy:.0f} %)\n")
        for t in BOT_TYPES:
            s = ws.types.get(t)
            if s is not None and s.actors:
                w(f"      {t:<22} {s.detected:>3}/{s.actors:<3} recall {s.recall:.3f}, "
                  f"typed {s.typed}\n")
        w(f"      people: {ws.persons} on {len(ws.person_ips)} addresses; IP-level block "
          f"{len(ws.person_ips_ip_blocked)} addresses ({ws.persons_ip_blocked} people), "
          f"session denied {ws.persons_session_denied}, monitor only "
          f"{ws.persons_monitor_only}\n")
        fams = ", ".join(f"{f} {n}" for f, n in sorted(ws.integration_families_blocked.items()))
        w(f"      customer integrations: {ws.integrations}; IP-blocked "
          f"{len(ws.integrations_ip_blocked)}{f' ({fams})' if fams else ''}, session denied "
          f"{ws.integrations_session_denied}, monitor only {ws.integrations_monitor_only}\n")


def world_dict(ws: WorldScore) -> dict[str, Any]:
    return {
        "types": {t: {"actors": s.actors, "detected": s.detected, "recall": s.recall,
                      "typed": s.typed} for t, s in sorted(ws.types.items())},
        "bots_detected": ws.bots_detected, "first_type_right": ws.first_typed,
        "first_type_accuracy": ws.first_type_accuracy,
        "people": ws.persons, "people_ips": len(ws.person_ips),
        "people_ips_ip_blocked": sorted(ws.person_ips_ip_blocked),
        "people_ip_blocked": ws.persons_ip_blocked,
        "people_session_denied": ws.persons_session_denied,
        "people_monitor_only": ws.persons_monitor_only,
        "integrations": ws.integrations,
        "integrations_ip_blocked": sorted(ws.integrations_ip_blocked),
        "integrations_session_denied": ws.integrations_session_denied,
        "integrations_monitor_only": ws.integrations_monitor_only,
    }


def evaluation_dict(ev: Evaluation) -> dict[str, Any]:
    return {
        "types": {t: {"actors": s.actors, "recall": s.recall, "precision": s.precision,
                      "typed": s.typed} for t, s in ev.types.items()},
        "human_ips": ev.human_ips, "human_ips_blocked": sorted(ev.human_ips_blocked),
        "false_positive_rate": len(ev.human_ips_blocked) / ev.human_ips if ev.human_ips else 0,
        "worlds": {name: world_dict(ws) for name, ws in sorted(ev.worlds.items())},
    }
