"""The detection engine: request records → actors (session, IP, IPv6 network) → detectors →
confidence per bot type → decisions. No mitmproxy, no wall clock: time is the records' `ts`.

Per request the engine does O(1) work: a few dict lookups, the actors' running counters, and
the observing detectors' O(1) updates. Full evaluation of an actor (every detector, then the
scorer) runs at checkpoints — its 4th and 12th request, every 16th to 64, every 32nd to 1024,
then every 64th — and whenever a signature detector asks for it (a probe, an attack tool's
user agent, a login-only session).

Besides the session / IP / network actors, two bounded tables serve the account-takeover
detectors (engine.auth): login-only clusters per (application, user agent) and per IPv4 /24
(LRU, 4096 entries, 4 h inactivity TTL, at most 256 addresses each) link one campaign across a
proxy pool, and the long-term table per (IP, user agent) (LRU, 100,000 entries, 7 day TTL)
remembers slow failures. Authentication attempts also update a small per-actor `AuthStats`.
Good-bot claims are judged by an injected verifier (node.goodbots) that never blocks here, and
the behaviour model (engine.behavior) learns with the baselines and is saved with them.
Decisions: an IP shared by human-looking sessions, or a session that logged in, gets
`deny_session` instead of an IP-level reaction; linked addresses never include one where
human-looking sessions were seen.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections import OrderedDict, deque
from fnmatch import fnmatchcase
from typing import Any

from node.appmatch import DEFAULT_AUTH, AppRouter, AuthMatcher, auth_result
from node.config.model import BOT_TYPES, Application, AuthEndpoint, EngineConfig, Profile
from node.detectors import DETECTORS, Detector
from node.engine.actor import Actor, ActorTable
from node.engine.auth import (
    CLUSTER_CAP,
    CLUSTER_IPS,
    CLUSTER_TTL,
    LOGIN_ONLY_BEFORE,
    LONG_CAP,
    LONG_TTL,
    AuthStats,
    Clusters,
    LongTermAuth,
    slash24,
)
from node.engine.baselines import Baselines
from node.engine.clock import without_clock
from node.engine.context import Endpoint, EngineContext, Event
from node.engine.decision import Decision
from node.engine.flows import ACCOUNT_CAP, ACCOUNT_TTL, Accounts, flow_add
from node.engine.roles import (
    DECLINED,
    FAIL,
    HEALTH,
    LOCKED,
    LOGIN,
    OK,
    OTP_VERIFY,
    ROLE_INDEX,
    Outcomes,
    classify,
    infer_role,
)
from node.engine.sketch import hll_add, hll_count, hll_new, hll_pos
from node.engine.templates import TemplateInferrer
from node.goodbots import VERIFIED, GoodBotVerifier
from node.iplists.matcher import NetMatcher, parse_ip, parse_network
from node.record import RequestRecord
from node.signatures.cloud import provider as cloud_provider
from node.signatures.ua import classify_ua

_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
_EARLY = frozenset({4, 6, 12})   # 6: HUMAN_MIN_REQUESTS, when a session may look human
_NO_DECISIONS: list[Decision] = []
_TYPE_INDEX = {t: i for i, t in enumerate(BOT_TYPES)}
_HEALTH = ROLE_INDEX[HEALTH]
HUMAN_MIN_REQUESTS = 6       # a session looks human only after this many requests ...
HUMAN_MAX_CONFIDENCE = 0.25  # ... while no bot type comes near a decision
IP_DECIDED_CAP = 100_000
# A POST answered 401 is a failed credential check wherever it happens (HTTP Basic, API keys).
HTTP_AUTH = AuthEndpoint(method="*", path="*", success=(), failure=(401,))
AUTHENTICATED_MAX_FAILS = 3  # a session that logged in after at most this many typos
CUSTOMER_MIN_REQUESTS = 8    # a credentialed client's calls before it is judged on its own ...
CUSTOMER_MAX_ERRORS = 10     # ... while at most one in this many fails
CUSTOMER_MAX_IPS = 3         # ... from a few addresses (a rotating pool is no customer)
SCORE_MIN_TRANSITIONS = 20    # finished sessions whose behaviour score is learned
LOGIN_CARRY = 120.0          # s: a new session right after a successful login continues it
SETTLE_SECONDS = 120.0       # s: a login-only session's detection waits this long ...
SETTLE_MAX_ATTEMPTS = 3      # ... when it made at most this many attempts
SETTLE_CAP = 100_000
SETTLE_USE = 3               # requests other than logins after it that show the login worked
RECENT_OK_CAP = 10_000
SEMANTICS_CAP = 1_000
ENDPOINTS_CAP = 20_000        # (application, method, template) objects with their memo slots
HOLD_MS = 10_000.0            # a response this slow is a long poll held by the server
STATIC_SUFFIXES = (".js", ".mjs", ".css", ".png", ".jpg", ".jpeg", ".gif", ".webp", ".avif",
                   ".svg", ".ico", ".woff", ".woff2", ".ttf", ".otf", ".eot", ".map", ".mp4",
                   ".webm")           # page resources
STATIC_TEMPLATE = "/{static}"  # what a page's own resources count as
_STATIC_PI = hash(STATIC_TEMPLATE) & 1023


# A session may look human with a browser's or a mobile app's agent, or with none logged
# (`common` format).
_HUMAN_UA_KINDS = frozenset(("browser", "app", "unknown"))
# Programs that may be a customer's integration or app: HTTP libraries, SDKs, app stacks.
# A declared crawler presenting a customer's token is that customer's integration (a chat
# tool unfurling links, a feed reader).
_MACHINE_UA_KINDS = frozenset(("library", "app", "other", "unknown", "crawler"))


def _checkpoint(n: int) -> bool:
    """Full evaluations thin out as an actor grows: its counters move less per request, and
    a long session is evaluated every 16th request to 64, every 32nd to 1024, then 64th."""
    if n < 64:
        return n in _EARLY or (n >= 16 and not n & 15)
    return not n & (31 if n < 1024 else 63)


class Engine:
    """Feed records in time order with `process()`; it returns the decisions they trigger."""

    def __init__(self, config: EngineConfig | None = None, *,
                 baselines: Baselines | None = None,
                 verifier: GoodBotVerifier | None = None) -> None:
        config = config or EngineConfig()
        # Good-bot claims: vendor ranges always; DNS only with an injected resolver.
        self.verifier = verifier if verifier is not None else GoodBotVerifier()
        self.baselines = baselines or Baselines(config.limits.templates)
        self.requests = 0
        self.decisions = 0
        self._ip_decided: OrderedDict[tuple[str, str], float] = OrderedDict()
        lim = config.limits
        self.sessions = ActorTable("session", lim.sessions, lim.session_timeout,
                                   self._session_end)
        self.ips = ActorTable("ip", lim.ips, lim.ip_ttl)
        self.nets = ActorTable("net", lim.networks, lim.ip_ttl)
        # Account-takeover state shared by detectors (engine.auth): linked login-only attempts
        # per user agent and /24, and slow attempts per (IP, user agent) over days.
        self.clusters = Clusters(CLUSTER_CAP, CLUSTER_TTL)
        self.long_auth = LongTermAuth(LONG_CAP, LONG_TTL)
        self.accounts = Accounts(ACCOUNT_CAP, ACCOUNT_TTL)   # per-account failures (flows)
        # Detections of login-only sessions waiting to see whether the login was a person's
        # (a code entered, the app used): (due, actor, event, profile, type, conf, fired, also).
        self._settling: deque[tuple] = deque()
        self._recent_ok: OrderedDict[tuple[str, str], tuple[float, str | None, Actor]] = (
            OrderedDict())
        # Default login routes whose failures show in the status: a 2xx there is a success.
        self._status_semantics: dict[tuple[int, str], bool] = {}
        self._layout: tuple[str, ...] = ()
        self._build(config)

    # -- configuration ------------------------------------------------------------------------
    def _build(self, config: EngineConfig) -> None:
        self.config = config
        self.ctx = EngineContext(config, self.baselines)
        self.ctx.clusters = self.clusters
        self.ctx.long_auth = self.long_auth
        self.ctx.accounts = self.accounts
        self.ctx.verifier = self.verifier
        detectors: list[Detector] = []
        base = 0
        for cls in DETECTORS:
            if cls.name in config.disabled_detectors:
                continue
            params = {**cls.defaults(), **config.detectors.get(cls.name, {})}
            det = cls(params, self.ctx, base)
            det.vote_idx = tuple((_TYPE_INDEX[t], t, w) for t, w in cls.votes.items())
            det.memo = len(detectors)
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
        # Who observes what: every request, or only a session's first request, requests
        # with a query string, unsafe methods, authentication attempts (no call otherwise).
        self.observers = [d for d in detectors if d.observes]
        self.query_observers = [d for d in detectors if d.observes_query and not d.observes]
        self.unsafe_observers = [d for d in detectors if d.observes_unsafe and not d.observes]
        # Per actor kind, the detectors that judge it (all, and those not waiting to learn).
        kinds = ("session", "ip", "net")
        self._by_kind = {k: [d for d in detectors if k in d.actors] for k in kinds}
        for k in ("session", "ip"):
            name = "customer" if k == "session" else "customer_ip"
            self._by_kind[name] = [d for d in self._by_kind[k] if d.judges_customers]
        self._cold = {k: [d for d in ds if not d.learned] for k, ds in self._by_kind.items()}
        self.auth_observers = [d for d in detectors if d.observes_auth and not d.observes]
        self.start_observers = [d for d in detectors if d.observes_start and not d.observes]
        self.apps: tuple[Application, ...] = config.applications
        self._inferrers = [TemplateInferrer(a.templates) for a in self.apps]
        self._router = AppRouter(self.apps)
        self._multi_app = len(self.apps) > 1
        self._template_cache = [inf.cache for inf in self._inferrers]
        self._auth = AuthMatcher(self.apps)
        self._profiles: list[Profile | None] = [
            next((p for p in config.profiles if p.covers(a.name)), None) for a in self.apps]
        self._exceptions: NetMatcher[bool] = NetMatcher()   # one probe per prefix length
        for net in config.exceptions:
            self._exceptions.set(parse_network(str(net)), True)
        self._v6_prefix = config.limits.ipv6_prefix
        self._net_cache: dict[str, str | None] = {}
        # Per application: template → method → Endpoint (keys whose hashes strings cache).
        self._endpoints: list[dict[str, dict[str, Endpoint]]] = [{} for _ in self.apps]
        self._n_endpoints = 0
        lim = config.limits
        for table, cap, ttl in ((self.sessions, lim.sessions, lim.session_timeout),
                                (self.ips, lim.ips, lim.ip_ttl),
                                (self.nets, lim.networks, lim.ip_ttl)):
            table.cap, table.ttl = cap, ttl

    def reconfigure(self, config: EngineConfig) -> None:
        """Swap in a new configuration; actors and learned baselines are kept."""
        self._build(config)

    def _endpoint(self, ai: int, method: str, template: str) -> Endpoint:
        by_method = self._endpoints[ai].get(template)
        if by_method is None:
            if self._n_endpoints >= ENDPOINTS_CAP:    # bounded: refills with the live ones
                for d in self._endpoints:
                    d.clear()
                self._n_endpoints = 0
            by_method = self._endpoints[ai][template] = {}
        ep = by_method.get(method)
        if ep is None:
            ei, er = hll_pos(hash(template))
            ep = by_method[method] = Endpoint((self.apps[ai].name, method, template), ei, er,
                                              len(self.detectors))
            ep.static = method in ("GET", "HEAD") and template.lower().endswith(STATIC_SUFFIXES)
            role = ep.role = self._role(self.apps[ai], method, template)
            if role is not None:
                ep.ri = ROLE_INDEX[role]
                ep.outcomes = Outcomes()
            self._n_endpoints += 1
        return ep

    @staticmethod
    def _role(app: Application, method: str, template: str) -> str | None:
        """The operator's role for the endpoint, else the one its vocabulary tells."""
        for rule, role in app.roles:
            if (rule.method is None or rule.method == method) and (
                    fnmatchcase(template, rule.pattern)):
                return role
        return infer_role(method, template)

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
        if self._settling and self._settling[0][0] <= rec.ts:
            settled = self._settle(rec.ts)
            if settled:
                out = self._process(rec)
                return settled + out if out else settled
        return self._process(rec)

    def _process(self, rec: RequestRecord) -> list[Decision]:
        if self.ctx.coarse_clock and rec.ts % 1.0:
            self.ctx.coarse_clock = False   # sub-second timestamps: rhythm can be judged
        ai = self._router.index(rec.host) if self._multi_app else 0
        app = self.apps[ai]
        path = rec.path
        tmpl = self._template_cache[ai].get(path)
        if tmpl is None:
            tmpl = self._inferrers[ai].template(path)
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
        if q:
            d = rec.duration_ms
            if d is not None and d >= HOLD_MS:
                # A long poll: the server held the request, so the loop is paced by the
                # server, and its ever-new cursor is the server's, not an enumeration.
                q = ""
            else:
                q = without_clock(q, ts)  # `since=<now>` asks for nothing new
        pi = (hash((path, q)) if q else hash(path)) & 1023   # its bit in the uniqueness bitmap
        method = rec.method
        by_method = self._endpoints[ai].get(tmpl)
        ep = by_method.get(method) if by_method is not None else None
        if ep is None:
            ep = self._endpoint(ai, method, tmpl)
        status = rec.status
        if ep.static and status < 400 and rec.referer:
            # A page's own resources, which the browser fetches by itself (the Referer names
            # the page): requests and bytes, but no rate, rhythm, breadth or uniqueness, and
            # no detector's business -- fifty scripts and images after a page are not fifty
            # choices. (An actor's very first request is counted in full, as one endpoint.)
            # Resources asked for without a page still count each: an image scraper sends no
            # Referer.
            if sess.n and ip.n and (net is None or net.n):
                rq, rs = rec.req_bytes, rec.resp_bytes
                sess.observe_resource(ts, status, rq, rs, rid)
                ip.observe_resource(ts, status, rq, rs, rid)
                if net is not None:
                    net.observe_resource(ts, status, rq, rs, rid)
                return _NO_DECISIONS
            tmpl, q, pi = STATIC_TEMPLATE, "", _STATIC_PI
            ep = self._endpoint(ai, "GET", STATIC_TEMPLATE)
        ei, er = ep.ei, ep.er
        unsafe = rec.method not in _SAFE
        has_q = bool(q)
        rq, rs = rec.req_bytes, rec.resp_bytes
        sess.observe(ts, pi, ei, er, status, unsafe, has_q, rq, rs, rid)
        ip.observe(ts, pi, ei, er, status, unsafe, has_q, rq, rs, rid)
        if net is not None:
            net.observe(ts, pi, ei, er, status, unsafe, has_q, rq, rs, rid)
        if new_session:
            if rec.session:
                fp = self.sessions.get((ai, rec.ip, rec.ua, rec.ja3))
                if fp is not None and fp.n and not (fp.auth is not None and fp.auth.oks):
                    sess.handed = True    # an anonymous cookie, not a customer's key
            h = hash(skey)
            ip.nsess += 1
            ua_h = hash(rec.ua)
            ip.add_session(h, ua_h)
            if net is not None:
                net.nsess += 1
                net.add_session(h, ua_h)
            if self._recent_ok:
                self._carry_login(rec, sess, ip, ts, ai)
            if len(self.clusters):
                self._count_session(rec, ai, ts)
        if rec.session:
            sess.seen_ip(rec.ip)
        role = ep.role
        outcome = None
        if role is not None:
            oc = ep.outcomes
            oc.add(status)
            outcome = classify(status, oc.tells_failure, role)
            bad = outcome is FAIL or outcome is DECLINED or outcome is LOCKED
            ri = ep.ri
            flow_add(sess, ri, bad)
            flow_add(ip, ri, bad)
            if net is not None:
                flow_add(net, ri, bad)
        auth = result = None
        if unsafe:
            auth = self._auth.endpoint(app.name, rec.method, rec.path, tmpl)
            if auth is None:
                if role is LOGIN and not self._auth.configured(app.name):
                    auth = DEFAULT_AUTH
                elif status == 401:
                    auth = HTTP_AUTH
            if auth is not None:
                result = auth_result(auth, status)
                if not auth.success and result != "ok":   # no success status configured
                    if role is LOGIN:        # the route's own answers say what a status means
                        result = ("ok" if outcome is OK else
                                  "fail" if outcome is FAIL or outcome is LOCKED else None)
                    else:
                        result = self._default_result(ai, tmpl, status, result == "fail")
        ev = Event(rec, app, tmpl, sess, ip, net, unsafe, new_session, auth, result, ai, ep, q)
        ev.role = role
        ev.outcome = outcome
        if role is OTP_VERIFY:
            if outcome is OK:
                self._second_factor_ok(ev, ai)
            elif outcome is FAIL and sess.auth is not None and sess.auth.u0 is not None:
                self.accounts.touch((ai, sess.auth.u0), ts).code_failed(rec.ip)
        if auth is not None:
            self._auth_attempt(ev, ai, ts)
        elif sess.auth is not None and sess.auth.login_only:
            self._not_login_only(ev, ai, ts)
        trigger = False
        if new_session:
            for det in self.start_observers:
                if det.observe(ev):
                    trigger = True
        for det in self.observers:
            if det.observe(ev):
                trigger = True
        if unsafe:
            for det in self.unsafe_observers:
                if det.observe(ev):
                    trigger = True
            if auth is not None:
                for det in self.auth_observers:
                    if det.observe(ev):
                        trigger = True
        if has_q:
            for det in self.query_observers:
                if det.observe(ev):
                    trigger = True
        if not (sess.flagged or ip.flagged):
            self.baselines.learn(app.name, tmpl, rec.duration_ms, rs, rq)

        # Checkpoints are multiples of 16 or early ones: a cheap test before the real one.
        out: list[Decision] | None = None
        n = sess.n
        if trigger or ((not n & 15 or n in _EARLY) and _checkpoint(n)):
            out = self._evaluate(sess, ev, ai, out)
        n = ip.n
        if ip.nsess >= 2 and (trigger or ((not n & 15 or n in _EARLY) and _checkpoint(n))):
            out = self._evaluate(ip, ev, ai, out)
        if net is not None and net.nips >= 2 and (trigger or _checkpoint(net.n)):
            out = self._evaluate(net, ev, ai, out)
        return out or _NO_DECISIONS

    # -- scoring ------------------------------------------------------------------------------
    def score(self, actor: Actor, ev: Event) -> tuple[list[float], list[float], list]:
        """Votes gained and votes of detectors that worked, per bot type, and the findings.
        An established client (see `_customer`) is judged only by the detectors of abuse,
        not by those of being a machine."""
        gained = [0.0] * len(BOT_TYPES)
        worked = [0.0] * len(BOT_TYPES)
        fired: list = []
        kind = actor.kind
        if kind == "session":
            if self._customer(actor, ev) or _monitor(actor):
                kind = "customer"
        elif (actor.customers and actor.customers * 2 >= actor.nsess or _monitor(actor)
              or self._aggregator(actor, ev)):
            kind = "customer_ip"   # an integration's address: its sessions are customers'
        dets = self._by_kind[kind] if self.ctx.warmed_up else self._cold[kind]
        for det in dets:
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

    def _one_fleet(self, ips: list[str]) -> bool:
        """Every address in cloud providers' published ranges: integrations' servers (a
        rotating proxy pool hands out homes' and phones' addresses)."""
        ranges = self.config.cloud_ranges
        return all(cloud_provider(a, ranges) is not None for a in ips)

    @staticmethod
    def _aggregator(actor: Actor, ev: Event) -> bool:
        """An address whose many credentialed sessions come from one program that says what
        it is (an aggregator holding its customers' tokens, an exporter with many API keys),
        and succeed: sessions there are customers', not a rotation."""
        return (ev.rec.session is not None and ev.session.ua_kind in _MACHINE_UA_KINDS
                and ev.session.ua_kind != "unknown" and actor.uas is not None
                and hll_count(actor.uas) <= 2.5
                and actor.n_err * CUSTOMER_MAX_ERRORS <= actor.n)

    def _customer(self, actor: Actor, ev: Event) -> bool:
        """A client that presents its own credential (token, API key, session cookie) and
        whose calls succeed: a customer's integration, app or browser. Its agent, schedule,
        pace and use of critical endpoints are what it is, not evidence; what it does wrong
        (declined cards, failed codes, probes, failed logins) still counts."""
        if actor.customer:
            if actor.n_err * CUSTOMER_MAX_ERRORS > actor.n:
                actor.customer = False      # its calls started failing: judged in full
            return actor.customer
        if actor.key[1] != "" or actor.n < CUSTOMER_MIN_REQUESTS or (
                actor.n_err * CUSTOMER_MAX_ERRORS > actor.n) or (
                actor.ips is not None and len(actor.ips) > CUSTOMER_MAX_IPS
                and not self._one_fleet(actor.ips)):
            return False
        st = actor.auth
        if st is not None and st.fails > AUTHENTICATED_MAX_FAILS:
            return False
        # A cookie is handed to anyone who asks: a session is a customer's once it logged in,
        # or when a program presented its key or token from its first call.
        if not (st is not None and st.oks) and (
                actor.handed or actor.ua_kind not in _MACHINE_UA_KINDS):
            return False
        actor.customer = True
        ev.ip.customers += 1
        if ev.net is not None:
            ev.net.customers += 1
        return True

    def _evaluate(self, actor: Actor, ev: Event, ai: int,
                  out: list[Decision] | None) -> list[Decision] | None:
        gained, worked, fired = self.score(actor, ev)
        profile = self._profiles[ai]
        cfg = self.config
        best = 0.0
        passed: list[tuple[float, int, str]] = []
        for i, t in enumerate(BOT_TYPES):
            if not worked[i]:
                continue
            conf = gained[i] / worked[i]
            if conf > best:
                best = conf
            if (profile is None or t not in profile.bot_types or actor.decided >> i & 1
                    or gained[i] < cfg.min_votes or conf < profile.threshold):
                continue
            passed.append((conf, gained[i], t))
        if passed and not actor.decided:
            # One detection per actor: its primary type is what it does, told by the
            # detectors that point at one type (card testing, scraping's uniqueness, probes)
            # rather than by those that vote alike for several (rate, rhythm, an HTTP
            # library's agent); then the highest confidence. The other types ride along.
            focus = _focus(fired)
            passed.sort(key=lambda p: (focus.get(p[2], 0.0), p[0], p[1]), reverse=True)
            conf, _, t = passed[0]
            for _, _, other in passed:
                actor.decided |= 1 << _TYPE_INDEX[other]
            also = {o: round(c, 3) for c, _, o in passed[1:]}
            st = actor.auth
            if (t == "account_takeover" and st is not None and not st.oks
                    and st.attempts <= SETTLE_MAX_ATTEMPTS
                    and (st.login_only or actor.kind != "session")
                    and len(self._settling) < SETTLE_CAP):
                # A login-only session judged by its population (a pool, a campaign's
                # agent): a person's login goes on (a second factor, the app's first calls)
                # within a minute or two, a stuffer's stops. Decide once that is clear.
                self._settling.append((ev.rec.ts + SETTLE_SECONDS, actor, ev, profile, t, conf,
                                       fired, also, _other_requests(ev.ip)))
                return out
            d = self._decide(actor, ev, profile, t, _TYPE_INDEX[t], conf, fired, also)
            if d is not None:
                if out is None:
                    out = []
                out.append(d)
        if (actor.kind == "session" and not actor.human and not actor.decided
                and actor.n >= HUMAN_MIN_REQUESTS and best < HUMAN_MAX_CONFIDENCE
                and actor.ua_kind in _HUMAN_UA_KINDS):
            cv = actor.interval_cv
            if cv is None or cv >= 0.5:
                actor.human = True
                ev.ip.humans += 1
                if ev.net is not None:
                    ev.net.humans += 1
        return out

    def _settle(self, now: float) -> list[Decision]:
        """Detections whose login-only session stayed login-only (no success, nothing
        after) are made now; those whose login went on are dropped."""
        out: list[Decision] = []
        q = self._settling
        while q and q[0][0] <= now:
            _, actor, ev, profile, t, conf, fired, also, other0 = q.popleft()
            st = actor.auth
            if st is None or st.oks or (actor.kind == "session" and not st.login_only):
                continue
            if _other_requests(ev.ip) - other0 >= SETTLE_USE:
                continue            # the address went on to use the application: a person's
            d = self._decide(actor, ev, profile, t, _TYPE_INDEX[t], conf, fired, also, now)
            if d is not None:
                out.append(d)
        return out

    def _decide(self, actor: Actor, ev: Event, profile: Profile, bot_type: str, ti: int,
                conf: float, fired: list, also: dict[str, float] | None = None,
                now: float | None = None) -> Decision | None:
        rec = ev.rec
        ts = rec.ts if now is None else now
        if not actor.flagged and actor.seq is not None:
            self.baselines.behavior.unlearn(actor.seq)   # no poisoning by what we catch
        actor.flagged = True
        reaction = profile.reactions[bot_type]
        action = reaction.action
        shared_n = self.config.shared_ip_sessions
        if actor.kind == "session":
            humans = ev.ip.humans - (1 if actor.human else 0)
            if action in ("denylist", "graylist") and humans >= shared_n:
                action = "deny_session"     # office NAT / CGNAT: block the session, not the IP
            st = actor.auth
            if action in ("denylist", "graylist") and (actor.customer or (
                    st is not None and st.oks and st.fails <= AUTHENTICATED_MAX_FAILS)):
                action = "deny_session"     # an authenticated client: its session, not its IP
            ips = tuple(actor.ips) if actor.ips else (rec.ip,)
            session = actor.key[2] if actor.key[1] == "" else _fingerprint(actor.key)
        else:
            if (actor.humans >= shared_n or actor.customers) and action != "monitor":
                # Shared by people, or by customers' integrations (an aggregator's many
                # tokens): its offending sessions are decided one by one.
                action = "monitor"
            ips = (actor.key,)
            session = None
        if self._excepted(rec.ip) or self._verified_bot(ev):
            return None
        linked = self._linked_ips(fired, bot_type, ips, ts)
        if action in ("denylist", "graylist"):
            k = (ips[0], bot_type)
            until = self._ip_decided.get(k)
            if until is not None and until > ts:
                return None                 # this address is already being reacted to
            until = ts + (reaction.duration or 1e12)
            for a in (*ips, *linked):
                k = (a, bot_type)
                self._ip_decided[k] = until
                self._ip_decided.move_to_end(k)
            while len(self._ip_decided) > IP_DECIDED_CAP:
                self._ip_decided.popitem(last=False)
            if actor.kind != "session":
                ev.ip.flagged = True
            ips = ips + linked
        self.decisions += 1
        return Decision(
            ts=ts, ip=rec.ip, ips=ips, session=session, app=ev.app.name, bot_type=bot_type,
            confidence=conf, profile=profile.name, reaction=action,
            duration=reaction.duration, actor=actor.kind,
            detectors=tuple((d.name, f.value, f.normal) for d, f in fired
                            if d.votes.get(bot_type) and (f.only is None or f.only.get(bot_type))),
            evidence=actor.evidence(), ttd_requests=actor.n,
            ttd_seconds=max(0.0, ts - actor.first_ts), features=_features(actor, fired),
            also=also or {})

    def _linked_ips(self, fired: list, bot_type: str, own: tuple[str, ...], ts: float
                    ) -> tuple[str, ...]:
        """Addresses that detectors linked to this actor (a proxy pool), minus its own, minus
        those already reacted to (each new address of a pool adds itself, not the pool
        again), and minus any address where human-looking sessions were seen."""
        out: dict[str, None] = {}
        decided = self._ip_decided
        for d, f in fired:
            if f.ips and d.votes.get(bot_type) and (f.only is None or f.only.get(bot_type)):
                run = 0
                # Newest first: a pool's older addresses were reacted to already; a long run
                # of those ends the walk (O(new addresses), not O(pool), per decision).
                recent = ts - SETTLE_SECONDS
                ato = bot_type == "account_takeover"
                for a in reversed(f.ips):
                    if a in own or a in out:
                        continue
                    if ato and isinstance(f.ips, dict) and (f.ips[a] or 0.0) > recent:
                        continue            # its login may still go on: it decides itself
                    until = decided.get((a, bot_type))
                    if until is not None and until > ts:
                        run += 1
                        if run >= 32:
                            break
                        continue
                    run = 0
                    ia = self.ips.get(a)
                    if ia is not None and ia.humans:
                        continue
                    out[a] = None
                    if len(out) >= CLUSTER_IPS:
                        return tuple(out)
        return tuple(out)

    # -- authentication ------------------------------------------------------------------------
    def _default_result(self, ai: int, tmpl: str, status: int, failed: bool) -> str | None:
        """A login route without configured success statuses: a failure status fails; 2xx /
        3xx counts as a success only once the route has shown it answers failures with a
        status (WordPress answers 200 to a wrong password, so there a 200 means nothing)."""
        key = (ai, tmpl)
        if failed:
            if key not in self._status_semantics and len(self._status_semantics) < SEMANTICS_CAP:
                self._status_semantics[key] = True
            return "fail"
        if 200 <= status < 400 and self._status_semantics.get(key):
            return "ok"
        return None

    def _auth_attempt(self, ev: Event, ai: int, ts: float) -> None:
        rec = ev.rec
        user = hash(rec.user) if rec.user else None
        result = ev.auth_result
        for a in ev.actors():
            st = a.auth
            if st is None:
                st = a.auth = AuthStats(a.n - 1, ts)
            st.add(user, result, ts, a.n)
        st = ev.session.auth
        first = st.attempts == 1 and st.before <= LOGIN_ONLY_BEFORE
        if first:
            st.login_only = True
        if st.login_only:
            for c in self._clusters_of(rec, ai, ts):
                if first:
                    c.lo_sessions += 1.0
                    if c.sessions < c.lo_sessions:    # a cluster made now missed this session
                        c.sessions = c.lo_sessions
                c.attempts += 1.0
                if result == "fail":
                    c.fails += 1.0
                elif result == "ok":
                    c.oks += 1.0
                if user is not None:
                    if c.users is None:
                        c.users = hll_new()
                    hll_add(c.users, user)
                if c.key[0] != "app":
                    c.add_ip(rec.ip, c.key[0] == "ua", ts)
        self.long_auth.touch((rec.ip, hash(rec.ua)), ts).add(user, result, ts)
        if user is not None and result is not None:
            acct = self.accounts.touch((ai, user), ts)
            if result == "ok":
                acct.success(rec.ip)
            else:
                acct.fail(rec.ip, ev.outcome is LOCKED)
        if result == "ok" and st.login_only:
            self._not_login_only(ev, ai, ts, force=True)   # a customer's app logging in
        if result == "ok" or (result is None and 200 <= ev.rec.status < 400):
            self._remember_ok(rec, result, ev.session)

    def _second_factor_ok(self, ev: Event, ai: int) -> None:
        """A one-time code accepted: the login it completes succeeded (an MFA route answers
        the right password with a challenge, which reads as a failure until now)."""
        rec = ev.rec
        for a in ev.actors():
            st = a.auth
            if st is not None:
                st.oks += 1
                st.ok_at = a.n
        st = ev.session.auth
        if st is not None and st.u0 is not None:
            acct = self.accounts.get((ai, st.u0))
            if acct is not None:
                acct.success(rec.ip)
        lt = self.long_auth.get((rec.ip, hash(rec.ua)))
        if lt is not None:
            lt.success()
        if st is not None and st.login_only:
            self._not_login_only(ev, ai, rec.ts, force=True)
        self._remember_ok(rec, None, ev.session)

    def _remember_ok(self, rec: RequestRecord, result: str | None, sess: Actor) -> None:
        """A login that worked: the session that starts right after it, from the same
        address and agent (the issued token or cookie), is its continuation."""
        k = (rec.ip, rec.ua)
        ro = self._recent_ok
        ro[k] = (rec.ts, result, sess)
        ro.move_to_end(k)
        if len(ro) > RECENT_OK_CAP:
            ro.popitem(last=False)

    def _clusters_of(self, rec: RequestRecord, ai: int, ts: float) -> list:
        out = [self.clusters.touch(("ua", ai, hash(rec.ua)), ts),
               self.clusters.touch(("app", ai), ts)]
        n24 = slash24(rec.ip)
        if n24 is not None:
            out.append(self.clusters.touch(("net", ai, n24), ts))
        return out

    def _count_session(self, rec: RequestRecord, ai: int, ts: float) -> None:
        """Every new session counts in the existing clusters it belongs to: the share of
        login-only sessions is judged against all sessions with the same attribute."""
        get = self.clusters.get
        n24 = slash24(rec.ip)
        for key in (("ua", ai, hash(rec.ua)), ("app", ai),
                    ("net", ai, n24) if n24 is not None else None):
            c = get(key) if key is not None else None
            if c is not None:
                c.decay(ts)
                c.sessions += 1.0

    def _not_login_only(self, ev: Event, ai: int, ts: float, sess: Actor | None = None,
                        force: bool = False) -> None:
        """A session that logged in, or went on to use the application after its attempt,
        is no longer counted as login-only."""
        sess = sess or ev.session
        st = sess.auth
        if force or sess.n - st.attempts - st.before > LOGIN_ONLY_BEFORE + 1:
            st.login_only = False
            ip = ev.rec.ip
            for c in self._clusters_of(ev.rec, ai, ts):
                c.lo_sessions = max(0.0, c.lo_sessions - 1.0)
                if c.ips is not None:     # a pool names only addresses that stopped at the
                    c.ips.pop(ip, None)   # login: a person who went on is not in it

    def _carry_login(self, rec: RequestRecord, sess: Actor, ip: Actor, ts: float,
                     ai: int) -> None:
        """A successful login issues a new session cookie: the session that starts right
        after it, from the same address and user agent, is the authenticated continuation.
        Where the status did not tell (a default login route answering 200 either way), that
        new cookie is what shows the attempt succeeded."""
        hit = self._recent_ok.pop((rec.ip, rec.ua), None)
        if hit is None or ts - hit[0] > LOGIN_CARRY:
            return
        st = sess.auth = AuthStats(0, ts)
        st.oks = 1
        st.ok_at = 0
        prev = hit[2]
        if prev.auth is not None and prev.auth.login_only:
            self._not_login_only(Event(rec, self.apps[ai], "", prev, ip, None, False, False),
                                 ai, ts, prev, force=True)
        if hit[1] is None:
            if ip.auth is not None:
                ip.auth.oks += 1
                ip.auth.ok_at = ip.n
            lt = self.long_auth.get((rec.ip, hash(rec.ua)))
            if lt is not None:
                lt.success()

    def _verified_bot(self, ev: Event) -> bool:
        """A crawler that proved to be who it claims (vendor range or FCrDNS) is exempt."""
        if ev.session.ua_kind != "good_bot":
            return False
        rec = ev.rec
        return self.verifier.verdict(rec.ip, classify_ua(rec.ua).name, rec.ts) == VERIFIED

    def _excepted(self, ip: str) -> bool:
        key = parse_ip(ip) if self._exceptions else None
        return key is not None and key in self._exceptions

    def _session_end(self, actor: Actor) -> None:
        if not actor.flagged and actor.n >= 3:
            self.baselines.learn_session(actor.req_bytes, actor.resp_bytes)
        if not actor.flagged and actor.auth is not None and actor.auth.attempts:
            self.baselines.learn_auth(actor.auth.attempts)
        if actor.human and not actor.flagged and actor.seq is not None:
            # The normal of the behaviour score is people's: monitors and partner
            # integrations (legitimate, but machines) would stretch it.
            model = self.baselines.behavior
            r = model.score(actor.seq) if model.ready else None
            if r is not None and r[2] >= SCORE_MIN_TRANSITIONS:
                model.learn_score(r[0])

    # -- housekeeping -------------------------------------------------------------------------
    def finish(self) -> list[Decision]:
        """End of input (replay): detections still settling are made, and every session
        ends so its totals are learned."""
        out = self._settle(float("inf"))
        self.sessions.drain()
        return out

    def stats(self) -> dict[str, Any]:
        return {
            "requests": self.requests, "decisions": self.decisions,
            "sessions": len(self.sessions), "ips": len(self.ips), "networks": len(self.nets),
            "evictions": {"sessions": self.sessions.evictions, "ips": self.ips.evictions,
                          "networks": self.nets.evictions},
            "learned_requests": self.baselines.seen, "warmed_up": self.ctx.warmed_up,
        }

