"""The web console without a browser: login, CSRF, roles, every route, escaping, helpers."""

from __future__ import annotations

import csv
import io
import itertools
import re
import time

import pytest

from node.console import charts, fmt
from node.console.app import CONSOLE, plotly_css, setup_console, url
from node.console.auth import COOKIE, ConsoleAuth, LoginThrottle, safe_next
from node.console.data import RequestFilter, request_stats
from node.control.api import create_app
from node.control.auth import Principal
from node.control.storage.base import DAY
from node.control.testing import temp_storage

NOW = time.time()
OP_TOKEN = "operator-token-0123456789"
VIEW_TOKEN = "viewer-token-0123456789"
NODE_TOKEN = "node-token-0123456789"
TOKENS = [(OP_TOKEN, "alice", "operator"), (VIEW_TOKEN, "victor", "viewer"),
          (NODE_TOKEN, "node-1", "node")]
NODE = {"Authorization": f"Bearer {NODE_TOKEN}"}
OP = {"Authorization": f"Bearer {OP_TOKEN}"}
XSS_UA = "<script>alert(1)</script>"
XSS_PATH = '/"><img src=x onerror=alert(1)>'
XSS_QUERY = "u=javascript:alert(1)&q=</script><script>alert(2)</script>"
XSS_SESSION = '"><svg onload=alert(1)>'
XSS_USER = "<iframe src=javascript:alert(1)>"
_ids = itertools.count(1)


def record(ts, *, ip="203.0.113.7", session="s-1", path="/api/products/1", status=200,
           method="GET", ua="Mozilla/5.0", query="", duration=12.5, size=2048, user=None,
           blocked=False):
    rid = f"req-{next(_ids)}"
    data = {"id": rid, "ts": ts, "ip": ip, "method": method, "host": "shop.example",
            "path": path, "query": query, "status": status, "req_bytes": 10,
            "resp_bytes": size, "duration_ms": duration, "ua": ua, "session": session,
            "user": user, "app": "shop"}
    if blocked:
        data["blocked"] = True
    return {"kind": "record", "id": f"ev-{rid}", "data": data}


def detection(ts, *, ip="203.0.113.7", session="s-1", bot_type="scraping", evidence=(),
              reaction="denylist", confidence=0.9, detectors=("request_rate", "query_abuse"),
              features=None):
    return {"kind": "detection", "id": f"det-{next(_ids)}", "data": {
        "ts": ts, "ip": ip, "ips": [ip], "session": session, "app": "shop",
        "bot_type": bot_type, "confidence": confidence, "profile": "default",
        "reaction": reaction, "duration": 3600,
        "detectors": [{"name": d, "value": 326, "normal": "< 10"} for d in detectors],
        "evidence": list(evidence), "ttd_requests": 12, "ttd_seconds": 4.5,
        "features": features or {"rps": 9.0, "request_interval_cv": 0.05,
                                 "non_uniqueness": 0.4, "scheduled": 1.0,
                                 "suspicious_behavior": 0.7, "critical_sensitive_use": 3,
                                 "detectors_count": 2, "distinct_endpoints": 40,
                                 "unsafe_requests": 0, "error_responses": 5}}}


def session_summary(*, session="s-1", ip="203.0.113.7", first=NOW - 600, last=NOW - 60,
                    requests=3):
    return {"kind": "session", "id": f"ss-{next(_ids)}", "data": {
        "session": session, "app": "shop", "ip": ip, "first_ts": first, "last_ts": last,
        "requests": requests, "statuses": {"200": requests}, "req_bytes": 30,
        "resp_bytes": 6144}}


async def push(client, items):
    body = {"node": "node-1", "batch_id": f"batch-{next(_ids):06d}", "version": "0.1.0",
            "lag_seconds": 0.5, "list_version": 0, "items": items}
    resp = await client.post("/api/v1/sync/push", json=body, headers=NODE)
    assert resp.status == 200, await resp.text()
    got = await resp.json()
    assert not got["rejected"], got
    return got


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def storage(request, tmp_path):
    async with temp_storage(request.param, tmp_path) as s:
        yield s


