"""The control plane's JSON API, `/api/v1` (SPEC §8), and the sync routes nodes use.

`create_app(storage, tokens=...)` builds the aiohttp application. Inputs are declared per
route (node.control.routing) and checked before a handler runs; handlers only shape data.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import ipaddress
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from aiohttp import web

from node import __version__
from node.control import schema as S
from node.control.auth import Authenticator
from node.control.routing import (
    AUTH,
    BODY,
    NODE,
    PARAMS,
    PRINCIPAL,
    PUBLIC,
    READ,
    WRITE,
    ApiError,
    api,
    auth_middleware,
    error_middleware,
)
from node.control.schema import InvalidInput, Param
from node.control.storage.base import BOT_TYPES, HEATMAPS, LISTS, REACTIONS, Retention, Storage
from node.record import RecordError, record_from_dict

log = logging.getLogger("palisade.control")

STORAGE = web.AppKey("storage", Storage)
CLOCK = web.AppKey("clock", Callable[[], float])
WATCH = web.AppKey("list_watch", "ListWatch")
OPTIONS = web.AppKey("options", "ApiOptions")

routes = web.RouteTableDef()

MAX_PAGE = 500
MAX_PUSH_BODY = 16 * 1024 * 1024
MAX_PUSH_ITEMS = 5000
MAX_WAIT = 30
CSV_MAX_ROWS = 100_000
NODE_STALE_SECONDS = 60.0


class ApiOptions:
    def __init__(self, *, retention: Retention, min_requests: int,
                 cross_replica_poll: float) -> None:
        self.retention = retention
        self.min_requests = min_requests
        self.cross_replica_poll = cross_replica_poll


class ListWatch:
    """Wakes long-polling pulls when this process changes an IP list, or stops."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.closed = False

    def close(self) -> None:
        """Shutting down: pulls in flight answer now (nodes poll again) instead of holding
        the shutdown for their `wait`."""
        self.closed = True
        self.changed()

    def changed(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    def current(self) -> asyncio.Event:
        return self._event


# -- shared parameters ------------------------------------------------------------------------
LIMIT = Param("limit", "integer", minimum=1, maximum=MAX_PAGE, default=50,
              description=f"page size, at most {MAX_PAGE}")
OFFSET = Param("offset", "integer", minimum=0, maximum=1_000_000, default=0)
SINCE = Param("since", "timestamp", description="from (unix seconds or ISO 8601), inclusive")
UNTIL = Param("until", "timestamp", description="to (unix seconds or ISO 8601), exclusive")
APP = Param("app", max_length=128, description="application name")
IP = Param("ip", "ip")
TYPE = Param("type", enum=BOT_TYPES, description="bot type")
ID = Param("id", "integer", where="path", minimum=1, maximum=2**53)
LIST = Param("list", where="path", enum=LISTS)
PAGE = (LIMIT, OFFSET)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=_dumps)


def _dumps(v: Any) -> str:
    import json

    return json.dumps(v, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                      default=str)


def _page(page: Any) -> dict[str, Any]:
    return {"items": page.items, "next_offset": page.next_offset}


def _storage(request: web.Request) -> Storage:
    return request.app[STORAGE]


def _now(request: web.Request) -> float:
    return request.app[CLOCK]()


def _window(p: dict[str, Any]) -> None:
    if p.get("since") is not None and p.get("until") is not None and p["since"] > p["until"]:
        raise InvalidInput("query.since", "must not be after until")


# -- health and the document ------------------------------------------------------------------
@api(routes, "GET", "/healthz", roles=PUBLIC, summary="Liveness and storage check",
     tag="health")
async def healthz(request: web.Request) -> web.Response:
    try:
        version = await asyncio.wait_for(_storage(request).schema_version(), 5)
    except Exception as e:  # any storage failure makes the control plane unhealthy
        log.warning("health check: storage unavailable: %s", e)
        raise ApiError(503, "storage unavailable") from None
    return _json({"status": "ok", "version": __version__, "schema_version": version})


