"""The B2B / developer SaaS world: `api.devtool.example`, its rules and its response model.

Conventions (docs/worlds.md has the table):
- Login `POST /api/session` (JSON or form): 401 `invalid_credentials` on failure; 200 with a
  `dt_session` cookie and a JWT on success; an account with two-factor gets 200
  `{"status":"otp_required","otp_token":...}` and finishes with `POST /api/session/otp`
  (401 `invalid_otp` for a wrong TOTP code; the previous 30-second code still counts).
  10 failures for one account in 15 minutes: 429 with Retry-After (a throttle, no lockout).
- Bearer: a JWT (10 minutes, renewed by `POST /api/session/refresh` with the cookie) or an
  API key `dtk_...` (as Bearer or `X-Api-Key`); 401 `{"message":"Bad credentials"}`.
- Rate limit: 120 requests per credential per fixed minute; then 429 with Retry-After = the
  seconds left in the minute.
- GraphQL `POST /graphql`: 200 with `errors` for validation failures (introspection
  disabled, depth over 8, more than 50 aliases), 400 for a malformed body or a batch of more
  than 20 operations.
- Page pagination (`?page=&per_page=`, a page past the end is 200 with no items,
  per_page > 100 is 422) for REST lists; cursor pagination for `/v1/events`.
- Exports: `POST /v1/exports` 202, at most 3 pending per organisation (429);
  `GET /v1/exports/{id}` says pending until ready; `/download` is 409 before.
- Card declines: 200 with `"status":"declined"` (`POST /v1/billing/payment-methods`).
"""

from __future__ import annotations

import base64
import json
from collections import OrderedDict
from functools import lru_cache
from urllib.parse import parse_qs, unquote

from node.sim.apikit import ApiModel, capped_put, digest, jbody, number
from node.sim.core import Intent
from node.sim.paybank import card_cvc, card_exp, card_live, luhn_ok

HOST = "api.devtool.example"
ORIGIN = "https://app.devtool.example"
N_USERS = 4000
N_ORGS = 600
N_TEMPLATES = 8000
N_PUBLIC_USERS = 50_000
JWT_TTL = 600
RATE = 120  # requests per credential per minute
FAIL_LIMIT = 10
FAIL_WINDOW = 900
MAX_PENDING_EXPORTS = 3
MAX_DEPTH = 8
MAX_ALIASES = 50
MAX_BATCH = 20


def user_email(n: int) -> str:
    return f"dev{n:05d}@corp.example"


def user_number(email: str) -> int | None:
    if email.startswith("dev") and email.endswith("@corp.example") and email[3:8].isdigit():
        n = int(email[3:8])
        return n if 1 <= n <= N_USERS else None
    return None


def password_for(n: int) -> str:
    return "Dt-" + digest("pw", n, n=10)


def has_2fa(n: int) -> bool:
    return n % 4 == 0


def totp(n: int, ts: float) -> str:
    """The code the user's authenticator app shows at `ts` (30-second steps)."""
    return f"{number('totp', n, int(ts) // 30) % 1_000_000:06d}"


def org_of(n: int) -> int:
    return 1 + n % N_ORGS


def projects_of(org: int) -> list[int]:
    return [org * 10 + k for k in range(1 + org % 8)]


def issue_count(project: int) -> int:
    return 20 + number("issues", project) % 3000


def api_key(org: int, k: int = 0) -> str:
    return f"dtk_{org:04d}{digest('key', org, k, n=28)}"


def _key_org(key: str) -> int | None:
    if not key.startswith("dtk_") or len(key) != 36 or not key[4:8].isdigit():
        return None
    org = int(key[4:8])
    if not 1 <= org <= N_ORGS:
        return None
    return org if any(key == api_key(org, k) for k in range(3)) else None


def session_id(n: int, ts: float) -> str:
    """The dt_session cookie a login at `ts` sets."""
    return "s" + digest("sess", n, round(ts, 3), n=31)


