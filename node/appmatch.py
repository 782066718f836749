"""Which application a request belongs to, and whether it is an authentication attempt.
Shared by the engine and the node's capture, so both agree on every request."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase

from node.config.model import Application, AuthEndpoint

_CACHE_MAX = 10_000   # hosts and paths come from clients: caches stay bounded

# Used when an application configures no authentication endpoint: the usual login routes.
# Statuses are left to the response (401 / 403 fail); no success status is assumed.
DEFAULT_AUTH_GLOBS = (
    "*/login", "*/login/", "*/login.*", "*/signin", "*/sign-in", "*/sign_in", "*/auth",
    "*/authenticate", "*/oauth/token", "*/oauth2/token", "*/token", "*/session", "*/sessions",
    "*/wp-login.php", "*/xmlrpc.php", "*/user/login", "*/users/sign_in", "*/api/*/login",
    "*/account/login", "*/accounts/login",
)
DEFAULT_AUTH = AuthEndpoint(method="POST", path="*", success=(), failure=(401, 403))


def host_match(host: str, pattern: str) -> bool:
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) or host == pattern[2:]
    return host == pattern


def strip_port(host: str) -> str:
    if host.startswith("["):                      # [::1]:8080
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class AppRouter:
    """host → index of the first application whose hosts match (else the first)."""

    def __init__(self, apps: tuple[Application, ...]) -> None:
        self.apps = apps or (Application("default"),)
        self._cache: dict[str, int] = {}

    def index(self, host: str) -> int:
        i = self._cache.get(host)
        if i is None:
            h = strip_port(host.lower())
            i = next((j for j, a in enumerate(self.apps)
                      if any(host_match(h, p) for p in a.hosts)), 0)
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[host] = i
        return i

    def app(self, host: str) -> Application:
        return self.apps[self.index(host)]


def _template_regex(path: str) -> re.Pattern[str]:
    parts = re.split(r"\{[^/{}]*\}", path)
    return re.compile("[^/]+".join(re.escape(p) for p in parts))


class AuthMatcher:
    """(application, method, path) → the authentication endpoint it hits, or None."""

    def __init__(self, apps: tuple[Application, ...]) -> None:
        self._exact: dict[tuple[str, str, str], AuthEndpoint] = {}
        self._templated: dict[str, list[tuple[str, re.Pattern[str], AuthEndpoint]]] = {}
        self._configured = {a.name for a in apps if a.auth}
        self._cache: dict[tuple[str, str, str], AuthEndpoint | None] = {}
        for app in apps:
            for ep in app.auth:
                method = ep.method.upper()
                if "{" in ep.path:
                    self._templated.setdefault(app.name, []).append(
                        (method, _template_regex(ep.path), ep))
                else:
                    self._exact[(app.name, method, ep.path)] = ep

    def configured(self, app: str) -> bool:
        """The application lists its authentication endpoints (no defaults apply)."""
        return app in self._configured

    def endpoint(self, app: str, method: str, path: str, template: str | None = None
                 ) -> AuthEndpoint | None:
        ep = self._exact.get((app, method, path))
        if ep is not None:
            return ep
        if app in self._configured:
            for m, rx, ep in self._templated.get(app, ()):
                if m in (method, "*") and rx.fullmatch(path):
                    return ep
            return None
        if method != "POST":
            return None
        key = (app, method, template or path)
        hit = self._cache.get(key, False)
        if hit is False:
            low = (template or path).lower()
            hit = DEFAULT_AUTH if any(fnmatchcase(low, g) for g in DEFAULT_AUTH_GLOBS) else None
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[key] = hit
        return hit


def auth_result(ep: AuthEndpoint, status: int) -> str | None:
    """"ok", "fail" or None (cannot tell) for a response to an authentication attempt."""
    if status in ep.failure:
        return "fail"
    if status in ep.success:
        return "ok"
    return None