@api(routes, "GET", "/api/v1/openapi.json", roles=PUBLIC, summary="This OpenAPI document",
     tag="meta")
async def openapi_doc(request: web.Request) -> web.Response:
    from node.control.openapi import openapi_document

    return _json(openapi_document(routes))


# -- attacks ----------------------------------------------------------------------------------
DETECTOR = Param("detector", max_length=64, description="attacks this detector voted for")


@api(routes, "GET", "/api/v1/attacks", roles=READ, summary="Detected attacks, newest first",
     params=(TYPE, IP, APP, SINCE, UNTIL, DETECTOR, *PAGE), tag="attacks")
async def attacks_list(request: web.Request) -> web.Response:
    p = request[PARAMS]
    _window(p)
    if p["detector"] and not all(ch.isalnum() or ch == "_" for ch in p["detector"]):
        raise InvalidInput("query.detector", "expected a detector name")
    page = await _storage(request).query_attacks(
        bot_type=p["type"], ip=p["ip"], app=p["app"], since=p["since"], until=p["until"],
        limit=p["limit"], offset=p["offset"], detector=p["detector"])
    return _json(_page(page))


@api(routes, "GET", r"/api/v1/attacks/{id:\d+}", roles=READ, params=(ID,), tag="attacks",
     summary="One attack: detector values vs normal, evidence, the three heatmaps")
async def attack_detail(request: web.Request) -> web.Response:
    storage = _storage(request)
    attack = await storage.get_attack(request[PARAMS]["id"])
    if attack is None:
        raise ApiError(404, "no such attack")
    detail = attack.pop("detail")
    if detail is None:
        attack.update(state="not_enough_data", detectors_detail=None, evidence=None,
                      heatmaps=None)
        return _json(attack)
    peers = await storage.heatmap_peers(attack["app"], attack["ts"] - 86400.0, attack["id"],
                                        30)
    attack.update(state="ok", detectors_detail=detail.get("detectors", []),
                  evidence=detail.get("evidence", []),
                  heatmaps=heatmaps({**attack, "features": detail.get("features") or {}},
                                    peers))
    return _json(attack)


def heatmaps(this: dict[str, Any], peers: list[dict[str, Any]]) -> dict[str, Any]:
    """Per heatmap: one row per bot (this one first), raw values and values scaled 0..1 per
    feature over the rows shown, so colours compare bots within the view."""
    bots = [this, *peers]
    out: dict[str, Any] = {}
    for name, features in HEATMAPS.items():
        cols = []
        for f in features:
            vals = [_num(b["features"].get(f)) for b in bots]
            present = [v for v in vals if v is not None]
            lo, hi = (min(present), max(present)) if present else (0.0, 0.0)
            cols.append([None if v is None else (0.0 if hi == lo else (v - lo) / (hi - lo))
                         for v in vals])
        rows = []
        for i, b in enumerate(bots):
            rows.append({"attack_id": b["id"], "ip": b["ip"], "bot_type": b["bot_type"],
                         "confidence": b["confidence"], "this": i == 0,
                         "values": [_num(b["features"].get(f)) for f in features],
                         "scaled": [col[i] for col in cols]})
        out[name] = {"features": list(features), "bots": rows}
    return out


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return float(v)


FALSE_POSITIVE_BODY = S.obj(add_exception={"type": "boolean"}, reason=S.string(256))


@api(routes, "POST", r"/api/v1/attacks/{id:\d+}/false-positive", roles=WRITE, params=(ID,),
     body=FALSE_POSITIVE_BODY, tag="attacks",
     summary="Mark an attack a false positive: lift the list entry it caused, optionally "
             "add its IP to the exception list")
