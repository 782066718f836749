"""The console's routes: pages (GET), actions (POST, operators only), login and static files.

Every route is declared with `api(...)` (node.control.routing), so the auth middleware
knows who may use it: pages and actions authenticate by the console session
(`auth="session"`), the login page and static files are public. Actions redirect back
(post/redirect/get) with a one-time message.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from node.console import charts, data
from node.console.app import CONSOLE, Console, url
from node.console.auth import (
    CONSOLE_ROLES,
    FORM,
    LOGIN_COOKIE,
    PATH,
    SESSION,
    check_origin,
    client_key,
    new_login_nonce,
    nonce_ok,
    read_form,
    safe_next,
    token_shape_ok,
)
from node.console.fmt import DETECTOR_LABELS, form_time
from node.control import api as control_api
from node.control.routing import AUTH, PARAMS, PUBLIC, READ, WRITE, api
from node.control.schema import InvalidInput, Param, normalize_cidr
from node.control.storage.base import BOT_TYPES, LISTS, Storage

routes = web.RouteTableDef()
PAGE_SIZE = 50
SESSION_PAGE = 100          # requests shown per page of a session
MAX_DURATION = 10 * 365 * 86400.0


def page(method: str, path: str, summary: str, *, params: tuple[Param, ...] = (),
         roles: frozenset[str] = READ) -> Any:
    return api(routes, method, path, roles=roles, summary=summary, params=params,
               tag="console", produces="text/html", auth="session")


def public(method: str, path: str, summary: str, *, params: tuple[Param, ...] = ()) -> Any:
    return api(routes, method, path, roles=PUBLIC, summary=summary, params=params,
               tag="console", produces="text/html")


# -- helpers ----------------------------------------------------------------------------------
def _console(request: web.Request) -> Console:
    return request.app[CONSOLE]


def _storage(request: web.Request) -> Storage:
    return _console(request).storage


def _now(request: web.Request) -> float:
    return request.app[control_api.CLOCK]()


LABELS = {"type": "Bot type", "ip": "IP", "app": "Application", "since": "From",
          "until": "To", "detector": "Detector", "request_id": "Request id",
          "method": "Method", "status": "Status", "attack": "Attack", "q": "Search",
          "cidr": "Address", "list": "List", "days": "Period", "offset": "Page",
          "hoffset": "History page"}


def page_params(request: web.Request, params: Iterable[Param]) -> tuple[dict[str, Any],
                                                                       list[str]]:
    """Parse a page's filters like the API does, but forgivingly: an empty field is "not
    set", and a mistake is shown on the page (that filter ignored) instead of failing it."""
    declared = {p.name: p for p in params}
    values = {name: p.default for name, p in declared.items()}
    errors = []
    for key in dict.fromkeys(request.query.keys()):
        raw = request.query.getone(key).strip()
        p = declared.get(key)
        if p is None:
            errors.append(f"Unknown filter “{key[:40]}” ignored.")
            continue
        if raw == "":
            continue
        try:
            values[key] = p.parse(raw)
        except InvalidInput as e:
            errors.append(f"{LABELS.get(key, key)}: {str(e).split(': ', 1)[-1]}.")
    if values.get("since") is not None and values.get("until") is not None \
            and values["since"] > values["until"]:
        errors.append("From must not be after To; the time range was ignored.")
        values["since"] = values["until"] = None
    return values, errors


def context(request: web.Request, nav: str, title: str, **kw: Any) -> dict[str, Any]:
    s = request[SESSION]
    flash, s.flash[:] = list(s.flash), []
    return {"me": s.principal, "can_write": s.principal.role == "operator", "csrf": s.csrf,
            "flash": flash, "nav": nav, "title": title, "now": _now(request),
            "here": str(request.rel_url), "errors": [], **kw}


def redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


def not_found(request: web.Request, what: str) -> web.Response:
    return _console(request).render("notfound.html", status=404,
                                    **context(request, "", "Not found", what=what))


def _back(form: dict[str, str], default: str) -> str:
    return safe_next(form.get("back")) if form.get("back") else default


# -- common filters ---------------------------------------------------------------------------
SINCE = Param("since", "timestamp")
UNTIL = Param("until", "timestamp")
IP = Param("ip", "ip")
APP = Param("app", max_length=128)
TYPE = Param("type", enum=BOT_TYPES)
OFFSET = Param("offset", "integer", minimum=0, maximum=1_000_000, default=0)
DETECTOR = Param("detector", max_length=64)
ID = Param("id", "integer", where="path", minimum=1, maximum=2**53)


