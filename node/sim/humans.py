"""Human actors: shoppers, and the legitimate clients that look least like shoppers.

Timing follows what web analytics show: lognormal think times (seconds to minutes, heavy
tail), bursts of a page's API calls within a few hundred milliseconds, Zipf product interest.
"""

from __future__ import annotations

import math
import random
from collections.abc import Generator, Iterator

from node.sim import agents
from node.sim.core import (
    FORM_CT,
    HUMAN,
    JSON_CT,
    Actor,
    Env,
    Family,
    Intent,
    family,
    login_body,
    new_sid,
)
from node.sim.shopmodel import (
    CATEGORIES,
    N_USERS,
    SORTS,
    login_sid,
    pages,
    password_for,
    popular_product,
    product,
    username,
)

Visit = Generator[Intent, None, float]


def _typo(rng: random.Random, pw: str) -> str:
    k = rng.randrange(len(pw))
    return rng.choice((pw[:k] + pw[k + 1:], pw[:k] + pw[k] * 2 + pw[k:][1:], pw.upper(),
                       pw + "!", pw[:k] + "9" + pw[k + 1:]))


@family("human", HUMAN, 400)
class Human(Actor):
    """A shopper: home, lists, products, search, sometimes login, cart and checkout."""

    THINK = (6.0, 1.1)  # seconds between page actions: lognormal median, sigma
    LENGTH = (22.0, 0.7, 5, 80)  # requests per visit: lognormal median, sigma, min, max
    MIX = {"product": 40, "list": 18, "search": 12, "cart_add": 9, "cart": 4, "checkout": 6,
           "login": 2, "orders": 3}
    RETURN_P = 0.35  # comes back later with a new session
    MISTYPE_P = 0.07  # mistypes the password one to three times before getting it right
    EARLY_LOGIN_P = 0.12
    V6_P = 0.15

    def __init__(self, env: Env, fam: Family, idx: int, actor_id: str | None = None,
                 mobile: bool | None = None, start: float | None = None) -> None:
        super().__init__(env, fam, idx, actor_id)
        self.mobile = mobile
        self.lang: str | None = None
        # Arrivals spread over the window; a visit lasting past the end is cut there.
        self.start = env.start if start is None else start

    @classmethod
    def arrivals(cls, env: Env, fam: Family, n: int) -> list[float]:
        rng = env.rng(f"start/{fam.name}")
        return [env.start + rng.random() * env.duration * 0.97 for _ in range(n)]

    @classmethod
    def spawn(cls, env: Env, fam: Family, n: int) -> list[Actor]:
        v4 = agents.addresses(env.rng(f"ips/{fam.name}"), agents.HUMAN_V4, n)
        starts = cls.arrivals(env, fam, n)
        out: list[Actor] = []
        for i in range(n):
            a = cls(env, fam, i, start=starts[i])
            a.ip = v4[i]
            out.append(a)
        return out

    def setup(self) -> None:
        """Draw the person: browser, account, language (and, for some, an IPv6 address)."""
        rng, env = self.rng, self.env
        if not self.ua:
            self.ua = agents.browser_ua(rng, self.mobile)
        if rng.random() < self.V6_P:
            self.ip = agents.v6_in(rng, agents.HUMAN_V6)
        self.account = rng.randint(1, N_USERS)
        self.headers = {"Accept-Language": self.lang or rng.choice(agents.LANGUAGES),
                        "Referer": f"https://{env.host}/"}
        self.post_headers = {**self.headers, **JSON_CT}
        self._mix = list(self.MIX)
        self._w = list(self.MIX.values())

    def think(self) -> float:
        med, sigma = self.THINK
        return min(600.0, max(0.8, self.rng.lognormvariate(math.log(med), sigma)))

    def fails_before_login(self) -> int:
        return self.rng.randint(1, 3) if self.rng.random() < self.MISTYPE_P else 0

    def run(self) -> Iterator[Intent]:
        self.setup()
        t, rng, env = self.start, self.rng, self.env
        for visit in range(3):
            t = yield from self.visit(t)
            if visit == 2 or rng.random() >= self.RETURN_P:
                return
            t += rng.lognormvariate(math.log(900), 0.6)  # back after ~15 minutes
            if t >= env.end:
                return

    def visit(self, t: float) -> Visit:
        rng, end = self.rng, self.env.end
        med, sigma, lo, hi = self.LENGTH
        # The last action may add a few requests (a checkout with a login): stop short of hi.
        target = self.count + min(hi - 8, max(lo, int(rng.lognormvariate(math.log(med), sigma))))
        self.sid, self.logged_in, self.cart, self.last_pid = None, False, 0, 0
        # A page load: the HTML sets the cookie, then its assets, then the app's first call.
        yield self.req(t, "GET", "/")
        self.sid = new_sid(rng)
        t += rng.uniform(0.02, 0.12)
        yield self.req(t, "GET", "/static/app.js")
        t += rng.uniform(0.003, 0.05)
        yield self.req(t, "GET", "/static/app.css")
        t += rng.uniform(0.1, 0.4)
        yield self.req(t, "GET", "/api/products", "page=1")
        login_at = self.count + rng.randint(1, 4) if rng.random() < self.EARLY_LOGIN_P else -1
        while self.count < target:
            t += self.think()
            if t >= end:
                return t
            if self.count >= login_at >= 0 and not self.logged_in:
                t = yield from self.login(t)
                continue
            action = rng.choices(self._mix, self._w)[0]
            t = yield from getattr(self, "do_" + action)(t)
        if self.logged_in and rng.random() < 0.15:
            t += self.think()
            if t < end:
                yield self.req(t, "POST", "/api/logout", headers=self.post_headers)
                self.sid = None
        return t

    # Actions: each yields one page's requests and returns the time of its last one.

    def do_product(self, t: float) -> Visit:
        rng = self.rng
        self.last_pid = pid = popular_product(rng)
        yield self.req(t, "GET", f"/api/products/{pid}")
        if rng.random() < 0.25:  # the page also shows more of the same category
            t += rng.uniform(0.08, 0.4)
            yield self.req(t, "GET", "/api/products", f"category={product(pid).category}")
        return t

    def do_list(self, t: float) -> Visit:
        rng = self.rng
        cat = rng.choice(CATEGORIES) if rng.random() < 0.7 else None
        page = 1 if rng.random() < 0.6 else min(pages(cat), 1 + int(rng.expovariate(0.6)) + 1)
        parts = [f"category={cat}"] if cat else []
        parts.append(f"page={page}")
        if rng.random() < 0.25:
            parts.append(f"sort={rng.choice(SORTS)}")
        yield self.req(t, "GET", "/api/products", "&".join(parts))
        return t

    def do_search(self, t: float) -> Visit:
        rng = self.rng
        p = product(popular_product(rng))
        words = [p.tokens[2]] if rng.random() < 0.6 else [p.tokens[1], p.tokens[2]]
        q = "+".join(words)
        if rng.random() < 0.05:
            q = _typo(rng, q)
        yield self.req(t, "GET", "/api/search", f"q={q}")
        if rng.random() < 0.5:  # opens a hit
            t += rng.uniform(1.5, 8.0)
            self.last_pid = p.id
            yield self.req(t, "GET", f"/api/products/{p.id}")
        return t

    def do_cart_add(self, t: float) -> Visit:
        rng = self.rng
        if not self.last_pid:
            return (yield from self.do_product(t))
        body = b'{"product_id":%d,"qty":%d}' % (self.last_pid, 1 if rng.random() < 0.8 else 2)
        yield self.req(t, "POST", "/api/cart", body=body, headers=self.post_headers)
        self.cart += 1
        if rng.random() < 0.4:
            t += rng.uniform(0.5, 3.0)
            yield self.req(t, "GET", "/api/cart")
        return t

    def do_cart(self, t: float) -> Visit:
        yield self.req(t, "GET", "/api/cart")
        return t

    def do_checkout(self, t: float) -> Visit:
        rng = self.rng
        if not self.cart:
            return (yield from self.do_cart_add(t))
        yield self.req(t, "GET", "/api/cart")
        if not self.logged_in:
            t = yield from self.login(t + self.think())
        t += rng.uniform(4.0, 40.0)  # address and payment forms
        yield self.req(t, "POST", "/api/checkout", body=b"{}", headers=self.post_headers)
        self.cart = 0
        if rng.random() < 0.4:
            t += rng.uniform(2.0, 10.0)
            yield self.req(t, "GET", "/api/orders")
        return t

    def do_login(self, t: float) -> Visit:
        if self.logged_in:
            return (yield from self.do_product(t))
        return (yield from self.login(t))

    def do_orders(self, t: float) -> Visit:
        if not self.logged_in:
            return (yield from self.do_list(t))
        yield self.req(t, "GET", "/api/orders")
        return t

    def login(self, t: float) -> Visit:
        rng = self.rng
        user, pw = username(self.account), password_for(self.account)
        for _ in range(self.fails_before_login()):
            yield self.req(t, "POST", "/api/login", body=login_body(user, _typo(rng, pw)),
                           user=user, headers=self.post_headers)
            t += rng.uniform(3.0, 15.0)
        yield self.req(t, "POST", "/api/login", body=login_body(user, pw), user=user,
                       headers=self.post_headers)
        self.sid = login_sid(self.sid, user)
        self.logged_in = True
        return t


