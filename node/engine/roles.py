"""Endpoint roles: what an endpoint is for (log in, sign up, send a one-time code, verify a
card, ...), inferred from its path vocabulary and method, and what its answers mean.

Business-flow detectors (sign-ups per source, codes sent and never verified, declined card
checks) and the account-takeover detectors read the role of the endpoint a request hit, not
a shop's paths. The vocabulary is data (`RULES`): the words of the template's literal
segments, most specific role first. Configuration overrides it per application
(`endpoint_roles: {"POST /v1/customers": none}`).

Outcome semantics are learned per endpoint from its own answers (`Outcomes`): a route that
answers both 2xx and some 4xx tells success from failure by status; one that always answers
200 tells nothing, and its results stay unknown rather than guessed. Rate limits (429) and
lockouts (423) are their own outcomes, never a failure of the client's guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LOGIN = "login"
REFRESH = "refresh"
SIGNUP = "signup"
OTP_SEND = "otp_send"
OTP_VERIFY = "otp_verify"
PASSWORD_RESET = "password_reset"
PAYMENT = "payment"
CARD_CHECK = "card_check"
SEARCH = "search"
EXPORT = "export"
GRAPHQL = "graphql"
HEALTH = "health"
WEBHOOK = "webhook"
ROLES = (LOGIN, REFRESH, SIGNUP, OTP_SEND, OTP_VERIFY, PASSWORD_RESET, PAYMENT, CARD_CHECK,
         SEARCH, EXPORT, GRAPHQL, HEALTH, WEBHOOK)
ROLE_INDEX = {r: i for i, r in enumerate(ROLES)}
# Roles whose requests change state (only unsafe methods take them).
_UNSAFE_ROLES = frozenset((LOGIN, REFRESH, SIGNUP, OTP_SEND, OTP_VERIFY, PASSWORD_RESET,
                           PAYMENT, CARD_CHECK))

_WORD = re.compile(r"[a-z0-9]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


@dataclass(frozen=True, slots=True)
class Rule:
    role: str
    any_of: tuple[frozenset[str], ...]   # one of these word sets is all in the path
    last_only: bool = False              # ... within the last literal segment


def _r(role: str, *alts: str, last_only: bool = False) -> Rule:
    return Rule(role, tuple(frozenset(a.split()) for a in alts), last_only)


# Most specific first: "/token/refresh" is a refresh before it is a token; "/otp/verify" a
# verification before a send; "/password/reset" a reset before a login.
RULES: tuple[Rule, ...] = (
    # A provider's callback names what it reports (`/webhooks/payments`): it is none of that.
    _r(WEBHOOK, "webhook", "webhooks", "hooks", "callback", "callbacks", "ipn", "notify"),
    _r(HEALTH, "health", "healthz", "healthcheck", "livez", "readyz", "liveness", "readiness",
       "ping", "heartbeat", "status", last_only=True),
    _r(GRAPHQL, "graphql", "gql"),
    _r(REFRESH, "refresh", "refresh token", "token refresh"),
    # Checking or attaching a card (not charging it): a customer does it once or twice.
    _r(CARD_CHECK, "card verify", "cards verify", "card verification", "card check",
       "cards check", "card validate", "cards validate", "payment methods", "payment method",
       "setup intents", "cards", "card", "sources", "paymentmethods"),
    _r(PASSWORD_RESET, "password reset", "reset password", "password forgot", "forgot",
       "forgot password", "password recover", "recover", "recovery", "password"),
    _r(OTP_VERIFY, "session otp", "login otp", "signin otp", "auth otp",
       "otp verify", "otp check", "otp confirm", "mfa verify", "mfa", "2fa verify",
       "2fa", "totp", "verify code", "code verify", "verification check", "verify otp",
       "sms verify", "challenge verify", "verify", "confirm code", "mfa challenge verify"),
    _r(OTP_SEND, "otp", "otp send", "sms", "sms send", "send code", "code send",
       "verification", "verifications", "send otp", "mfa challenge", "challenge", "phone",
       "phones", "phone number", "phonenumber", "phone numbers"),
    _r(SIGNUP, "signup", "sign up", "register", "registration", "registrations", "enroll",
       "enrol", "join", "create account", "accounts new"),
    # Creating a namespace (an organisation, a workspace) is signing one up.
    _r(SIGNUP, "orgs", "organizations", "organisations", "workspaces", "tenants", "teams",
       last_only=True),
    _r(PAYMENT, "payments", "payment", "charges", "charge", "checkout", "pay",
       "payment intents", "authorize", "authorizations", "purchase", "purchases", "donate",
       "transfers", "transfer"),
    _r(LOGIN, "login", "signin", "sign in", "logon", "log in", "auth", "authenticate",
       "authentication", "token", "tokens", "oauth token", "session", "sessions"),
    _r(EXPORT, "export", "exports", "report", "reports", "download", "downloads", "csv",
       "dump", "backup"),
    _r(SEARCH, "search", "autocomplete", "suggest", "suggestions", "lookup", "find",
       "typeahead"),
)


def words(template: str) -> tuple[list[str], list[str]]:
    """The lower-case words of a template's literal segments, and those of the last one."""
    all_words: list[str] = []
    last: list[str] = []
    for seg in template.split("/"):
        if not seg or seg.startswith("{"):
            continue
        seg = seg.rsplit(".", 1)[0] if "." in seg[1:] else seg   # /login.php, /token.json
        last = _WORD.findall(_CAMEL.sub(" ", seg).lower())
        all_words.extend(last)
    return all_words, last