async def attack_false_positive(request: web.Request) -> web.Response:
    body = request[BODY]
    result = await _storage(request).mark_false_positive(
        request[PARAMS]["id"], who=request[PRINCIPAL].name,
        add_exception=bool(body.get("add_exception", False)), reason=body.get("reason", ""),
        now=_now(request))
    if result is None:
        raise ApiError(404, "no such attack")
    if result["removed"] or result["exception"]:
        request.app[WATCH].changed()
    return _json(result)


# -- IP lists ---------------------------------------------------------------------------------
LIST_PATH = "/api/v1/lists/{list:deny|gray|allow|exception}"
ENTRY_BODY = S.obj(
    ("cidr",), cidr=S.string(64), reason=S.string(256),
    duration=S.nullable({"type": "number", "minimum": 1, "maximum": 10 * 365 * 86400}))


@api(routes, "GET", "/api/v1/lists/history", roles=READ, tag="lists",
     summary="IP list history: every change, who made it and for how long",
     params=(Param("list", enum=LISTS), Param("cidr", "cidr", max_length=64), SINCE, UNTIL,
             *PAGE))
async def lists_history(request: web.Request) -> web.Response:
    p = request[PARAMS]
    _window(p)
    page = await _storage(request).list_history(
        list_name=p["list"], cidr=p["cidr"], since=p["since"], until=p["until"],
        limit=p["limit"], offset=p["offset"])
    return _json(_page(page))


@api(routes, "GET", LIST_PATH, roles=READ, tag="lists", summary="Live entries of one list",
     params=(LIST, Param("q", max_length=64, description="part of an address"), *PAGE))
async def list_entries(request: web.Request) -> web.Response:
    p = request[PARAMS]
    q = p["q"]
    if q and not all(ch in "0123456789abcdefABCDEF:./" for ch in q):
        raise InvalidInput("query.q", "only address characters are allowed")
    page = await _storage(request).list_entries(p["list"], q=q.lower() if q else None,
                                                limit=p["limit"], offset=p["offset"],
                                                now=_now(request))
    return _json(_page(page))


@api(routes, "POST", LIST_PATH, roles=WRITE, params=(LIST,), body=ENTRY_BODY, tag="lists",
     ok_status=201, summary="Add (or renew) an IP or CIDR on a list; duration null = forever")
async def list_add(request: web.Request) -> web.Response:
    body = request[BODY]
    try:
        cidr = S.normalize_cidr(body["cidr"])
    except ValueError:
        raise InvalidInput("body.cidr", "expected an IP address or CIDR") from None
    now = _now(request)
    duration = body.get("duration")
    entry = {"list": request[PARAMS]["list"], "cidr": cidr,
             "reason": body.get("reason") or "manual", "source": "manual", "created": now,
             "expires": None if duration is None else now + duration,
             "who": request[PRINCIPAL].name}
    change = await _storage(request).add_list_entry(entry, now)
    request.app[WATCH].changed()
    return _json(change, status=201)


@api(routes, "DELETE", LIST_PATH, roles=WRITE, tag="lists",
     summary="Remove an IP or CIDR from a list",
     params=(LIST, Param("cidr", "cidr", required=True, max_length=64),
             Param("reason", max_length=256)))
async def list_remove(request: web.Request) -> web.Response:
    p = request[PARAMS]
    change = await _storage(request).remove_list_entry(
        p["list"], p["cidr"], request[PRINCIPAL].name, p["reason"] or "removed by operator",
        _now(request))
    if change is None:
        raise ApiError(404, "no such entry on that list")
    request.app[WATCH].changed()
    return _json(change)


# -- sessions ---------------------------------------------------------------------------------
@api(routes, "GET", "/api/v1/sessions", roles=READ, tag="sessions",
     summary="API sessions, most recently active first",
     params=(SINCE, UNTIL, IP, APP, Param("request_id", max_length=128),
             Param("method", max_length=16), Param("status", "integer", minimum=0, maximum=999),
             TYPE, *PAGE))
