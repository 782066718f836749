"""Scenarios, the time-ordered merge of actors, records and ground truth."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from node.record import RequestRecord
from node.sim.apikit import Responder
from node.sim.core import BOT_TYPES, HUMAN, REGISTRIES, Actor, Env, Family, Intent, family_of
from node.sim.world import FAMILY_WORLD, WORLDS

DEFAULT_START = 1763900000.0  # 2025-11-23 12:13:20 UTC


def _scaled(count: int, scale: float) -> int:
    # Bots and hard cases keep at least one actor at small scales: every family shows up.
    return 0 if count <= 0 or scale <= 0 else max(1, round(count * scale))


def _families(world: str) -> list[Family]:
    """The families of a world, or of every world ("all", worlds in table order)."""
    if world == "all":
        return [f for w in WORLDS for f in REGISTRIES[w].values()]
    if world not in WORLDS:
        raise ValueError(f"unknown world {world!r}; worlds: {', '.join(WORLDS)}, all")
    return list(REGISTRIES[world].values())


@dataclass(frozen=True, slots=True)
class Scenario:
    """Which families run, how many of each, and when. Build with the class methods."""

    counts: dict[str, int] = field(default_factory=dict)  # family → actors (or groups)
    seed: int = 7
    start: float = DEFAULT_START
    duration: float = 3600.0
    world: str = "shop"  # which world(s) the class methods draw families from, or "all"

    @property
    def host(self) -> str | None:
        """The world's host (None for "all": each record carries its own world's)."""
        w = WORLDS.get(self.world)
        return w.host if w else None

    @classmethod
    def default(cls, scale: float = 1.0, seed: int = 7, start: float = DEFAULT_START,
                duration: float = 3600.0, world: str = "shop") -> Scenario:
        """Every family of the world: for the shop ~500 humans (hard cases included) and a
        few actors of each bot family, ~50-150k requests per hour at scale 1. `scale`
        multiplies actor counts."""
        counts = {f.name: _scaled(f.count, scale) for f in _families(world)}
        return cls(counts, seed, start, duration, world)

    @classmethod
    def humans_only(cls, scale: float = 1.0, seed: int = 7, start: float = DEFAULT_START,
                    duration: float = 3600.0, world: str = "shop") -> Scenario:
        counts = {f.name: _scaled(f.count, scale) for f in _families(world) if f.human}
        return cls(counts, seed, start, duration, world)

    @classmethod
    def only(cls, *names: str, scale: float = 1.0, humans: float = 0.0, seed: int = 7,
             start: float = DEFAULT_START, duration: float = 3600.0,
             world: str = "shop") -> Scenario:
        """The named families or bot types (e.g. "scanner", "account_takeover"), plus human
        background traffic at scale `humans` (0: none)."""
        fams = _families(world)
        known = {f.name for f in fams}
        unknown = [n for n in names if n not in known and n not in BOT_TYPES and n != HUMAN]
        if unknown:
            raise ValueError(f"unknown family or label: {', '.join(unknown)}; "
                             f"families: {', '.join(known)}")
        counts = {}
        for f in fams:
            if f.name in names or f.label in names:
                counts[f.name] = _scaled(f.count, scale)
            elif f.human and humans > 0:
                counts[f.name] = _scaled(f.count, humans)
        return cls(counts, seed, start, duration, world)

    def with_counts(self, **counts: int) -> Scenario:
        """A copy with some families' counts set (0 removes a family)."""
        bad = [n for n in counts if family_of(n) is None]
        if bad:
            raise ValueError(f"unknown family: {', '.join(bad)}")
        return replace(self, counts={**self.counts, **counts})

    @property
    def families(self) -> list[str]:
        return [n for n, c in self.counts.items() if c > 0]

    def labels(self) -> set[str]:
        return {_family(n).label for n in self.families}

    def actors(self) -> list[Actor]:
        envs: dict[str, Env] = {}
        out: list[Actor] = []
        for name, n in self.counts.items():
            if n > 0:
                fam = _family(name)
                env = envs.get(fam.world)
                if env is None:
                    env = envs[fam.world] = Env(self.seed, self.start, self.duration,
                                                WORLDS[fam.world].host)
                out.extend(fam.cls.spawn(env, fam, n))
        return out