# -- statistics -------------------------------------------------------------------------------
STATS_PARAMS = (Param("days", "integer", minimum=1, maximum=90, default=30), APP)


@page("GET", "/console/", "Statistics: timeline, top attackers and targets, patterns",
      params=STATS_PARAMS)
async def statistics_page(request: web.Request) -> web.Response:
    p, errors = page_params(request, STATS_PARAMS)
    opts = request.app[control_api.OPTIONS]
    stats = await data.statistics_data(_storage(request), now=_now(request), days=p["days"],
                                       app=p["app"], min_requests=opts.min_requests)

    def drill(t: str, since: float, until: float) -> str:
        return url("/console/attacks", type=t, app=p["app"], since=form_time(since),
                   until=form_time(until))

    since = _now(request) - p["days"] * 86400.0
    c = context(request, "statistics", "Statistics", stats=stats, p=p,
                timeline=charts.timeline(stats, drill) if stats["detections"] else None,
                since=form_time(since), min_requests=opts.min_requests)
    c["errors"] = errors
    return _console(request).render("statistics.html", **c)


# -- attacks ----------------------------------------------------------------------------------
ATTACK_PARAMS = (TYPE, IP, APP, SINCE, UNTIL, DETECTOR, OFFSET)


@page("GET", "/console/attacks", "Attacks, filtered by type, IP, application, time, detector",
      params=ATTACK_PARAMS)
async def attacks_page(request: web.Request) -> web.Response:
    p, errors = page_params(request, ATTACK_PARAMS)
    if p["detector"] and not all(ch.isalnum() or ch == "_" for ch in p["detector"]):
        errors.append("Detector: expected a detector name.")
        p["detector"] = None
    result = await data.attacks_data(
        _storage(request), bot_type=p["type"], ip=p["ip"], app=p["app"], since=p["since"],
        until=p["until"], detector=p["detector"], limit=PAGE_SIZE, offset=p["offset"])
    c = context(request, "attacks", "Attacks", result=result, p=p, f=_filters(p),
                detectors=sorted(DETECTOR_LABELS))
    c["errors"] = errors
    return _console(request).render("attacks.html", **c)


def _filters(p: dict[str, Any]) -> dict[str, Any]:
    """Filter values as the page's form and links carry them (times as form values)."""
    out = {k: v for k, v in p.items() if k != "offset"}
    for k in ("since", "until"):
        if out.get(k) is not None:
            out[k] = form_time(out[k])
    return out


@page("GET", r"/console/attacks/{id:\d+}", "One attack: detectors, heatmaps, actions",
      params=(ID,))
async def attack_page(request: web.Request) -> web.Response:
    try:
        aid = ID.parse(request.match_info["id"])
    except InvalidInput:
        return not_found(request, "attack")
    now = _now(request)
    d = await data.attack_data(_storage(request), aid, now=now)
    if d is None:
        return not_found(request, "attack")
    a = d["attack"]
    heatmaps = []
    if d["detail"] is not None:
        this = {"id": a["id"], "ip": a["ip"], "bot_type": a["bot_type"],
                "confidence": a["confidence"], "features": d["detail"].get("features") or {}}
        for kind, spec in charts.HEATMAPS.items():
            fig = charts.heatmap(kind, this, d["peers"], lambda i: f"/console/attacks/{i}")
            heatmaps.append((kind, spec, fig))
    sessions_url = (f"/console/sessions/{d['session_id']}" if d["session_id"] else
                    url("/console/sessions", ip=a["ip"], app=a["app"],
                        since=form_time(a["ts"] - 3600), until=form_time(a["ts"] + 3600)))
    c = context(request, "attacks", f"Attack #{a['id']}", d=d, a=a, heatmaps=heatmaps,
                sessions_url=sessions_url, detectors=(d["detail"] or {}).get("detectors", []),
                charted=any(fig for _, _, fig in heatmaps))
    return _console(request).render("attack.html", **c)


@page("POST", r"/console/attacks/{id:\d+}/false-positive",
      "Mark an attack a false positive (lifts its list entry; optional exception)",
      params=(ID,), roles=WRITE)
