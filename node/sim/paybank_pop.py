"""Who uses api.paybank.example: customers (web app, mobile app), the customers' programs
(merchant servers, batch jobs, an aggregator, a bookkeeping exporter, webhook senders, health
checks, a partner) and the bots that attack a bank. World "payments"; families are "pay_*".

Modelled on what such clients do: a single-page app on another origin preflights every
non-simple request (Access-Control-Max-Age 600 s) and polls notifications, every 30 s in front
and once a minute in a background tab; a mobile app wakes, refreshes its token and reads a
few screens; a merchant's server charges cards as its own shoppers arrive; batch jobs run on
the hour and page as fast as the API answers.
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
    ELB,
    GCP_V4,
    GO,
    GOOGLEBOT_NET,
    HEADLESS,
    HOSTING_V4,
    NODE_FETCH,
    PINGDOM,
    REQUESTS,
    RESIDENTIAL_V4,
    RESIDENTIAL_V6,
    VPC_V4,
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
from node.sim.paybank import (
    BINS,
    N_BRANCHES,
    N_CUSTOMERS,
    N_MERCHANTS,
    ORIGIN,
    accounts_of,
    client_secret,
    cursor,
    customer,
    customer_card,
    known_device,
    login_tokens,
    luhn_complete,
    mfa_token,
    otp_id,
    password_for,
    publishable_key,
    refresh_revoked,
    refresh_token,
    reset_token,
    rotate,
    secret_key,
    sms_code,
    tx_count,
)

W = "payments"
APP = "PayBank"
APP_VERSION = "5.14.0"
TOKEN = "/oauth/token"
MERCHANT_ORIGINS = tuple(f"https://{s}.example" for s in ("florist-shop", "bikeparts",
                                                           "teashop", "gymclub", "bookcorner"))


def _typo(rng: random.Random, pw: str) -> str:
    k = rng.randrange(len(pw))
    return rng.choice((pw[:k] + pw[k + 1:], pw.lower(), pw + "1", pw[:k] + "x" + pw[k + 1:]))


# -- customers in a browser --------------------------------------------------------------------

@family("pay_web", HUMAN, 260, world=W)
class WebCustomer(ApiActor):
    """A customer in the web app (an SPA on app.paybank.example): logs in (MFA from a new
    device), reads accounts and transactions, pays, finds a branch; the tab polls."""

    KNOWN_DEVICE_P = 0.6
    MISTYPE_P = 0.07
    V6_P = 0.2
    BLOCKS: tuple[str, ...] = RESIDENTIAL_V4

    def setup(self) -> None:
        rng = self.rng
        if not self.ip:
            self.ip = (pick(rng, RESIDENTIAL_V6)[0] if rng.random() < self.V6_P
                       else pick(rng, self.BLOCKS)[0])
        if not self.ua:
            self.ua = agents.browser_ua(rng)
        self.n = rng.randint(1, N_CUSTOMERS)
        self.device = (known_device(self.n, rng.randrange(3)) if rng.random() < self.KNOWN_DEVICE_P
                       else "dev-" + digest("newdev", self.id, n=12))
        self.base = {"Origin": ORIGIN, "Referer": ORIGIN + "/",
                     "Accept-Language": rng.choice(agents.LANGUAGES)}
        self.cors = CorsTab(self, ORIGIN, 600.0)
        self.token: str | None = None
        self.refresh: str | None = None

    def auth(self, access: str, refresh: str, t: float) -> None:
        self.token, self.refresh, self.issued = access, refresh, t
        self.sid = access  # the session a node keyed on the bearer token sees
        self.get_h = {**self.base, "Authorization": "Bearer " + access}
        self.post_h = {**self.get_h, **JSON_CT}

    def run(self) -> Iterator[Intent]:
        self.setup()
        t = yield from self.login(self.start)
        if self.token is None:
            return
        t = yield from self.session(t)
        if self.rng.random() < 0.35:  # the tab stays open in the background
            yield from self.background(t, t + lognorm(self.rng, 900, 0.8, 120, 3600))

    def login(self, t: float) -> Iterator[Intent]:
        rng, user = self.rng, customer(self.n)
        pw = password_for(self.n)
        fh = {**self.base, **FORM_CT}
        client = {"grant_type": "password", "client_id": "web-spa", "device_id": self.device,
                  "username": user}
        for _ in range(rng.randint(1, 2) if rng.random() < self.MISTYPE_P else 0):
            yield from self.cors.send(t, "POST", TOKEN, body=form(**client,
                                      password=_typo(rng, pw)), user=user, headers=fh)
            t += rng.uniform(4, 15)
        yield from self.cors.send(t, "POST", TOKEN, body=form(**client, password=pw),
                                  user=user, headers=fh)
        if self.device not in {known_device(self.n, k) for k in range(3)}:
            tok = mfa_token(self.n, self._last_ts())
            t += lognorm(rng, 18, 0.5, 5, 120)  # reads the SMS
            h = {**self.base, **JSON_CT}
            if rng.random() < 0.05:
                yield from self.cors.send(t, "POST", "/v1/mfa/verify",
                                          body=jbody({"mfa_token": tok, "code": "000000"}),
                                          headers=h)
                t += rng.uniform(4, 12)
            yield from self.cors.send(t, "POST", "/v1/mfa/verify",
                                      body=jbody({"mfa_token": tok, "code": sms_code(tok)}),
                                      headers=h)
            t_login = self._last_ts()
        else:
            t_login = self._last_ts()
        self.auth(*login_tokens(self.n, self.device, t_login), t)
        return t

    def _last_ts(self) -> float:
        return self._last.ts

    def think(self) -> float:
        return lognorm(self.rng, 9.0, 1.0, 1.0, 400.0)

    def call(self, t: float, method: str, path: str, query: str = "",
             body: bytes | None = None) -> Iterator[Intent]:
        if t - self.issued > 840:  # the app refreshes a minute before expiry
            yield from self.do_refresh(t)
            t += self.rng.uniform(0.05, 0.2)
        yield from self.cors.send(t, method, path, query, body,
                                  headers=self.post_h if body else self.get_h)

    def do_refresh(self, t: float) -> Iterator[Intent]:
        yield from self.cors.send(t, "POST", TOKEN, body=form(
            grant_type="refresh_token", client_id="web-spa", refresh_token=self.refresh),
            headers={**self.base, **FORM_CT})
        self.auth(*rotate(self.refresh, self._last_ts()), t)

    def wait(self, t: float, dt: float) -> Iterator[Intent]:
        """dt seconds later; meanwhile the foreground tab polls every 30 s."""
        until = min(t + dt, self.env.end)
        while self.next_poll < until:
            yield from self.call(self.next_poll, "GET", "/v1/notifications",
                                 f"since={int(self.next_poll) - 30}")
            self.next_poll += 30 + self.rng.uniform(-0.5, 0.5)
        return t + dt

    def session(self, t: float) -> Iterator[Intent]:
        rng, end = self.rng, self.env.end
        accts = accounts_of(self.n)
        for path in ("/v1/customers/me", "/v1/accounts", "/v1/notifications"):
            yield from self.call(t, "GET", path, "since=0" if "notif" in path else "")
            t += rng.uniform(0.05, 0.4)
        self.next_poll = t + 30
        for _ in range(int(lognorm(rng, 8, 0.7, 2, 40))):
            t = yield from self.wait(t, self.think())
            if t >= end:
                return t
            r = rng.random()
            if r < 0.55:
                a = rng.choice(accts)
                total = tx_count(a)
                yield from self.call(t, "GET", f"/v1/accounts/{a}/transactions", "limit=25")
                off = 25
                while off < total and rng.random() < 0.35:  # "load more"
                    t = yield from self.wait(t, lognorm(rng, 6, 0.6, 1, 60))
                    if t >= end:
                        return t
                    yield from self.call(t, "GET", f"/v1/accounts/{a}/transactions",
                                         f"limit=25&cursor={cursor(a, off)}")
                    off += 25
            elif r < 0.72:
                t = yield from self.wait(t, lognorm(rng, 25, 0.5, 6, 180))  # fills the form
                if t >= end:
                    return t
                amount = int(lognorm(rng, 4500, 1.2, 100, 500_000))
                yield from self.call(t, "POST", "/v1/payments", body=jbody(
                    {"amount": amount, "currency": "EUR", "from": accts[0],
                     "payee": f"IBAN{number('payee', self.id, t) % 10**12:012d}"}))
            elif r < 0.82:
                lat, lng = rng.uniform(47, 55), rng.uniform(5, 15)
                yield from self.call(t, "GET", "/v1/branches",
                                     f"lat={lat:.4f}&lng={lng:.4f}&radius_km=10")
                if rng.random() < 0.6:
                    t = yield from self.wait(t, rng.uniform(2, 10))
                    if t >= end:
                        return t
                    yield from self.call(t, "GET", f"/v1/branches/{rng.randint(1, N_BRANCHES)}")
            elif r < 0.9:
                yield from self.call(t, "GET", "/v1/fx/rates")
            else:
                yield from self.call(t, "GET", "/v1/customers/me")
        return t

    def background(self, t: float, until: float) -> Iterator[Intent]:
        """A hidden tab: the browser throttles its timers to once a minute."""
        end = min(until, self.env.end)
        t += 60
        while t < end:
            yield from self.call(t, "GET", "/v1/notifications", f"since={int(t) - 60}")
            t += 60 + self.rng.uniform(0, 1.0)


@family("pay_locked_out", HUMAN, 3, world=W)
class LockedOutCustomer(WebCustomer):
    """A customer who has forgotten the password: five wrong tries lock the account (423),
    then a password reset by e-mail, then a login with the new password."""

    def login(self, t: float) -> Iterator[Intent]:
        rng, user = self.rng, customer(self.n)
        fh = {**self.base, **FORM_CT}
        for k in range(6):
            yield from self.cors.send(t, "POST", TOKEN, body=form(
                grant_type="password", client_id="web-spa", device_id=self.device,
                username=user, password=_typo(rng, password_for(self.n)) + str(k)),
                user=user, headers=fh)
            t += rng.uniform(5, 20)
        h = {**self.base, **JSON_CT}
        yield from self.cors.send(t, "POST", "/v1/password/reset", body=jbody({"email": user}),
                                  headers=h)
        tok = reset_token(user, self._last_ts())
        t += lognorm(rng, 90, 0.5, 20, 600)  # the e-mail arrives, the link opens the app
        new = "N3w-" + digest("newpw", self.id, n=10)
        yield from self.cors.send(t, "POST", "/v1/password/reset/confirm",
                                  body=jbody({"token": tok, "password": new}), headers=h)
        t += rng.uniform(5, 20)
        self.device = known_device(self.n, 0)
        yield from self.cors.send(t, "POST", TOKEN, body=form(
            grant_type="password", client_id="web-spa", device_id=self.device, username=user,
            password=new), user=user, headers=fh)
        self.auth(*login_tokens(self.n, self.device, self._last_ts()), t)
        return t


@family("pay_office", HUMAN, 1, world=W)
class OfficeCustomer(WebCustomer):
    """30 staff of one company on the business web app behind one office NAT address."""

    SIZE = 30
    KNOWN_DEVICE_P = 0.9

    @classmethod
    def spawn(cls, env: Env, fam: Family, n: int) -> list[Actor]:
        out: list[Actor] = []
        for g, members in enumerate(group(cls, env, fam, n, cls.SIZE)):
            rng = env.rng(f"{fam.name}/{g}")
            ip = pick(rng, BUSINESS_V4)[0]
            spread_starts(env, members, f"start/{fam.name}/{g}")
            for a in members:
                a.ip = ip
                a.ua = agents.CORPORATE[rng.random() < 0.2]
            out.extend(members)
        return out


@family("pay_campus", HUMAN, 1, world=W)
class CampusCustomer(WebCustomer):
    """40 students on a university network: each on its own address in one IPv6 /64."""

    SIZE = 40

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


@family("pay_signup", HUMAN, 15, world=W)
class NewCustomer(WebCustomer):
    """A new customer signs up in the web app and confirms the phone with the SMS code."""

    def run(self) -> Iterator[Intent]:
        self.setup()
        rng, t = self.rng, self.start
        h = {**self.base, **JSON_CT}
        phone = f"+49{number('phone', self.id) % 10**10 + 1500000000:d}"
        email = f"{rng.choice(FIRST)}.{rng.choice(LAST)}{rng.randint(1, 99)}@mail.example"
        t += lognorm(rng, 60, 0.5, 15, 400)  # fills the form
        yield from self.cors.send(t, "POST", "/v1/signup", body=jbody({
            "email": email, "phone": phone, "name": email.split("@")[0].title(),
            "password": "S1gn-" + digest("su", self.id, n=8)}), headers=h)
        oid = otp_id(phone, self._last_ts())
        t += lognorm(rng, 25, 0.5, 6, 200)
        if rng.random() < 0.15:  # the SMS is late: "send again"
            yield from self.cors.send(t, "POST", "/v1/otp/send",
                                      body=jbody({"phone": phone, "purpose": "signup"}), headers=h)
            oid = otp_id(phone, self._last_ts())
            t += lognorm(rng, 20, 0.5, 5, 120)
        yield from self.cors.send(t, "POST", "/v1/otp/verify",
                                  body=jbody({"otp_id": oid, "code": sms_code(oid)}), headers=h)


@family("pay_checkout", HUMAN, 120, world=W)
class CheckoutShopper(WebCustomer):
    """A shopper on a merchant's site: the merchant's checkout script verifies the card with
    the merchant's publishable key (CORS from the merchant's origin); a typo now and then."""

    def run(self) -> Iterator[Intent]:
        rng = self.rng
        self.ip = pick(rng, RESIDENTIAL_V4 if rng.random() < 0.8 else CARRIER_V4)[0]
        self.ua = agents.browser_ua(rng)
        m = rng.randint(1, N_MERCHANTS)
        origin = MERCHANT_ORIGINS[m % len(MERCHANT_ORIGINS)]
        self.cors = CorsTab(self, origin, 600.0)
        h = {"Origin": origin, "Referer": origin + "/checkout", "X-Api-Key": publishable_key(m),
             **JSON_CT}
        pan = customer_card(rng.randint(1, N_CUSTOMERS), rng.randrange(2))
        from node.sim.paybank import card_cvc, card_exp
        t = self.start
        if rng.random() < 0.08:
            yield from self.cors.send(t, "POST", "/v1/cards/verify", body=jbody({
                "number": pan, "exp": card_exp(pan), "cvc": f"{(int(card_cvc(pan)) + 1) % 1000:03d}"
            }), headers=h)
            t += lognorm(rng, 12, 0.5, 3, 60)
        yield from self.cors.send(t, "POST", "/v1/cards/verify", body=jbody(
            {"number": pan, "exp": card_exp(pan), "cvc": card_cvc(pan)}), headers=h)


# -- customers in the mobile app -----------------------------------------------------------------

@family("pay_mobile", HUMAN, 200, world=W)
class MobileCustomer(ApiActor):
    """The mobile app (okhttp, Alamofire, Dart): wakes 1-4 times, refreshes its token (a
    revoked one means a password login), reads a few screens, sometimes pays. Phones move
    between the carrier (each its own IPv6 /64 or CGNAT v4) and home Wi-Fi."""

    SHARED_IP: str | None = None

    def run(self) -> Iterator[Intent]:
        rng, env = self.rng, self.env
        self.ua = app_ua(rng, APP, "com.paybank.app", APP_VERSION)
        client = "android-app" if "okhttp" in self.ua or "Dart" in self.ua else "ios-app"
        n = rng.randint(1, N_CUSTOMERS)
        self.device = known_device(n, rng.randrange(3))
        rt = refresh_token(n, digest("yesterday", self.id, n=10))
        carrier = (pick(rng, CARRIER_V6)[0] if rng.random() < 0.6 else pick(rng, CARRIER_V4)[0])
        home = pick(rng, RESIDENTIAL_V4)[0]
        t = self.start
        base = {"Accept": "application/json", "X-App-Version": APP_VERSION}
        for _ in range(rng.choice((1, 1, 2, 2, 3, 4))):
            if t >= env.end:
                return
            self.ip = self.SHARED_IP or (carrier if rng.random() < 0.6 else home)
            self.sid = None
            fh = {**base, **FORM_CT}
            if refresh_revoked(rt):
                yield self.req(t, "POST", TOKEN, body=form(grant_type="refresh_token",
                               client_id=client, refresh_token=rt), headers=fh)
                t += lognorm(rng, 12, 0.5, 3, 60)  # the app shows the login screen
                user = customer(n)
                ev = self.req(t, "POST", TOKEN, body=form(
                    grant_type="password", client_id=client, username=user,
                    password=password_for(n), device_id=self.device), user=user, headers=fh)
                yield ev
                access, rt = login_tokens(n, self.device, ev.ts)
            else:
                ev = self.req(t, "POST", TOKEN, body=form(
                    grant_type="refresh_token", client_id=client, refresh_token=rt), headers=fh)
                yield ev
                access, rt = rotate(rt, ev.ts)
            self.sid = access
            self.headers = {**base, "Authorization": "Bearer " + access}
            t += rng.uniform(0.1, 0.4)
            for path in ("/v1/customers/me", "/v1/accounts"):
                yield self.req(t, "GET", path)
                t += rng.uniform(0.03, 0.2)
            for _ in range(int(lognorm(rng, 4, 0.6, 1, 20))):
                t += lognorm(rng, 7, 0.9, 0.8, 200)
                if t >= env.end:
                    return
                r = rng.random()
                if r < 0.6:
                    a = rng.choice(accounts_of(n))
                    yield self.req(t, "GET", f"/v1/accounts/{a}/transactions", "limit=20")
                elif r < 0.75:
                    yield self.req(t, "GET", "/v1/notifications", f"since={int(t) - 3600}")
                elif r < 0.87:
                    amount = int(lognorm(rng, 3000, 1.1, 100, 300_000))
                    yield self.req(t, "POST", "/v1/payments", body=jbody(
                        {"amount": amount, "currency": "EUR", "from": accounts_of(n)[0],
                         "payee": f"IBAN{number('payee', self.id, t) % 10**12:012d}"}),
                        headers={**self.headers, **JSON_CT})
                else:
                    yield self.req(t, "GET", "/v1/atms",
                                   f"limit=20&near={rng.uniform(47, 55):.3f},"
                                   f"{rng.uniform(5, 15):.3f}")
            t += lognorm(rng, 1200, 0.7, 120, 3600)  # next time the phone comes out


@family("pay_cgnat", HUMAN, 1, world=W)
class CgnatMobile(MobileCustomer):
    """50 app users behind one carrier-grade NAT address."""

    SIZE = 50

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

@family("pay_nightly", HUMAN, 2, world=W, kind="integration")
class NightlyReconciliation(Integration):
    """A merchant's nightly reconciliation cron (python-requests): balance, then every page
    of its payments as fast as the API answers."""

    def run(self) -> Iterator[Intent]:
        rng, env = self.rng, self.env
        m = 1 + self.idx * 37
        self.headers = {"X-Api-Key": secret_key(m), "Accept": "application/json"}
        self.sid = secret_key(m)
        t = env.start + rng.uniform(0.05, 0.7) * env.duration
        yield self.req(t, "GET", "/v1/balance")
        total = 500 + number("payments", m) % 20000
        for off in range(0, total, 100):
            t += rng.uniform(0.05, 0.12)
            yield self.req(t, "GET", "/v1/payments",
                           "limit=100&created_gte=1763769600" +
                           (f"&cursor={cursor(f'm{m}', off)}" if off else ""))


@family("pay_payouts", HUMAN, 2, world=W, kind="integration")
class PayoutBatch(Integration):
    """An hourly payout writer (Go): on the hour, a burst of POST /v1/payouts from four
    workers with idempotency keys, then a status check of a sample."""

    UA = GO

    def run(self) -> Iterator[Intent]:
        rng = self.rng
        m = 5 + self.idx * 53
        self.headers = {"X-Api-Key": secret_key(m), "Accept": "application/json"}
        self.sid = secret_key(m)
        for h in self.hours(rng.uniform(5, 90)):
            t = h
            ids = []
            for k in range(rng.randint(30, 300)):
                t += rng.expovariate(4 / 0.13)  # four workers, ~130 ms each
                pid = "po_" + digest("po", self.id, h, k, n=14)
                ids.append(pid)
                yield self.req(t, "POST", "/v1/payouts", body=jbody(
                    {"amount": rng.randint(500, 900_000), "currency": "EUR",
                     "destination": f"ba_{number('dest', m, k) % 10**8:08d}"}),
                    headers={**self.headers, **JSON_CT, "Idempotency-Key": pid})
            t += 30
            for pid in rng.sample(ids, min(len(ids), 20)):
                t += rng.uniform(0.05, 0.2)
                yield self.req(t, "GET", f"/v1/payouts/{pid}")


@family("pay_aggregator", HUMAN, 1, world=W, kind="integration")
class Aggregator(Integration):
    """An account aggregator holding 300 customers' consents (refresh tokens), syncing each
    customer from two cloud addresses: refresh, accounts, latest transactions."""

    UA = "moneyhub-sync/4.2.1 Java/21.0.5"

    def run(self) -> Iterator[Intent]:
        rng, env = self.rng, self.env
        ips = pick(rng, AWS_V4, 2)
        sec = client_secret("moneyhub-aggr")
        custs = rng.sample(range(1, N_CUSTOMERS + 1), 300)
        t = env.start + rng.uniform(0, 60)
        period = env.duration / len(custs)
        for k, n in enumerate(custs):
            t = max(t, env.start + k * period + rng.uniform(0, period))
            self.ip = ips[k % 2]
            self.sid = None
            rt = refresh_token(n, digest("consent", n, n=10))
            ev = self.req(t, "POST", TOKEN, body=form(
                grant_type="refresh_token", client_id="moneyhub-aggr", client_secret=sec,
                refresh_token=rt), headers={**FORM_CT, "Accept": "application/json"})
            yield ev
            if refresh_revoked(rt):
                continue
            access, _ = rotate(rt, ev.ts)
            self.sid = access
            self.headers = {"Authorization": "Bearer " + access, "Accept": "application/json"}
            t += rng.uniform(0.1, 0.3)
            yield self.req(t, "GET", "/v1/accounts")
            for a in accounts_of(n):
                t += rng.uniform(0.05, 0.2)
                yield self.req(t, "GET", f"/v1/accounts/{a}/transactions", "limit=100")


@family("pay_bookkeeper", HUMAN, 1, world=W, kind="integration")
class BookkeepingExporter(Integration):
    """A bookkeeping service exporting 40 merchants' payments with their API keys, all from
    one hosting address, each merchant at its own minute of the hour."""

    UA = "ledgerbooks-exporter/2.8 axios/1.7.9"
    BLOCKS = HOSTING_V4

    def run(self) -> Iterator[Intent]:
        rng = self.rng
        plan = [(rng.uniform(0, 3600), m) for m in rng.sample(range(1, N_MERCHANTS), 40)]
        for t, m in sorted((h, m) for off, m in plan for h in self.hours(off)):
            t = max(t, self._t)  # one worker: a run waits for the one before
            key = secret_key(m)
            self.headers = {"X-Api-Key": key, "Accept": "application/json"}
            self.sid = key
            yield self.req(t, "GET", "/v1/balance")
            for p in range(rng.randint(1, 4)):
                t += rng.uniform(0.08, 0.25)
                yield self.req(t, "GET", "/v1/payments", "limit=100&created_gte=1763856000"
                               + (f"&cursor={cursor(f'm{m}', p * 100)}" if p else ""))


SDK_AGENTS = ("PayBank/v1 PythonBindings/7.4.0", "PayBank/v1 NodeBindings/14.1.0",
              "PayBank/v1 GoBindings/76.0.0", "PayBank/v1 RubyBindings/13.2.0", REQUESTS,
              "Go-http-client/2.0", NODE_FETCH, CURL[0])


@family("pay_sdk", HUMAN, 12, world=W, kind="integration")
class MerchantServer(Integration):
    """A merchant's server charging cards through the official SDK (or plain HTTP) as its
    shoppers check out: Poisson arrivals, some declines, from one or two cloud addresses."""

    def run(self) -> Iterator[Intent]:
        rng, env = self.rng, self.env
        from node.sim.paybank import card_cvc, card_exp
        self.ua = SDK_AGENTS[self.idx % len(SDK_AGENTS)]
        ips = pick(rng, CLOUD_V4, rng.choice((1, 2)))
        m = 11 + self.idx * 29
        self.sid = secret_key(m)
        self.headers = {"X-Api-Key": secret_key(m), **JSON_CT}
        rate = rng.uniform(20, 200) / 3600
        t = env.start + rng.expovariate(rate)
        while t < env.end:
            self.ip = rng.choice(ips)
            pan = customer_card(rng.randint(1, N_CUSTOMERS), rng.randrange(2))
            cvc = card_cvc(pan) if rng.random() > 0.05 else "000"
            yield self.req(t, "POST", "/v1/payments", body=jbody({
                "amount": int(lognorm(rng, 3900, 0.9, 50, 200_000)), "currency": "EUR",
                "card": {"number": pan, "exp": card_exp(pan), "cvc": cvc}}),
                headers={**self.headers, "Idempotency-Key": digest("ik", self.id, t, n=20)})
            if rng.random() < 0.05:
                t += rng.uniform(1, 5)
                yield self.req(t, "GET", "/v1/balance")
            t += rng.expovariate(rate)


@family("pay_webhooks", HUMAN, 3, world=W, kind="integration")
class WebhookSender(Integration):
    """Providers' servers posting events: SMS delivery receipts, card network events, KYC
    results; signed, from their own addresses, a few retried in quick succession."""

    KINDS = (("sms-status", "smsgateway-callbacks/1.0", 30.0, True),
             ("card-events", "cardnet-events/2.3", 45.0, False),
             ("kyc", "kycvendor-webhooks/3.1", 240.0, False))

    def run(self) -> Iterator[Intent]:
        rng, env = self.rng, self.env
        path, self.ua, mean, as_form = self.KINDS[self.idx % 3]
        ips = pick(rng, AWS_V4 if as_form else GCP_V4, 3)
        t = env.start + rng.expovariate(1 / mean)
        while t < env.end:
            self.ip = rng.choice(ips)
            eid = digest("evt", self.id, t, n=16)
            body = (form(MessageSid=f"SM{eid}", MessageStatus=rng.choice(
                ("delivered", "delivered", "sent", "failed")), To=f"+4915{eid[:8]}") if as_form
                    else jbody({"id": f"evt_{eid}", "type": "event", "created": int(t)}))
            h = {**(FORM_CT if as_form else JSON_CT), "X-Signature": "t=1,v1=" + eid}
            for _ in range(1 if rng.random() > 0.03 else rng.randint(2, 4)):
                yield self.req(t, "POST", f"/webhooks/{path}", body=body, headers=h)
                t += rng.uniform(1, 10)
            t += rng.expovariate(1 / mean)


@family("pay_uptime", HUMAN, 1, world=W, kind="integration")
class HealthChecks(Integration):
    """Health checks: the load balancer every 10 s from two VPC addresses, Pingdom every
    minute from three regions, UptimeRobot every 5 minutes."""

    PROBES = ((ELB, 10.0, "vpc"), (ELB, 10.0, "vpc"), (PINGDOM, 60.0, "aws"),
              (PINGDOM, 60.0, "gcp"), (PINGDOM, 60.0, "azure"),
              (agents.UPTIME_MONITOR, 300.0, "uptimerobot"))

    @classmethod
    def spawn(cls, env: Env, fam: Family, n: int) -> list[Actor]:
        out: list[Actor] = []
        for g in range(n):
            for k, (ua, period, where) in enumerate(cls.PROBES):
                a = cls(env, fam, g * 10 + k, f"{fam.name}-{g:02d}-{k:02d}")
                rng = env.rng(f"ip/{a.id}")
                a.ua, a.period = ua, period
                a.ip = (agents.UPTIMEROBOT_PROBE if where == "uptimerobot" else pick(
                    rng, {"vpc": VPC_V4, "aws": AWS_V4, "gcp": GCP_V4,
                          "azure": AZURE_V4}[where])[0])
                out.append(a)
        return out

    def run(self) -> Iterator[Intent]:
        t = self.env.start + self.rng.uniform(0, self.period)
        while t < self.env.end:
            yield self.req(t, "GET", "/health")
            t += self.period + self.rng.uniform(-0.02, 0.02)


@family("pay_partner", HUMAN, 1, world=W, kind="integration")
class DirectoryPartner(Integration):
    """A partner (client credentials) that mirrors the public merchant directory once an hour
    and reads exchange rates every minute."""

    UA = "ledgerly-directory-sync/1.9 python-httpx/0.28.1"
    BLOCKS = GCP_V4

    def run(self) -> Iterator[Intent]:
        rng, env = self.rng, self.env
        sec = client_secret("ledgerly-partner")
        t = env.start + rng.uniform(0, 60)
        tok_at = -1e9
        sync_at = env.start + rng.uniform(0.1, 0.5) * env.duration
        self.headers = {"Accept": "application/json"}
        while t < env.end:
            if t - tok_at > 840:
                yield self.req(t, "POST", TOKEN, body=form(
                    grant_type="client_credentials", client_id="ledgerly-partner",
                    client_secret=sec), headers=FORM_CT)
                tok_at = t
                tok = "pbat.cl-ledgerly." + digest("cl", t, n=12)
                self.sid = tok
                self.headers = {"Accept": "application/json", "Authorization": "Bearer " + tok}
                t += 0.2
            yield self.req(t, "GET", "/v1/fx/rates")
            if sync_at is not None and t >= sync_at:
                for off in range(0, 12000, 100):
                    t += rng.uniform(0.1, 0.3)
                    yield self.req(t, "GET", "/v1/merchants",
                                   "limit=100" + (f"&cursor={cursor('merchants', off)}"
                                                  if off else ""))
                sync_at = None
            t += 60 + rng.uniform(-0.5, 0.5)


# -- bots ----------------------------------------------------------------------------------------

def _combo(rng: random.Random, reuse: float = 0.01) -> tuple[str, str, int | None]:
    """(username, password, customer number if the pair is right) from a combo list."""
    if rng.random() < 0.6:
        n = rng.randint(1, N_CUSTOMERS)
        if rng.random() < reuse:
            return customer(n), password_for(n), n
        return customer(n), rng.choice(COMMON_PASSWORDS), None
    user = f"{rng.choice(FIRST)}.{rng.choice(LAST)}{rng.randint(1, 999)}@mail.example"
    return user, rng.choice(COMMON_PASSWORDS), None


class PayBot(ApiActor):
    @classmethod
    def spawn(cls, env: Env, fam: Family, n: int) -> list[Actor]:
        return [cls(env, fam, i) for i in range(n)]


@family("pay_stuffing_resi", "account_takeover", 1, world=W)
class ResidentialStuffing(PayBot):
    """Credential stuffing through residential proxies: 300-600 addresses over many /16s,
    1-3 password grants each with the web app's client id and a browser agent, no
    preflights; a right pair meets MFA and is written down for later."""

    def run(self) -> Iterator[Intent]:
        rng, env = self.rng, self.env
        pool = pick(rng, RESIDENTIAL_V4, rng.randint(300, 600))
        self.ua = rng.choice((agents.DESKTOP[0][1], agents.DESKTOP[2][1], agents.MOBILE[0][1]))
        plan = [ip for ip in pool for _ in range(rng.randint(1, 3))]
        rng.shuffle(plan)
        t0 = env.start + rng.uniform(0, 0.1) * env.duration
        h = {"Origin": ORIGIN, "Referer": ORIGIN + "/", **FORM_CT}
        for t, ip in zip(sorted(rng.uniform(t0, env.end) for _ in plan), plan, strict=True):
            user, pw, _ = _combo(rng)
            yield self.req(t, "POST", TOKEN, body=form(
                grant_type="password", client_id="web-spa", username=user, password=pw,
                device_id="dev-" + digest("d", t, n=12)), user=user, headers=h, ip=ip)


@family("pay_stuffing_dc", "account_takeover", 2, world=W)
class DatacenterStuffing(PayBot):
    """Credential stuffing from a few rented servers, fast, posing as the Android app."""

    def run(self) -> Iterator[Intent]:
        rng = self.rng
        ips = pick(rng, HOSTING_V4, rng.randint(2, 5))
        self.ua = (f"{APP}/5.9.0 (Android 13; SM-A536B) okhttp/4.9.3" if self.idx % 2 == 0
                   else REQUESTS)
        t = self.at(0.0, 0.6)
        mean = rng.uniform(0.4, 1.5)
        for _ in range(rng.randint(400, 1500)):
            if t >= self.env.end:
                return
            user, pw, _ = _combo(rng)
            yield self.req(t, "POST", TOKEN, body=form(
                grant_type="password", client_id="android-app", username=user, password=pw),
                user=user, headers=FORM_CT, ip=rng.choice(ips))
            t += mean * rng.uniform(0.6, 1.4)


@family("pay_brute_dist", "account_takeover", 1, world=W)
class DistributedBruteForce(PayBot):
    """Distributed brute force on three accounts: 40-80 residential addresses, a few common
    passwords each; the accounts lock (423) and the guessing goes on."""

    def run(self) -> Iterator[Intent]:
        rng, env = self.rng, self.env
        targets = [rng.randint(1, N_CUSTOMERS) for _ in range(3)]
        pool = pick(rng, RESIDENTIAL_V4, rng.randint(40, 80))
        self.ua = agents.DESKTOP[0][1]
        guesses = iter(COMMON_PASSWORDS * 20)
        plan = [ip for ip in pool for _ in range(rng.randint(2, 6))]
        t0 = env.start + rng.uniform(0, 0.1) * env.duration
        h = {"Origin": ORIGIN, **FORM_CT}
        for k, (t, ip) in enumerate(zip(sorted(rng.uniform(t0, env.end) for _ in plan), plan,
                                        strict=True)):
            user = customer(targets[k % 3])
            yield self.req(t, "POST", TOKEN, body=form(
                grant_type="password", client_id="web-spa", username=user,
                password=next(guesses)), user=user, headers=h, ip=ip)


@family("pay_mfa_brute", "account_takeover", 1, world=W)
class MfaBruteForce(PayBot):
    """Knows two customers' passwords (phished) and guesses the SMS codes: a password grant,
    five codes, again; three burnt challenges lock the account (423), it pauses and returns."""

    def run(self) -> Iterator[Intent]:
        rng, env = self.rng, self.env
        ips = pick(rng, HOSTING_V4, 3)
        self.ua = REQUESTS
        victims = [rng.randint(1, N_CUSTOMERS) for _ in range(2)]
        t = self.at(0.0, 0.4)
        k = 0
        while t < env.end:
            n = victims[k % 2]
            self.ip = ips[k % 3]
            ev = self.req(t, "POST", TOKEN, body=form(
                grant_type="password", client_id="web-spa", username=customer(n),
                password=password_for(n), device_id="dev-" + digest("b", k, n=12)),
                user=customer(n), headers=FORM_CT)
            yield ev
            tok = mfa_token(n, ev.ts)
            for _ in range(5):
                t += rng.uniform(0.3, 1.2)
                yield self.req(t, "POST", "/v1/mfa/verify", body=jbody(
                    {"mfa_token": tok, "code": f"{rng.randrange(10**6):06d}"}), headers=JSON_CT)
            k += 1
            t += rng.uniform(1, 4) if k % 6 else rng.uniform(300, 600)  # pauses, tries again


def _test_cards(rng: random.Random) -> tuple[str, str, str]:
    """A card to test: mostly generated from a BIN (a guessed CVC), some from a dump."""
    if rng.random() < 0.85:
        pan = luhn_complete(rng.choice(BINS) + f"{rng.randrange(10**9):09d}")
        return pan, f"{rng.randint(1, 12):02d}/{rng.randint(26, 30)}", f"{rng.randrange(1000):03d}"
    from node.sim.paybank import card_cvc, card_exp
    pan = customer_card(rng.randint(1, N_CUSTOMERS), rng.randrange(3))
    return pan, card_exp(pan), card_cvc(pan)


@family("pay_card_testing", "api_abuse", 2, world=W)
class CardTesting(PayBot):
    """Card testing with a small merchant's publishable key: hundreds of card verifications
    (most declined), through residential proxies or a cloud pool, posing as its checkout."""

    def run(self) -> Iterator[Intent]:
        rng = self.rng
        pool = (pick(rng, RESIDENTIAL_V4, 100) if self.idx % 2 == 0
                else pick(rng, CLOUD_V4, 12))
        m = rng.randint(1, N_MERCHANTS)
        origin = MERCHANT_ORIGINS[m % len(MERCHANT_ORIGINS)]
        self.ua = agents.DESKTOP[0][1]
        h = {"Origin": origin, "Referer": origin + "/checkout", "X-Api-Key": publishable_key(m),
             **JSON_CT}
        self.sid = publishable_key(m)
        t, stop = self.window((0.0, 0.4), (0.3, 0.6))
        while t < stop:
            pan, exp, cvc = _test_cards(rng)
            yield self.req(t, "POST", "/v1/cards/verify", body=jbody(
                {"number": pan, "exp": exp, "cvc": cvc, "amount": 0}), headers=h,
                ip=rng.choice(pool))
            t += rng.uniform(1, 4)


@family("pay_fake_accounts", "api_abuse", 1, world=W)
class FakeAccounts(PayBot):
    """A sign-up factory: generated names and e-mails, rented phone numbers whose codes it can
    read, from a cloud pool and a few proxies."""

    def run(self) -> Iterator[Intent]:
        rng = self.rng
        pool = pick(rng, CLOUD_V4, 10) + pick(rng, RESIDENTIAL_V4, 30)
        self.ua = agents.DESKTOP[0][1]
        h = {"Origin": ORIGIN, "Referer": ORIGIN + "/signup", **JSON_CT}
        t, stop = self.window((0.0, 0.3), (0.4, 0.7))
        k = 0
        while t < stop:
            ip = rng.choice(pool)
            name = f"{rng.choice(FIRST)}{rng.choice(LAST)}{rng.randint(100, 9999)}"
            phone = f"+4470{7000000 + k:07d}"
            ev = self.req(t, "POST", "/v1/signup", body=jbody({
                "email": f"{name}@{rng.choice(('tmpmail.example', 'inbox.example'))}",
                "phone": phone, "name": name.title(), "password": "Aa1!" + name}), headers=h,
                ip=ip)
            yield ev
            if rng.random() < 0.6:
                oid = otp_id(phone, ev.ts)
                t += rng.uniform(8, 20)
                yield self.req(t, "POST", "/v1/otp/verify", body=jbody(
                    {"otp_id": oid, "code": sms_code(oid)}), headers=h, ip=ip)
            k += 1
            t += rng.uniform(4, 15)


@family("pay_sms_pumping", "api_abuse", 1, world=W)
class SmsPumping(PayBot):
    """SMS pumping: OTP sends to runs of premium-rate numbers in a few countries, never
    verified, from proxies and the mobile app's agent."""

    PREFIXES = ("+88213", "+22507", "+37125", "+99365", "+23276")

    def run(self) -> Iterator[Intent]:
        rng = self.rng
        pool = pick(rng, RESIDENTIAL_V4, 20) + pick(rng, HOSTING_V4, 4)
        self.ua = app_ua(rng, APP, "com.paybank.app", APP_VERSION)
        t, stop = self.window((0.0, 0.4), (0.3, 0.6))
        base = rng.randrange(10**6)
        k = 0
        while t < stop:
            phone = f"{rng.choice(self.PREFIXES)}{(base + k) % 10**6:06d}"
            for _ in range(rng.choice((1, 1, 2))):
                yield self.req(t, "POST", "/v1/otp/send", body=jbody(
                    {"phone": phone, "purpose": "login", "channel": "sms"}), headers=JSON_CT,
                    ip=rng.choice(pool))
                t += rng.uniform(0.5, 3)
            k += 1


