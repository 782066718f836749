"""The payments / banking world: `api.paybank.example`, its rules and its response model.

Conventions (docs/worlds.md has the table):
- OAuth2 token endpoint `POST /oauth/token` (RFC 6749, form body): a wrong password or a bad
  refresh token is 400 `invalid_grant`, an unknown client or a wrong client secret 401
  `invalid_client`, a missing field 400 `invalid_request`. A right password from a device the
  bank does not know is 403 `mfa_required` with an `mfa_token`; `POST /v1/mfa/verify` with the
  SMS code gives the tokens (400 `invalid_grant` for a wrong code; 5 wrong codes kill the
  mfa_token).
- Lockout: 5 failed passwords in a row (or 3 mfa_tokens killed in a row) lock the account for
  15 minutes: 423 `account_locked` with Retry-After, even for the right password.
- Declines: 402 with a card_error body (`POST /v1/cards/verify`, `POST /v1/payments`).
- Bearer access tokens live 15 minutes (401 `invalid_token` after); refresh tokens rotate.
  Merchants' servers use `X-Api-Key` (sk_live_ secret keys; pk_live_ publishable keys only
  verify cards). OTP sends: at most 3 per phone number per 10 minutes, then 429.
Tokens, keys, cursors and codes are signed with `digest`, so the model needs no table of
them and an actor knows in advance what it will be given.
"""

from __future__ import annotations

from collections import OrderedDict
from urllib.parse import parse_qs, unquote

from node.sim.apikit import ApiModel, capped_put, digest, jbody, number
from node.sim.core import Intent

HOST = "api.paybank.example"
ORIGIN = "https://app.paybank.example"
N_CUSTOMERS = 3000
N_MERCHANTS = 400
N_BRANCHES = 1800
N_ATMS = 6000
N_DIRECTORY = 12000  # merchants listed in the public directory
ACCESS_TTL = 900
LOCK_AFTER = 5
LOCK_SECONDS = 900
OTP_PER_PHONE = 3
OTP_WINDOW = 600
CLIENTS = {"web-spa": False, "ios-app": False, "android-app": False,  # public clients
           "moneyhub-aggr": True, "ledgerly-partner": True}           # confidential
BINS = ("424242", "455673", "510510", "535522", "401288", "601100")


def customer(n: int) -> str:
    return f"customer{n:05d}@mail.example"


def customer_number(user: str) -> int | None:
    if user.startswith("customer") and user.endswith("@mail.example") and user[8:13].isdigit():
        n = int(user[8:13])
        return n if 1 <= n <= N_CUSTOMERS else None
    return None


def password_for(n: int) -> str:
    return "Pb-" + digest("pw", n, n=8)


def known_device(n: int, k: int = 0) -> str:
    """The k-th device (0..2) the bank remembers for customer n: no MFA from it."""
    return "dev-" + digest("device", n, k, n=12)


def client_secret(client: str) -> str:
    return "cs_" + digest("client", client, n=24)


def secret_key(m: int) -> str:
    return f"sk_live_{m:04d}{digest('sk', m, n=24)}"


def publishable_key(m: int) -> str:
    return f"pk_live_{m:04d}{digest('pk', m, n=24)}"


def _key_merchant(key: str) -> tuple[int, str] | None:
    kind = key[:8]
    if kind not in ("sk_live_", "pk_live_") or len(key) != 36 or not key[8:12].isdigit():
        return None
    m = int(key[8:12])
    ok = key == (secret_key(m) if kind == "sk_live_" else publishable_key(m))
    return (m, kind[:2]) if ok and 1 <= m <= N_MERCHANTS else None


def access_token(sub: str, ts: float, jti: str) -> str:
    """What the token endpoint issues at `ts` (the request's time, rounded like a record's)."""
    exp = int(ts) + ACCESS_TTL
    return f"pbat.{sub}.{exp}.{jti}.{digest('at', sub, exp, jti, n=20)}"


def refresh_token(n: int, k: str) -> str:
    return f"pbrt.{n}.{k}.{digest('rt', n, k, n=20)}"


def refresh_revoked(token: str) -> bool:
    """About 3% of older refresh tokens were revoked (password change, consent withdrawn)."""
    return number("revoked", token) % 33 == 0