async def attack_false_positive(request: web.Request) -> web.Response:
    aid = ID.parse(request.match_info["id"])
    form = request[FORM]
    reason = form.get("reason", "").strip()[:256]
    result = await _storage(request).mark_false_positive(
        aid, who=request[SESSION].principal.name, add_exception=form.get("add_exception") == "on",
        reason=reason, now=_now(request))
    if result is None:
        return not_found(request, "attack")
    if result["removed"] or result["exception"]:
        request.app[control_api.WATCH].changed()
    parts = ["Marked as a false positive."]
    if result["removed"]:
        parts.append("Lifted: " + ", ".join(f"{h['cidr']} ({h['list']})"
                                            for h in result["removed"]) + ".")
    if result["exception"]:
        parts.append(f"{result['exception']['cidr']} added to the exception list.")
    request[SESSION].flash.append(("ok", " ".join(parts)))
    return redirect(f"/console/attacks/{aid}")


# -- IP lists ---------------------------------------------------------------------------------
LIST_PARAMS = (Param("list", enum=LISTS, default="deny"), Param("q", max_length=64),
               Param("cidr", "cidr", max_length=64), OFFSET,
               Param("hoffset", "integer", minimum=0, maximum=1_000_000, default=0))


@page("GET", "/console/lists", "IP lists: entries, history, add and remove",
      params=LIST_PARAMS)
async def lists_page(request: web.Request) -> web.Response:
    p, errors = page_params(request, LIST_PARAMS)
    q = p["q"]
    if q and not all(ch in "0123456789abcdefABCDEF:./" for ch in q):
        errors.append("Search: only address characters (digits, a-f, : . /) are allowed.")
        q = p["q"] = None
    result = await data.lists_data(_storage(request), list_name=p["list"],
                                   q=q.lower() if q else None, cidr=p["cidr"],
                                   now=_now(request), limit=PAGE_SIZE, offset=p["offset"],
                                   history_offset=p["hoffset"])
    c = context(request, "lists", "IP lists", result=result, p=p)
    c["errors"] = errors
    return _console(request).render("lists.html", **c)


@page("POST", "/console/lists/add", "Add (or renew) an IP or CIDR on a list", roles=WRITE)
async def lists_add(request: web.Request) -> web.Response:
    form = request[FORM]
    s = request[SESSION]
    lst = form.get("list", "")
    back = _back(form, url("/console/lists", list=lst if lst in LISTS else None))
    problem = None
    cidr = ""
    duration: float | None = None
    try:
        cidr = normalize_cidr(form.get("cidr", ""))
    except ValueError:
        problem = "expected an IP address or CIDR"
    if lst not in LISTS:
        problem = "choose a list"
    raw = form.get("duration", "").strip()
    if raw:
        try:
            duration = float(raw)
        except ValueError:
            duration = math.nan
        if not (math.isfinite(duration) and 60 <= duration <= MAX_DURATION):
            problem = "duration must be between 1 minute and 10 years, or forever"
    if problem:
        s.flash.append(("error", f"Not added: {problem}."))
        return redirect(back)
    now = _now(request)
    entry = {"list": lst, "cidr": cidr, "reason": form.get("reason", "").strip()[:256]
             or "manual", "source": "manual", "created": now,
             "expires": None if duration is None else now + duration, "who": s.principal.name}
    await _storage(request).add_list_entry(entry, now)
    request.app[control_api.WATCH].changed()
    s.flash.append(("ok", f"{cidr} added to the {lst} list."))
    return redirect(back)


@page("POST", "/console/lists/remove", "Remove an IP or CIDR from a list", roles=WRITE)
async def lists_remove(request: web.Request) -> web.Response:
    form = request[FORM]
    s = request[SESSION]
    lst = form.get("list", "")
    back = _back(form, url("/console/lists", list=lst if lst in LISTS else None))
    try:
        cidr = normalize_cidr(form.get("cidr", ""))
    except ValueError:
        cidr = ""
    if lst not in LISTS or not cidr:
        s.flash.append(("error", "Not removed: no such entry."))
        return redirect(back)
    change = await _storage(request).remove_list_entry(
        lst, cidr, s.principal.name, form.get("reason", "").strip()[:256]
        or "removed by operator", _now(request))
    if change is None:
        s.flash.append(("error", f"{cidr} is not on the {lst} list."))
    else:
        request.app[control_api.WATCH].changed()
        s.flash.append(("ok", f"{cidr} removed from the {lst} list."))
    return redirect(back)