@family("pay_directory_headless", "scraping", 1, world=W)
class HeadlessLocatorScraper(PayBot):
    """A headless browser in a cloud pool scraping the branch locator: a lat/lng grid, then
    every branch page."""

    def run(self) -> Iterator[Intent]:
        rng = self.rng
        pool = pick(rng, AWS_V4 + GCP_V4, 20)
        self.ua = HEADLESS
        self.headers = {"Origin": ORIGIN, "Referer": ORIGIN + "/branches"}
        t, stop = self.window((0.0, 0.4), (0.4, 0.6))
        grid = [(47 + i * 0.25, 5 + j * 0.25) for i in range(33) for j in range(41)]
        rng.shuffle(grid)
        ids = shuffled(rng, N_BRANCHES)
        for lat, lng in grid:
            if t >= stop:
                return
            yield self.req(t, "GET", "/v1/branches", f"lat={lat:.4f}&lng={lng:.4f}&radius_km=25",
                           ip=rng.choice(pool))
            t += rng.uniform(0.3, 1.5)
            for _ in range(rng.randint(0, 3)):
                yield self.req(t, "GET", f"/v1/branches/{next(ids, 1)}", ip=rng.choice(pool))
                t += rng.uniform(0.2, 1.0)


@family("pay_app_harvester", "scraping", 1, world=W)
class AppHarvester(PayBot):
    """Harvests the ATM and merchant directories with the mobile app's own agent from
    rented servers, over and over."""

    def run(self) -> Iterator[Intent]:
        rng = self.rng
        ips = pick(rng, HOSTING_V4, 4)
        self.ua = f"{APP}/{APP_VERSION} (Android 14; Pixel 8) okhttp/4.12.0"
        self.headers = {"Accept": "application/json", "X-App-Version": APP_VERSION}
        t, stop = self.window((0.0, 0.3), (0.5, 0.7))
        while t < stop:
            for res, total in (("atms", 6000), ("merchants", 12000)):
                for off in range(0, total, 100):
                    if t >= stop:
                        return
                    yield self.req(t, "GET", f"/v1/{res}", "limit=100" + (
                        f"&cursor={cursor(res, off)}" if off else ""), ip=rng.choice(ips))
                    t += rng.uniform(0.4, 1.2)
                    if rng.random() < 0.05:
                        yield self.req(t, "GET", "/v1/fx/rates", ip=rng.choice(ips))


