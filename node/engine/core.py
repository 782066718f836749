"""The detection engine: request records → actors (session, IP, IPv6 network) → detectors →
confidence per bot type → decisions. No mitmproxy, no wall clock: time is the records' `ts`.

Per request the engine does O(1) work: a few dict lookups, the actors' running counters, and
the observing detectors' O(1) updates. Full evaluation of an actor (every detector, then the
scorer) runs at checkpoints — its 2nd, 3rd, 5th, 8th, 12th request, then every 8th — and
whenever a signature detector asks for it (a probe, an attack tool's user agent).
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from node.appmatch import AppRouter, AuthMatcher, auth_result
from node.config.model import BOT_TYPES, Application, EngineConfig, Profile
from node.detectors import DETECTORS, Detector
from node.engine.actor import Actor, ActorTable
from node.engine.baselines import Baselines
from node.engine.context import EngineContext, Event
from node.engine.decision import Decision
from node.engine.sketch import hll_count, hll_pos
from node.engine.templates import TemplateInferrer
from node.record import RequestRecord

_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
_EARLY = frozenset({4, 12})
_NO_DECISIONS: list[Decision] = []
_TYPE_INDEX = {t: i for i, t in enumerate(BOT_TYPES)}
HUMAN_MIN_REQUESTS = 6       # a session looks human only after this many requests ...
HUMAN_MAX_CONFIDENCE = 0.25  # ... while no bot type comes near a decision
IP_DECIDED_CAP = 100_000


def _checkpoint(n: int) -> bool:
    return n in _EARLY or (n >= 16 and not n & 15)


class Engine:
    """Feed records in time order with `process()`; it returns the decisions they trigger."""

    def __init__(self, config: EngineConfig | None = None, *,
                 baselines: Baselines | None = None) -> None:
        config = config or EngineConfig()
        self.baselines = baselines or Baselines(config.limits.templates)
        self.requests = 0
        self.decisions = 0
        self._ip_decided: OrderedDict[tuple[str, str], float] = OrderedDict()
        lim = config.limits
        self.sessions = ActorTable("session", lim.sessions, lim.session_timeout,
                                   self._session_end)
        self.ips = ActorTable("ip", lim.ips, lim.ip_ttl)
        self.nets = ActorTable("net", lim.networks, lim.ip_ttl)
        self._layout: tuple[str, ...] = ()
        self._build(config)

    # -- configuration ------------------------------------------------------------------------
    def _build(self, config: EngineConfig) -> None:
        self.config = config
        self.ctx = EngineContext(config, self.baselines)
        detectors: list[Detector] = []
        base = 0
        for cls in DETECTORS:
            if cls.name in config.disabled_detectors:
                continue
            params = {**cls.defaults(), **config.detectors.get(cls.name, {})}
            det = cls(params, self.ctx, base)
            det.vote_idx = tuple((_TYPE_INDEX[t], t, w) for t, w in cls.votes.items())
            base += len(cls.slots)
            detectors.append(det)
        self.ctx.ext_size = base
        layout = tuple(f"{d.name}:{len(d.slots)}" for d in detectors)
        if self._layout and layout != self._layout:
            for table in (self.sessions, self.ips, self.nets):   # private counters moved
                for a in table:
                    a.ext = None
        self._layout = layout
        self.detectors = detectors
        self.observers = [d for d in detectors if d.observes]
        self.apps: tuple[Application, ...] = config.applications
        self._inferrers = [TemplateInferrer(a.templates) for a in self.apps]
        self._router = AppRouter(self.apps)
        self._auth = AuthMatcher(self.apps)
        self._profiles: list[Profile | None] = [
            next((p for p in config.profiles if p.covers(a.name)), None) for a in self.apps]
        self._exceptions = config.exceptions
        self._v6_prefix = config.limits.ipv6_prefix
        self._net_cache: dict[str, str | None] = {}
        self._ep_cache: dict[str, tuple[int, int]] = {}
        lim = config.limits
        for table, cap, ttl in ((self.sessions, lim.sessions, lim.session_timeout),
                                (self.ips, lim.ips, lim.ip_ttl),
                                (self.nets, lim.networks, lim.ip_ttl)):
            table.cap, table.ttl = cap, ttl

    def reconfigure(self, config: EngineConfig) -> None:
        """Swap in a new configuration; actors and learned baselines are kept."""
        self._build(config)

    def _ep_pos(self, template: str) -> tuple[int, int]:
        pos = self._ep_cache.get(template)
        if pos is None:
            if len(self._ep_cache) >= 50_000:
                self._ep_cache.clear()
            pos = self._ep_cache[template] = hll_pos(hash(template))
        return pos

    def _net_key(self, ip: str) -> str | None:
        key = self._net_cache.get(ip, False)
        if key is not False:
            return key
        try:
            key = str(ipaddress.IPv6Network(f"{ip}/{self._v6_prefix}", strict=False))
        except ValueError:
            key = None
        if len(self._net_cache) >= 50_000:     # client addresses: a bounded cache
            self._net_cache.clear()
        self._net_cache[ip] = key
        return key

    # -- the hot path -------------------------------------------------------------------------
    def process(self, rec: RequestRecord) -> list[Decision]:
        self.requests += 1
        ai = self._router.index(rec.host)
        app = self.apps[ai]
        tmpl = self._inferrers[ai].template(rec.path)
        ts = rec.ts
        skey: tuple = (ai, "", rec.session) if rec.session else (ai, rec.ip, rec.ua, rec.ja3)
        sess = self.sessions.touch(skey, ts)
        new_session = sess.n == 0
        ip = self.ips.touch(rec.ip, ts)
        new_ip = ip.n == 0
        net = None
        if ":" in rec.ip:
            nk = self._net_key(rec.ip)
            if nk is not None:
                net = self.nets.touch(nk, ts)
                if new_ip:
                    net.nips += 1
        if rec.blocked:            # blocked upstream of us: statistics only, no learning
            sess.blocked += 1
            ip.blocked += 1
            return _NO_DECISIONS
        rid = rec.id if rec.id is not None else self.requests
        q = rec.query
        pi, pr = hll_pos(hash((rec.path, q)) if q else hash(rec.path))
        ei, er = self._ep_pos(tmpl)
        unsafe = rec.method not in _SAFE
        has_q = bool(q)
        status, rq, rs = rec.status, rec.req_bytes, rec.resp_bytes
        sess.observe(ts, pi, pr, ei, er, status, unsafe, has_q, rq, rs, rid)
        ip.observe(ts, pi, pr, ei, er, status, unsafe, has_q, rq, rs, rid)
        if net is not None:
            net.observe(ts, pi, pr, ei, er, status, unsafe, has_q, rq, rs, rid)
        if new_session:
            h = hash(skey)
            ip.nsess += 1
            ip.add_session(h)
            ip.add_ua(hash(rec.ua))
            if net is not None:
                net.nsess += 1
                net.add_session(h)
        if rec.session:
            sess.seen_ip(rec.ip)
        auth = self._auth.endpoint(app.name, rec.method, rec.path, tmpl) if unsafe else None
        ev = Event(rec, app, tmpl, sess, ip, net, unsafe, new_session, auth,
                   auth_result(auth, status) if auth is not None else None)
        trigger = False
        for det in self.observers:
            if det.observe(ev):
                trigger = True
        if not (sess.flagged or ip.flagged):
            self.baselines.learn(app.name, tmpl, rec.duration_ms, rs, rq)

        out: list[Decision] | None = None
        if trigger or _checkpoint(sess.n):
            out = self._evaluate(sess, ev, ai, out)
        if ip.nsess >= 2 and (trigger or _checkpoint(ip.n)):
            out = self._evaluate(ip, ev, ai, out)
        if net is not None and net.nips >= 2 and (trigger or _checkpoint(net.n)):
            out = self._evaluate(net, ev, ai, out)
        return out or _NO_DECISIONS

    # -- scoring ------------------------------------------------------------------------------
    def score(self, actor: Actor, ev: Event) -> tuple[list[float], list[float], list]:
        """Votes gained and votes of detectors that worked, per bot type, and the findings."""
        gained = [0.0] * len(BOT_TYPES)
        worked = [0.0] * len(BOT_TYPES)
        fired: list = []
        warm = self.ctx.warmed_up
        kind = actor.kind
        for det in self.detectors:
            if kind not in det.actors or (det.learned and not warm):
                continue
            f = det.evaluate(actor, ev)
            if f is None:
                continue
            only = f.only
            for i, t, w in det.vote_idx:
                worked[i] += w
                s = f.strength if only is None else f.strength * only.get(t, 0.0)
                gained[i] += w * s
            if f.strength > 0:
                fired.append((det, f))
        return gained, worked, fired

    def _evaluate(self, actor: Actor, ev: Event, ai: int,
                  out: list[Decision] | None) -> list[Decision] | None:
        gained, worked, fired = self.score(actor, ev)
        profile = self._profiles[ai]
        cfg = self.config
        best = 0.0
        for i, t in enumerate(BOT_TYPES):
            if not worked[i]:
                continue
            conf = gained[i] / worked[i]
            if conf > best:
                best = conf
            if (profile is None or t not in profile.bot_types or actor.decided >> i & 1
                    or gained[i] < cfg.min_votes or conf < profile.threshold):
                continue
            actor.decided |= 1 << i
            d = self._decide(actor, ev, profile, t, i, conf, fired)
            if d is not None:
                if out is None:
                    out = []
                out.append(d)
        if (actor.kind == "session" and not actor.human and not actor.decided
                and actor.n >= HUMAN_MIN_REQUESTS and best < HUMAN_MAX_CONFIDENCE
                and actor.ua_kind == "browser"):
            cv = actor.interval_cv
            if cv is None or cv >= 0.5:
                actor.human = True
                ev.ip.humans += 1
                if ev.net is not None:
                    ev.net.humans += 1
        return out

    def _decide(self, actor: Actor, ev: Event, profile: Profile, bot_type: str, ti: int,
                conf: float, fired: list) -> Decision | None:
        rec = ev.rec
        ts = rec.ts
        actor.flagged = True
        reaction = profile.reactions[bot_type]
        action = reaction.action
        shared_n = self.config.shared_ip_sessions
        if actor.kind == "session":
            humans = ev.ip.humans - (1 if actor.human else 0)
            if action in ("denylist", "graylist") and humans >= shared_n:
                action = "deny_session"     # office NAT / CGNAT: block the session, not the IP
            ips = tuple(actor.ips) if actor.ips else (rec.ip,)
            session = actor.key[2] if actor.key[1] == "" else _fingerprint(actor.key)
        else:
            if actor.humans >= shared_n and action != "monitor":
                action = "monitor"          # its offending sessions are decided one by one
            ips = (actor.key,)
            session = None
        if self._excepted(rec.ip):
            return None
        if action in ("denylist", "graylist"):
            k = (ips[0], bot_type)
            until = self._ip_decided.get(k)
            if until is not None and until > ts:
                return None                 # this address is already being reacted to
            self._ip_decided[k] = ts + (reaction.duration or 1e12)
            self._ip_decided.move_to_end(k)
            if len(self._ip_decided) > IP_DECIDED_CAP:
                self._ip_decided.popitem(last=False)
            if actor.kind != "session":
                ev.ip.flagged = True
        self.decisions += 1
        return Decision(
            ts=ts, ip=rec.ip, ips=ips, session=session, app=ev.app.name, bot_type=bot_type,
            confidence=conf, profile=profile.name, reaction=action,
            duration=reaction.duration, actor=actor.kind,
            detectors=tuple((d.name, f.value, f.normal) for d, f in fired
                            if d.votes.get(bot_type) and (f.only is None or f.only.get(bot_type))),
            evidence=actor.evidence(), ttd_requests=actor.n,
            ttd_seconds=max(0.0, ts - actor.first_ts), features=_features(actor, fired))

    def _excepted(self, ip: str) -> bool:
        if not self._exceptions:
            return False
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr in n for n in self._exceptions)

    def _session_end(self, actor: Actor) -> None:
        if not actor.flagged and actor.n >= 3:
            self.baselines.learn_session(actor.req_bytes, actor.resp_bytes)

    # -- housekeeping -------------------------------------------------------------------------
    def finish(self) -> None:
        """End of input (replay): end every session so its totals are learned."""
        self.sessions.drain()

    def stats(self) -> dict[str, Any]:
        return {
            "requests": self.requests, "decisions": self.decisions,
            "sessions": len(self.sessions), "ips": len(self.ips), "networks": len(self.nets),
            "evictions": {"sessions": self.sessions.evictions, "ips": self.ips.evictions,
                          "networks": self.nets.evictions},
            "learned_requests": self.baselines.seen, "warmed_up": self.ctx.warmed_up,
        }

    def process_many(self, records: Iterable[RequestRecord]) -> list[Decision]:
        out: list[Decision] = []
        for r in records:
            out.extend(self.process(r))
        return out


def _fingerprint(key: tuple) -> str:
    _, ip, ua, ja3 = key
    h = hashlib.blake2b(f"{ip}|{ua}|{ja3 or ''}".encode(), digest_size=8).hexdigest()
    return f"fp-{h}"


def _features(actor: Actor, fired: list) -> dict[str, float]:
    """The heatmap axes of the console (SPEC §8) for this actor at decision time."""
    values = {d.name: f.value for d, f in fired}
    n = max(actor.n, 1)
    uniq = min(hll_count(actor.uniques), n) if actor.uniques is not None else 1.0
    return {
        "rps": round(actor.peak_rate, 3),
        "request_interval_cv": round(actor.interval_cv or 0.0, 3),
        "non_uniqueness": round(1.0 - uniq / n, 3),
        "scheduled": 1.0 if "request_interval" in values else 0.0,
        "suspicious_behavior": float(values.get("suspicious_behavior", 0.0)),
        "critical_sensitive_use": float(values.get("business_logic", 0.0)),
        "detectors_count": float(len(fired)),
        "distinct_endpoints": round(hll_count(actor.endpoints), 1) if actor.endpoints else 1.0,
        "unsafe_requests": float(actor.n_unsafe),
        "error_responses": float(actor.n_err),
        "requests": float(actor.n),
    }