def _b64(d: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(d, separators=(",", ":")).encode()).decode(
        ).rstrip("=")


_JWT_HEAD = _b64({"alg": "HS256", "typ": "JWT"})


def jwt(n: int, sid: str, ts: float) -> str:
    """The access token issued at `ts` for session `sid` (claim `sid` groups a session)."""
    body = _b64({"sub": f"u{n}", "sid": sid, "org": org_of(n), "exp": int(ts) + JWT_TTL})
    return f"{_JWT_HEAD}.{body}.{digest('jwt', body, n=43)}"


def otp_token(n: int, ts: float) -> str:
    return "ot_" + digest("otp", n, round(ts, 3), n=20)


def verify_token(email: str) -> str:
    return "ev_" + digest("verify", email, n=24)


def export_id(org: int, project: int, ts: float) -> str:
    return "exp_" + digest("exp", org, project, round(ts, 3), n=16)


def export_seconds(project: int) -> float:
    """How long an export takes to be ready: 5 s plus 10 s per thousand issues."""
    return 5.0 + issue_count(project) / 100.0


def event_cursor(org: int, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{org}:{offset}:{digest('ev', org, offset, n=6)}".encode()
                                    ).decode().rstrip("=")


def _event_offset(org: int, cur: str) -> int | None:
    try:
        raw = base64.urlsafe_b64decode(cur + "=" * (-len(cur) % 4)).decode()
        o, off, _ = raw.split(":")
        off_i = int(off)
    except (ValueError, UnicodeDecodeError):
        return None
    return off_i if int(o) == org and event_cursor(org, off_i) == cur else None


def template_slug(k: int) -> str:
    return f"tpl-{k:05d}-{digest('tpl', k, n=4)}"


def public_login(k: int) -> str:
    return f"octo{k:05d}"


_BAD_CREDS = jbody({"message": "Bad credentials"})
_NOT_FOUND = jbody({"message": "Not Found"})
_RATE = jbody({"message": "API rate limit exceeded", "documentation_url": "/docs/rate-limits"})


@lru_cache(maxsize=4096)
def graphql_shape(query: str) -> tuple[int, int, bool]:
    """(depth, aliases, introspection) of a query text, by counting braces and colons."""
    depth = cur = 0
    for ch in query:
        if ch == "{":
            cur += 1
            depth = max(depth, cur)
        elif ch == "}":
            cur -= 1
    aliases = sum(1 for part in query.split() if part.endswith(":") and part[:-1].isidentifier())
    return depth, aliases, "__schema" in query or "__type" in query