@family("pay_fake_googlebot", "scraping", 1, world=W)
class FakeGooglebot(PayBot):
    """Claims to be Googlebot from a hosting address outside Google's 66.249.64.0/19."""

    def run(self) -> Iterator[Intent]:
        rng = self.rng
        self.ip = outside(rng, HOSTING_V4, GOOGLEBOT_NET)
        self.ua = agents.GOOGLEBOT[0]
        t, stop = self.window((0.0, 0.5), (0.2, 0.4))
        yield self.req(t, "GET", "/robots.txt")
        for b in shuffled(rng, N_BRANCHES):
            t += rng.uniform(0.5, 2.0)
            if t >= stop:
                return
            yield self.req(t, "GET", f"/v1/branches/{b}")


API_PROBES = ("/v1/admin", "/v1/admin/users", "/v1/users", "/v1/users/1", "/v1/internal/config",
              "/v1/debug", "/v2/accounts", "/api/v1/accounts", "/swagger.json", "/openapi.json",
              "/v1/swagger.json", "/api-docs", "/v3/api-docs", "/graphql", "/v1/graphql",
              "/actuator/env", "/actuator/health", "/.well-known/openid-configuration",
              "/oauth/authorize", "/v1/accounts/acc_1_0/transactions", "/v1/customers/1",
              "/v1/customers/2", "/v1/payments/export", "/v1/keys", "/v1/webhooks")


