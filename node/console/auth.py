"""Console login: a bearer token (operator or viewer) is exchanged once for a session.

The session lives on the server (an in-memory table, bounded); the browser only holds its
random id in an HttpOnly, SameSite=Strict cookie scoped to /console. Every unsafe request
carries the session's CSRF token in its form (checked with `hmac.compare_digest`), and a
browser's Origin / Sec-Fetch-Site must not name another site. The login form itself is
protected by a double-submit token (a cookie and a form field that must match), so another
site cannot log a browser in under the attacker's token.

Sessions end on logout, after IDLE seconds without a request or LIFETIME seconds in all, and
when the control plane restarts (operators log in again). Revoking a token does not end the
console sessions it opened before; they expire within LIFETIME.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from aiohttp import web

from node.control.auth import MAX_TOKEN, Principal
from node.control.routing import ApiError, RouteSpec, read_body

COOKIE = "palisade_console"
LOGIN_COOKIE = "palisade_login"
PATH = "/console"
IDLE = 2 * 3600.0
LIFETIME = 12 * 3600.0
MAX_SESSIONS = 10_000
MAX_FORM = 16 * 1024
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CONSOLE_ROLES = frozenset({"viewer", "operator"})

FORM = web.RequestKey("console_form", dict)
SESSION = web.RequestKey("console_session", "ConsoleSession")


@dataclass(slots=True)
class ConsoleSession:
    principal: Principal
    csrf: str
    created: float
    seen: float
    flash: list[tuple[str, str]] = field(default_factory=list)   # (kind, message) to show once


def _digest(sid: str) -> str:
    return hashlib.sha256(sid.encode("utf-8", "surrogatepass")).hexdigest()


class ConsoleAuth:
    """The console's session table; also the routing's `SessionAuth` hook."""

    def __init__(self, *, secure_cookies: bool | None = None,
                 clock: Callable[[], float] = time.monotonic, idle: float = IDLE,
                 lifetime: float = LIFETIME, max_sessions: int = MAX_SESSIONS) -> None:
        self._sessions: OrderedDict[str, ConsoleSession] = OrderedDict()  # by id digest
        self._clock = clock
        self._secure = secure_cookies
        self.idle, self.lifetime, self.max_sessions = idle, lifetime, max_sessions
        self.throttle = LoginThrottle(clock=clock)

    # -- sessions -----------------------------------------------------------------------------
    def open(self, principal: Principal) -> tuple[str, ConsoleSession]:
        now = self._clock()
        sid = secrets.token_urlsafe(32)
        s = ConsoleSession(principal, secrets.token_urlsafe(32), now, now)
        self._sessions[_digest(sid)] = s
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)   # the least recently used goes first
        return sid, s

    def end_for(self, principals: set) -> int:
        """End every session of these principals (their token left the configuration)."""
        dead = [k for k, s in self._sessions.items() if s.principal in principals]
        for k in dead:
            del self._sessions[k]
        return len(dead)

    def close(self, request: web.Request) -> None:
        sid = request.cookies.get(COOKIE)
        if sid:
            self._sessions.pop(_digest(sid), None)

    def session(self, request: web.Request) -> ConsoleSession | None:
        sid = request.cookies.get(COOKIE)
        if not sid or len(sid) > 128:
            return None
        key = _digest(sid)
        s = self._sessions.get(key)
        if s is None:
            return None
        now = self._clock()
        if now - s.seen > self.idle or now - s.created > self.lifetime:
            del self._sessions[key]
            return None
        s.seen = now
        self._sessions.move_to_end(key)
        return s

    def __len__(self) -> int:
        return len(self._sessions)

    # -- the routing hook ---------------------------------------------------------------------
    async def authenticate(self, request: web.Request, spec: RouteSpec) -> Principal:
        s = self.session(request)
        if s is None:
            if request.method in SAFE_METHODS:
                raise web.HTTPSeeOther(login_url(str(request.rel_url)))
            raise web.HTTPSeeOther(login_url(None))
        if request.method not in SAFE_METHODS:
            check_origin(request)
            form = await read_form(request)
            if not hmac.compare_digest(form.get("csrf", ""), s.csrf):
                raise ApiError(403, "the form's CSRF token is missing or stale; reload the "
                                    "page and try again")
            request[FORM] = form
        request[SESSION] = s
        return s.principal

    # -- cookies ------------------------------------------------------------------------------
    def secure(self, request: web.Request) -> bool:
        return request.secure if self._secure is None else self._secure

    def set_cookie(self, resp: web.StreamResponse, request: web.Request, sid: str) -> None:
        resp.set_cookie(COOKIE, sid, path=PATH, httponly=True, samesite="Strict",
                        secure=self.secure(request), max_age=int(self.lifetime))

    def clear_cookie(self, resp: web.StreamResponse, request: web.Request) -> None:
        resp.set_cookie(COOKIE, "", path=PATH, httponly=True, samesite="Strict",
                        secure=self.secure(request), max_age=0)


class LoginThrottle:
    """At most `limit` failed logins per client address per `window` seconds (bounded)."""

    def __init__(self, *, limit: int = 10, window: float = 600.0, cap: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.cap, self._clock = limit, window, cap, clock
        self._fails: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def blocked(self, who: str) -> bool:
        e = self._fails.get(who)
        return e is not None and self._clock() - e[0] < self.window and e[1] >= self.limit

    def failed(self, who: str) -> None:
        now = self._clock()
        start, n = self._fails.pop(who, (now, 0))
        if now - start >= self.window:
            start, n = now, 0
        self._fails[who] = (start, n + 1)
        while len(self._fails) > self.cap:
            self._fails.popitem(last=False)

    def succeeded(self, who: str) -> None:
        self._fails.pop(who, None)


def check_origin(request: web.Request) -> None:
    """Refuse a state-changing request a browser says comes from another site."""
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        raise ApiError(403, "cross-site request refused")
    origin = request.headers.get("Origin")
    if origin is not None:
        # Compare the host only: behind a TLS-terminating proxy the scheme differs.
        if origin == "null" or urlsplit(origin).netloc.lower() != request.host.lower():
            raise ApiError(403, "cross-origin request refused")


async def read_form(request: web.Request) -> dict[str, str]:
    """An urlencoded form, bounded; a key given twice keeps its first value."""
    if request.content_type != "application/x-www-form-urlencoded":
        raise ApiError(415, "send the form as application/x-www-form-urlencoded")
    raw = await read_body(request, MAX_FORM)
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=64)
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "the form could not be read") from None
    form: dict[str, str] = {}
    for k, v in pairs:
        form.setdefault(k, v)
    return form


def safe_next(target: str | None) -> str:
    """A post-login destination inside the console, never another site."""
    default = PATH + "/"
    if not target or len(target) > 1024 or "\\" in target or any(ord(c) < 33 for c in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not (parts.path == PATH or
                                            parts.path.startswith(PATH + "/")):
        return default
    if parts.path.startswith(PATH + "/login") or parts.path.startswith("//"):
        return default
    return target


def login_url(next_target: str | None) -> str:
    if not next_target or safe_next(next_target) != next_target:
        return f"{PATH}/login"
    return f"{PATH}/login?{urlencode({'next': next_target})}"


def token_shape_ok(token: str) -> bool:
    return 0 < len(token) <= MAX_TOKEN and token.isprintable() and " " not in token


def client_key(request: web.Request) -> str:
    return request.remote or "unknown"


def new_login_nonce() -> str:
    return secrets.token_urlsafe(24)


def nonce_ok(request: web.Request, form: dict[str, Any]) -> bool:
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    return bool(cookie) and hmac.compare_digest(cookie, str(form.get("nonce", "")))
