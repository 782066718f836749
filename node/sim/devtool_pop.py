"""Who uses api.devtool.example: developers in the web app and the mobile app, the customers'
programs (CI pipelines, SDK syncs, nightly backups, a BI connector with many keys, a Zapier-like
poller, webhook senders, health checks, chat unfurls) and the bots. World "saas"; families
are "dev_*".

Modelled on such clients: the SPA (app.devtool.example) talks GraphQL and REST with a JWT
(preflights cached 2 h, Chrome's cap), renews the JWT with its cookie every ~9 minutes and
polls notifications (30 s in front, once a minute in a background tab); SDKs page as fast as
they can and sleep out the 429's Retry-After; CI runners come from ever new cloud addresses.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from node.sim import agents
from node.sim.apikit import (
    AWS_V4,
    AZURE_V4,
    BUSINESS_V4,
    CAMPUS_V6,
    CARRIER_V4,
    CARRIER_V6,
    CLOUD_V4,
    CURL,
    GCP_V4,
    GITHUB_HOOKS,
    GO,
    GOOGLEBOT_NET,
    HEADLESS,
    HOSTING_V4,
    KUBE_PROBE,
    NODE_FETCH,
    PINGDOM,
    REQUESTS,
    RESIDENTIAL_V4,
    RESIDENTIAL_V6,
    STRIPE_WEBHOOK_IPS,
    ApiActor,
    CorsTab,
    Integration,
    app_ua,
    digest,
    form,
    group,
    jbody,
    lognorm,
    number,
    outside,
    pick,
    spread_starts,
)
from node.sim.bots import BACKUPS, COMMON_PASSWORDS, FIRST, LAST, PROBE_PATHS, shuffled
from node.sim.core import FORM_CT, HUMAN, JSON_CT, Actor, Env, Family, Intent, family
from node.sim.devtool import (
    N_ORGS,
    N_PUBLIC_USERS,
    N_TEMPLATES,
    N_USERS,
    ORIGIN,
    RATE,
    api_key,
    event_cursor,
    export_id,
    export_seconds,
    has_2fa,
    issue_count,
    jwt,
    org_of,
    otp_token,
    password_for,
    projects_of,
    public_login,
    session_id,
    template_slug,
    totp,
    user_email,
    verify_token,
)
from node.sim.paybank import card_cvc, card_exp, customer_card, luhn_complete

W = "saas"
GQL = "/graphql"
QUERIES = (
    "query Viewer { viewer { login name orgs(first: 10) { nodes { slug name } } } }",
    "query Projects($org: ID!) { org(id: $org) { projects(first: 20) { nodes { id name "
    "openIssues } } } }",
    "query Board($p: ID!) { project(id: $p) { columns { name issues(first: 50) { nodes { id "
    "title assignee { login } labels { name } } } } } }",
    "query Issue($p: ID!, $n: Int!) { project(id: $p) { issue(number: $n) { title body "
    "comments(first: 30) { nodes { author { login } body createdAt } } } } }",
)
MUTATIONS = (
    "mutation Comment($i: ID!, $b: String!) { addComment(issue: $i, body: $b) { id } }",
    "mutation Move($i: ID!, $c: ID!) { moveIssue(issue: $i, column: $c) { id } }",
)


class WebDeveloper(ApiActor):
    """Shared by the web families: login (or a remembered cookie), JWT renewal, calls."""

    REMEMBERED_P = 0.55
    MISTYPE_P = 0.06
    V6_P = 0.25
    MAX_AGE = 7200.0

    def setup(self) -> None:
        rng = self.rng
        if not self.ip:
            self.ip = (pick(rng, RESIDENTIAL_V6)[0] if rng.random() < self.V6_P
                       else pick(rng, RESIDENTIAL_V4 + BUSINESS_V4)[0])
        if not self.ua:
            self.ua = agents.browser_ua(rng, rng.random() < 0.1)
        self.n = rng.randint(1, N_USERS)
        self.org = org_of(self.n)
        self.base = {"Origin": ORIGIN, "Referer": ORIGIN + "/",
                     "Accept-Language": rng.choice(agents.LANGUAGES)}
        self.cors = CorsTab(self, ORIGIN, self.MAX_AGE)

    def set_jwt(self, t: float) -> None:
        self.issued = t
        self.token = jwt(self.n, self.sid, self._last.ts)
        self.get_h = {**self.base, "Authorization": "Bearer " + self.token}
        self.post_h = {**self.get_h, **JSON_CT}

    def login(self, t: float) -> Iterator[Intent]:
        rng, user = self.rng, user_email(self.n)
        h = {**self.base, **JSON_CT}
        if rng.random() < self.REMEMBERED_P:
            self.sid = session_id(self.n, self.start - rng.uniform(3600, 86400 * 20))
            yield from self.cors.send(t, "POST", "/api/session/refresh", headers=h)
            self.set_jwt(t)
            return t
        for _ in range(rng.randint(1, 3) if rng.random() < self.MISTYPE_P else 0):
            yield from self.cors.send(t, "POST", "/api/session", body=jbody(
                {"email": user, "password": password_for(self.n)[:-1]}), user=user, headers=h)
            t += rng.uniform(4, 15)
        yield from self.cors.send(t, "POST", "/api/session", body=jbody(
            {"email": user, "password": password_for(self.n)}), user=user, headers=h)
        if has_2fa(self.n):
            tok = otp_token(self.n, self._last.ts)
            t += lognorm(rng, 9, 0.5, 3, 60)  # opens the authenticator
            yield from self.cors.send(t, "POST", "/api/session/otp", body=jbody(
                {"otp_token": tok, "code": totp(self.n, round(t, 3))}), headers=h)
        self.sid = session_id(self.n, self._last.ts)
        self.set_jwt(t)
        return t

    def call(self, t: float, method: str, path: str, query: str = "",
             body: bytes | None = None) -> Iterator[Intent]:
        if t - self.issued > 540:
            yield from self.cors.send(t, "POST", "/api/session/refresh",
                                      headers={**self.base, **JSON_CT})
            self.set_jwt(t)
            t += self.rng.uniform(0.05, 0.2)
        yield from self.cors.send(t, method, path, query, body,
                                  headers=self.post_h if body else self.get_h)


def _gql(rng: random.Random, q: str, **variables: object) -> bytes:
    name = q.split()[1].split("(")[0]
    return jbody({"operationName": name, "query": q, "variables": variables})


@family("dev_web", HUMAN, 220, world=W)
class WebUser(WebDeveloper):
    """A developer in the web app: boards and issues over GraphQL, lists over REST (page=),
    comments and moves, an export now and then; the tab polls and may stay open."""

    def wait(self, t: float, dt: float) -> Iterator[Intent]:
        """dt seconds later; meanwhile the foreground tab polls every 30 s."""
        until = min(t + dt, self.env.end)
        while self.next_poll < until:
            yield from self.call(self.next_poll, "GET", "/v1/notifications")
            self.next_poll += 30 + self.rng.uniform(-0.3, 0.3)
        return t + dt

    def run(self) -> Iterator[Intent]:
        self.setup()
        rng, end = self.rng, self.env.end
        t = yield from self.login(self.start)
        projects = projects_of(self.org)
        t += rng.uniform(0.2, 0.6)
        for q in QUERIES[:2]:
            yield from self.call(t, "POST", GQL, body=_gql(rng, q, org=self.org))
            t += rng.uniform(0.02, 0.15)
        self.next_poll = t + 30
        for _ in range(int(lognorm(rng, 10, 0.7, 2, 60))):
            t = yield from self.wait(t, lognorm(rng, 11, 1.0, 1, 500))
            if t >= end:
                return
            p = rng.choice(projects)
            r = rng.random()
            if r < 0.35:
                yield from self.call(t, "POST", GQL, body=_gql(rng, QUERIES[2], p=p))
            elif r < 0.6:
                yield from self.call(t, "POST", GQL, body=_gql(
                    rng, QUERIES[3], p=p, n=rng.randint(1, issue_count(p))))
            elif r < 0.78:
                page = 1 if rng.random() < 0.7 else rng.randint(2, 5)
                yield from self.call(t, "GET", f"/v1/projects/{p}/issues",
                                     f"page={page}&per_page=50&state=open")
            elif r < 0.9:
                yield from self.call(t, "POST", GQL, body=_gql(
                    rng, rng.choice(MUTATIONS), i=f"I{p}-{rng.randint(1, 99)}", b="ok", c="C2"))
            elif r < 0.97:
                yield from self.call(t, "POST", f"/v1/projects/{p}/issues", body=jbody(
                    {"title": "Fix " + rng.choice(LAST), "labels": ["bug"]}))
            else:
                t = yield from self.export(t, p)
        if rng.random() < 0.4:  # left open in a background tab
            stop = min(end, t + lognorm(rng, 1200, 0.7, 120, 3600))
            t += 60
            while t < stop:
                yield from self.call(t, "GET", "/v1/notifications")
                t += 60 + rng.uniform(0, 1)

    def export(self, t: float, p: int) -> Iterator[Intent]:
        rng = self.rng
        yield from self.call(t, "POST", "/v1/exports", body=jbody({"project": p,
                                                                   "format": "csv"}))
        eid = export_id(self.org, p, self._last.ts)
        ready = self._last.ts + export_seconds(p)
        while t < ready and t < self.env.end:
            t = yield from self.wait(t, 2.0 + rng.uniform(0, 0.05))  # the page polls every 2 s
            yield from self.call(t, "GET", f"/v1/exports/{eid}")
        t = yield from self.wait(t, rng.uniform(0.5, 2))
        yield from self.call(t, "GET", f"/v1/exports/{eid}/download")
        return t


@family("dev_dashboard", HUMAN, 30, world=W)
class DashboardTab(WebUser):
    """A team's status dashboard left open all hour in a background tab: one poll a minute."""

    REMEMBERED_P = 1.0

    @classmethod
    def spawn(cls, env: Env, fam: Family, n: int) -> list[Actor]:
        out = super().spawn(env, fam, n)
        for a in out:  # open since before the window
            a.start = env.start + env.rng(f"start/{a.id}").uniform(0, 60)
        return out

    def run(self) -> Iterator[Intent]:
        self.setup()
        t = yield from self.login(self.start)
        while t < self.env.end:
            yield from self.call(t, "POST", GQL, body=_gql(self.rng, QUERIES[1], org=self.org))
            t += 60 + self.rng.uniform(0, 1)