@pytest.fixture
async def client(aiohttp_client, storage):
    app = create_app(storage, tokens=TOKENS, min_requests=5)
    setup_console(app)
    return await aiohttp_client(app)


@pytest.fixture
async def filled(client):
    """A scraper (with evidence), a hostile client whose strings carry script payloads, and
    a human; one old attack whose detail has expired."""
    bot = [record(NOW - 300 + i, path=f"/api/products/{i}") for i in range(12)]
    bot.append(record(NOW - 280, path="/api/export", duration=900.0, size=900_000))
    evil = [record(NOW - 200 + i, ip="192.0.2.66", session=XSS_SESSION, ua=XSS_UA,
                   path=XSS_PATH, query=XSS_QUERY, status=404, user=XSS_USER)
            for i in range(6)]
    human = [record(NOW - 900 + 30 * i, ip="198.51.100.5", session="h-1",
                    path="/api/products/1") for i in range(5)]
    ids = [i["data"]["id"] for i in bot]
    await push(client, bot + evil + human + [
        detection(NOW - 250, evidence=ids[-8:]),
        detection(NOW - 150, ip="192.0.2.66", session=XSS_SESSION,
                  bot_type="security_crawlers", detectors=("forced_browsing",),
                  evidence=[i["data"]["id"] for i in evil]),
        session_summary(requests=13),
        session_summary(session=XSS_SESSION, ip="192.0.2.66", requests=6),
        session_summary(session="h-1", ip="198.51.100.5", first=NOW - 900, requests=5),
    ])
    old = detection(NOW - 40 * DAY, ip="198.51.100.99", session=None)
    await push(client, [old])
    storage = client.app[CONSOLE].storage
    from node.control.storage.base import Retention

    await storage.apply_retention(NOW, Retention())
    return {"bot_ids": ids}


async def login(client, token=OP_TOKEN, next_url=None):
    resp = await client.get("/console/login", params={"next": next_url} if next_url else None)
    assert resp.status == 200
    nonce = re.search(r'name="nonce" value="([^"]+)"', await resp.text()).group(1)
    return await client.post("/console/login", data={"nonce": nonce, "token": token,
                                                      "next": next_url or ""},
                             allow_redirects=False)


async def csrf_of(client, path="/console/lists"):
    text = await (await client.get(path)).text()
    return re.search(r'name="csrf" value="([^"]+)"', text).group(1)


async def ids_of(client, path, attr):
    text = await (await client.get(path)).text()
    return [int(x) for x in re.findall(rf'data-{attr}="(\d+)"', text)]


# -- login and sessions -----------------------------------------------------------------------
async def test_pages_need_a_login(client):
    for path in ("/console/", "/console/attacks?type=scraping", "/console/sessions",
                 "/console/lists", "/console/nodes", "/console/attacks/1",
                 "/console/sessions/1/requests.csv"):
        resp = await client.get(path, allow_redirects=False)
        assert resp.status == 303, path
        assert resp.headers["Location"].startswith("/console/login?next=")
    resp = await client.get("/console/attacks?type=scraping", allow_redirects=False)
    from urllib.parse import parse_qs, urlsplit

    query = parse_qs(urlsplit(resp.headers["Location"]).query)
    assert query == {"next": ["/console/attacks?type=scraping"]}
    # A bearer token is not a console session.
    resp = await client.get("/console/", headers=OP, allow_redirects=False)
    assert resp.status == 303


async def test_login_sets_a_strict_httponly_session_cookie(client):
    resp = await login(client, next_url="/console/attacks?type=scraping")
    assert resp.status == 303
    assert resp.headers["Location"] == "/console/attacks?type=scraping"
    cookie = next(c for c in resp.headers.getall("Set-Cookie") if c.startswith(COOKIE))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
    resp = await client.get("/console/attacks", allow_redirects=False)
    assert resp.status == 200
    assert "alice" in await resp.text()


@pytest.mark.parametrize(("token", "status", "message"), [
    ("wrong-token-0123456789", 401, "not known"),
    (NODE_TOKEN, 403, "node token"),
    ("", 401, "not known"),
    ("x" * 5000, 401, "not known"),
])
async def test_login_refusals(client, token, status, message):
    resp = await login(client, token)
    assert resp.status == status
    assert message in await resp.text()
    assert COOKIE not in resp.cookies
    assert (await client.get("/console/", allow_redirects=False)).status == 303


