"""What each console page shows, gathered from storage (the same calls the JSON API makes).

One coroutine per page returns plain data; the page handlers render it and `bench/console.py`
times it. Nothing here formats or escapes: templates do that.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from node.control.storage.base import BOT_TYPES, LISTS, Storage

NODE_STALE_SECONDS = 60.0        # as the API's /nodes: no contact for a minute = stale
SESSION_ROWS = 3000              # a session's requests read for in-session filters and stats
PEERS = 30                       # heatmap: this bot and up to 30 most suspicious others


@dataclass(frozen=True, slots=True)
class ProfileView:
    """A profile as the console shows it (read-only), from the engine configuration."""

    name: str
    applications: tuple[str, ...]
    bot_types: tuple[str, ...]
    tolerance: str
    reactions: tuple[tuple[str, str, float | None], ...]   # (bot type, action, duration)

    def covers(self, app: str) -> bool:
        from fnmatch import fnmatchcase

        return any(fnmatchcase(app, p) for p in self.applications)


def profile_views(engine: Any) -> tuple[ProfileView, ...]:
    """Profiles of a node.config EngineConfig (duck-typed: anything with `.profiles`)."""
    out = []
    for p in getattr(engine, "profiles", ()) or ():
        reactions = tuple((t, r.action, r.duration) for t, r in sorted(p.reactions.items())
                          if t in p.bot_types)
        out.append(ProfileView(p.name, tuple(p.applications), tuple(sorted(p.bot_types)),
                               p.tolerance, reactions))
    return tuple(out)


# -- Statistics -------------------------------------------------------------------------------
async def statistics_data(storage: Storage, *, now: float, days: int, app: str | None,
                          min_requests: int) -> dict[str, Any]:
    stats = await storage.statistics(now=now, days=days, app=app, min_requests=min_requests)
    by_type: Counter[str] = Counter()
    for day in stats["timeline"]:
        by_type.update(day["by_type"])
    stats["by_type"] = [(t, by_type.get(t, 0)) for t in BOT_TYPES]
    top = stats["patterns"][0]["fired"] if stats["patterns"] else 0
    for p in stats["patterns"]:
        p["share"] = p["fired"] / top if top else 0.0
    return stats


# -- Attacks ----------------------------------------------------------------------------------
async def attacks_data(storage: Storage, *, bot_type: str | None, ip: str | None,
                       app: str | None, since: float | None, until: float | None,
                       detector: str | None, limit: int, offset: int) -> dict[str, Any]:
    page = await storage.query_attacks(bot_type=bot_type, ip=ip, app=app, since=since,
                                       until=until, limit=limit, offset=offset,
                                       detector=detector)
    return {"items": page.items, "next_offset": page.next_offset}


async def attack_data(storage: Storage, attack_id: int, *, now: float) -> dict[str, Any] | None:
    """One attack with its detail, its heatmap peers, where its IP is listed now and the
    session it came from (for "Explore in API Sessions")."""
    attack = await storage.get_attack(attack_id)
    if attack is None:
        return None
    detail = attack.pop("detail")
    peers: list[dict[str, Any]] = []
    if detail is not None:
        peers = await storage.heatmap_peers(attack["app"], attack["ts"] - 86400.0,
                                            attack["id"], PEERS)
    evidence = (detail or {}).get("evidence") or []
    listed, session_id = await asyncio.gather(
        _listed(storage, attack["ip"], now), _find_session(storage, attack, evidence))
    return {"attack": attack, "detail": detail, "peers": peers, "listed": listed,
            "session_id": session_id}


async def _listed(storage: Storage, ip: str, now: float) -> dict[str, dict[str, Any]]:
    out = {}
    for name in LISTS:
        page = await storage.list_entries(name, q=ip, limit=20, offset=0, now=now)
        for e in page.items:
            if e["cidr"] == ip:
                out[name] = e
    return out


async def _find_session(storage: Storage, attack: dict[str, Any], evidence: list[Any]
                        ) -> int | None:
    """The stored session of an attack, or None: the one holding its last evidence request,
    else the one with its session key among its IP's (a session may change IP)."""
    if not attack.get("session"):
        return None
    if evidence:
        page = await storage.query_sessions(
            since=None, until=None, ip=None, app=attack["app"], request_id=str(evidence[-1]),
            method=None, status=None, bot_type=None, limit=5, offset=0)
        for s in page.items:
            if s["session_id"] == attack["session"]:
                return int(s["id"])
    page = await storage.query_sessions(
        since=attack["ts"] - 86400.0, until=None, ip=attack["ip"], app=attack["app"],
        request_id=None, method=None, status=None, bot_type=None, limit=200, offset=0)
    for s in page.items:
        if s["session_id"] == attack["session"]:
            return int(s["id"])
    return None