def rotate(token: str, ts: float) -> tuple[str, str]:
    """(access, refresh) a refresh grant with `token` at `ts` gives."""
    n = int(token.split(".")[1])
    jti = digest("jti", token, round(ts, 3), n=10)
    return access_token(str(n), round(ts, 3), jti), refresh_token(n, jti)


def login_tokens(n: int, device: str, ts: float) -> tuple[str, str]:
    jti = digest("jti", n, device, round(ts, 3), n=10)
    return access_token(str(n), round(ts, 3), jti), refresh_token(n, jti)


def mfa_token(n: int, ts: float) -> str:
    return f"mfa.{n}.{digest('mfa', n, round(ts, 3), n=16)}"


def sms_code(token: str) -> str:
    """The one-time code the SMS for an mfa_token or otp_id carries."""
    return f"{number('code', token) % 1_000_000:06d}"


def otp_id(phone: str, ts: float) -> str:
    return "otp_" + digest("otp", phone, round(ts, 3), n=16)


def accounts_of(n: int) -> list[str]:
    return [f"acc_{n}_{k}" for k in range(1 + n % 3)]


def tx_count(acct: str) -> int:
    return 30 + number("tx", acct) % 900


def cursor(scope: str, offset: int) -> str:
    return f"{offset:x}.{digest('cur', scope, offset, n=8)}"


def _offset(scope: str, cur: str) -> int | None:
    off, _, _ = cur.partition(".")
    try:
        o = int(off, 16)
    except ValueError:
        return None
    return o if cursor(scope, o) == cur else None


def luhn_ok(pan: str) -> bool:
    if not pan.isdigit() or not 13 <= len(pan) <= 19:
        return False
    s = 0
    for i, ch in enumerate(reversed(pan)):
        d = int(ch) * (2 if i % 2 else 1)
        s += d - 9 if d > 9 else d
    return s % 10 == 0


def luhn_complete(prefix15: str) -> str:
    for d in "0123456789":
        if luhn_ok(prefix15 + d):
            return prefix15 + d
    raise AssertionError


def card_cvc(pan: str) -> str:
    return f"{number('cvc', pan) % 1000:03d}"


def card_exp(pan: str) -> str:
    return f"{1 + number('exp', pan) % 12:02d}/{27 + number('expy', pan) % 4}"


def card_live(pan: str) -> bool:
    return number("live", pan) % 100 >= 10


def customer_card(n: int, k: int = 0) -> str:
    """A live card of customer n."""
    j = 0
    while True:
        pan = luhn_complete(BINS[n % len(BINS)] + f"{number('pan', n, k, j) % 10**9:09d}")
        if card_live(pan):
            return pan
        j += 1


# -- sizes -----------------------------------------------------------------------------------

def _err(status: int, error: str, desc: str | None = None) -> bytes:
    d = {"error": error}
    if desc:
        d["error_description"] = desc
    return jbody(d)


_INVALID_GRANT = _err(400, "invalid_grant", "invalid username or password")
_INVALID_CLIENT = _err(401, "invalid_client", "client authentication failed")
_INVALID_TOKEN = _err(401, "invalid_token", "the access token expired or is invalid")
_INVALID_KEY = jbody({"error": {"type": "invalid_request_error", "code": "api_key_invalid"}})
_NOT_FOUND = jbody({"error": "not_found"})
_TOKEN_BODY = 760  # an access + refresh token response


def _decline(code: str) -> bytes:
    return jbody({"error": {"type": "card_error", "code": "card_declined",
                            "decline_code": code, "message": "Your card was declined."}})