@family("dev_password_retry", HUMAN, 3, world=W)
class PasswordRetryUser(WebUser):
    """Gets the password wrong one to three times, then right."""

    REMEMBERED_P = 0.0
    MISTYPE_P = 1.0


@family("dev_office", HUMAN, 1, world=W)
class OfficeDevelopers(WebUser):
    """40 engineers of one customer behind their office NAT address."""

    SIZE = 40

    @classmethod
    def spawn(cls, env: Env, fam: Family, n: int) -> list[Actor]:
        out: list[Actor] = []
        for g, members in enumerate(group(cls, env, fam, n, cls.SIZE)):
            rng = env.rng(f"{fam.name}/{g}")
            ip = pick(rng, BUSINESS_V4)[0]
            spread_starts(env, members, f"start/{fam.name}/{g}")
            for a in members:
                a.ip, a.ua = ip, agents.CORPORATE[rng.random() < 0.3]
            out.extend(members)
        return out


@family("dev_campus", HUMAN, 1, world=W)
class CampusDevelopers(WebUser):
    """30 students of a course on one university IPv6 /64."""

    SIZE = 30

    @classmethod
    def spawn(cls, env: Env, fam: Family, n: int) -> list[Actor]:
        out: list[Actor] = []
        for g, members in enumerate(group(cls, env, fam, n, cls.SIZE)):
            rng = env.rng(f"{fam.name}/{g}")
            net = agents.v6_subnet(rng, CAMPUS_V6)
            spread_starts(env, members, f"start/{fam.name}/{g}")
            for a in members:
                a.ip = agents.v6_in(rng, net)
            out.extend(members)
        return out