class DevtoolModel(ApiModel):
    """Offline responses of api.devtool.example. State: login failures per account, rate
    windows per credential, exports, signups (all capped)."""

    LATENCY = {
        "preflight": (1.0, 0.3), "health": (0.6, 0.3), "status": (2.0, 0.3),
        "login": (70.0, 0.25), "otp": (12.0, 0.3), "refresh": (6.0, 0.3), "logout": (3.0, 0.3),
        "signup": (120.0, 0.35), "verify_email": (15.0, 0.3), "forgot": (40.0, 0.3),
        "graphql": (38.0, 0.55), "projects": (16.0, 0.35), "project": (8.0, 0.3),
        "issues": (42.0, 0.45), "issue": (9.0, 0.35), "issue_write": (28.0, 0.35),
        "events": (30.0, 0.4), "deploy": (55.0, 0.3), "deploy_get": (6.0, 0.3),
        "export_create": (25.0, 0.3), "export_get": (5.0, 0.3), "export_download": (60.0, 0.4),
        "webhooks": (14.0, 0.35), "hook_in": (9.0, 0.35), "templates": (22.0, 0.4),
        "template": (7.0, 0.3), "profile": (9.0, 0.35), "orgs": (35.0, 0.3),
        "billing": (420.0, 0.35), "phone": (130.0, 0.4), "notifications": (5.0, 0.35),
        "unauthorized": (1.5, 0.3), "rate_limited": (0.8, 0.3), "not_found": (0.8, 0.3),
        "method": (0.6, 0.3),
    }
    CAP = 50_000

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        self.fails: OrderedDict[int, list[float]] = OrderedDict()
        self.windows: OrderedDict[str, list] = OrderedDict()  # credential → [minute, count]
        self.exports: OrderedDict[str, tuple[int, int, float]] = OrderedDict()
        self.emails: OrderedDict[str, None] = OrderedDict()
        self.slugs: OrderedDict[str, None] = OrderedDict()
        self.phones: OrderedDict[str, list[float]] = OrderedDict()
        self.pending: OrderedDict[str, tuple[int, float]] = OrderedDict()  # otp_token → user
        self.signups: OrderedDict[str, str] = OrderedDict()  # e-mail → password

    @staticmethod
    def _json(it: Intent) -> object:
        try:
            return json.loads(it.body or b"")
        except (ValueError, UnicodeDecodeError):
            return None

    def _creds(self, it: Intent) -> tuple[str, int, int | None] | None:
        """(credential, org, user) of a valid JWT or API key, else None."""
        h = it.headers
        auth = h.get("Authorization", "")
        tok = auth[7:] if auth.startswith("Bearer ") else h.get("X-Api-Key", "")
        if tok.startswith("dtk_"):
            org = _key_org(tok)
            return (tok, org, None) if org else None
        parts = tok.split(".")
        if len(parts) != 3 or parts[2] != digest("jwt", parts[1], n=43):
            return None
        try:
            claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        except ValueError:
            return None
        if it.ts >= claims["exp"]:
            return None
        return claims["sid"], claims["org"], int(claims["sub"][1:])

    def _limited(self, cred: str, ts: float) -> bool:
        minute = int(ts) // 60
        w = self.windows.get(cred)
        if w is None or w[0] != minute:
            w = [minute, 0]
            capped_put(self.windows, cred, w, self.CAP)
        w[1] += 1
        return w[1] > RATE

    def handle(self, it: Intent) -> tuple[int, int, str, float]:
        if it.method == "OPTIONS":
            return 204, 0, "preflight", 0.0
        path = unquote(it.path) if "%" in it.path else it.path
        seg = path.strip("/").split("/")
        m, head = it.method, seg[0]
        if path in ("/healthz", "/status") and m == "GET":
            return 200, 2 if path == "/healthz" else 96, "health", 0.0
        if head == "api":
            return self._account(it, seg[1:])
        if head == "hooks" and len(seg) == 2 and seg[1] in ("github", "stripe"):
            if m != "POST":
                return 405, 40, "method", 0.0
            sig = "X-Hub-Signature-256" if seg[1] == "github" else "Stripe-Signature"
            return (202, 0, "hook_in", 0.0) if sig in it.headers else (400, 44, "hook_in", 0.0)
        if path == "/graphql":
            if m != "POST":
                return 405, 40, "method", 0.0
            return self._authed(it, self._graphql)
        if head != "v1" or len(seg) < 2:
            return 404, len(_NOT_FOUND), "not_found", 0.0
        if seg[1] == "status" and m == "GET":
            return 200, 640, "status", 0.0
        if seg[1] == "public" and m == "GET":
            return self._public(seg[2:], it.query)
        if seg[1] == "users" and len(seg) == 3 and m == "GET":
            k = seg[2][4:]
            ok = seg[2].startswith("octo") and k.isdigit() and int(k) < N_PUBLIC_USERS
            ok = ok and number("exists", seg[2]) % 10 < 7  # logins are sparse, not dense
            return (200, 900 + number("bio", seg[2]) % 1200, "profile", 0.0) if ok else (
                404, len(_NOT_FOUND), "profile", 0.0)
        return self._authed(it, self._rest)

    # -- account -----------------------------------------------------------------------------

    def _account(self, it: Intent, seg: list[str]) -> tuple[int, int, str, float]:
        m, now = it.method, it.ts
        if seg == ["session"]:
            if m == "DELETE":
                return 204, 0, "logout", 0.0
            if m != "POST":
                return 405, 40, "method", 0.0
            d = self._json(it)
            if not isinstance(d, dict):
                try:
                    d = {k: v[0] for k, v in parse_qs((it.body or b"").decode()).items()}
                except (ValueError, UnicodeDecodeError):
                    d = {}
            email, pw = d.get("email"), d.get("password")
            if not isinstance(email, str) or not isinstance(pw, str):
                return 422, 70, "login", 0.0
            n = user_number(email)
            if n is None and email in self.signups:
                return (200, 980, "login", 0.0) if pw == self.signups[email] else (
                    401, 64, "login", 0.0)
            if n is not None:
                recent = [t for t in self.fails.get(n, ()) if now - t < FAIL_WINDOW]
                if len(recent) >= FAIL_LIMIT:
                    return 429, 82, "login", 0.0
            if n is None or pw != password_for(n):
                if n is not None:
                    recent.append(now)
                    capped_put(self.fails, n, recent, self.CAP)
                return 401, 64, "login", 0.0
            self.fails.pop(n, None)
            if has_2fa(n):
                capped_put(self.pending, otp_token(n, now), (n, now + 300), self.CAP)
                return 200, 84, "login", 0.0  # otp_required
            return 200, 980, "login", 0.0
        if seg == ["session", "otp"] and m == "POST":
            d = self._json(it)
            if not isinstance(d, dict) or not isinstance(d.get("code"), str):
                return 422, 70, "otp", 0.0
            p = self.pending.get(str(d.get("otp_token")))
            if p is None or now > p[1]:
                return 401, 58, "otp", 0.0
            if d["code"] not in (totp(p[0], now), totp(p[0], now - 30)):  # one step of drift
                return 401, 58, "otp", 0.0
            del self.pending[str(d["otp_token"])]
            return 200, 980, "otp", 0.0
        if seg == ["session", "refresh"] and m == "POST":
            ok = it.session is not None and it.session.startswith("s")
            return (200, 690, "refresh", 0.0) if ok else (401, 64, "refresh", 0.0)
        if seg == ["signup"] and m == "POST":
            d = self._json(it)
            if (not isinstance(d, dict) or "@" not in str(d.get("email", ""))
                    or len(str(d.get("password", ""))) < 10):
                return 422, 120, "signup", 0.0
            if d["email"] in self.emails or user_number(d["email"]) is not None:
                return 409, 60, "signup", 0.0
            capped_put(self.emails, d["email"], None, self.CAP)
            capped_put(self.signups, d["email"], str(d["password"]), self.CAP)
            return 201, 74, "signup", 0.0
        if seg == ["verify-email"] and m == "GET":
            q = parse_qs(it.query)
            tok, email = q.get("token", [""])[0], q.get("email", [""])[0]
            ok = email in self.emails and tok == verify_token(email)
            return (200, 52, "verify_email", 0.0) if ok else (400, 60, "verify_email", 0.0)
        if seg == ["password", "forgot"] and m == "POST":
            return 202, 48, "forgot", 0.0
        return 404, len(_NOT_FOUND), "not_found", 0.0

    # -- authenticated -----------------------------------------------------------------------

    def _authed(self, it: Intent, fn) -> tuple[int, int, str, float]:
        c = self._creds(it)
        if c is None:
            return 401, len(_BAD_CREDS), "unauthorized", 0.0
        if self._limited(c[0], it.ts):
            return 429, len(_RATE), "rate_limited", 0.0
        return fn(it, c[1], c[2])

    def _graphql(self, it: Intent, org: int, user: int | None) -> tuple[int, int, str, float]:
        d = self._json(it)
        ops = d if isinstance(d, list) else [d]
        if not ops or not all(isinstance(o, dict) and isinstance(o.get("query"), str)
                              for o in ops):
            return 400, 72, "graphql", 0.0
        if len(ops) > MAX_BATCH:
            return 400, 86, "graphql", 0.0
        size, work = 2, 0.0
        for o in ops:
            depth, aliases, intro = graphql_shape(o["query"])
            work += 0.4 * len(o["query"]) / 100  # parsing and validation
            if intro:
                size += 118
            elif depth > MAX_DEPTH:
                size += 104
            elif aliases > MAX_ALIASES:
                size += 96
            else:
                fields = max(1, aliases) * depth
                size += 180 + 260 * fields + number("gql", o["query"][:64]) % 400
                work += 3.0 * fields
        return 200, size, "graphql", work

    def _rest(self, it: Intent, org: int, user: int | None) -> tuple[int, int, str, float]:
        seg = it.path.strip("/").split("/")[1:]
        m, res = it.method, seg[0]
        q = {k: v[0] for k, v in parse_qs(it.query).items()} if it.query else {}
        if res == "projects":
            if len(seg) == 1:
                return (200, 80 + 420 * len(projects_of(org)), "projects", 0.0) if m == "GET" \
                    else (405, 40, "method", 0.0)
            pid = int(seg[1]) if seg[1].isdigit() else -1
            if pid not in projects_of(org):
                return 404, len(_NOT_FOUND), "project", 0.0
            if len(seg) == 2:
                return 200, 1300 + pid % 400, "project", 0.0
            if seg[2] == "issues":
                if len(seg) == 3:
                    if m == "POST":
                        return 201, 1500, "issue_write", 0.0
                    return self._issues(pid, q)
                if len(seg) == 4 and seg[3].isdigit():
                    if not 1 <= int(seg[3]) <= issue_count(pid):
                        return 404, len(_NOT_FOUND), "issue", 0.0
                    if m in ("PATCH", "POST"):
                        return 200, 1500, "issue_write", 0.0
                    return 200, 1400 + number("iss", pid, seg[3]) % 2500, "issue", 0.0
            if seg[2] == "deployments" and len(seg) == 3 and m == "POST":
                return 201, 420, "deploy", 0.0
            return 404, len(_NOT_FOUND), "not_found", 0.0
        if res == "deployments" and len(seg) == 2 and m == "GET":
            return 200, 380, "deploy_get", 0.0
        if res == "events" and m == "GET":
            total = 500 + number("events", org) % 40_000
            off = 0
            if "cursor" in q:
                o = _event_offset(org, q["cursor"])
                if o is None:
                    return 400, 64, "events", 0.0
                off = o
            k = max(0, min(100, total - off))
            return 200, 60 + 430 * k, "events", 0.0
        if res == "exports":
            return self._export(it, org, seg, q)
        if res == "webhooks":
            if len(seg) == 1 and m == "POST":
                return 201, 310, "webhooks", 0.0
            if len(seg) == 3 and seg[2] == "deliveries":
                return 200, 60 + 30 * 560, "webhooks", 0.0
        if res == "notifications" and m == "GET":
            return 200, 16 + 220 * (number("n", org, int(it.ts) // 120) % 5 == 0),\
                "notifications", 0.0
        if res == "orgs" and len(seg) == 1 and m == "POST":
            d = self._json(it)
            slug = d.get("slug") if isinstance(d, dict) else None
            if not isinstance(slug, str) or not 2 <= len(slug) <= 39:
                return 422, 88, "orgs", 0.0
            if slug in self.slugs or number("taken", slug) % 5 == 0:
                return 409, 62, "orgs", 0.0
            capped_put(self.slugs, slug, None, self.CAP)
            return 201, 290, "orgs", 0.0
        if res == "billing" and seg[1:] == ["payment-methods"] and m == "POST":
            d = self._json(it)
            card = d.get("card") if isinstance(d, dict) else None
            if not isinstance(card, dict):
                return 422, 80, "billing", 0.0
            pan = str(card.get("number", ""))
            ok = (luhn_ok(pan) and card_live(pan) and card.get("exp") == card_exp(pan)
                  and card.get("cvc") == card_cvc(pan))
            return 200, 120 if ok else 146, "billing", 0.0  # {"status":"active"|"declined"}
        if res == "user" and seg[1:2] == ["phone"] and m == "POST":
            d = self._json(it)
            phone = d.get("phone") if isinstance(d, dict) else None
            if seg[2:] == ["verify"]:
                return 200, 30, "phone", 0.0
            if not isinstance(phone, str) or not phone.startswith("+"):
                return 422, 70, "phone", 0.0
            sent = [t for t in self.phones.get(phone, ()) if it.ts - t < 600]
            if len(sent) >= 3:
                return 429, 80, "phone", 0.0
            sent.append(it.ts)
            capped_put(self.phones, phone, sent, self.CAP)
            return 202, 44, "phone", 0.0
        return 404, len(_NOT_FOUND), "not_found", 0.0

    @staticmethod
    def _issues(pid: int, q: dict[str, str]) -> tuple[int, int, str, float]:
        page, per = q.get("page", "1"), q.get("per_page", "30")
        if not page.isdigit() or not per.isdigit() or int(page) < 1:
            return 400, 60, "issues", 0.0
        if int(per) > 100:
            return 422, 76, "issues", 0.0
        start = (int(page) - 1) * int(per)
        k = max(0, min(int(per), issue_count(pid) - start))
        return 200, 2 + k * (1100 + number("pg", pid, page) % 300), "issues", 0.0

    def _export(self, it: Intent, org: int, seg: list[str], q: dict[str, str]
                ) -> tuple[int, int, str, float]:
        now = it.ts
        if len(seg) == 1 and it.method == "POST":
            d = self._json(it)
            pid = d.get("project") if isinstance(d, dict) else None
            if pid not in projects_of(org):
                return 404, len(_NOT_FOUND), "export_create", 0.0
            pending = sum(1 for o, _, ready in self.exports.values() if o == org and ready > now)
            if pending >= MAX_PENDING_EXPORTS:
                return 429, 90, "export_create", 0.0
            capped_put(self.exports, export_id(org, pid, now),
                       (org, pid, now + export_seconds(pid)), self.CAP)
            return 202, 96, "export_create", 0.0
        e = self.exports.get(seg[1]) if len(seg) >= 2 else None
        if e is None or e[0] != org or it.method != "GET":
            return 404, len(_NOT_FOUND), "export_get", 0.0
        if len(seg) == 2:
            return 200, 88 if now < e[2] else 170, "export_get", 0.0
        if seg[2:] == ["download"]:
            if now < e[2]:
                return 409, 58, "export_download", 0.0
            size = issue_count(e[1]) * 900
            return 200, size, "export_download", size / 50_000  # ~50 MB/s out of storage
        return 404, len(_NOT_FOUND), "not_found", 0.0

    @staticmethod
    def _public(seg: list[str], query: str) -> tuple[int, int, str, float]:
        if seg == ["templates"]:
            q = {k: v[0] for k, v in parse_qs(query).items()} if query else {}
            page = q.get("page", "1")
            if not page.isdigit():
                return 400, 60, "templates", 0.0
            k = max(0, min(30, N_TEMPLATES - (int(page) - 1) * 30))
            return 200, 40 + k * 520, "templates", 0.0
        if len(seg) == 2 and seg[0] == "templates":
            ok = seg[1].startswith("tpl-") and seg[1][4:9].isdigit() and seg[1] == template_slug(
                int(seg[1][4:9]))
            return (200, 3200 + number("t", seg[1]) % 6000, "template", 0.0) if ok else (
                404, len(_NOT_FOUND), "template", 0.0)
        return 404, len(_NOT_FOUND), "not_found", 0.0