async def test_login_form_needs_its_nonce(client):
    await client.get("/console/login")
    resp = await client.post("/console/login", data={"token": OP_TOKEN},
                             allow_redirects=False)
    assert resp.status == 400
    assert "expired" in await resp.text()


async def test_login_refuses_a_cross_site_post(client):
    resp = await client.get("/console/login")
    nonce = re.search(r'name="nonce" value="([^"]+)"', await resp.text()).group(1)
    resp = await client.post("/console/login", data={"nonce": nonce, "token": OP_TOKEN},
                             headers={"Origin": "https://evil.example"},
                             allow_redirects=False)
    assert resp.status == 403


async def test_failed_logins_are_throttled(client):
    for _ in range(10):
        assert (await login(client, "wrong-token-0123456789")).status == 401
    resp = await login(client, OP_TOKEN)
    assert resp.status == 429


@pytest.mark.parametrize(("target", "expected"), [
    ("/console/attacks?ip=1.2.3.4", "/console/attacks?ip=1.2.3.4"),
    ("/console", "/console"),
    ("https://evil.example/console/", "/console/"),
    ("//evil.example/console/", "/console/"),
    ("/\\evil.example", "/console/"),
    ("javascript:alert(1)", "/console/"),
    ("/api/v1/attacks", "/console/"),
    ("/console/login", "/console/"),
    ("/console/\nx", "/console/"),
    (None, "/console/"),
])
def test_safe_next(target, expected):
    assert safe_next(target) == expected


async def test_logout_ends_the_session(client):
    await login(client)
    token = await csrf_of(client)
    resp = await client.post("/console/logout", data={"csrf": token}, allow_redirects=False)
    assert resp.status == 303
    assert (await client.get("/console/", allow_redirects=False)).status == 303


def test_sessions_expire_when_idle_or_old():
    clock = [1000.0]
    auth = ConsoleAuth(clock=lambda: clock[0], idle=60, lifetime=300)

    class Req:
        def __init__(self, sid):
            self.cookies = {COOKIE: sid}

    sid, _ = auth.open(Principal("alice", "operator"))
    clock[0] += 50
    assert auth.session(Req(sid)) is not None
    clock[0] += 61
    assert auth.session(Req(sid)) is None          # idle too long
    sid, _ = auth.open(Principal("alice", "operator"))
    for _ in range(6):
        clock[0] += 55
        auth.session(Req(sid))
    assert auth.session(Req(sid)) is None          # older than its lifetime
    assert auth.session(Req("forged")) is None


def test_session_table_is_bounded():
    auth = ConsoleAuth(max_sessions=3)
    for _ in range(10):
        auth.open(Principal("a", "viewer"))
    assert len(auth) == 3


def test_login_throttle_window():
    clock = [0.0]
    t = LoginThrottle(limit=3, window=60, clock=lambda: clock[0])
    for _ in range(3):
        t.failed("1.2.3.4")
    assert t.blocked("1.2.3.4") and not t.blocked("5.6.7.8")
    clock[0] += 61
    assert not t.blocked("1.2.3.4")


# -- actions: roles and CSRF ------------------------------------------------------------------
async def _on_list(client, lst, cidr):
    resp = await client.get(f"/api/v1/lists/{lst}", params={"q": cidr}, headers=OP)
    return any(e["cidr"] == cidr for e in (await resp.json())["items"])


async def test_operator_adds_and_removes_entries(client):
    await login(client)
    token = await csrf_of(client)
    resp = await client.post("/console/lists/add", allow_redirects=False, data={
        "csrf": token, "list": "deny", "cidr": "198.51.100.0/24", "duration": "3600",
        "reason": "test", "back": "/console/lists?list=deny"})
    assert resp.status == 303 and resp.headers["Location"] == "/console/lists?list=deny"
    assert await _on_list(client, "deny", "198.51.100.0/24")
    text = await (await client.get("/console/lists?list=deny")).text()
    assert "198.51.100.0/24 added to the deny list." in text     # the one-time message
    assert "added to the deny list" not in await (await client.get("/console/lists")).text()
    resp = await client.post("/console/lists/remove", allow_redirects=False, data={
        "csrf": token, "list": "deny", "cidr": "198.51.100.0/24"})
    assert resp.status == 303
    assert not await _on_list(client, "deny", "198.51.100.0/24")
    hist = await (await client.get("/api/v1/lists/history", headers=OP,
                                   params={"cidr": "198.51.100.0/24"})).json()
    assert [(h["op"], h["who"]) for h in hist["items"]] == [("remove", "alice"),
                                                           ("add", "alice")]