@family("dev_signup", HUMAN, 20, world=W)
class NewDeveloper(WebDeveloper):
    """Signs up, opens the verification link from the e-mail, logs in, creates a project."""

    def run(self) -> Iterator[Intent]:
        self.setup()
        rng, t = self.rng, self.start
        email = f"{rng.choice(FIRST)}.{rng.choice(LAST)}@{rng.choice(('acme', 'initech'))}.example"
        h = {**self.base, **JSON_CT}
        pw = "Signup-" + digest("su", self.id, n=10)
        yield from self.cors.send(t, "POST", "/api/signup", body=jbody(
            {"email": email, "password": pw, "name": email.split("@")[0]}), headers=h)
        t += lognorm(rng, 45, 0.6, 8, 900)
        yield from self.cors.send(t, "GET", "/api/verify-email",
                                  f"token={verify_token(email)}&email={email}", headers=self.base)
        t += rng.uniform(3, 20)
        yield from self.cors.send(t, "POST", "/api/session", body=jbody(
            {"email": email, "password": pw}), user=email, headers=h)


@family("dev_mobile", HUMAN, 60, world=W)
class MobileDeveloper(WebDeveloper):
    """The mobile app (Flutter's Dart agent, okhttp, Alamofire): wakes on a push, renews its
    JWT with the stored session, reads the notification's issue, sometimes comments."""

    SHARED_IP: str | None = None

    def run(self) -> Iterator[Intent]:
        rng, env = self.rng, self.env
        self.ua = app_ua(rng, "DevTool", "com.devtool.mobile", "3.8.2")
        self.n = rng.randint(1, N_USERS)
        self.org = org_of(self.n)
        self.sid = session_id(self.n, env.start - rng.uniform(3600, 86400 * 30))
        base = {"Accept": "application/json"}
        carrier = pick(rng, CARRIER_V6 if rng.random() < 0.6 else CARRIER_V4)[0]
        home = pick(rng, RESIDENTIAL_V4)[0]
        t = self.start
        for _ in range(rng.choice((1, 2, 2, 3, 5))):
            if t >= env.end:
                return
            self.ip = self.SHARED_IP or (carrier if rng.random() < 0.6 else home)
            yield self.req(t, "POST", "/api/session/refresh", headers={**base, **JSON_CT})
            self.headers = {**base, "Authorization": "Bearer " + jwt(self.n, self.sid,
                                                                     self._last.ts)}
            p = rng.choice(projects_of(self.org))
            t += rng.uniform(0.1, 0.3)
            yield self.req(t, "GET", "/v1/notifications")
            for _ in range(int(lognorm(rng, 3, 0.6, 1, 12))):
                t += lognorm(rng, 8, 0.8, 1, 120)
                if rng.random() < 0.8:
                    yield self.req(t, "GET", f"/v1/projects/{p}/issues/"
                                   f"{rng.randint(1, issue_count(p))}")
                else:
                    yield self.req(t, "POST", GQL, body=_gql(
                        rng, MUTATIONS[0], i=f"I{p}-1", b="on it"),
                        headers={**self.headers, **JSON_CT})
            t += lognorm(rng, 1500, 0.6, 200, 3600)


@family("dev_cgnat", HUMAN, 1, world=W)
class CgnatDevelopers(MobileDeveloper):
    """30 app users behind one carrier-grade NAT address."""

    SIZE = 30

    @classmethod
    def spawn(cls, env: Env, fam: Family, n: int) -> list[Actor]:
        out: list[Actor] = []
        for g, members in enumerate(group(cls, env, fam, n, cls.SIZE)):
            ip = pick(env.rng(f"{fam.name}/{g}"), CARRIER_V4)[0]
            spread_starts(env, members, f"start/{fam.name}/{g}")
            for a in members:
                a.SHARED_IP = ip
            out.extend(members)
        return out


# -- customers' programs -------------------------------------------------------------------------

@family("dev_ci", HUMAN, 1, world=W, kind="integration")
class CiPipelines(Integration):
    """A customer's CI: ~60 builds an hour on hosted runners, each from a fresh cloud
    address; the CLI reports a deployment and polls it every 2 s until done."""

    UA = "devtool-cli/2.3.1 (linux; x64) node/20.18.0"

    def run(self) -> Iterator[Intent]:
        rng, env = self.rng, self.env
        org = 1 + self.idx * 7
        key = api_key(org, 0)
        self.headers = {"Authorization": "Bearer " + key, "Accept": "application/json"}
        self.sid = key
        t = env.start + rng.expovariate(60 / 3600)
        while t < env.end:
            self.ip = pick(rng, AZURE_V4)[0]
            p = rng.choice(projects_of(org))
            yield self.req(t, "GET", f"/v1/projects/{p}")
            t += rng.uniform(0.1, 0.4)
            yield self.req(t, "POST", f"/v1/projects/{p}/deployments", body=jbody(
                {"ref": digest("sha", t, n=40), "environment": "production"}),
                headers={**self.headers, **JSON_CT})
            dep = "dep_" + digest("dep", t, n=12)
            for _ in range(rng.randint(5, 60)):
                t += 2.0 + rng.uniform(0, 0.1)
                yield self.req(t, "GET", f"/v1/deployments/{dep}")
            t += rng.expovariate(60 / 3600)


