"""Route declarations, and the two middlewares every request goes through.

Each API route is declared once with `api(...)`: method, path, the roles allowed, its
parameters and body schema. The auth middleware refuses any route that has no declaration,
so a route added without one is closed, not open; the OpenAPI document is built from the same
declarations.

Console pages (node.console) are declared the same way with `auth="session"`: they
authenticate by the console's session cookie instead of a bearer token, through the
`SESSION_AUTH` hook the console installs; roles are still checked here.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Protocol

from aiohttp import web

from node.control.auth import Authenticator, Principal
from node.control.schema import InvalidInput, Param, loads, parse_query, validate

log = logging.getLogger("palisade.control")

PUBLIC = frozenset({"public"})
READ = frozenset({"viewer", "operator"})
WRITE = frozenset({"operator"})
NODE = frozenset({"node"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PRINCIPAL = web.RequestKey("principal", Principal)
PARAMS = web.RequestKey("params", dict)
BODY = web.RequestKey("body", object)
AUTH = web.AppKey("auth", Authenticator)

MAX_BODY = 64 * 1024


@dataclass(frozen=True, slots=True)
class RouteSpec:
    method: str
    path: str
    roles: frozenset[str]
    summary: str
    params: tuple[Param, ...] = ()
    body: dict[str, Any] | None = None
    max_body: int = MAX_BODY
    tag: str = "api"
    produces: str = "application/json"
    ok_status: int = 200
    responses: dict[str, str] = field(default_factory=dict)
    auth: str = "bearer"          # bearer: Authorization header; session: console cookie


class SessionAuth(Protocol):
    """Authenticates console requests by their session cookie (installed by node.console)."""

    async def authenticate(self, request: web.Request, spec: RouteSpec) -> Principal:
        """The request's principal; raises to refuse (a redirect to the login page, or 403
        when an unsafe method lacks its CSRF token)."""
        ...


SESSION_AUTH = web.AppKey("session_auth", SessionAuth)


class ApiError(Exception):
    """An HTTP error with a human detail, rendered as problem+json by the error middleware."""

    def __init__(self, status: int, detail: str, *, headers: dict[str, str] | None = None
                 ) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers or {}
        self.reason = HTTPStatus(status).phrase


def spec_of(handler: Any) -> RouteSpec | None:
    return getattr(handler, "__api_spec__", None)


def api(routes: web.RouteTableDef, method: str, path: str, *, roles: frozenset[str],
        summary: str, params: tuple[Param, ...] = (), body: dict[str, Any] | None = None,
        max_body: int = MAX_BODY, tag: str = "api", produces: str = "application/json",
        ok_status: int = 200, auth: str = "bearer") -> Callable[[Handler], Handler]:
    if auth not in ("bearer", "session"):
        raise ValueError(f"auth must be bearer or session, not {auth!r}")

    def deco(handler: Handler) -> Handler:
        handler.__api_spec__ = RouteSpec(  # type: ignore[attr-defined]
            method, path, roles, summary, params, body, max_body, tag, produces, ok_status,
            auth=auth)
        routes.route(method, path)(handler)
        return handler
    return deco


def problem(status: int, title: str, detail: str | None = None,
            headers: dict[str, str] | None = None) -> web.Response:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    return web.Response(status=status, text=json.dumps(body),
                        content_type="application/problem+json", headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error leaves as problem+json; a crash is logged here and never shown."""
    try:
        return await handler(request)
    except ApiError as e:
        return problem(e.status, e.reason, e.detail, e.headers)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        return problem(e.status, e.reason, None, _keep_headers(e))
    except InvalidInput as e:
        return problem(400, "Bad Request", str(e))
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem(500, "Internal Server Error", "the error is in the control plane's log")


def _keep_headers(e: web.HTTPException) -> dict[str, str]:
    return {k: v for k, v in e.headers.items() if k.lower() in ("allow", "www-authenticate",
                                                                  "retry-after")}


_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="palisade"'}


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authenticate, authorise by the route's roles, then validate its declared inputs."""
    route = request.match_info.route
    spec = spec_of(getattr(route, "handler", None))
    if spec is not None and spec.roles == PUBLIC:
        request[PARAMS] = parse_query(spec.params, request.query, request.match_info)
        return await handler(request)
    if spec is not None and spec.auth == "session":
        guard = request.app.get(SESSION_AUTH)
        if guard is None:
            raise ApiError(404, "the console is not enabled on this control plane")
        principal = await guard.authenticate(request, spec)
        request[PRINCIPAL] = principal
        if principal.role not in spec.roles:
            raise ApiError(403, f"a {principal.role} may not use this page")
        # Pages parse their own (form) inputs, to show a mistake on the page itself.
        return await handler(request)
    principal = await request.app[AUTH].authenticate(request.headers.get("Authorization"))
    if principal is None:
        raise ApiError(401, "a valid bearer token is required", headers=_CHALLENGE)
    request[PRINCIPAL] = principal
    if spec is None:
        if request.match_info.http_exception is not None:
            raise request.match_info.http_exception  # 404 / 405, only to the authenticated
        raise ApiError(403, "this route declares no access rules")
    if principal.role not in spec.roles:
        raise ApiError(403, f"a {principal.role} token may not use this route")
    request[PARAMS] = parse_query(spec.params, request.query, request.match_info)
    if spec.body is not None:
        raw = await read_body(request, spec.max_body)
        if not raw:
            raise InvalidInput("body", "a JSON body is required")
        ctype = request.content_type
        if ctype not in ("application/json", "application/octet-stream") and \
                not ctype.endswith("+json"):
            raise ApiError(415, "send the body as application/json")
        try:
            body = loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError) as e:
            raise InvalidInput("body", f"not valid JSON ({str(e)[:60]})") from None
        validate(spec.body, body)
        request[BODY] = body
    return await handler(request)


async def read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, f"body larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