async def sessions_list(request: web.Request) -> web.Response:
    p = request[PARAMS]
    _window(p)
    method = p["method"].upper() if p["method"] else None
    if method and not method.isalpha():
        raise InvalidInput("query.method", "expected an HTTP method")
    page = await _storage(request).query_sessions(
        since=p["since"], until=p["until"], ip=p["ip"], app=p["app"],
        request_id=p["request_id"], method=method, status=p["status"], bot_type=p["type"],
        limit=p["limit"], offset=p["offset"])
    return _json(_page(page))


@api(routes, "GET", r"/api/v1/sessions/{id:\d+}", roles=READ, params=(ID,), tag="sessions",
     summary="One session with its statistics")
async def session_detail(request: web.Request) -> web.Response:
    s = await _storage(request).get_session(request[PARAMS]["id"])
    if s is None:
        raise ApiError(404, "no such session")
    return _json(s)


@api(routes, "GET", r"/api/v1/sessions/{id:\d+}/requests", roles=READ, params=(ID, *PAGE),
     tag="sessions",
     summary="A session's requests (time ms, size bytes) beside each endpoint's usual values")
async def session_requests(request: web.Request) -> web.Response:
    storage = _storage(request)
    p = request[PARAMS]
    session = await storage.get_session(p["id"])
    if session is None:
        raise ApiError(404, "no such session")
    page = await storage.session_requests(p["id"], limit=p["limit"], offset=p["offset"])
    usual = await storage.endpoint_usual(
        session["app"], [r["path"] for r in page.items],
        _now(request) - request.app[OPTIONS].retention.requests)
    for r in page.items:
        r["usual"] = usual.get(r["path"])
    return _json(_page(page))


CSV_COLUMNS = ("request_id", "ts", "ip", "method", "host", "path", "query", "status",
               "duration_ms", "req_bytes", "resp_bytes", "ua", "username", "blocked", "attack")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """Neutralise spreadsheet formulas: a text cell starting with = + - @ TAB or CR gets a
    leading apostrophe, so a path like `=HYPERLINK(...)` stays text when opened."""
    if isinstance(value, str) and value.startswith(_FORMULA):
        return "'" + value
    return value


@api(routes, "GET", r"/api/v1/sessions/{id:\d+}/requests.csv", roles=READ, params=(ID,),
     tag="sessions", produces="text/csv", summary="A session's requests as CSV")
async def session_requests_csv(request: web.Request) -> web.StreamResponse:
    storage = _storage(request)
    sid = request[PARAMS]["id"]
    if await storage.get_session(sid) is None:
        raise ApiError(404, "no such session")
    resp = web.StreamResponse(headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f'attachment; filename="session-{sid}-requests.csv"',
        "X-Content-Type-Options": "nosniff"})
    await resp.prepare(request)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    offset: int | None = 0
    while offset is not None and offset < CSV_MAX_ROWS:
        page = await storage.session_requests(sid, limit=1000, offset=offset)
        for r in page.items:
            writer.writerow([csv_cell(r.get(c)) for c in CSV_COLUMNS])
        await resp.write(buf.getvalue().encode("utf-8"))
        buf.seek(0)
        buf.truncate()
        offset = page.next_offset
    await resp.write_eof()
    return resp


# -- statistics and nodes ---------------------------------------------------------------------
@api(routes, "GET", "/api/v1/stats", roles=READ, tag="statistics",
     summary="Timeline, top attackers and targets, detector patterns, listed counts",
     params=(Param("days", "integer", minimum=1, maximum=90, default=30), APP))
async def stats(request: web.Request) -> web.Response:
    p = request[PARAMS]
    data = await _storage(request).statistics(
        now=_now(request), days=p["days"], app=p["app"],
        min_requests=request.app[OPTIONS].min_requests)
    return _json(data)


@api(routes, "GET", "/api/v1/nodes", roles=READ, tag="nodes",
     summary="Nodes: last seen, version, push lag, IP-list versions behind")