class RateAware(Integration):
    """An SDK that counts its own requests per minute and sleeps out a 429's Retry-After
    (the API's rule: RATE per credential per fixed minute)."""

    def limited(self, t: float, cred: str, method: str, path: str, query: str = "",
                **kw: object) -> Iterator[Intent]:
        minute = int(t) // 60
        if getattr(self, "_minute", None) != minute:
            self._minute, self._used = minute, 0
        self._used += 1
        ev = self.req(t, method, path, query, **kw)
        yield ev
        if self._used > RATE:  # that one was a 429: wait for the next minute
            self.resume = (int(ev.ts) // 60 + 1) * 60 + self.rng.uniform(0.01, 0.5)
            return
        self.resume = t


@family("dev_sdk", HUMAN, 10, world=W, kind="integration")
class SdkSync(RateAware):
    """A customer's issue sync through the official SDK (Python, Go, Node) or curl: every page
    of every project at full speed, sleeping out 429s, then issue updates."""

    AGENTS = ("devtool-python/3.1.0 python-requests/2.32.3", f"devtool-go/1.8.0 {GO}",
              f"devtool-node/4.0.2 {NODE_FETCH}", CURL[0], REQUESTS)

    def run(self) -> Iterator[Intent]:
        rng, env = self.rng, self.env
        self.ua = self.AGENTS[self.idx % len(self.AGENTS)]
        self.ip = pick(rng, CLOUD_V4)[0]
        org = 11 + self.idx * 13
        key = api_key(org, 1)
        self.headers = {"Authorization": "Bearer " + key, "Accept": "application/json"}
        self.sid = key
        for h in self.hours(rng.uniform(0, 3600)):
            t = h
            for p in projects_of(org):
                for page in range(1, issue_count(p) // 100 + 2):
                    if t >= env.end:
                        return
                    yield from self.limited(t, key, "GET", f"/v1/projects/{p}/issues",
                                            f"page={page}&per_page=100&state=all")
                    t = self.resume + rng.uniform(0.04, 0.09)
            for _ in range(rng.randint(5, 40)):
                p = rng.choice(projects_of(org))
                yield from self.limited(t, key, "PATCH", f"/v1/projects/{p}/issues/"
                                        f"{rng.randint(1, issue_count(p))}", body=jbody(
                                            {"labels": ["synced"]}),
                                        headers={**self.headers, **JSON_CT})
                t = self.resume + rng.uniform(0.05, 0.2)


@family("dev_nightly", HUMAN, 2, world=W, kind="integration")
class NightlyBackup(RateAware):
    """A customer's nightly backup: an export per project (three at a time, the API's
    limit), polled every 5 s, downloaded when ready."""

    UA = REQUESTS

    def run(self) -> Iterator[Intent]:
        rng, env = self.rng, self.env
        org = 101 + self.idx * 17
        key = api_key(org, 2)
        self.headers = {"X-Api-Key": key, "Accept": "application/json"}
        self.sid = key
        t = env.start + rng.uniform(0.05, 0.5) * env.duration
        todo = list(projects_of(org))
        while todo and t < env.end:
            batch, todo = todo[:3], todo[3:]
            jobs = []
            for p in batch:
                ev = self.req(t, "POST", "/v1/exports", body=jbody({"project": p,
                                                                    "format": "json"}),
                              headers={**self.headers, **JSON_CT})
                yield ev
                jobs.append((export_id(org, p, ev.ts), ev.ts + export_seconds(p)))
                t += rng.uniform(0.1, 0.3)
            for eid, ready in jobs:
                while t < ready and t < env.end:
                    t += 5.0
                    yield self.req(t, "GET", f"/v1/exports/{eid}")
                t += 0.2
                yield self.req(t, "GET", f"/v1/exports/{eid}/download")
                t += rng.uniform(1, 5)


@family("dev_bi_connector", HUMAN, 1, world=W, kind="integration")
class BiConnector(Integration):
    """A BI service holding 60 customers' API keys on one address: each key's audit events,
    every page by cursor, once an hour at its own minute."""

    UA = "insightly-connector/5.2 (+https://insightly.example) Java/17.0.13"
    BLOCKS = HOSTING_V4

    def run(self) -> Iterator[Intent]:
        rng = self.rng
        plan = [(rng.uniform(0, 3600), o) for o in rng.sample(range(1, N_ORGS), 60)]
        for t, org in sorted((h, o) for off, o in plan for h in self.hours(off)):
            t = max(t, self._t)  # one worker: a run waits for the one before
            key = api_key(org, 2)
            self.sid = key
            self.headers = {"Authorization": "Bearer " + key}
            total = 500 + number("events", org) % 40_000
            for k in range(min(rng.randint(1, 6), total // 100 + 1)):
                yield self.req(t, "GET", "/v1/events", "per_page=100" + (
                    f"&cursor={event_cursor(org, k * 100)}" if k else ""))
                t += rng.uniform(0.1, 0.3)


@family("dev_zapier", HUMAN, 1, world=W, kind="integration")
class AutomationPoller(Integration):
    """An automation platform: 200 customers' "new issue" triggers, each polled every
    5 minutes with its customer's key, from four cloud addresses."""

    UA = "Zapier"

    def run(self) -> Iterator[Intent]:
        rng, env = self.rng, self.env
        ips = pick(rng, AWS_V4, 4)
        zaps = []
        for z in range(200):
            org = rng.randint(1, N_ORGS)
            zaps.append((rng.uniform(0, 300), org, rng.choice(projects_of(org)), ips[z % 4]))
        events = sorted((env.start + off + k * 300, org, p, ip) for off, org, p, ip in zaps
                        for k in range(int(env.duration // 300) + 1))
        for t, org, p, ip in events:
            if t >= env.end:
                return
            self.ip = ip
            key = api_key(org, 2)
            self.sid = key
            yield self.req(t, "GET", f"/v1/projects/{p}/issues", "page=1&per_page=20&sort=created",
                           headers={"Authorization": "Bearer " + key})


@family("dev_webhooks", HUMAN, 2, world=W, kind="integration")
class InboundHooks(Integration):
    """GitHub (push events, from its published hook range) and Stripe (billing events, from
    its webhook addresses) posting to /hooks/*."""

    def run(self) -> Iterator[Intent]:
        rng, env = self.rng, self.env
        github = self.idx % 2 == 0
        self.ua = f"GitHub-Hookshot/{digest('hs', n=7)}" if github else \
            "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
        mean = 20.0 if github else 180.0
        t = env.start + rng.expovariate(1 / mean)
        while t < env.end:
            self.ip = pick(rng, GITHUB_HOOKS)[0] if github else rng.choice(STRIPE_WEBHOOK_IPS)
            eid = digest("e", self.id, t, n=16)
            h = {**JSON_CT, ("X-Hub-Signature-256" if github else "Stripe-Signature"):
                 "sha256=" + eid}
            yield self.req(t, "POST", "/hooks/github" if github else "/hooks/stripe",
                           body=jbody({"id": eid, "action": "push" if github else
                                       "invoice.paid"}), headers=h)
            t += rng.expovariate(1 / mean)


@family("dev_uptime", HUMAN, 1, world=W, kind="integration")
class StatusChecks(Integration):
    """Kubernetes probes every 10 s (pod addresses), Pingdom every minute, UptimeRobot every
    5 minutes, on /healthz and /v1/status."""

    PROBES = ((KUBE_PROBE, 10.0, "/healthz", "10.42.0.0/16"),
              (KUBE_PROBE, 10.0, "/healthz", "10.42.0.0/16"),
              (PINGDOM, 60.0, "/v1/status", "aws"), (PINGDOM, 60.0, "/v1/status", "gcp"),
              (agents.UPTIME_MONITOR, 300.0, "/healthz", "uptimerobot"))

    @classmethod
    def spawn(cls, env: Env, fam: Family, n: int) -> list[Actor]:
        out: list[Actor] = []
        for g in range(n):
            for k, (ua, period, path, where) in enumerate(cls.PROBES):
                a = cls(env, fam, g * 10 + k, f"{fam.name}-{g:02d}-{k:02d}")
                rng = env.rng(f"ip/{a.id}")
                a.ua, a.period, a.path = ua, period, path
                a.ip = (agents.UPTIMEROBOT_PROBE if where == "uptimerobot" else pick(
                    rng, AWS_V4 if where == "aws" else GCP_V4 if where == "gcp" else where)[0])
                out.append(a)
        return out

    def run(self) -> Iterator[Intent]:
        t = self.env.start + self.rng.uniform(0, self.period)
        while t < self.env.end:
            yield self.req(t, "GET", self.path)
            t += self.period + self.rng.uniform(-0.02, 0.02)


@family("dev_unfurl", HUMAN, 1, world=W, kind="integration")
class ChatUnfurl(Integration):
    """The chat integration unfurling issue links pasted in customers' channels: bursts of
    issue reads with the app's per-customer keys, from the chat vendor's cloud."""

    UA = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"

    def run(self) -> Iterator[Intent]:
        rng, env = self.rng, self.env
        ips = pick(rng, AWS_V4, 6)
        t = env.start + rng.expovariate(1 / 15)
        while t < env.end:
            org = rng.randint(1, N_ORGS)
            p = rng.choice(projects_of(org))
            self.ip = rng.choice(ips)
            self.sid = api_key(org, 2)
            for _ in range(rng.choice((1, 1, 1, 3))):  # the same link in several channels
                yield self.req(t, "GET", f"/v1/projects/{p}/issues/{rng.randint(1, 50)}",
                               headers={"Authorization": "Bearer " + api_key(org, 2)})
                t += rng.uniform(0.05, 0.5)
            t += rng.expovariate(1 / 15)


# -- bots ----------------------------------------------------------------------------------------

class DevBot(ApiActor):
    @classmethod
    def spawn(cls, env: Env, fam: Family, n: int) -> list[Actor]:
        return [cls(env, fam, i) for i in range(n)]

    def own_account(self, t: float, n: int) -> Iterator[Intent]:
        """The bot logs into its own (trial) account: a session and a JWT it renews."""
        ev = self.req(t, "POST", "/api/session", body=jbody(
            {"email": user_email(n), "password": password_for(n)}), user=user_email(n),
            headers=JSON_CT)
        yield ev
        self.sid = session_id(n, ev.ts)
        self.n, self.jwt_at = n, ev.ts
        self.headers = {"Authorization": "Bearer " + jwt(n, self.sid, ev.ts), **JSON_CT}

    def renew(self, t: float) -> Iterator[Intent]:
        if t - self.jwt_at > 540:
            ev = self.req(t, "POST", "/api/session/refresh", headers=JSON_CT)
            yield ev
            self.jwt_at = ev.ts
            self.headers = {"Authorization": "Bearer " + jwt(self.n, self.sid, ev.ts),
                            **JSON_CT}


def _bot_account(rng: random.Random) -> int:
    """A trial account the bot made earlier (no two-factor)."""
    n = rng.randint(3600, N_USERS)
    return n + 1 if has_2fa(n) else n


def _combo(rng: random.Random) -> tuple[str, str]:
    if rng.random() < 0.6:
        n = rng.randint(1, N_USERS)
        return user_email(n), (password_for(n) if rng.random() < 0.01
                               else rng.choice(COMMON_PASSWORDS))
    return (f"{rng.choice(FIRST)}.{rng.choice(LAST)}@{rng.choice(('gmail', 'corp'))}.example",
            rng.choice(COMMON_PASSWORDS))


@family("dev_stuffing_resi", "account_takeover", 1, world=W)
class ResidentialStuffing(DevBot):
    """Credential stuffing on /api/session through 300-600 residential proxies, 1-3 tries
    each, form posts with a browser agent."""

    def run(self) -> Iterator[Intent]:
        rng, env = self.rng, self.env
        pool = pick(rng, RESIDENTIAL_V4, rng.randint(300, 600))
        self.ua = agents.DESKTOP[0][1]
        plan = [ip for ip in pool for _ in range(rng.randint(1, 3))]
        rng.shuffle(plan)
        t0 = env.start + rng.uniform(0, 0.1) * env.duration
        for t, ip in zip(sorted(rng.uniform(t0, env.end) for _ in plan), plan, strict=True):
            user, pw = _combo(rng)
            yield self.req(t, "POST", "/api/session", body=form(email=user, password=pw),
                           user=user, headers={"Origin": ORIGIN, **FORM_CT}, ip=ip)


@family("dev_brute_dist", "account_takeover", 1, world=W)
class DistributedBruteForce(DevBot):
    """Distributed brute force on three admins' accounts from 40-80 proxies; the throttle
    (429) answers most of it."""

    def run(self) -> Iterator[Intent]:
        rng, env = self.rng, self.env
        targets = [user_email(rng.randint(1, N_USERS)) for _ in range(3)]
        pool = pick(rng, RESIDENTIAL_V4, rng.randint(40, 80))
        self.ua = REQUESTS
        plan = [ip for ip in pool for _ in range(rng.randint(3, 8))]
        t0 = env.start + rng.uniform(0, 0.1) * env.duration
        words = iter(COMMON_PASSWORDS * 40)
        for k, (t, ip) in enumerate(zip(sorted(rng.uniform(t0, env.end) for _ in plan), plan,
                                        strict=True)):
            user = targets[k % 3]
            yield self.req(t, "POST", "/api/session", body=jbody(
                {"email": user, "password": next(words)}), user=user, headers=JSON_CT, ip=ip)


@family("dev_totp_brute", "account_takeover", 1, world=W)
class TotpBruteForce(DevBot):
    """Has the password of two-factor accounts and guesses the TOTP code, a login and a few
    codes at a time, from a rented server."""

    def run(self) -> Iterator[Intent]:
        rng, env = self.rng, self.env
        self.ip = pick(rng, HOSTING_V4)[0]
        self.ua = GO
        victims = [4 * rng.randint(1, N_USERS // 4) for _ in range(2)]
        t = self.at(0.0, 0.4)
        k = 0
        while t < env.end:
            n = victims[k % 2]
            ev = self.req(t, "POST", "/api/session", body=jbody(
                {"email": user_email(n), "password": password_for(n)}), user=user_email(n),
                headers=JSON_CT)
            yield ev
            tok = otp_token(n, ev.ts)
            for _ in range(rng.randint(3, 8)):
                t += rng.uniform(0.2, 0.8)
                yield self.req(t, "POST", "/api/session/otp", body=jbody(
                    {"otp_token": tok, "code": f"{rng.randrange(10**6):06d}"}), headers=JSON_CT)
            k += 1
            t += rng.uniform(1, 5)


@family("dev_card_testing", "api_abuse", 1, world=W)
class CardTesting(DevBot):
    """Card testing through the billing form of trial accounts: card after card, mostly
    declined (this API answers 200 with "status":"declined")."""

    def run(self) -> Iterator[Intent]:
        rng = self.rng
        self.ip = pick(rng, CLOUD_V4)[0]
        self.ua = agents.DESKTOP[0][1]
        t, stop = self.window((0.0, 0.4), (0.3, 0.6))
        yield from self.own_account(t, _bot_account(rng))
        while t < stop:
            t += rng.uniform(2, 6)
            yield from self.renew(t)
            if rng.random() < 0.85:
                pan = luhn_complete("424242" + f"{rng.randrange(10**9):09d}")
                exp, cvc = f"{rng.randint(1, 12):02d}/{rng.randint(26, 30)}", \
                    f"{rng.randrange(1000):03d}"
            else:
                pan = customer_card(rng.randint(1, 3000))
                exp, cvc = card_exp(pan), card_cvc(pan)
            yield self.req(t, "POST", "/v1/billing/payment-methods", body=jbody(
                {"card": {"number": pan, "exp": exp, "cvc": cvc}}))


@family("dev_fake_accounts", "api_abuse", 1, world=W)
class FakeAccounts(DevBot):
    """A sign-up factory for free CI minutes: catch-all domains it controls, verification
    links followed at once, from a cloud pool."""

    def run(self) -> Iterator[Intent]:
        rng = self.rng
        pool = pick(rng, CLOUD_V4 + HOSTING_V4, 8)
        self.ua = rng.choice((agents.DESKTOP[0][1], REQUESTS))
        t, stop = self.window((0.0, 0.3), (0.4, 0.7))
        k = 0
        while t < stop:
            ip = rng.choice(pool)
            email = f"{rng.choice(FIRST)}{k}{rng.randrange(100)}@{rng.choice(('mx1', 'mx2'))}" \
                    ".catchall.example"
            yield self.req(t, "POST", "/api/signup", body=jbody(
                {"email": email, "password": "Passw0rd!2025", "name": email[:8]}),
                headers=JSON_CT, ip=ip)
            t += rng.uniform(2, 6)
            yield self.req(t, "GET", "/api/verify-email", f"token={verify_token(email)}&email="
                           f"{email}", ip=ip)
            k += 1
            t += rng.uniform(3, 12)


@family("dev_sms_pumping", "api_abuse", 1, world=W)
class SmsPumping(DevBot):
    """SMS pumping through the phone-verification step of a trial account: sends to runs of
    premium numbers, never verified."""

    def run(self) -> Iterator[Intent]:
        rng = self.rng
        self.ip = pick(rng, HOSTING_V4)[0]
        self.ua = agents.DESKTOP[2][1]
        t, stop = self.window((0.0, 0.4), (0.3, 0.5))
        yield from self.own_account(t, _bot_account(rng))
        base = rng.randrange(10**6)
        k = 0
        while t < stop:
            t += rng.uniform(1, 4)
            yield from self.renew(t)
            yield self.req(t, "POST", "/v1/user/phone", body=jbody(
                {"phone": f"+{rng.choice(('88216', '37126', '22507'))}{(base + k) % 10**6:06d}"}))
            k += 1


@family("dev_headless", "scraping", 1, world=W)
class HeadlessScraper(DevBot):
    """A headless browser in a cloud pool scraping the public template marketplace and
    public profiles."""

    def run(self) -> Iterator[Intent]:
        rng = self.rng
        pool = pick(rng, AWS_V4 + GCP_V4, 20)
        self.ua = HEADLESS
        self.headers = {"Origin": ORIGIN, "Referer": ORIGIN + "/marketplace"}
        t, stop = self.window((0.0, 0.4), (0.4, 0.6))
        tpls = shuffled(rng, N_TEMPLATES)
        page = 1
        while t < stop:
            if rng.random() < 0.1:
                yield self.req(t, "GET", "/v1/public/templates", f"page={page}",
                               ip=rng.choice(pool))
                page += 1
            else:
                k = next(tpls, 1)
                yield self.req(t, "GET", f"/v1/public/templates/{template_slug(k)}",
                               ip=rng.choice(pool))
            t += rng.uniform(0.3, 1.2)


@family("dev_app_harvester", "scraping", 1, world=W)
class AppHarvester(DevBot):
    """Public profiles harvested with the mobile app's Dart agent from rented servers: a
    login list walked in order (about a third are 404s)."""

    def run(self) -> Iterator[Intent]:
        rng = self.rng
        ips = pick(rng, HOSTING_V4, 4)
        self.ua = "Dart/3.5 (dart:io)"
        t, stop = self.window((0.0, 0.3), (0.4, 0.6))
        for k in range(rng.randrange(N_PUBLIC_USERS // 2), N_PUBLIC_USERS):
            if t >= stop:
                return
            yield self.req(t, "GET", f"/v1/users/{public_login(k)}", ip=rng.choice(ips))
            t += rng.uniform(0.2, 0.7)


@family("dev_fake_googlebot", "scraping", 1, world=W)
class FakeGooglebot(DevBot):
    """Googlebot's agent from a hosting address outside 66.249.64.0/19, crawling templates."""

    def run(self) -> Iterator[Intent]:
        rng = self.rng
        self.ip = outside(rng, HOSTING_V4, GOOGLEBOT_NET)
        self.ua = agents.GOOGLEBOT[1]
        t, stop = self.window((0.0, 0.5), (0.2, 0.4))
        for k in shuffled(rng, N_TEMPLATES):
            if t >= stop:
                return
            yield self.req(t, "GET", f"/v1/public/templates/{template_slug(k)}")
            t += rng.uniform(0.5, 2.0)


SAAS_PROBES = ("/v1/admin", "/v1/admin/orgs", "/api/admin", "/api/internal/flags", "/v2/graphql",
               "/graphiql", "/playground", "/api/graphql", "/swagger.json", "/openapi.yaml",
               "/v1/projects/1", "/v1/projects/2/issues", "/v1/orgs/1/members", "/v1/keys",
               "/.well-known/jwks.json", "/api/session/../../etc/passwd", "/debug/vars",
               "/metrics", "/v1/exports/exp_0000000000000000")


@family("dev_scanner", "security_crawlers", 2, world=W)
class ApiScanner(DevBot):
    """An API scanner: wordlists, admin and debug paths, GraphQL consoles, alg=none JWTs and
    injections; 401s and 404s."""

    def run(self) -> Iterator[Intent]:
        rng = self.rng
        self.ip = pick(rng, CLOUD_V4 + HOSTING_V4)[0]
        self.ua = agents.SCANNERS[(2, 4)[self.idx % 2]]
        t = self.at(0.0, 0.8)
        probes = [("GET", p, "") for p in SAAS_PROBES + PROBE_PATHS[:70] + BACKUPS[:8]]
        probes += [("GET", "/v1/public/templates", "page=1%27%20OR%201%3D1--"),
                   ("GET", "/api/verify-email", "token=%7B%7B7*7%7D%7D&email=a"),
                   ("POST", GQL, ""), ("POST", "/api/session", "")]
        rng.shuffle(probes)
        for method, path, query in probes:
            if t >= self.env.end:
                return
            h = {"Authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1MSJ9."}
            yield self.req(t, method, path, query, b'{"query":"{__typename}"}'
                           if method == "POST" else None,
                           headers={**h, **JSON_CT} if method == "POST" else h)
            t += rng.expovariate(1 / 0.2)


@family("dev_graphql_abuse", "api_abuse", 2, world=W)
class GraphqlAbuse(DevBot):
    """GraphQL abuse with a trial account: introspection, batches of 20-100 operations,
    deep nesting, hundreds of aliases; fast."""

    def run(self) -> Iterator[Intent]:
        rng = self.rng
        self.ip = pick(rng, CLOUD_V4)[0]
        self.ua = rng.choice((NODE_FETCH, REQUESTS, "graphql-cop/1.13"))
        t, stop = self.window((0.0, 0.5), (0.2, 0.4))
        yield from self.own_account(t, _bot_account(rng))
        intro = jbody({"query": "query IntrospectionQuery { __schema { types { name fields "
                                "{ name } } } }"})
        while t < stop:
            t += rng.uniform(0.2, 1.0)
            yield from self.renew(t)
            r = rng.random()
            if r < 0.15:
                body = intro
            elif r < 0.45:
                body = jbody([{"query": QUERIES[3], "variables": {"p": 10, "n": i}}
                              for i in range(rng.randint(20, 100))])
            elif r < 0.75:
                d = rng.randint(6, 30)
                body = jbody({"query": "query { viewer { " + "orgs { nodes { projects { nodes "
                              "{ members { nodes { " * (d // 3) + "login" + " } } } } } }" *
                              (d // 3) + " } }"})
            else:
                body = jbody({"query": "query { " + " ".join(
                    f"a{i}: project(id: {10 + i % 8}) {{ issues(first: 100) {{ nodes {{ title }} "
                    "} }" for i in range(rng.randint(30, 400))) + " }"})
            yield self.req(t, "POST", GQL, body=body)


@family("dev_export_abuse", "resource_consumption", 1, world=W)
class ExportAbuse(DevBot):
    """Export abuse: a trial org's largest project exported and downloaded again and again,
    on through the 429s, with the API key."""

    def run(self) -> Iterator[Intent]:
        rng = self.rng
        self.ip = pick(rng, HOSTING_V4)[0]
        self.ua = REQUESTS
        org = max(range(N_ORGS - 40, N_ORGS), key=lambda o: sum(map(issue_count,
                                                                    projects_of(o))))
        big = sorted(projects_of(org), key=issue_count)[-3:]
        key = api_key(org, 0)
        self.sid = key
        self.headers = {"X-Api-Key": key, **JSON_CT}
        t, stop = self.window((0.0, 0.4), (0.3, 0.5))
        while t < stop:
            jobs = []
            for p in big:  # as many exports as the API lets one org run
                ev = self.req(t, "POST", "/v1/exports", body=jbody({"project": p,
                                                                    "format": "json"}))
                yield ev
                jobs.append((export_id(org, p, ev.ts), ev.ts + export_seconds(p)))
                t += rng.uniform(0.1, 0.4)
            for _ in range(rng.randint(3, 10)):  # more, ignoring the 429s
                yield self.req(t, "POST", "/v1/exports", body=jbody({"project": big[-1],
                                                                     "format": "csv"}))
                t += rng.uniform(0.5, 1.5)
            for eid, ready in jobs:
                while t < ready:
                    t += 1.0
                    yield self.req(t, "GET", f"/v1/exports/{eid}")
                for _ in range(rng.randint(3, 8)):  # the same big file, again and again
                    yield self.req(t, "GET", f"/v1/exports/{eid}/download")
                    t += rng.uniform(0.3, 1.0)
                if t >= stop:
                    return


@family("dev_name_squatter", "api_abuse", 1, world=W)
class NameSquatter(DevBot):
    """Denial of inventory: claims organisation names (brands, dictionary words) in bulk
    from a trial account, to sell them back."""

    WORDS = ("acme", "stripe", "nike", "tesla", "apple", "openai", "shop", "cloud", "data",
             "pay", "bank", "labs", "dev", "api", "ai", "app", "io", "hq", "team", "studio")

    def run(self) -> Iterator[Intent]:
        rng = self.rng
        self.ip = pick(rng, HOSTING_V4)[0]
        self.ua = GO
        t, stop = self.window((0.0, 0.5), (0.2, 0.4))
        yield from self.own_account(t, _bot_account(rng))
        for a in self.WORDS:
            for b in ("",) + self.WORDS:
                t += rng.uniform(0.8, 2.5)
                if t >= stop:
                    return
                yield from self.renew(t)
                yield self.req(t, "POST", "/v1/orgs", body=jbody({"slug": a + b}))


@family("dev_low_slow", "scraping", 1, world=W)
class LowAndSlow(DevBot):
    """One public profile every 20-60 s from one home address, the whole hour."""

    def run(self) -> Iterator[Intent]:
        rng, env = self.rng, self.env
        self.ip = pick(rng, RESIDENTIAL_V4)[0]
        self.ua = agents.browser_ua(rng, False)
        self.headers = {"Origin": ORIGIN, "Referer": ORIGIN + "/people"}
        t = env.start + rng.uniform(0, 60)
        k = rng.randrange(N_PUBLIC_USERS)
        while t < env.end:
            yield self.req(t, "GET", f"/v1/users/{public_login(k % N_PUBLIC_USERS)}")
            k += 1
            t += rng.uniform(20, 60)


@family("dev_key_enum", "api_abuse", 1, world=W)
class KeyEnumeration(DevBot):
    """Made-up dtk_ API keys against /v1/projects, from three servers."""

    def run(self) -> Iterator[Intent]:
        rng = self.rng
        ips = pick(rng, HOSTING_V4, 3)
        self.ua = CURL[2]
        t, stop = self.window((0.0, 0.5), (0.2, 0.4))
        while t < stop:
            key = f"dtk_{rng.randint(1, N_ORGS):04d}{rng.getrandbits(112):028x}"
            yield self.req(t, "GET", "/v1/projects", headers={"Authorization": "Bearer " + key},
                           ip=rng.choice(ips))
            t += rng.uniform(0.15, 0.6)