def infer_role(method: str, template: str) -> str | None:
    """The role of (method, template) by its vocabulary, or None (an ordinary endpoint).
    State-changing roles need an unsafe method; a GET of `/v1/payments` lists payments."""
    ws, last = words(template)
    if not ws:
        return None
    have, have_last = set(ws), set(last)
    unsafe = method not in ("GET", "HEAD", "OPTIONS")
    for rule in RULES:
        if rule.role in _UNSAFE_ROLES and not unsafe:
            continue
        pool = have_last if rule.last_only else have
        for alt in rule.any_of:
            if alt <= pool:
                if rule.role == PASSWORD_RESET and alt == frozenset(("password",)) and (
                        "change" in have or "update" in have):
                    break      # changing one's own password is account use, not a reset
                return rule.role
    return None


# -- outcomes learned from the endpoint's own answers ------------------------------------------
OK, FAIL, LOCKED, LIMITED, DECLINED, CHALLENGE = "ok", "fail", "locked", "limited", "declined", \
    "challenge"
STATUS_CAP = 16          # distinct statuses remembered per endpoint (more: not learned further)
_NOT_OUTCOME = frozenset((404, 405, 423, 429))


class Outcomes:
    """Per endpoint: how often it answered each status. From that, whether a 2xx is a
    success (the route also answers failures with a 4xx) and which 4xx are failures."""

    __slots__ = ("counts", "n", "ok", "fail")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.n = 0
        self.ok = 0          # 2xx / 3xx answers
        self.fail = 0        # client errors that are an outcome (not 404, 405, 423, 429)

    def add(self, status: int) -> None:
        c = self.counts
        if status in c:
            c[status] += 1
        elif len(c) < STATUS_CAP:
            c[status] = 1
        self.n += 1
        if 200 <= status < 400:
            self.ok += 1
        elif 400 <= status < 500 and status not in _NOT_OUTCOME:
            self.fail += 1

    @property
    def tells_failure(self) -> bool:
        """The route answers both successes and client errors: its status is its outcome."""
        return self.ok > 0 and self.fail > 0

    def semantics(self) -> dict[str, list[int]]:
        """Statuses by learned meaning, for `palisade replay --roles` and the console."""
        out: dict[str, list[int]] = {}
        for s in sorted(self.counts):
            out.setdefault(classify(s, self.tells_failure, None) or "unknown", []).append(s)
        return out


def classify(status: int, tells_failure: bool, role: str | None) -> str | None:
    """What a status means on an endpoint of `role` (None: cannot tell)."""
    if status == 429:
        return LIMITED
    if status == 423:
        return LOCKED
    if status == 402 and role in (PAYMENT, CARD_CHECK):
        return DECLINED
    if 200 <= status < 400:
        # A login form may answer 200 to a wrong password (WordPress): there a 2xx means
        # success only once the route showed it answers failures with a status. A code
        # check, a payment, a sign-up that answer 2xx did what was asked.
        return OK if tells_failure or role not in (LOGIN, None) else None
    if status in (404, 405) or status >= 500:
        return None
    if 400 <= status < 500:
        if role in (PAYMENT, CARD_CHECK):
            return DECLINED
        return FAIL
    return None