class PaybankModel(ApiModel):
    """Offline responses of api.paybank.example. State: failure streaks and locks per account,
    pending MFA tokens, OTP sends per phone, sign-ups and reset tokens (all capped)."""

    LATENCY = {
        "preflight": (1.2, 0.3), "health": (0.8, 0.3), "token": (85.0, 0.25),
        "mfa_verify": (22.0, 0.3), "otp_send": (140.0, 0.4), "otp_verify": (12.0, 0.3),
        "signup": (160.0, 0.35), "reset": (60.0, 0.35), "reset_confirm": (90.0, 0.3),
        "me": (9.0, 0.3), "accounts": (18.0, 0.35), "transactions": (34.0, 0.45),
        "statement": (40.0, 0.3), "notifications": (6.0, 0.35), "payment": (230.0, 0.35),
        "card_verify": (310.0, 0.4), "payments_list": (45.0, 0.4), "balance": (12.0, 0.3),
        "payout": (120.0, 0.3), "payout_get": (10.0, 0.3), "branches": (28.0, 0.4),
        "branch": (7.0, 0.3), "atms": (24.0, 0.35), "merchants": (30.0, 0.35),
        "fx": (3.0, 0.3), "webhook": (15.0, 0.35), "robots": (0.6, 0.3),
        "not_found": (0.9, 0.3), "method": (0.7, 0.3), "unauthorized": (2.0, 0.3),
    }
    CAP = 50_000

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        self.fails: OrderedDict[int, int] = OrderedDict()
        self.locked: OrderedDict[int, float] = OrderedDict()
        self.mfa: OrderedDict[str, list] = OrderedDict()  # token → [n, wrong codes, exp]
        self.mfa_dead: OrderedDict[int, int] = OrderedDict()
        self.otp_sends: OrderedDict[str, list[float]] = OrderedDict()
        self.otps: OrderedDict[str, int] = OrderedDict()  # otp_id → wrong codes
        self.emails: OrderedDict[str, None] = OrderedDict()
        self.resets: OrderedDict[str, str] = OrderedDict()  # token → email
        self.passwords: OrderedDict[int, str] = OrderedDict()  # changed by a reset

    # -- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _form(it: Intent) -> dict[str, str]:
        try:
            d = parse_qs((it.body or b"").decode(), max_num_fields=20)
        except (ValueError, UnicodeDecodeError):
            return {}
        return {k: v[0] for k, v in d.items()}

    @staticmethod
    def _json(it: Intent) -> dict:
        import json
        try:
            d = json.loads(it.body or b"")
        except (ValueError, UnicodeDecodeError):
            return {}
        return d if isinstance(d, dict) else {}

    @staticmethod
    def _bearer(it: Intent, now: float) -> str | None:
        """The subject of a valid, unexpired bearer token, else None."""
        auth = it.headers.get("Authorization", "")
        if not auth.startswith("Bearer pbat."):
            return None
        parts = auth[7:].split(".")
        if len(parts) != 5 or not parts[2].isdigit():
            return None
        _, sub, exp, jti, sig = parts
        if sig != digest("at", sub, int(exp), jti, n=20) or now >= int(exp):
            return None
        return sub

    def _is_locked(self, n: int, now: float) -> float:
        until = self.locked.get(n)
        return until - now if until is not None and until > now else 0.0

    def _fail(self, n: int | None, now: float) -> None:
        if n is None:
            return
        k = self.fails.get(n, 0) + 1
        capped_put(self.fails, n, k, self.CAP)
        if k >= LOCK_AFTER:
            capped_put(self.locked, n, now + LOCK_SECONDS, self.CAP)
            self.fails.pop(n, None)

    # -- dispatch --------------------------------------------------------------------------

    def handle(self, it: Intent) -> tuple[int, int, str, float]:
        path = unquote(it.path) if "%" in it.path else it.path
        if it.method == "OPTIONS":
            return 204, 0, "preflight", 0.0
        seg = path.strip("/").split("/")
        m = it.method
        head = seg[0]
        if head == "health" and m == "GET":
            return 200, 15, "health", 0.0
        if path == "/robots.txt" and m == "GET":
            return 200, 26, "robots", 0.0
        if path == "/oauth/token":
            return self._token(it) if m == "POST" else (405, 30, "method", 0.0)
        if head == "webhooks" and len(seg) == 2 and seg[1] in ("sms-status", "card-events",
                                                               "kyc"):
            if m != "POST":
                return 405, 30, "method", 0.0
            ok = "X-Signature" in it.headers
            return (200, 17, "webhook", 0.0) if ok else (400, 38, "webhook", 0.0)
        if head != "v1" or len(seg) < 2:
            return 404, len(_NOT_FOUND), "not_found", 0.0
        res = seg[1]
        if res == "mfa" and seg[2:] == ["verify"] and m == "POST":
            return self._mfa_verify(it)
        if res == "otp" and len(seg) == 3 and m == "POST":
            return self._otp_send(it) if seg[2] == "send" else self._otp_verify(it)
        if res == "signup" and len(seg) == 2 and m == "POST":
            return self._signup(it)
        if res == "password" and seg[2:3] == ["reset"] and m == "POST":
            return self._reset(it, confirm=seg[3:] == ["confirm"])
        if res in ("branches", "atms", "merchants", "fx") and m == "GET":
            return self._directory(seg, it.query)
        if res in ("cards", "payments", "balance", "payouts") and (
                "X-Api-Key" in it.headers or res != "payments"):
            return self._merchant(it, seg)
        if res in ("customers", "accounts", "notifications", "payments"):
            return self._customer(it, seg)
        return 404, len(_NOT_FOUND), "not_found", 0.0

    # -- auth ------------------------------------------------------------------------------

    def _client_ok(self, it: Intent, f: dict[str, str]) -> bool:
        cid = f.get("client_id")
        if cid not in CLIENTS:
            return False
        if CLIENTS[cid]:
            return f.get("client_secret") == client_secret(cid)
        return True

    def _token(self, it: Intent) -> tuple[int, int, str, float]:
        f = self._form(it)
        grant = f.get("grant_type")
        if not grant:
            return 400, 62, "token", 0.0
        if not self._client_ok(it, f):
            return 401, len(_INVALID_CLIENT), "token", 0.0
        now = it.ts
        if grant == "client_credentials":
            return (200, 420, "token", 0.0) if CLIENTS[f["client_id"]] else (
                401, len(_INVALID_CLIENT), "token", 0.0)
        if grant == "refresh_token":
            rt = f.get("refresh_token", "")
            p = rt.split(".")
            if (len(p) != 4 or p[0] != "pbrt" or not p[1].isdigit()
                    or rt != refresh_token(int(p[1]), p[2]) or refresh_revoked(rt)):
                return 400, len(_INVALID_GRANT), "token", 0.0
            return 200, _TOKEN_BODY, "token", 0.0
        if grant != "password":
            return 400, 55, "token", 0.0
        user, pw = f.get("username"), f.get("password")
        if not user or pw is None:
            return 400, 62, "token", 0.0
        n = customer_number(user)
        if n is not None:
            left = self._is_locked(n, now)
            if left:
                return 423, 98, "token", 0.0
        if n is None or pw != self.passwords.get(n, password_for(n)):
            self._fail(n, now)
            return 400, len(_INVALID_GRANT), "token", 0.0
        self.fails.pop(n, None)
        dev = f.get("device_id", "")
        if dev not in {known_device(n, k) for k in range(3)}:
            tok = mfa_token(n, now)
            capped_put(self.mfa, tok, [n, 0, now + 300], self.CAP)
            return 403, 130, "token", 0.0
        return 200, _TOKEN_BODY, "token", 0.0

    def _mfa_verify(self, it: Intent) -> tuple[int, int, str, float]:
        d = self._json(it)
        tok, code = d.get("mfa_token"), d.get("code")
        if not isinstance(tok, str) or not isinstance(code, str):
            return 400, 62, "mfa_verify", 0.0
        st = self.mfa.get(tok)
        if st is None or it.ts > st[2] or st[1] >= 5:
            return 400, 80, "mfa_verify", 0.0  # invalid_grant: mfa_token expired
        n = st[0]
        if self._is_locked(n, it.ts):
            return 423, 98, "mfa_verify", 0.0
        if code != sms_code(tok):
            st[1] += 1
            if st[1] >= 5:
                k = self.mfa_dead.get(n, 0) + 1
                capped_put(self.mfa_dead, n, k, self.CAP)
                if k >= 3:
                    capped_put(self.locked, n, it.ts + LOCK_SECONDS, self.CAP)
                    self.mfa_dead.pop(n, None)
            return 400, 74, "mfa_verify", 0.0
        self.mfa.pop(tok, None)
        self.mfa_dead.pop(n, None)
        return 200, _TOKEN_BODY, "mfa_verify", 0.0

    def _otp_send(self, it: Intent) -> tuple[int, int, str, float]:
        phone = self._json(it).get("phone")
        if not isinstance(phone, str) or not phone.startswith("+") or not 8 <= len(phone) <= 16:
            return 422, 70, "otp_send", 0.0
        sent = [t for t in self.otp_sends.get(phone, ()) if it.ts - t < OTP_WINDOW]
        if len(sent) >= OTP_PER_PHONE:
            return 429, 75, "otp_send", 0.0
        sent.append(it.ts)
        capped_put(self.otp_sends, phone, sent, self.CAP)
        capped_put(self.otps, otp_id(phone, it.ts), 0, self.CAP)
        return 202, 66, "otp_send", 0.0

    def _otp_verify(self, it: Intent) -> tuple[int, int, str, float]:
        d = self._json(it)
        oid, code = d.get("otp_id"), d.get("code")
        wrong = self.otps.get(oid) if isinstance(oid, str) else None
        if wrong is None or wrong >= 5:
            return 400, 54, "otp_verify", 0.0
        if code != sms_code(oid):
            self.otps[oid] = wrong + 1
            return 400, 52, "otp_verify", 0.0
        del self.otps[oid]
        return 200, 40, "otp_verify", 0.0

    def _signup(self, it: Intent) -> tuple[int, int, str, float]:
        d = self._json(it)
        email, phone = d.get("email"), d.get("phone")
        if (not isinstance(email, str) or "@" not in email or not isinstance(phone, str)
                or not phone.startswith("+") or len(str(d.get("password", ""))) < 8):
            return 422, 96, "signup", 0.0
        if email in self.emails or customer_number(email) is not None:
            return 409, 58, "signup", 0.0
        capped_put(self.emails, email, None, self.CAP)
        capped_put(self.otps, otp_id(phone, it.ts), 0, self.CAP)
        return 201, 188, "signup", 0.0

    def _reset(self, it: Intent, confirm: bool) -> tuple[int, int, str, float]:
        d = self._json(it)
        if not confirm:
            email = d.get("email")
            if not isinstance(email, str):
                return 422, 60, "reset", 0.0
            if customer_number(email) is not None:
                capped_put(self.resets, reset_token(email, it.ts), email, self.CAP)
            return 202, 72, "reset", 0.0  # the same answer for unknown addresses
        email = self.resets.pop(str(d.get("token")), None)
        if email is None or len(str(d.get("password", ""))) < 8:
            return 400, 64, "reset_confirm", 0.0
        n = customer_number(email)
        capped_put(self.passwords, n, str(d["password"]), self.CAP)
        self.locked.pop(n, None)
        self.fails.pop(n, None)
        return 200, 30, "reset_confirm", 0.0

    # -- customers (bearer) ----------------------------------------------------------------

    def _customer(self, it: Intent, seg: list[str]) -> tuple[int, int, str, float]:
        sub = self._bearer(it, it.ts)
        if sub is None or not sub.isdigit():
            return 401, len(_INVALID_TOKEN), "unauthorized", 0.0
        n, m, res = int(sub), it.method, seg[1]
        if res == "customers" and seg[2:] == ["me"] and m == "GET":
            return 200, 420 + n % 90, "me", 0.0
        if res == "notifications" and m == "GET":
            k = number("notif", n, int(it.ts) // 300) % 4
            return 200, 14 + 180 * (k == 0), "notifications", 0.0
        if res == "payments" and len(seg) == 2 and m == "POST":
            d = self._json(it)
            amount = d.get("amount")
            if not isinstance(amount, int) or amount <= 0:
                return 422, 84, "payment", 0.0
            if amount > 200_000 + number("bal", n) % 800_000:  # more than the balance
                return 402, len(_decline("insufficient_funds")), "payment", 0.0
            return 201, 340, "payment", 0.0
        if res == "accounts" and m == "GET":
            if len(seg) == 2:
                return 200, 90 + 260 * len(accounts_of(n)), "accounts", 0.0
            acct = seg[2]
            if acct not in accounts_of(n):
                return 404, len(_NOT_FOUND), "accounts", 0.0
            if seg[3:] == ["transactions"]:
                return self._page(it.query, acct, tx_count(acct), 310, "transactions", 100)
            if seg[3:] == ["statements"]:
                return self._statement(it.query)
        return 404, len(_NOT_FOUND), "not_found", 0.0

    @staticmethod
    def _page(query: str, scope: str, total: int, item: int, endpoint: str, cap: int
              ) -> tuple[int, int, str, float]:
        q = {k: v[0] for k, v in parse_qs(query).items()} if query else {}
        lim = q.get("limit", "50")
        if not lim.isdigit() or not 1 <= int(lim) <= cap:
            return 400, 70, endpoint, 0.0
        off = 0
        if "cursor" in q:
            o = _offset(scope, q["cursor"])
            if o is None:
                return 400, 58, endpoint, 0.0
            off = o
        k = max(0, min(int(lim), total - off))
        jitter = number(scope, off) % 40
        return 200, 70 + k * (item + jitter // 8) + (30 if off + k < total else 0), endpoint, 0.0

    @staticmethod
    def _statement(query: str) -> tuple[int, int, str, float]:
        q = {k: v[0] for k, v in parse_qs(query).items()} if query else {}
        try:
            y0, y1 = int(q.get("from", "2025-01-01")[:4]), int(q.get("to", "2025-11-01")[:4])
        except ValueError:
            return 400, 60, "statement", 0.0
        days = max(1, min(40, y1 - y0 + 1) * 365 if y1 > y0 else 31)
        return 200, 9000 + days * 3800, "statement", 2.0 * days  # rendered per day

    # -- merchants (API key) ---------------------------------------------------------------

    def _merchant(self, it: Intent, seg: list[str]) -> tuple[int, int, str, float]:
        key = _key_merchant(it.headers.get("X-Api-Key", ""))
        if key is None:
            return 401, len(_INVALID_KEY), "unauthorized", 0.0
        mer, kind = key
        res, m = seg[1], it.method
        if res == "cards" and seg[2:] == ["verify"] and m == "POST":
            return self._card(self._json(it), "card_verify")
        if kind != "sk":
            return 403, 92, "unauthorized", 0.0  # a publishable key only verifies cards
        if res == "balance" and m == "GET":
            return 200, 260, "balance", 0.0
        if res == "payments" and len(seg) == 2:
            if m == "POST":
                d = self._json(it)
                if not isinstance(d.get("amount"), int):
                    return 422, 84, "payment", 0.0
                st, size, _, w = self._card(d.get("card") or {}, "payment")
                return (201, 610, "payment", w) if st == 200 else (st, size, "payment", w)
            total = 500 + number("payments", mer) % 20000
            return self._page(it.query, f"m{mer}", total, 520, "payments_list", 100)
        if res == "payouts":
            if len(seg) == 2 and m == "POST":
                return (201, 380, "payout", 0.0) if "Idempotency-Key" in it.headers else (
                    400, 88, "payout", 0.0)
            if len(seg) == 3 and m == "GET":
                return 200, 380, "payout_get", 0.0
        return 404, len(_NOT_FOUND), "not_found", 0.0

    @staticmethod
    def _card(d: dict, endpoint: str) -> tuple[int, int, str, float]:
        pan, exp, cvc = d.get("number"), d.get("exp"), d.get("cvc")
        if not isinstance(pan, str) or not isinstance(exp, str) or not isinstance(cvc, str):
            return 422, 90, endpoint, 0.0
        if not luhn_ok(pan):
            return 402, len(_decline("incorrect_number")), endpoint, 0.0
        if not card_live(pan):
            return 402, len(_decline("lost_card")), endpoint, 0.0
        if exp != card_exp(pan):
            return 402, len(_decline("expired_card")), endpoint, 0.0
        if cvc != card_cvc(pan):
            return 402, len(_decline("incorrect_cvc")), endpoint, 0.0
        return 200, 290, endpoint, 0.0

    # -- public directory ------------------------------------------------------------------

    def _directory(self, seg: list[str], query: str) -> tuple[int, int, str, float]:
        res = seg[1]
        if res == "fx":
            return 200, 2400, "fx", 0.0
        if res == "branches":
            if len(seg) == 3:
                b = int(seg[2]) if seg[2].isdigit() else 0
                return (200, 610 + b % 230, "branch", 0.0) if 1 <= b <= N_BRANCHES else (
                    404, len(_NOT_FOUND), "branch", 0.0)
            q = {k: v[0] for k, v in parse_qs(query).items()} if query else {}
            try:
                lat, lng = float(q["lat"]), float(q["lng"])
            except (KeyError, ValueError):
                return 400, 66, "branches", 0.0
            k = number("near", round(lat, 2), round(lng, 2)) % 21
            return 200, 40 + k * 330, "branches", 0.0
        if len(seg) != 2:
            return 404, len(_NOT_FOUND), "not_found", 0.0
        total, item = (N_ATMS, 240) if res == "atms" else (N_DIRECTORY, 380)
        return self._page(query, res, total, item, res, 100)


def reset_token(email: str, ts: float) -> str:
    return "rst_" + digest("reset", email, round(ts, 3), n=24)