async def nodes(request: web.Request) -> web.Response:
    now = _now(request)
    items = await _storage(request).list_nodes()
    for n in items:
        n["status"] = "ok" if now - n["last_seen"] <= NODE_STALE_SECONDS else "stale"
        n["seconds_since_seen"] = max(0.0, now - n["last_seen"])
    return _json({"items": items})


# -- sync: push -------------------------------------------------------------------------------
_STR64 = S.string(64)
PUSH_BODY = S.obj(
    ("node", "batch_id", "items"),
    node=S.string(64, minLength=1), batch_id=S.string(64, minLength=8),
    version=S.string(32), sent_at=S.TS, lag_seconds={"type": "number", "minimum": 0},
    list_version=S.COUNT, spooled=S.COUNT, dropped=S.COUNT, records_shed=S.COUNT,
    items={"type": "array", "maxItems": MAX_PUSH_ITEMS, "items": S.obj(
        ("kind", "id", "data"),
        kind={"type": "string", "enum": ["record", "detection", "list_change", "session"]},
        id=S.string(64, minLength=1), data={"type": "object", "maxProperties": 64})})

DETECTION = S.obj(
    ("ts", "ip", "app", "bot_type", "confidence", "reaction"),
    ts=S.TS, ip=_STR64, ips={"type": "array", "maxItems": 1000, "items": _STR64},
    session=S.nullable(S.string(256)), app=S.string(128), bot_type={"enum": list(BOT_TYPES)},
    confidence={"type": "number", "minimum": 0, "maximum": 1},
    profile=S.nullable(S.string(128)), reaction={"enum": list(REACTIONS)},
    duration=S.nullable({"type": "number", "minimum": 0}),
    detectors={"type": "array", "maxItems": 64, "items": {
        "type": "object", "required": ["name"], "maxProperties": 8, "properties": {
            "name": S.string(64), "value": {"type": ["number", "string", "null"],
                                            "maxLength": 128},
            "normal": {"type": ["number", "string", "null"], "maxLength": 128}}}},
    evidence={"type": "array", "maxItems": 1000,
              "items": {"type": ["string", "integer"], "maxLength": 128}},
    ttd_requests=S.nullable(S.COUNT), ttd_seconds=S.nullable({"type": "number", "minimum": 0}),
    features={"type": "object", "maxProperties": 32, "additionalProperties": S.NUMBER},
    # false: the node does not push request records, so the evidence never arrives
    evidence_pushed={"type": "boolean"})
# Nodes may add keys in later versions: unknown ones are ignored, not refused.
DETECTION["additionalProperties"] = True

LIST_CHANGE = S.obj(
    ("op", "list", "cidr"),
    op={"enum": ["add", "remove"]}, list={"enum": list(LISTS)}, cidr=_STR64,
    reason=S.string(256), source=S.string(128), created=S.TS, expires=S.nullable(S.TS),
    duration=S.nullable({"type": "number", "minimum": 0}), who=S.string(128),
    attack=S.nullable(_STR64))
LIST_CHANGE["additionalProperties"] = True

SESSION = S.obj(
    ("session", "app", "ip", "first_ts", "last_ts", "requests"),
    session=S.string(256, minLength=1), app=S.string(128), ip=_STR64, first_ts=S.TS,
    last_ts=S.TS, requests=S.COUNT,
    statuses={"type": "object", "maxProperties": 64, "additionalProperties": S.COUNT},
    req_bytes=S.COUNT, resp_bytes=S.COUNT, bytes=S.COUNT)
SESSION["additionalProperties"] = True