def _other_requests(actor: Actor) -> int:
    """An actor's requests that were not login attempts."""
    return actor.n - (actor.auth.attempts if actor.auth is not None else 0)


def _monitor(actor: Actor) -> bool:
    """Health checks and little else, answered: an uptime monitor or a load balancer's probe
    (what it does is what it is for; only attack detectors judge it)."""
    f = actor.flows
    return (f is not None and f[_HEALTH] * 10 >= actor.n * 9
            and actor.n_err * CUSTOMER_MAX_ERRORS <= actor.n)


def _focus(fired: list) -> dict[str, float]:
    """Per bot type, how plainly the findings that point at that one type name it: each
    finding's specificity, for the type its effective votes lean to (none for a tie)."""
    out: dict[str, float] = {}
    for det, f in fired:
        only = f.only
        best, second, bt = 0.0, 0.0, None
        for _, t, w in det.vote_idx:
            v = w * (f.strength if only is None else f.strength * only.get(t, 0.0))
            if v > best:
                best, second, bt = v, best, t
            elif v > second:
                second = v
        if bt is not None and best > second * 1.2:
            out[bt] = out.get(bt, 0.0) + det.specificity * f.strength
    return out


def _fingerprint(key: tuple) -> str:
    _, ip, ua, ja3 = key
    h = hashlib.blake2b(f"{ip}|{ua}|{ja3 or ''}".encode(), digest_size=8).hexdigest()
    return f"fp-{h}"


def _features(actor: Actor, fired: list) -> dict[str, float]:
    """The heatmap axes of the console (SPEC §8) for this actor at decision time."""
    values = {d.name: f.value for d, f in fired}
    n = max(actor.n, 1)
    uniq = min(actor.distinct_requests(), n)
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