@family("power_user", HUMAN, 3)
class PowerUser(Human):
    """A fast power user: long sessions of quick product views."""

    THINK = (1.8, 0.45)
    LENGTH = (100.0, 0.25, 60, 160)
    MIX = {"product": 75, "list": 12, "search": 10, "cart_add": 3}
    RETURN_P = 0.5


@family("password_retry", HUMAN, 3)
class PasswordRetry(Human):
    """A user who gets the password wrong three times, then right."""

    EARLY_LOGIN_P = 1.0

    def fails_before_login(self) -> int:
        return 3


def _group_spawn(cls: type[Human], env: Env, fam: Family, n: int, size: int,
                 mobile: bool | None) -> list[tuple[int, list[Human]]]:
    starts = cls.arrivals(env, fam, n * size)
    out = []
    for g in range(n):
        members = [cls(env, fam, g * size + j, f"{fam.name}-{g:02d}-{j:02d}", mobile,
                       starts[g * size + j]) for j in range(size)]
        out.append((g, members))
    return out


@family("office_nat", HUMAN, 1)
class OfficeWorker(Human):
    """25 colleagues behind one office NAT address, on the same managed browser."""

    SIZE = 25
    V6_P = 0.0

    @classmethod
    def spawn(cls, env: Env, fam: Family, n: int) -> list[Actor]:
        ips = agents.addresses(env.rng(f"ips/{fam.name}"), agents.OFFICE_NAT, n)
        out: list[Actor] = []
        for g, members in _group_spawn(cls, env, fam, n, cls.SIZE, False):
            rng = env.rng(f"{fam.name}/{g}")
            lang = rng.choice(agents.LANGUAGES)
            for a in members:
                a.ip, a.lang = ips[g], lang
                a.ua = agents.CORPORATE[0] if rng.random() < 0.8 else agents.CORPORATE[1]
            out.extend(members)
        return out