def _ip(value: str, where: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise InvalidInput(where, "expected an IP address") from None


def normalize_item(kind: str, event_id: str, data: dict[str, Any], now: float
                   ) -> dict[str, Any]:
    """Validate one pushed item's data into the row shape storage expects."""
    if kind == "record":
        try:
            r = record_from_dict(data)
        except RecordError as e:
            raise InvalidInput("data", str(e)) from None
        app = data.get("app") or r.host or "-"
        session = data.get("session_id", r.session)
        if not isinstance(app, str) or (session is not None and not isinstance(session, str)):
            raise InvalidInput("data", "app and session_id must be strings")
        return {"request_id": str(r.id) if r.id is not None else event_id, "ts": r.ts,
                "ip": _ip(r.ip, "data.ip"), "app": app[:128], "session": session[:256]
                if session else None, "method": r.method, "host": r.host, "path": r.path,
                "query": r.query, "status": r.status, "req_bytes": r.req_bytes,
                "resp_bytes": r.resp_bytes, "duration_ms": r.duration_ms, "ua": r.ua,
                "username": r.user, "blocked": r.blocked}
    if kind == "detection":
        S.validate(DETECTION, data, "data")
        ip = _ip(data["ip"], "data.ip")
        ips = [_ip(x, "data.ips") for x in data.get("ips") or [ip]]
        return {"ts": data["ts"], "ip": ip, "ips": ips, "session": data.get("session"),
                "app": data["app"], "bot_type": data["bot_type"],
                "confidence": data["confidence"], "profile": data.get("profile"),
                "reaction": data["reaction"], "duration": data.get("duration"),
                "detectors": [{"name": d["name"], "value": d.get("value"),
                               "normal": d.get("normal")} for d in data.get("detectors", [])],
                "evidence": [str(e) for e in data.get("evidence", [])],
                "ttd_requests": data.get("ttd_requests"), "ttd_seconds": data.get("ttd_seconds"),
                "features": data.get("features") or {},
                "evidence_pushed": data.get("evidence_pushed") is not False}
    if kind == "list_change":
        S.validate(LIST_CHANGE, data, "data")
        try:
            cidr = S.normalize_cidr(data["cidr"])
        except ValueError:
            raise InvalidInput("data.cidr", "expected an IP address or CIDR") from None
        created = data.get("created", now)
        expires = data.get("expires")
        if expires is None and data.get("duration") is not None:
            expires = created + data["duration"]
        return {"op": data["op"], "list": data["list"], "cidr": cidr,
                "reason": data.get("reason") or "", "source": data.get("source") or "node",
                "created": created, "expires": expires, "who": data.get("who") or "node",
                "attack": data.get("attack")}
    S.validate(SESSION, data, "data")
    return {"session": data["session"], "app": data["app"], "ip": _ip(data["ip"], "data.ip"),
            "first_ts": data["first_ts"], "last_ts": data["last_ts"],
            "requests": data["requests"], "statuses": data.get("statuses") or {},
            "req_bytes": data.get("req_bytes", 0),
            "resp_bytes": data.get("resp_bytes", data.get("bytes", 0))}


@api(routes, "POST", "/api/v1/sync/push", roles=NODE, body=PUSH_BODY, max_body=MAX_PUSH_BODY,
     tag="sync", summary="A node pushes a batch; a batch id already received stores nothing")
async def sync_push(request: web.Request) -> web.Response:
    body = request[BODY]
    now = _now(request)
    items, errors = [], []
    for i, item in enumerate(body["items"]):
        try:
            data = normalize_item(item["kind"], item["id"], item["data"], now)
        except InvalidInput as e:
            # One bad item must not poison the batch (the node would retry it forever).
            if len(errors) < 5:
                errors.append(f"items[{i}].{e}")
            continue
        items.append({"kind": item["kind"], "id": item["id"], "data": data})
    storage = _storage(request)
    result = await storage.ingest_batch(body["node"], body["batch_id"], items, now)
    if result.stored.get("list_change"):
        request.app[WATCH].changed()
    await storage.touch_node(
        body["node"], now, version=body.get("version"), addr=request.remote,
        last_push=now, lag_seconds=body.get("lag_seconds"),
        list_version=body.get("list_version"), spooled=body.get("spooled"),
        dropped=body.get("dropped"), records_shed=body.get("records_shed"))
    return _json({"batch_id": body["batch_id"], "duplicate": result.duplicate,
                  "stored": result.stored, "rejected": len(body["items"]) - len(items),
                  "errors": errors})


# -- sync: pull -------------------------------------------------------------------------------
@api(routes, "GET", "/api/v1/sync/lists", roles=NODE, tag="sync",
     summary="IP-list changes after a version; waits up to `wait` seconds for one",
     params=(Param("since", "integer", minimum=0, maximum=2**62, default=0),
             Param("wait", "number", minimum=0, maximum=MAX_WAIT, default=0),
             Param("limit", "integer", minimum=1, maximum=5000, default=1000),
             Param("node", max_length=64, description="the pulling node's name")))
async def sync_lists(request: web.Request) -> web.Response:
    p = request[PARAMS]
    storage = _storage(request)
    watch = request.app[WATCH]
    poll = request.app[OPTIONS].cross_replica_poll
    loop = asyncio.get_running_loop()
    deadline = loop.time() + p["wait"]
    if p["node"]:
        await storage.touch_node(p["node"], _now(request), list_version=p["since"],
                                 addr=request.remote)
    while True:
        event = watch.current()  # taken before the query: a change after it wakes us
        changes, version, snapshot = await storage.list_changes(p["since"], p["limit"])
        remaining = deadline - loop.time()
        if changes or remaining <= 0 or watch.closed:
            break
        # A change made here wakes us at once; one made by another control replica sharing
        # the database is seen on the next poll.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), min(remaining, poll))
    return _json({"version": version, "snapshot": snapshot, "changes": changes,
                  "more": not snapshot and len(changes) >= p["limit"]})


# -- the application --------------------------------------------------------------------------
def create_app(storage: Storage, *, tokens: Iterable[tuple[str, str, str]] = (),
               authenticator: Authenticator | None = None,
               clock: Callable[[], float] = time.time, retention: Retention | None = None,
               retention_interval: float | None = None, min_requests: int = 1000,
               cross_replica_poll: float = 1.0, close_storage: bool = False
               ) -> web.Application:
    """The control-plane application over an opened `storage`.

    tokens: (token or "sha256:<hex>", name, role) triples, role node|operator|viewer; tokens
    created with `node.control.auth.create_token` are found in storage as well.
    retention_interval: seconds between retention runs (None: the caller runs them).
    """
    app = web.Application(middlewares=[error_middleware, auth_middleware],
                          client_max_size=MAX_PUSH_BODY)
    app[STORAGE] = storage
    app[AUTH] = authenticator or Authenticator.from_tokens(storage, list(tokens))
    app[CLOCK] = clock
    app[WATCH] = ListWatch()
    app[OPTIONS] = ApiOptions(retention=retention or Retention(), min_requests=min_requests,
                              cross_replica_poll=cross_replica_poll)
    app.add_routes(routes)

    async def _wake_pulls(app: web.Application) -> None:
        app[WATCH].close()
    app.on_shutdown.append(_wake_pulls)
    if close_storage:  # first in, last out: closed after every job using it has stopped
        async def _close(app: web.Application) -> AsyncIterator[None]:
            yield
            await storage.close()
        app.cleanup_ctx.append(_close)
    if retention_interval:
        app.cleanup_ctx.append(_retention_job(retention_interval))
    return app


def _retention_job(interval: float) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.get_running_loop().create_task(_retention_loop(app, interval))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return ctx


async def run_retention(app: web.Application) -> dict[str, int]:
    result = await app[STORAGE].apply_retention(app[CLOCK](), app[OPTIONS].retention)
    if result.get("expired_entries"):
        app[WATCH].changed()
    return result


async def _retention_loop(app: web.Application, interval: float) -> None:
    while True:
        try:
            result = await run_retention(app)
            log.info("retention: %s", {k: v for k, v in result.items() if v})
        except Exception:
            log.exception("retention run failed; retrying in %.0fs", interval)
        await asyncio.sleep(interval)