def _family(name: str) -> Family:
    f = family_of(name)
    if f is None:
        raise ValueError(f"unknown family: {name}")
    return f


def simulate(sc: Scenario) -> Iterator[Intent]:
    """All actors' intents merged in time order (ties: actor creation order). Memory holds one
    pending intent per started actor; an actor's generator starts at its first event."""
    end = sc.start + sc.duration
    actors = sc.actors()
    # Entries: (ts, seq, intent, iterator) or, before an actor starts, (start, seq, None, actor).
    heap: list[tuple[float, int, Any, Any]] = [(a.start, i, None, a)
                                               for i, a in enumerate(actors)]
    del actors  # finished actors must be freed: only the heap refers to them
    heapq.heapify(heap)
    seq = len(heap)
    while heap:
        _, _, intent, src = heap[0]
        if intent is None:
            src = iter(src.run())
        else:
            yield intent
        nxt = next(src, None)
        if nxt is None or nxt.ts >= end:
            heapq.heappop(heap)
            if nxt is not None:
                src.close()
        else:
            seq += 1
            heapq.heapreplace(heap, (nxt.ts, seq, nxt, src))


def to_records(intents: Iterable[Intent], seed: int = 0, host: str | None = None
               ) -> Iterator[RequestRecord]:
    """Request records as the node would write them in front of each intent's world: status,
    sizes and duration come from that world's model (deterministic for the intents and
    `seed`; one model per world, so a world's records do not depend on the others').
    `host` overrides the world's host name."""
    models: dict[str, tuple[Responder, str]] = {}
    world_of = FAMILY_WORLD.get
    for i, it in enumerate(intents, 1):
        w = world_of(it.family, "shop")
        m = models.get(w)
        if m is None:
            m = models[w] = (WORLDS[w].model(seed), host or WORLDS[w].host)
        respond, rhost = m
        ct = it.headers.get("Content-Type")
        status, size, dur = respond(it)
        yield RequestRecord(
            ts=it.ts, ip=it.ip, method=it.method, host=rhost, path=it.path, query=it.query,
            status=status, req_bytes=len(it.body) if it.body else 0, resp_bytes=size,
            duration_ms=dur, ua=it.ua, session=it.session, user=it.user, id=i,
            referer=it.headers.get("Referer"), content_type=ct,
        )


def truth(sc: Scenario, intents: Iterable[Intent] | None = None) -> dict[str, Any]:
    """Ground truth: {"ips": {ip: label}, "sessions": {sid: label}, "actors": {actor: {"label",
    "family", "world", "kind", "ips", "first_ts", "requests"}}, "mixed_ips": [...]}. `kind`
    is "person", "integration" (a customer's program, label human) or "bot". An address used
    by humans and bots is labelled with the bot type and listed in "mixed_ips" (none by
    default). Re-runs the simulation unless given the same intents."""
    ips: dict[str, str] = {}
    sessions: dict[str, str] = {}
    actors: dict[str, dict[str, Any]] = {}
    mixed: set[str] = set()
    for it in simulate(sc) if intents is None else intents:
        a = actors.get(it.actor)
        if a is None:
            f = family_of(it.family)
            a = actors[it.actor] = {"label": it.label, "family": it.family,
                                    "world": f.world if f else "shop",
                                    "kind": f.kind if f else (
                                        "person" if it.label == HUMAN else "bot"),
                                    "ips": {}, "first_ts": it.ts, "requests": 0}
        a["requests"] += 1
        a["ips"][it.ip] = None
        old = ips.get(it.ip)
        if old is None:
            ips[it.ip] = it.label
        elif old != it.label:
            mixed.add(it.ip)
            if old == HUMAN:
                ips[it.ip] = it.label
        if it.session is not None:
            sessions[it.session] = it.label
    for a in actors.values():
        a["ips"] = list(a["ips"])
    return {"ips": ips, "sessions": sessions, "actors": actors, "mixed_ips": sorted(mixed)}