@family("mobile_v6", HUMAN, 1)
class CarrierV6User(Human):
    """30 phone users of one carrier, each on its own address in the same IPv6 /64."""

    SIZE = 30
    V6_P = 0.0

    @classmethod
    def spawn(cls, env: Env, fam: Family, n: int) -> list[Actor]:
        out: list[Actor] = []
        for g, members in _group_spawn(cls, env, fam, n, cls.SIZE, True):
            rng = env.rng(f"{fam.name}/{g}")
            net = agents.v6_subnet(rng, agents.MOBILE_V6)
            for a in members:
                a.ip = agents.v6_in(rng, net)
            out.extend(members)
        return out


@family("cgnat", HUMAN, 1)
class CgnatUser(Human):
    """40 phone users behind one carrier-grade NAT IPv4 address."""

    SIZE = 40
    V6_P = 0.0

    @classmethod
    def spawn(cls, env: Env, fam: Family, n: int) -> list[Actor]:
        ips = agents.addresses(env.rng(f"ips/{fam.name}"), agents.CGNAT, n)
        out: list[Actor] = []
        for g, members in _group_spawn(cls, env, fam, n, cls.SIZE, True):
            for a in members:
                a.ip = ips[g]
            out.extend(members)
        return out


@family("uptime_monitor", HUMAN, 1, kind="integration")
class UptimeMonitor(Actor):
    """An uptime monitor: GET /api/health every 60 s, no cookie, from the monitoring service's
    published probe address (legitimate: its user agent's claim verifies)."""

    PERIOD = 60.0

    def __init__(self, env: Env, fam: Family, idx: int) -> None:
        super().__init__(env, fam, idx)
        self.ua = agents.UPTIME_MONITOR
        self.ip = agents.UPTIMEROBOT_PROBE
        self.start = env.start + self.rng.uniform(0, self.PERIOD)

    def run(self) -> Iterator[Intent]:
        t, k = self.start, 0
        while t < self.env.end:
            yield self.req(t, "GET", "/api/health")
            k += 1
            t = self.start + k * self.PERIOD + self.rng.uniform(0, 0.03)  # scheduler jitter


@family("partner", HUMAN, 1, kind="integration")
class Partner(Actor):
    """A partner's catalog sync: API library UA, logs in once, steady moderate rate
    (legitimate: an operator puts it on the exception list)."""

    def __init__(self, env: Env, fam: Family, idx: int) -> None:
        super().__init__(env, fam, idx)
        rng = self.rng
        self.ua = agents.PARTNER
        self.ip = agents.addresses(rng, agents.SERVICES, 1)[0]
        self.headers = {"Accept": "application/json"}
        self.account = rng.randint(1, N_USERS)
        self.start = env.start + rng.uniform(0, 30)
        self.period = rng.choice((4.0, 5.0, 6.0))

    def run(self) -> Iterator[Intent]:
        rng, end = self.rng, self.env.end
        t = self.start
        user = username(self.account)
        yield self.req(t, "POST", "/api/login", body=login_body(user, password_for(self.account),
                                                                form=True),
                       user=user, headers={**self.headers, **FORM_CT})
        self.sid = login_sid(None, user)
        page, n = 1, 0
        while True:
            t += self.period * rng.uniform(0.9, 1.1)
            if t >= end:
                return
            n += 1
            if n % 60 == 0:
                yield self.req(t, "GET", "/api/orders")
            elif n % 6 == 0:
                yield self.req(t, "GET", f"/api/products/{popular_product(rng)}")
            else:
                yield self.req(t, "GET", "/api/products", f"page={page}&sort=newest")
                page = page % pages() + 1