# -- API sessions -----------------------------------------------------------------------------
SESSIONS_PARAMS = (SINCE, UNTIL, IP, APP, Param("request_id", max_length=128),
                   Param("method", max_length=16),
                   Param("status", "integer", minimum=100, maximum=599), TYPE, OFFSET)


@page("GET", "/console/sessions", "API sessions, filtered by time, IP, request id and more",
      params=SESSIONS_PARAMS)
async def sessions_page(request: web.Request) -> web.Response:
    p, errors = page_params(request, SESSIONS_PARAMS)
    if p["method"]:
        p["method"] = p["method"].upper()
        if not p["method"].isalpha():
            errors.append("Method: expected an HTTP method.")
            p["method"] = None
    result = await data.sessions_data(
        _storage(request), since=p["since"], until=p["until"], ip=p["ip"], app=p["app"],
        request_id=p["request_id"], method=p["method"], status=p["status"],
        bot_type=p["type"], limit=PAGE_SIZE, offset=p["offset"])
    c = context(request, "sessions", "API sessions", result=result, p=p, f=_filters(p))
    c["errors"] = errors
    return _console(request).render("sessions.html", **c)


SESSION_PARAMS = (ID, Param("method", max_length=16), Param("status", max_length=3),
                  IP, Param("attack", enum=(*BOT_TYPES, "any", "none")), OFFSET)


@page("GET", r"/console/sessions/{id:\d+}",
      "A session's requests beside each endpoint's usual time and size", params=SESSION_PARAMS)
async def session_page(request: web.Request) -> web.Response:
    try:
        sid = ID.parse(request.match_info["id"])
    except InvalidInput:
        return not_found(request, "session")
    p, errors = page_params(request, [q for q in SESSION_PARAMS if q.where == "query"])
    status = p["status"]
    if status and not (status.isdigit() or (len(status) == 3 and status[0] in "12345"
                                            and status[1:] == "xx")):
        errors.append("Status: expected a code (404) or a class (4xx).")
        p["status"] = None
    if p["method"]:
        p["method"] = p["method"].upper()
    where = data.RequestFilter(p["method"], p["status"], p["ip"], p["attack"])
    retention = request.app[control_api.OPTIONS].retention
    d = await data.session_data(_storage(request), sid,
                                usual_since=_now(request) - retention.requests, where=where)
    if d is None:
        return not_found(request, "session")
    rows = d["requests"]
    offset = min(p["offset"], max(0, len(rows) - 1))
    shown = rows[offset:offset + SESSION_PAGE]
    for r in shown:
        u = r["usual"] or {}
        r["slow"] = data.outlier_ratio(r["duration_ms"], u.get("avg_duration_ms"), 10.0)
        r["heavy"] = data.outlier_ratio(r["resp_bytes"], u.get("avg_resp_bytes"), 1024)
    filters = {k: p[k] for k in ("method", "status", "ip", "attack")}
    # "Explore the attack": one link per bot type (its most confident detection).
    best: dict[str, dict[str, Any]] = {}
    for a in d["session"]["attacks"]:
        cur = best.get(a["bot_type"])
        if cur is None or (cur["false_positive"], -cur["confidence"]) > \
                (a["false_positive"], -a["confidence"]):
            best[a["bot_type"]] = a
    c = context(request, "sessions", f"Session #{sid}", d=d, s=d["session"], shown=shown,
                offset=offset, page_size=SESSION_PAGE, filters=filters,
                attack_links=sorted(best.values(), key=lambda a: -a["confidence"]),
                scatter=charts.session_scatter(rows), filtered=where.active,
                next_offset=offset + SESSION_PAGE if offset + SESSION_PAGE < len(rows)
                else None)
    c["errors"] = errors
    return _console(request).render("session.html", **c)


@page("GET", r"/console/sessions/{id:\d+}/requests.csv", "A session's requests as CSV",
      params=(ID,))
async def session_csv(request: web.Request) -> web.StreamResponse:
    # The API's own CSV writer, so a download from the console is the API's document.
    try:
        sid = ID.parse(request.match_info["id"])
    except InvalidInput:
        return not_found(request, "session")
    if await _storage(request).get_session(sid) is None:
        return not_found(request, "session")
    request[PARAMS] = {"id": sid}
    return await control_api.session_requests_csv(request)