# -- API sessions -----------------------------------------------------------------------------
async def sessions_data(storage: Storage, *, since: float | None, until: float | None,
                        ip: str | None, app: str | None, request_id: str | None,
                        method: str | None, status: int | None, bot_type: str | None,
                        limit: int, offset: int) -> dict[str, Any]:
    page = await storage.query_sessions(
        since=since, until=until, ip=ip, app=app, request_id=request_id, method=method,
        status=status, bot_type=bot_type, limit=limit, offset=offset)
    for s in page.items:
        st = s.get("statuses") or {}
        s["errors"] = sum(int(n) for code, n in st.items() if str(code)[:1] in ("4", "5"))
        s["duration"] = max(0.0, s["last_ts"] - s["first_ts"])
    return {"items": page.items, "next_offset": page.next_offset}


@dataclass(frozen=True, slots=True)
class RequestFilter:
    """In-session filters: method, status ("404" or a class "4xx"), IP, attack type
    ("any" = any attack, "none" = unmarked)."""

    method: str | None = None
    status: str | None = None
    ip: str | None = None
    attack: str | None = None

    @property
    def active(self) -> bool:
        return any((self.method, self.status, self.ip, self.attack))

    def match(self, r: dict[str, Any]) -> bool:
        if self.method and r["method"] != self.method:
            return False
        if self.status:
            code = str(r["status"])
            if self.status.endswith("xx"):
                if code[:1] != self.status[0]:
                    return False
            elif code != self.status:
                return False
        if self.ip and r["ip"] != self.ip:
            return False
        if self.attack == "any":
            return r.get("attack") is not None
        if self.attack == "none":
            return r.get("attack") is None
        return not (self.attack and r.get("attack") != self.attack)


async def session_data(storage: Storage, sid: int, *, usual_since: float,
                       where: RequestFilter) -> dict[str, Any] | None:
    """A session, its requests (up to SESSION_ROWS) beside each endpoint's usual time and
    size, filtered in-session, with statistics of the filtered requests."""
    session = await storage.get_session(sid)
    if session is None:
        return None
    page = await storage.session_requests(sid, limit=SESSION_ROWS, offset=0)
    rows = page.items
    usual = await storage.endpoint_usual(session["app"], [r["path"] for r in rows],
                                         usual_since)
    for i, r in enumerate(rows, 1):
        r["n"] = i
        r["usual"] = usual.get(r["path"])
    shown = [r for r in rows if where.match(r)] if where.active else rows
    return {"session": session, "requests": shown, "all": len(rows),
            "truncated": page.next_offset is not None, "stats": request_stats(shown),
            "choices": _choices(rows)}