@family("pay_scanner", "security_crawlers", 2, world=W)
class ApiScanner(PayBot):
    """An API security scanner (Nuclei, ffuf): API wordlists, admin paths, secrets, tampered
    tokens, injections in parameters; mostly 401s and 404s."""

    def run(self) -> Iterator[Intent]:
        rng = self.rng
        self.ip = pick(rng, CLOUD_V4 + HOSTING_V4)[0]
        self.ua = agents.SCANNERS[2] if self.idx % 2 == 0 else agents.SCANNERS[3]
        t = self.at(0.0, 0.8)
        probes = [("GET", p, "") for p in API_PROBES + PROBE_PATHS[:60] + BACKUPS[:10]]
        probes += [("GET", "/v1/branches", "lat=1%27%20OR%20%271%27%3D%271&lng=0"),
                   ("GET", "/v1/merchants", "limit=100%20UNION%20SELECT%201"),
                   ("GET", "/v1/atms", "cursor=..%2F..%2Fetc%2Fpasswd"),
                   ("POST", TOKEN, ""), ("POST", "/v1/signup", "")]
        rng.shuffle(probes)
        none_jwt = "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0."
        for method, path, query in probes:
            if t >= self.env.end:
                return
            h = {"Authorization": none_jwt} if path.startswith("/v1/") else self.headers
            yield self.req(t, method, path, query, b"{}" if method == "POST" else None,
                           headers={**h, **JSON_CT} if method == "POST" else h)
            t += rng.expovariate(1 / 0.15)