# -- nodes and profiles -----------------------------------------------------------------------
@page("GET", "/console/nodes", "Connected nodes and their lag; active profiles (read-only)")
async def nodes_page(request: web.Request) -> web.Response:
    console = _console(request)
    d = await data.nodes_data(console.storage, now=_now(request), profiles=console.profiles,
                              warmup_requests=console.warmup_requests)
    return console.render("nodes.html", **context(request, "nodes", "Nodes and profiles", d=d,
                                                  warmup=console.warmup_requests))


# -- login and logout -------------------------------------------------------------------------
NEXT = Param("next", max_length=1024)


@public("GET", "/console/login", "The console's login form", params=(NEXT,))
async def login_page(request: web.Request) -> web.Response:
    console = _console(request)
    target = safe_next(request[PARAMS]["next"])
    if console.auth.session(request) is not None:
        return redirect(target)
    return _login_form(request, target)


def _login_form(request: web.Request, target: str, error: str | None = None,
                status: int = 200) -> web.Response:
    console = _console(request)
    nonce = new_login_nonce()
    resp = console.render("login.html", status=status, title="Log in", next=target,
                          nonce=nonce, error=error)
    resp.set_cookie(LOGIN_COOKIE, nonce, path=PATH + "/login", httponly=True,
                    samesite="Strict", secure=console.auth.secure(request), max_age=3600)
    return resp


@public("POST", "/console/login", "Exchange an operator or viewer token for a session")
async def login_submit(request: web.Request) -> web.Response:
    console = _console(request)
    check_origin(request)
    form = await read_form(request)
    target = safe_next(form.get("next"))
    if not nonce_ok(request, form):
        return _login_form(request, target, "The login form expired. Please try again.", 400)
    who = client_key(request)
    throttle = console.auth.throttle
    if throttle.blocked(who):
        return _login_form(request, target, "Too many failed attempts. Wait a few minutes "
                                            "and try again.", 429)
    token = form.get("token", "").strip()
    principal = None
    if token_shape_ok(token):
        principal = await request.app[AUTH].authenticate(f"Bearer {token}")
    if principal is None:
        throttle.failed(who)
        return _login_form(request, target, "That token is not known.", 401)
    if principal.role not in CONSOLE_ROLES:
        throttle.failed(who)
        return _login_form(request, target, "A node token cannot open the console: use an "
                                            "operator or viewer token.", 403)
    throttle.succeeded(who)
    sid, _ = console.auth.open(principal)
    resp = redirect(target)
    console.auth.set_cookie(resp, request, sid)
    resp.del_cookie(LOGIN_COOKIE, path=PATH + "/login")
    return resp


@page("POST", "/console/logout", "End the console session")
async def logout(request: web.Request) -> web.Response:
    console = _console(request)
    console.auth.close(request)
    resp = redirect(PATH + "/login")
    console.auth.clear_cookie(resp, request)
    return resp


# -- static files and the way in --------------------------------------------------------------
@public("GET", r"/console/static/{name:[a-z0-9][a-z0-9.\-]*}",
        "The console's CSS, JavaScript and plotly.js (served locally, no CDN)",
        params=(Param("v", max_length=64),))
async def static_file(request: web.Request) -> web.StreamResponse:
    f = _console(request).files.get(request.match_info["name"])
    if f is None:
        raise web.HTTPNotFound()
    versioned = request[PARAMS]["v"] == f.etag
    headers = {"Content-Type": f.content_type, "ETag": f'"{f.etag}"',
               "X-Content-Type-Options": "nosniff", "Vary": "Accept-Encoding",
               "Cache-Control": "public, max-age=31536000, immutable" if versioned
               else "no-cache"}
    if request.headers.get("If-None-Match") == f'"{f.etag}"':
        return web.Response(status=304, headers={k: v for k, v in headers.items()
                                                 if k != "Content-Type"})
    body = f.body
    if len(body) > 4096 and "gzip" in request.headers.get("Accept-Encoding", ""):
        body = await asyncio.to_thread(f.gz)   # once per file (cached): off the loop
        headers["Content-Encoding"] = "gzip"
    return web.Response(body=body, headers=headers)


@public("GET", "/", "The console (redirect)")
async def root(request: web.Request) -> web.Response:
    return redirect(PATH + "/")


@public("GET", "/console", "The console (redirect)")
async def console_root(request: web.Request) -> web.Response:
    return redirect(PATH + "/")