@pytest.mark.parametrize("form", [
    {"list": "deny", "cidr": "not-an-ip"},
    {"list": "nolist", "cidr": "10.0.0.1"},
    {"list": "deny", "cidr": "10.0.0.1", "duration": "5"},
    {"list": "deny", "cidr": "10.0.0.1", "duration": "nan"},
])
async def test_bad_additions_are_refused_on_the_page(client, form):
    await login(client)
    token = await csrf_of(client)
    resp = await client.post("/console/lists/add", data={"csrf": token, **form})
    assert resp.status == 200
    assert "Not added" in await resp.text()
    assert not await _on_list(client, "deny", "10.0.0.1")


async def test_viewer_cannot_change_anything(client, filled):
    await login(client, VIEW_TOKEN)
    text = await (await client.get("/console/lists")).text()
    assert "/console/lists/add" not in text and "viewer" in text
    token = await csrf_of(client, "/console/lists")
    aid = (await ids_of(client, "/console/attacks", "attack"))[0]
    assert 'id="action-deny"' not in await (await client.get(f"/console/attacks/{aid}")).text()
    for path, form in (("/console/lists/add", {"list": "deny", "cidr": "10.9.9.9"}),
                       ("/console/lists/remove", {"list": "deny", "cidr": "203.0.113.7"}),
                       (f"/console/attacks/{aid}/false-positive", {"add_exception": "on"})):
        resp = await client.post(path, data={"csrf": token, **form}, allow_redirects=False)
        assert resp.status == 403, path
    assert not await _on_list(client, "deny", "10.9.9.9")
    assert not await _on_list(client, "exception", "203.0.113.7")


@pytest.mark.parametrize(("headers", "csrf"), [
    ({}, None),
    ({}, "wrong"),
    ({"Origin": "https://evil.example"}, "good"),
    ({"Origin": "null"}, "good"),
    ({"Sec-Fetch-Site": "cross-site"}, "good"),
])
async def test_actions_need_csrf_and_same_origin(client, headers, csrf):
    await login(client)
    token = await csrf_of(client)
    form = {"list": "deny", "cidr": "10.8.8.8"}
    if csrf:
        form["csrf"] = token if csrf == "good" else csrf
    resp = await client.post("/console/lists/add", data=form, headers=headers,
                             allow_redirects=False)
    assert resp.status == 403
    assert not await _on_list(client, "deny", "10.8.8.8")


async def test_actions_take_forms_only(client):
    await login(client)
    token = await csrf_of(client)
    resp = await client.post("/console/lists/add", json={"csrf": token, "list": "deny",
                                                         "cidr": "10.7.7.7"})
    assert resp.status == 415