@family("pay_key_enum", "api_abuse", 1, world=W)
class KeyEnumeration(PayBot):
    """API key enumeration: GET /v1/balance with made-up sk_live_ keys, all rejected."""

    def run(self) -> Iterator[Intent]:
        rng = self.rng
        ips = pick(rng, HOSTING_V4, 3)
        self.ua = rng.choice((REQUESTS, CURL[1]))
        t, stop = self.window((0.0, 0.5), (0.2, 0.4))
        while t < stop:
            key = f"sk_live_{rng.randrange(10**4):04d}{rng.getrandbits(96):024x}"
            yield self.req(t, "GET", "/v1/balance", headers={"X-Api-Key": key},
                           ip=rng.choice(ips))
            t += rng.uniform(0.2, 0.8)


@family("pay_low_slow", "scraping", 1, world=W)
class LowAndSlow(PayBot):
    """A slow scraper: one page of the merchant directory or one branch every 40-120 s from
    one home address, for the whole hour."""

    def run(self) -> Iterator[Intent]:
        rng, env = self.rng, self.env
        self.ip = pick(rng, RESIDENTIAL_V4)[0]
        self.ua = agents.browser_ua(rng, False)
        self.headers = {"Origin": ORIGIN, "Referer": ORIGIN + "/merchants"}
        t = env.start + rng.uniform(0, 120)
        off = 0
        while t < env.end:
            if rng.random() < 0.7:
                yield self.req(t, "GET", "/v1/merchants", "limit=100" + (
                    f"&cursor={cursor('merchants', off)}" if off else ""))
                off = (off + 100) % 12000
            else:
                yield self.req(t, "GET", f"/v1/branches/{rng.randint(1, N_BRANCHES)}")
            t += rng.uniform(40, 120)