def request_stats(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Distribution of a set of requests: methods, status classes, endpoints, time, size.
    One pass: a session page computes it over up to SESSION_ROWS requests."""
    methods: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    paths: Counter[str] = Counter()
    attacks: Counter[str] = Counter()
    dur_sum, dur_n, dur_max = 0.0, 0, None
    resp = req = blocked = slow = heavy = 0
    for r in rows:
        methods[r["method"]] += 1
        statuses[f"{str(r['status'])[:1]}xx"] += 1
        paths[r["path"]] += 1
        if r.get("attack"):
            attacks[r["attack"]] += 1
        d = r["duration_ms"]
        u = r.get("usual") or {}
        if d is not None:
            dur_sum += d
            dur_n += 1
            dur_max = d if dur_max is None or d > dur_max else dur_max
            if _outlier(d, u.get("avg_duration_ms"), 10.0):
                slow += 1
        resp += r["resp_bytes"]
        req += r["req_bytes"]
        if _outlier(r["resp_bytes"], u.get("avg_resp_bytes"), 1024):
            heavy += 1
        if r.get("blocked"):
            blocked += 1
    return {
        "requests": len(rows), "methods": methods.most_common(),
        "statuses": sorted(statuses.items()), "endpoints": paths.most_common(8),
        "distinct_endpoints": len(paths), "attacks": attacks.most_common(),
        "avg_duration_ms": dur_sum / dur_n if dur_n else None, "max_duration_ms": dur_max,
        "resp_bytes": resp, "req_bytes": req, "blocked": blocked, "slow": slow,
        "heavy": heavy,
        "first_ts": rows[0]["ts"] if rows else None, "last_ts": rows[-1]["ts"] if rows else None,
    }


OUTLIER = 3.0   # a request this many times its endpoint's usual value stands out


def _outlier(value: float | None, usual: float | None, floor: float) -> bool:
    """Well above the usual value, and above a floor (3 ms vs 1 ms usual is not news)."""
    return (value is not None and usual is not None and value >= floor
            and value >= OUTLIER * max(usual, 1e-9))


def outlier_ratio(value: float | None, usual: float | None, floor: float) -> float | None:
    """value / usual when it stands out, else None (for the template's badge)."""
    if not _outlier(value, usual, floor):
        return None
    return float(value) / max(float(usual), 1e-9)  # type: ignore[arg-type]


def _choices(rows: Sequence[dict[str, Any]]) -> dict[str, list[str]]:
    """Values the in-session filters offer: those present in the session."""
    methods, codes, ips, attacks = set(), set(), set(), set()
    for r in rows:
        methods.add(r["method"])
        codes.add(r["status"])
        ips.add(r["ip"])
        if r.get("attack"):
            attacks.add(r["attack"])
    statuses = {str(c) for c in codes} | {f"{str(c)[:1]}xx" for c in codes}
    return {"methods": sorted(methods), "statuses": sorted(statuses), "ips": sorted(ips),
            "attacks": sorted(attacks)}


# -- IP lists ---------------------------------------------------------------------------------
async def lists_data(storage: Storage, *, list_name: str, q: str | None, cidr: str | None,
                     now: float, limit: int, offset: int, history_offset: int
                     ) -> dict[str, Any]:
    entries, history, counts = await asyncio.gather(
        storage.list_entries(list_name, q=q, limit=limit, offset=offset, now=now),
        storage.list_history(list_name=None if cidr else list_name, cidr=cidr, since=None,
                             until=None, limit=limit, offset=history_offset),
        _list_counts(storage, now))
    return {"entries": entries.items, "next_offset": entries.next_offset,
            "history": history.items, "history_next": history.next_offset,
            "counts": counts}


async def _list_counts(storage: Storage, now: float) -> dict[str, int | str]:
    """Live entries per list; past 1000 it says "1000+" (the count is a page, not a scan)."""
    out: dict[str, int | str] = {}
    for name in LISTS:
        page = await storage.list_entries(name, q=None, limit=1000, offset=0, now=now)
        out[name] = f"{len(page.items)}+" if page.next_offset is not None else len(page.items)
    return out


# -- Nodes and profiles -----------------------------------------------------------------------
async def nodes_data(storage: Storage, *, now: float, profiles: Sequence[ProfileView] | None,
                     warmup_requests: int) -> dict[str, Any]:
    nodes, traffic, seen = await asyncio.gather(
        storage.list_nodes(), storage.app_traffic(now=now, days=30),
        _profiles_seen(storage, now))
    for n in nodes:
        n["seconds_since_seen"] = max(0.0, now - n["last_seen"])
        n["status"] = "ok" if n["seconds_since_seen"] <= NODE_STALE_SECONDS else "stale"
    views = []
    if profiles:
        for p in profiles:
            apps = {a: t for a, t in traffic.items() if p.covers(a)}
            total = {k: sum(t[k] for t in apps.values()) for k in ("day", "week", "period")}
            views.append({"profile": p, "apps": apps, "traffic": total,
                          "low": total["week"] < warmup_requests})
    return {"nodes": nodes, "profiles": views, "traffic": traffic, "profiles_seen": seen,
            "configured": profiles is not None}


async def _profiles_seen(storage: Storage, now: float) -> list[str]:
    """Profile names in the last 30 days' detections (shown when no configuration is given)."""
    page = await storage.query_attacks(bot_type=None, ip=None, app=None, since=now - 30 * 86400,
                                       until=None, limit=500, offset=0)
    return sorted({a["profile"] for a in page.items if a.get("profile")})