async def test_post_without_a_session_goes_to_login(client):
    resp = await client.post("/console/lists/add", data={"list": "deny", "cidr": "10.6.6.6"},
                             allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/console/login"


async def test_false_positive_lifts_the_entry_and_adds_the_exception(client, filled):
    await push(client, [{"kind": "list_change", "id": "lc-fp", "data": {
        "op": "add", "list": "deny", "cidr": "203.0.113.7", "reason": "scraping",
        "source": "profile default", "created": NOW - 250, "expires": NOW + 3000,
        "who": "node-1"}}])
    await login(client)
    aid = (await ids_of(client, "/console/attacks?ip=203.0.113.7", "attack"))[0]
    text = await (await client.get(f"/console/attacks/{aid}")).text()
    token = re.search(r'name="csrf" value="([^"]+)"', text).group(1)
    resp = await client.post(f"/console/attacks/{aid}/false-positive", data={
        "csrf": token, "reason": "our load test", "add_exception": "on"})
    text = await resp.text()
    assert "Marked as a false positive" in text and "added to the exception list" in text
    assert not await _on_list(client, "deny", "203.0.113.7")
    assert await _on_list(client, "exception", "203.0.113.7")


# -- every route answers ----------------------------------------------------------------------
async def test_every_page_renders_with_data(client, filled):
    await login(client)
    aids = await ids_of(client, "/console/attacks", "attack")
    sids = await ids_of(client, "/console/sessions", "session")
    assert len(aids) == 3 and len(sids) == 3
    pages = ["/console/", "/console/?days=7", "/console/attacks",
             "/console/attacks?type=scraping&detector=request_rate",
             "/console/sessions", "/console/sessions?ip=192.0.2.66",
             "/console/lists", "/console/lists?list=exception", "/console/lists?q=203",
             "/console/nodes", *(f"/console/attacks/{i}" for i in aids),
             *(f"/console/sessions/{i}" for i in sids),
             f"/console/sessions/{sids[0]}?status=4xx&method=GET&attack=any"]
    for path in pages:
        resp = await client.get(path)
        assert resp.status == 200, path
        assert resp.headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert resp.headers["Cache-Control"] == "no-store"
        assert resp.headers["X-Frame-Options"] == "DENY"
    for path in ("/console/attacks/999999", "/console/sessions/999999",
                 "/console/sessions/999999/requests.csv"):
        resp = await client.get(path)
        assert resp.status == 404, path
        assert "No such" in await resp.text()


async def test_statistics_states(client):
    await login(client)
    text = await (await client.get("/console/")).text()
    assert "Insufficient data to build statistics" in text
    await push(client, [record(NOW - 60 - i, ip="198.51.100.5", session="h") for i in range(6)])
    text = await (await client.get("/console/")).text()
    assert "Legitimate traffic" in text
    await push(client, [detection(NOW - 30)])
    text = await (await client.get("/console/")).text()
    assert "Legitimate traffic" not in text and 'data-chart="timeline"' in text


async def test_expired_detail_says_not_enough_data(client, filled):
    await login(client)
    aid = (await ids_of(client, "/console/attacks?ip=198.51.100.99", "attack"))[0]
    text = await (await client.get(f"/console/attacks/{aid}")).text()
    assert "Not enough data" in text and 'data-chart="heatmap' not in text


async def test_attack_detail_has_three_heatmaps_and_a_way_to_its_session(client, filled):
    await login(client)
    aid = (await ids_of(client, "/console/attacks?ip=203.0.113.7", "attack"))[0]
    text = await (await client.get(f"/console/attacks/{aid}")).text()
    for kind in ("performance", "behavior", "http_errors"):
        assert f'data-chart="heatmap-{kind}"' in text
    sid = int(re.search(r'id="explore-sessions" href="/console/sessions/(\d+)"', text)[1])
    text = await (await client.get(f"/console/sessions/{sid}")).text()
    assert f'href="/console/attacks/{aid}"' in text and "Explore the attack" in text


async def test_attack_filters(client, filled):
    await login(client)
    assert len(await ids_of(client, "/console/attacks?type=security_crawlers", "attack")) == 1
    assert len(await ids_of(client, "/console/attacks?detector=forced_browsing", "attack")) == 1
    assert len(await ids_of(client, "/console/attacks?detector=request_rate", "attack")) == 2
    since = fmt.form_time(NOW - 3600)
    assert len(await ids_of(client, f"/console/attacks?since={since}", "attack")) == 2
    # Empty fields are "not set"; a mistake shows on the page, the rest still applies.
    resp = await client.get("/console/attacks?ip=&app=&type=scraping&since=bad&x=1")
    text = await resp.text()
    assert resp.status == 200
    assert "From: expected unix seconds or an ISO 8601 time" in text
    assert "Unknown filter" in text
    assert len(re.findall(r'data-attack="\d+"', text)) == 2     # the two scrapers


async def test_session_filters_stats_and_usual_values(client, filled):
    await login(client)
    sid = (await ids_of(client, "/console/sessions?ip=203.0.113.7", "session"))[0]
    text = await (await client.get(f"/console/sessions/{sid}")).text()
    assert text.count("data-request=") == 13
    assert "Download CSV" in text and "Copy link" in text
    text = await (await client.get(f"/console/sessions/{sid}?attack=scraping")).text()
    assert text.count("data-request=") == 8
    assert "8 of 13 match" in text
    text = await (await client.get(f"/console/sessions/{sid}?method=POST")).text()
    assert "No request of this session matches" in text
    sessions = await ids_of(client, f"/console/sessions?request_id={filled['bot_ids'][0]}",
                            "session")
    assert sessions == [sid]
    assert await ids_of(client, "/console/sessions?status=404", "session") != [sid]


async def test_csv_download_is_the_api_document(client, filled):
    await login(client)
    sid = (await ids_of(client, "/console/sessions?ip=203.0.113.7", "session"))[0]
    resp = await client.get(f"/console/sessions/{sid}/requests.csv")
    assert resp.status == 200 and resp.content_type == "text/csv"
    mine = await resp.text()
    api = await (await client.get(f"/api/v1/sessions/{sid}/requests.csv", headers=OP)).text()
    assert mine == api
    rows = list(csv.DictReader(io.StringIO(mine)))
    assert len(rows) == 13 and {r["ip"] for r in rows} == {"203.0.113.7"}


async def test_static_files_are_local_cached_and_typed(client):
    console = client.app[CONSOLE]
    for name in ("console.css", "console.js", "favicon.svg", "plotly.min.js", "plotly.css"):
        resp = await client.get(console.static_url(name))
        assert resp.status == 200, name
        assert "immutable" in resp.headers["Cache-Control"]
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        etag = resp.headers["ETag"]
        again = await client.get(f"/console/static/{name}", headers={"If-None-Match": etag})
        assert again.status == 304
    resp = await client.get("/console/static/plotly.min.js",
                            headers={"Accept-Encoding": "gzip"})
    assert resp.headers.get("Content-Encoding") == "gzip"
    assert "plotly.js v" in (await resp.text())[:200]                # served from the package
    assert (await client.get("/console/static/nope.js")).status == 404
    assert (await client.get("/console/static/..%2fapp.py")).status in (401, 403, 404)


async def test_root_redirects_to_the_console(client):
    resp = await client.get("/", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/console/"


async def test_the_api_is_unchanged_by_the_console(client):
    # Bearer auth still rules /api/v1; console cookies do not open it.
    await login(client)
    assert (await client.get("/api/v1/attacks")).status == 401
    assert (await client.get("/api/v1/attacks", headers=OP)).status == 200


def test_console_routes_are_all_declared():
    from node.console.pages import routes
    from node.control.routing import PUBLIC, spec_of

    for route in routes:
        spec = spec_of(route.handler)
        assert spec is not None, route
        assert spec.roles == PUBLIC or spec.auth == "session", route
        if route.method == "POST" and spec.roles != PUBLIC:
            assert spec.roles == frozenset({"operator"}) or route.path == "/console/logout"


async def test_console_not_mounted_means_404_not_open(aiohttp_client, storage):
    # A session-auth route on an app without the console hook is refused, not served.
    from node.console.pages import routes

    app = create_app(storage, tokens=TOKENS)
    app.add_routes(routes)
    client = await aiohttp_client(app)
    resp = await client.get("/console/attacks", allow_redirects=False)
    assert resp.status == 404


# -- escaping ---------------------------------------------------------------------------------
PAYLOAD_MARKERS = ("<script>alert", "<img src=x", "<svg onload", "<iframe src",
                   "</script><script>")


async def test_hostile_strings_are_escaped_everywhere(client, filled):
    await login(client)
    aid = (await ids_of(client, "/console/attacks?ip=192.0.2.66", "attack"))[0]
    sid = (await ids_of(client, "/console/sessions?ip=192.0.2.66", "session"))[0]
    for path in ("/console/", "/console/attacks", f"/console/attacks/{aid}",
                 "/console/sessions", f"/console/sessions/{sid}",
                 f"/console/sessions/{sid}?ip=192.0.2.66", "/console/lists"):
        text = await (await client.get(path)).text()
        for marker in PAYLOAD_MARKERS:
            assert marker not in text, (path, marker)
        # Inside JSON blocks '<' is \u003c, so a block cannot be closed from the data.
        for block in re.findall(r'<script type="application/json"[^>]*>(.*?)</script>', text,
                                re.S):
            assert "<" not in block, path
    text = await (await client.get(f"/console/sessions/{sid}")).text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text       # shown, as text
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in text


def test_chart_text_is_escaped_for_plotly():
    rows = [{"n": 1, "ts": NOW, "method": "GET", "path": XSS_PATH, "status": 200,
             "resp_bytes": 10, "duration_ms": 1.0, "attack": None},
            {"n": 2, "ts": NOW + 1, "method": "<b>", "path": "/a", "status": 500,
             "resp_bytes": 10, "duration_ms": 2.0, "attack": "scraping"}]
    fig = charts.session_scatter(rows)
    texts = [t for trace in fig["data"] for t in trace["text"]]
    assert all("<img" not in t and "<b>" not in t.split("<br>")[0] for t in texts)
    assert charts.text('"><a href="javascript:x">') == \
        "&quot;&gt;&lt;a href=&quot;javascript:x&quot;&gt;"


# -- helpers ----------------------------------------------------------------------------------
def test_heatmap_shapes():
    this = {"id": 1, "ip": "203.0.113.7", "bot_type": "scraping", "confidence": 0.9,
            "features": {"rps": 50.0, "request_interval_cv": 0.02, "non_uniqueness": 0.5,
                         "scheduled": 1.0, "suspicious_behavior": 0.8,
                         "critical_sensitive_use": 2, "detectors_count": 4,
                         "distinct_endpoints": 300, "unsafe_requests": 0,
                         "error_responses": 0}}
    peers = [{"id": i, "ip": f"198.51.100.{i}", "bot_type": "api_abuse", "confidence": 0.6,
              "features": {"rps": 0.5 * i, "request_interval_cv": 0.9, "distinct_endpoints": i,
                           "error_responses": i, "suspicious_behavior": 0.1}}
             for i in range(2, 32)]
    for kind in charts.HEATMAPS:
        fig = charts.heatmap(kind, this, peers, lambda i: f"/console/attacks/{i}")
        (trace,) = fig["data"]
        # This bot comes last (drawn on top), outlined and labelled.
        assert len(trace["x"]) == 31 and trace["customdata"][-1] == "/console/attacks/1"
        assert trace["marker"]["line"]["width"][-1] == 3
        assert fig["layout"]["annotations"][0]["text"] == "this bot"
    perf = charts.heatmap("performance", this, peers, str)
    assert perf["layout"]["xaxis"]["type"] == "log"              # RPS spans decades
    assert perf["data"][0]["y"][-1] == pytest.approx(0.98)       # regularity = 1 - CV
    flat = charts.heatmap("behavior", {**this, "features": {"rps": 1.0}}, [], str)
    assert flat["layout"]["xaxis"]["range"] == [-0.2, 1.2]       # never below zero
    assert charts.heatmap("performance", {**this, "features": {}}, [], str) is None


def test_timeline_drills_down_per_type_and_day():
    stats = {"timeline": [{"day": 20000, "date": "2024-10-04", "by_type": {"scraping": 3},
                           "total": 3},
                          {"day": 20001, "date": "2024-10-05", "by_type": {}, "total": 0}]}
    fig = charts.timeline(stats, lambda t, a, b: url("/console/attacks", type=t,
                                                     since=fmt.form_time(a)))
    (trace,) = fig["data"]
    assert trace["customdata"][0] == "/console/attacks?type=scraping&since=2024-10-04T00%3A00"


def test_plotly_css_is_read_from_the_bundle():
    from node.console.app import _plotly_js

    js = _plotly_js()
    assert js is not None
    css, guard = plotly_css(js)
    assert b".js-plotly-plot .plotly" in css and b".plotly-notifier" in css
    assert guard is not None and re.fullmatch(r"[0-9a-f]{64}", guard)
    assert plotly_css(b"no plotly here") == (b"", None)


def test_request_filter_and_stats():
    rows = [{"method": "GET", "status": 200, "ip": "1.1.1.1", "attack": None, "path": "/a",
             "duration_ms": 10.0, "resp_bytes": 100, "req_bytes": 0, "blocked": False,
             "ts": 1.0, "usual": {"avg_duration_ms": 10.0, "avg_resp_bytes": 100}},
            {"method": "POST", "status": 404, "ip": "2.2.2.2", "attack": "scraping",
             "path": "/b", "duration_ms": 500.0, "resp_bytes": 50_000, "req_bytes": 5,
             "blocked": False, "ts": 2.0,
             "usual": {"avg_duration_ms": 20.0, "avg_resp_bytes": 1000}}]
    assert [RequestFilter(status="4xx").match(r) for r in rows] == [False, True]
    assert [RequestFilter(status="200").match(r) for r in rows] == [True, False]
    assert [RequestFilter(attack="any").match(r) for r in rows] == [False, True]
    assert [RequestFilter(attack="none").match(r) for r in rows] == [True, False]
    assert [RequestFilter(method="POST", ip="2.2.2.2").match(r) for r in rows] == [False, True]
    st = request_stats(rows)
    assert st["requests"] == 2 and st["slow"] == 1 and st["heavy"] == 1
    assert st["statuses"] == [("2xx", 1), ("4xx", 1)]


@pytest.mark.parametrize(("fn", "value", "expected"), [
    (fmt.span, 42, "42 s"), (fmt.span, 3720, "1 h 2 min"), (fmt.span, 90000, "1 d 1 h"),
    (fmt.size, 2048, "2.0 kB"), (fmt.size, 12, "12 B"), (fmt.ms, 0.25, "0.2 ms"),
    (fmt.ms, 1500, "1.50 s"), (fmt.change, 12.5, "+12.5%"), (fmt.change, -3.0, "−3%"),
    (fmt.change, None, "new"), (fmt.compact, 48416, "48.4k"), (fmt.compact, 2_000_000, "2M"),
    (fmt.detector_label, "ip_rotation", "IP rotation"),
    (fmt.detector_label, "some_new_one", "Some new one"),
])
def test_formatting(fn, value, expected):
    assert fn(value) == expected


def test_url_keeps_only_set_filters():
    assert url("/console/attacks", type="scraping", ip=None, app="", offset=0) == \
        "/console/attacks?type=scraping&offset=0"
    assert url("/console/attacks", ip="<x>") == "/console/attacks?ip=%3Cx%3E"


async def test_storage_detector_filter_is_literal(client, filled):
    storage = client.app[CONSOLE].storage
    page = await storage.query_attacks(bot_type=None, ip=None, app=None, since=None,
                                       until=None, limit=50, offset=0, detector="request_rate")
    assert len(page.items) == 2
    for pattern in ("request%", "request_rat_", "%"):
        page = await storage.query_attacks(bot_type=None, ip=None, app=None, since=None,
                                           until=None, limit=50, offset=0, detector=pattern)
        assert page.items == [], pattern


async def test_app_traffic_volume(client, filled):
    storage = client.app[CONSOLE].storage
    traffic = await storage.app_traffic(now=NOW, days=30)
    assert traffic == {"shop": {"day": 24, "week": 24, "period": 24}}


async def test_nodes_page_shows_profiles_when_configured(aiohttp_client, storage):
    from node.config.compile import default_config

    app = create_app(storage, tokens=TOKENS)
    setup_console(app, engine=default_config().engine)
    client = await aiohttp_client(app)
    await push(client, [record(NOW - 10)])
    await login(client)
    text = await (await client.get("/console/nodes")).text()
    assert "node-1" in text and "connected" in text
    assert "tolerance normal" in text and "low traffic" in text


async def test_render_errors_are_not_served_as_pages(aiohttp_client, storage, monkeypatch):
    app = create_app(storage, tokens=TOKENS)
    setup_console(app)
    client = await aiohttp_client(app)
    await login(client)

    def boom(*a, **k):
        raise RuntimeError("secret detail")

    monkeypatch.setattr(app[CONSOLE], "render", boom)
    resp = await client.get("/console/nodes")
    assert resp.status == 500
    assert "secret" not in await resp.text()