@family("pay_statement_hog", "resource_consumption", 1, world=W)
class StatementHog(PayBot):
    """With a taken-over customer's token, asks again and again for 25-year PDF statements
    (seconds of rendering, megabytes each) from a cloud address."""

    def run(self) -> Iterator[Intent]:
        rng = self.rng
        self.ip = pick(rng, AWS_V4)[0]
        self.ua = REQUESTS
        n = rng.randint(1, N_CUSTOMERS)
        dev = known_device(n, 1)  # stolen along with the password
        t, stop = self.window((0.0, 0.4), (0.3, 0.5))
        issued = -1e9
        while t < stop:
            if t - issued > 840:
                self.sid = None
                ev = self.req(t, "POST", TOKEN, body=form(
                    grant_type="password", client_id="web-spa", username=customer(n),
                    password=password_for(n), device_id=dev), user=customer(n), headers=FORM_CT)
                yield ev
                access, _ = login_tokens(n, dev, ev.ts)
                self.sid, issued = access, t
                self.headers = {"Authorization": "Bearer " + access}
                t += 0.5
            a = rng.choice(accounts_of(n))
            yield self.req(t, "GET", f"/v1/accounts/{a}/statements",
                           f"from=2000-01-01&to=2025-11-30&format=pdf&v={rng.randrange(10**6)}")
            t += rng.uniform(20, 35)  # each takes ~20 s to render; it asks again at once
