"""The addon pipeline, hook by hook, with taddons.context() and tflow() — no network."""

from __future__ import annotations

import base64
import json
import warnings

import pytest

with warnings.catch_warnings():
    # mitmproxy 12.2 calls pyparsing names that pyparsing 3.3 deprecates, at import time
    warnings.simplefilter("ignore", DeprecationWarning)
    from mitmproxy import http
    from mitmproxy.proxy.layers.http import (
        HttpErrorHook,
        HttpRequestHeadersHook,
        HttpRequestHook,
        HttpResponseHeadersHook,
        HttpResponseHook,
    )
    from mitmproxy.test import taddons, tflow, tutils
    from prometheus_client import CollectorRegistry

    from addons import default_addons
    from addons.detect import apply_decision
    from addons.guard import check_request
    from node.capture import hash_value
    from node.config.model import Application, AuthEndpoint, EngineConfig, SessionParams
    from node.engine import Decision
    from node.iplists import IPLists
    from node.metrics import NodeMetrics
    from node.problem import CONTENT_TYPE, PROBLEMS, http1_problem, problem_body
    from node.proxy.context import META, NodeContext
    from node.proxy.forwarded import FORWARDED, TrustedProxy
    from node.proxy.layers import ByteCounter, HttpGuard
    from node.proxy.recorder import RecordWriter
    from node.proxy.settings import NodeSettings


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        return self.t


class FakeEngine:
    def __init__(self) -> None:
        self.records: list = []
        self.next: list[Decision] = []

    def process(self, rec):
        self.records.append(rec)
        out, self.next = self.next, []
        return out

    def stats(self):
        return {"sessions": len(self.records), "evictions": {"sessions": 0}}

    def reconfigure(self, config):
        self.config = config


def decision(reaction="denylist", ip="198.51.100.1", ips=(), session=None, duration=3600.0):
    return Decision(ts=1.0, ip=ip, ips=ips, session=session, app="shop", bot_type="scraping",
                    confidence=0.8, profile="default", reaction=reaction, duration=duration,
                    detectors=(("request_rate", 120.0, "< 10"),), evidence=("r1",),
                    ttd_requests=30, ttd_seconds=12.0)


def app_config() -> EngineConfig:
    shop = Application("shop", session=SessionParams(cookie="sid"),
                       auth=(AuthEndpoint("POST", "/login", "json", "username"),))
    return EngineConfig(applications=(shop,))


@pytest.fixture
def node(tmp_path):
    clock = Clock()
    settings = NodeSettings(
        trusted_proxies=("10.0.0.0/8", TrustedProxy("172.16.0.0/12", FORWARDED)),
        state_dir=str(tmp_path))
    n = NodeContext(settings, app_config(), IPLists(None, clock=clock),
                    NodeMetrics(CollectorRegistry()), engine=FakeEngine(), clock=clock,
                    recorder=RecordWriter(str(tmp_path / "records.jsonl")))
    yield n
    n.recorder.close()


@pytest.fixture
def tctx(node):
    with taddons.context(*default_addons(node, HttpGuard())) as ctx:
        yield ctx


def metric(node, name, **labels):
    return node.metrics.registry.get_sample_value(name, labels) or 0


def make_flow(path="/api/items", *, method="GET", peer="203.0.113.7", headers=(), body=b"",
              host="shop.example", authority=b"", http_version=b"HTTP/1.1") -> http.HTTPFlow:
    hs = [(b"Host", host.encode())] if host else []
    hs += [(k.encode(), v.encode()) for k, v in headers]
    req = tutils.treq(method=method.encode(), path=path.encode(), headers=http.Headers(hs),
                      content=body, authority=authority, http_version=http_version,
                      host="127.0.0.1", port=8080)
    f = tflow.tflow(req=req)
    f.client_conn.peername = (peer, 40000)
    f.client_conn.timestamp_tls_setup = None    # plaintext client
    return f


async def run(tctx, f: http.HTTPFlow, upstream: http.Response | None = None,
              error: str | None = None) -> http.HTTPFlow:
    """Drive one flow through the hooks the way the proxy core does."""
    am = tctx.master.addons
    await am.handle_lifecycle(HttpRequestHeadersHook(f))
    await am.handle_lifecycle(HttpRequestHook(f))
    if f.response is None and upstream is not None:
        f.response = upstream
    if f.response is not None:
        await am.handle_lifecycle(HttpResponseHeadersHook(f))
        await am.handle_lifecycle(HttpResponseHook(f))
    else:
        from mitmproxy import flow as mflow
        f.error = mflow.Error(error or "Connection refused")
        await am.handle_lifecycle(HttpErrorHook(f))
    return f


def ok(body=b'{"ok":true}', status=200):
    r = tutils.tresp(status_code=status, content=body,
                     headers=http.Headers(((b"content-type", b"application/json"),)))
    r.timestamp_end = 946681200.25   # request started at 946681200 (treq)
    return r


def problem(f: http.HTTPFlow) -> dict:
    assert f.response.headers["content-type"] == CONTENT_TYPE
    return json.loads(f.response.content)


# -- client_ip ------------------------------------------------------------------------------

async def test_untrusted_peer_forged_headers_replaced(tctx):
    f = await run(tctx, make_flow(headers=[("X-Forwarded-For", "1.1.1.1"),
                                           ("Forwarded", "for=1.1.1.1"),
                                           ("X-Request-Id", "forged")]), ok())
    meta = f.metadata[META]
    h = f.request.headers
    assert meta.ip == "203.0.113.7" and not meta.peer_trusted
    assert h["X-Forwarded-For"] == "203.0.113.7" and h["X-Real-IP"] == "203.0.113.7"
    assert "forwarded" not in h and h["X-Forwarded-Proto"] == "http"
    assert h["X-Forwarded-Host"] == "shop.example"
    assert meta.id != "forged" and h["X-Request-Id"] == meta.id
    assert f.response.headers["X-Request-Id"] == meta.id


async def test_trusted_peer_chain(tctx):
    f = await run(tctx, make_flow(peer="10.0.0.2", headers=[
        ("X-Forwarded-For", "6.6.6.6, 198.51.100.4"), ("X-Forwarded-Proto", "https"),
        ("X-Request-Id", "lb-123")]), ok())
    meta = f.metadata[META]
    h = f.request.headers
    assert meta.ip == "198.51.100.4" and meta.peer_trusted and meta.id == "lb-123"
    assert h["X-Forwarded-For"] == "198.51.100.4, 10.0.0.2"      # the forged 6.6.6.6 dropped
    assert h["X-Forwarded-Proto"] == "https"


@pytest.mark.parametrize("forged", [
    ("Forwarded", "for=7.7.7.7"), ("Forwarded", "for=unknown"), ("Forwarded", "by=1.1.1.1"),
    ("X-Real-IP", "7.7.7.7"), ("True-Client-IP", "7.7.7.7"), ("CF-Connecting-IP", "7.7.7.7"),
    ("X-Forwarded-For", "7.7.7.7"),
])
async def test_xff_proxy_passes_forged_claims(tctx, node, forged):
    """nginx appends to X-Forwarded-For and passes the client's other headers through: a
    denylisted client naming someone else is still itself, and the upstream hears one story."""
    node.iplists.add("deny", "203.0.113.9")
    headers = [forged, ("X-Forwarded-For", "203.0.113.9")]
    f = await run(tctx, make_flow(peer="10.0.0.2", headers=headers), ok())
    assert f.metadata[META].ip == "203.0.113.9" and f.response.status_code == 403
    headers = [forged, ("X-Forwarded-For", "203.0.113.10")]
    f = await run(tctx, make_flow(peer="10.0.0.2", headers=headers), ok())
    h = f.request.headers
    assert f.metadata[META].ip == "203.0.113.10" and f.response.status_code == 200
    assert h["X-Forwarded-For"] == "203.0.113.10, 10.0.0.2" and h["X-Real-IP"] == "203.0.113.10"
    assert "7.7.7.7" not in str(h) and "unknown" not in str(h) and "forwarded" not in h


async def test_forwarded_proxy_with_both_headers(tctx):
    """A proxy trusted for Forwarded: the client comes from it, and the outgoing
    X-Forwarded-For says the same client (it used to keep the incoming chain)."""
    f = await run(tctx, make_flow(peer="172.16.0.2", headers=[
        ("X-Forwarded-For", "1.1.1.1"), ("X-Forwarded-Proto", "http"),
        ("Forwarded", "for=7.7.7.7, for=198.51.100.4;proto=https;host=api.example")]), ok())
    h = f.request.headers
    assert f.metadata[META].ip == "198.51.100.4"
    assert h["X-Forwarded-For"] == "198.51.100.4, 172.16.0.2" and h["X-Real-IP"] == "198.51.100.4"
    assert h["Forwarded"] == "for=198.51.100.4, for=172.16.0.2;proto=http"
    assert h["X-Forwarded-Proto"] == "https" and h["X-Forwarded-Host"] == "api.example"
    f = await run(tctx, make_flow(peer="172.16.0.2", headers=[
        ("X-Forwarded-For", "1.1.1.1"), ("X-Forwarded-Proto", "https")]), ok())
    h = f.request.headers
    assert f.metadata[META].ip == "172.16.0.2" and h["X-Forwarded-For"] == "172.16.0.2"
    assert h["X-Forwarded-Proto"] == "http"     # not what this proxy writes


async def test_tls_client_and_ipv6(tctx):
    f = make_flow(peer="2001:db8::5")
    f.client_conn.timestamp_tls_setup = 1.0
    f = await run(tctx, f, ok())
    assert f.metadata[META].ip == "2001:db8::5"
    assert f.request.headers["X-Forwarded-Proto"] == "https"


async def test_host_rewritten_when_not_kept(node):
    node.settings = NodeSettings(keep_host_header=False)
    with taddons.context(*default_addons(node)) as ctx:
        f = await run(ctx, make_flow(), ok())
    assert f.request.headers["Host"] == "127.0.0.1:8080"
    assert f.metadata[META].host == "shop.example"
    assert f.metadata[META].record.host == "shop.example"


# -- guard -----------------------------------------------------------------------------------

@pytest.mark.parametrize("kw,why", [
    (dict(headers=[("X-A", "b\r\n c")]), "folded"),
    (dict(headers=[("X-A", "b\x00c")]), "control byte in a header"),
    (dict(path="/a\x00b"), "control byte in the request target"),
    (dict(path="/a b"), "control byte in the request target"),
    (dict(authority=b"evil.example"), "another host"),
    (dict(headers=[("Host", "other")]), "more than one Host"),
    (dict(host=""), "without Host"),
    (dict(path="api"), "not origin-form"),
    (dict(method="GE(T"), "not a token"),
])
async def test_guard_refuses_ambiguous(tctx, node, kw, why):
    f = await run(tctx, make_flow(**kw), ok())
    assert f.response.status_code == 400
    body = problem(f)
    assert why in body["detail"] and body["request_id"] == f.metadata[META].id
    assert node.engine.records == []          # not fed to detection
    assert f.metadata[META].record.blocked
    assert metric(node, "palisade_blocked_total", reason="malformed", list="none") == 1
    assert metric(node, "palisade_requests_total", verdict="rejected") == 1


async def test_guard_accepts_absolute_form_for_own_host(tctx):
    f = await run(tctx, make_flow(authority=b"shop.example"), ok())
    assert f.response.status_code == 200 and f.request.authority == ""


@pytest.mark.parametrize("kw", [dict(), dict(http_version=b"HTTP/1.0", host=""),
                                dict(path="*", method="OPTIONS"),
                                dict(headers=[("X-Tab", "a\tb"), ("X-Utf8", "é")])])
def test_check_request_passes(kw):
    assert check_request(make_flow(**kw).request) is None


# -- enforce ---------------------------------------------------------------------------------

async def test_denylisted_gets_problem_and_never_reaches_upstream(tctx, node):
    node.iplists.add("deny", "203.0.113.0/24")
    f = await run(tctx, make_flow(), ok(b"upstream body"))
    assert f.response.status_code == 403
    body = problem(f)
    assert set(body) == {"type", "title", "status", "detail", "request_id"}
    assert body["status"] == 403 and body["request_id"] == f.response.headers["X-Request-Id"]
    assert len(f.response.content) < 300 and b"<" not in f.response.content
    assert f.metadata[META].blocked == "denylist"
    assert metric(node, "palisade_blocked_total", reason="denylist", list="deny") == 1
    assert metric(node, "palisade_requests_total", verdict="blocked") == 1
    assert f.metadata[META].record.blocked and f.metadata[META].record.status == 403
    assert node.engine.records == []


async def test_a_capture_failure_never_skips_the_denylist(tctx, node, monkeypatch):
    import addons.enforce

    def boom(*a, **kw):
        raise RecursionError("hostile header")
    monkeypatch.setattr(addons.enforce, "session_value", boom)
    node.iplists.add("deny", "203.0.113.0/24")
    f = await run(tctx, make_flow(), ok(b"upstream body"))
    assert f.response.status_code == 403 and f.metadata[META].blocked == "denylist"


@pytest.mark.parametrize("path,body,blocked,reason", [
    ("/api/items?id=7", b"", False, None),
    ("/api/items?id=1'%20OR%20'1'='1", b"", True, "sqli"),
    ("/api/items?q=<script>alert(1)</script>", b"", True, "xss"),
    ("/api/../../etc/passwd", b"", True, "path_traversal"),
    ("/api/items", b'{"q": "1 UNION SELECT password FROM users--"}', True, "sqli"),
    ("/.env", b"", True, "scanner_probe"),
])
async def test_graylist_blocks_only_attack_signs(tctx, node, path, body, blocked, reason):
    node.iplists.add("gray", "203.0.113.7")
    method = "POST" if body else "GET"
    f = await run(tctx, make_flow(path, method=method, body=body,
                                  headers=[("Content-Type", "application/json")]), ok())
    assert (f.response.status_code == 403) is blocked
    if blocked:
        assert f.metadata[META].blocked == reason and reason in f.metadata[META].signs
        assert metric(node, "palisade_blocked_total", reason=reason, list="gray") == 1
        assert problem(f)["title"] == "Forbidden"


@pytest.mark.parametrize("headers,reason", [
    ([("User-Agent", "sqlmap/1.7")], "scanner_probe"),
    ([("Referer", "https://shop.example/<script>alert(1)</script>")], "xss"),
])
async def test_graylist_blocks_scanner_agent_and_referer_xss(tctx, node, headers, reason):
    """Issue 12: both passed a graylisted address (only the Referer's query was scanned, and
    an attack tool's agent was no sign)."""
    node.iplists.add("gray", "203.0.113.7")
    f = await run(tctx, make_flow("/api/items?id=7", headers=headers), ok())
    assert f.response.status_code == 403 and f.metadata[META].blocked == reason
    f = await run(tctx, make_flow("/api/items?id=7", headers=headers, peer="198.51.100.9"), ok())
    assert f.response.status_code == 200          # not graylisted: no block on signs alone


async def test_graylist_body_scan_is_bounded(tctx, node):
    node.iplists.add("gray", "203.0.113.7")
    padding = b"a" * node.settings.max_attack_scan
    f = await run(tctx, make_flow("/api", method="POST",
                                  body=padding + b"' OR '1'='1"), ok())
    assert f.response.status_code == 200


@pytest.mark.parametrize("lst", ["allow", "exception"])
async def test_allow_and_exception_win_over_deny(tctx, node, lst):
    node.iplists.add("deny", "203.0.113.0/24")
    node.iplists.add(lst, "203.0.113.7")
    node.iplists.deny_session(hash_value("abc", "s-"), None)
    f = await run(tctx, make_flow(headers=[("Cookie", "sid=abc")]), ok())
    assert f.response.status_code == 200 and f.metadata[META].list == lst
    assert metric(node, "palisade_requests_total", verdict=lst) == 1


async def test_denied_session(tctx, node):
    node.iplists.deny_session(hash_value("abc", "s-"), 600)
    f = await run(tctx, make_flow(headers=[("Cookie", "theme=x; sid=abc")]), ok())
    assert f.response.status_code == 403 and problem(f)["type"].endswith("session_denied")
    assert metric(node, "palisade_blocked_total", reason="deny_session", list="session") == 1
    f = await run(tctx, make_flow(headers=[("Cookie", "sid=other")]), ok())
    assert f.response.status_code == 200


async def test_session_keys_hashed_with_the_node_key(tmp_path):
    """The node's own hash.key keys session hashes as it keys usernames (issue 12): a
    recorded JWT `sub` is not its plain sha256, and a denied session still matches."""
    key = b"k" * 32
    clock = Clock()
    cfg = EngineConfig(applications=(Application(
        "shop", session=SessionParams(header="Authorization", jwt_claim="sub")),))
    n = NodeContext(NodeSettings(state_dir=str(tmp_path)), cfg, IPLists(None, clock=clock),
                    NodeMetrics(CollectorRegistry()), engine=FakeEngine(), clock=clock,
                    hash_key=key)
    token = "Bearer e30." + base64.urlsafe_b64encode(b'{"sub":"alice"}').decode() + ".sig"
    with taddons.context(*default_addons(n)) as ctx:
        f = await run(ctx, make_flow(headers=[("Authorization", token)]), ok())
        rec = f.metadata[META].record
        assert rec.session == hash_value("jwt:alice", "s-", key)
        assert rec.session != hash_value("jwt:alice", "s-")
        n.iplists.deny_session(rec.session, 600)
        f = await run(ctx, make_flow(headers=[("Authorization", token)]), ok())
        assert f.response.status_code == 403 and problem(f)["type"].endswith("session_denied")


# -- record ----------------------------------------------------------------------------------

async def test_record_fields(tctx, node):
    f = make_flow("/login?next=%2F", method="POST", body=b'{"username": "Alice", "p": "x"}',
                  headers=[("Cookie", "sid=abc"), ("User-Agent", "ua/1"),
                           ("Referer", "https://shop.example/")])
    f = await run(tctx, f, ok(b"x" * 123, status=401))
    rec = f.metadata[META].record
    assert rec.ts == 946681200 and rec.ip == "203.0.113.7" and rec.method == "POST"
    assert (rec.path, rec.query, rec.status) == ("/login", "next=%2F", 401)
    assert (rec.req_bytes, rec.resp_bytes) == (31, 123)
    assert rec.duration_ms == pytest.approx(250.0)
    assert rec.session == hash_value("abc", "s-") and rec.user == hash_value("alice", "u-")
    assert rec.ua == "ua/1" and rec.id == f.metadata[META].id and not rec.blocked
    assert node.engine.records == [rec]
    node.recorder.flush()
    with open(node.recorder.path) as fh:
        lines = fh.read().splitlines()
    assert json.loads(lines[-1])["session"] == rec.session


async def test_record_streamed_response_size(tctx):
    resp = ok(b"")
    resp.stream = counter = ByteCounter()
    counter(b"x" * 5000)
    f = await run(tctx, make_flow(), resp)
    assert f.metadata[META].record.resp_bytes == 5000


@pytest.mark.parametrize("msg,status,verdict", [
    ("Connection refused", 502, "error"),
    ("Request body exceeds mitmproxy's body_size_limit.", 413, "rejected"),
    ("Client disconnected.", 499, "error"),
])
async def test_record_on_error(tctx, node, msg, status, verdict):
    f = await run(tctx, make_flow(), None, error=msg)
    assert f.metadata[META].record.status == status
    assert metric(node, "palisade_requests_total", verdict=verdict) == 1


# -- detect ----------------------------------------------------------------------------------

async def test_decision_denylists_with_duration_and_provenance(tctx, node):
    node.engine.next = [decision(ips=("198.51.100.1", "198.51.100.2"))]
    await run(tctx, make_flow(), ok())
    e = node.iplists.entry("deny", "198.51.100.2")
    assert e.source == "profile:default" and e.detectors == ("request_rate",)
    assert e.expires == node.clock() + 3600 and "scraping" in e.reason
    assert node.iplists.verdict("198.51.100.1").list == "deny"
    assert metric(node, "palisade_detections_total", bot_type="scraping",
                  profile="default") == 1
    assert metric(node, "palisade_detector_firings_total", detector="request_rate") == 1
    assert metric(node, "palisade_list_entries", list="deny") == 2
    node.clock.t += 3601
    assert node.iplists.verdict("198.51.100.1").list is None


async def test_no_reaction_for_allowlisted_client(tctx, node):
    node.iplists.add("allow", "203.0.113.7")
    node.engine.next = [decision(ip="203.0.113.7")]
    f = await run(tctx, make_flow(), ok())
    assert f.metadata[META].decisions and node.iplists.verdict("203.0.113.7").list == "allow"
    assert node.iplists.counts()["deny"] == 0


def test_apply_decision_rules(node):
    node.iplists.add("exception", "198.51.100.0/24")
    assert apply_decision(node, decision(ip="198.51.100.9")) == []
    node.iplists.add("deny", "192.0.2.1")
    assert apply_decision(node, decision("graylist", ip="192.0.2.1")) == []
    assert apply_decision(node, decision("graylist", ip="192.0.2.2")) == ["192.0.2.2"]
    # the same decision again does not rewrite the entry (no history spam)
    assert apply_decision(node, decision("graylist", ip="192.0.2.2")) == []
    # a longer one extends it; forever beats any duration
    node.clock.t += 600
    assert apply_decision(node, decision("graylist", ip="192.0.2.2", duration=None)) == [
        "192.0.2.2"]
    assert apply_decision(node, decision("denylist", ip="2001:db8::/64")) == ["2001:db8::/64"]
    assert apply_decision(node, decision("monitor")) == []
    assert apply_decision(node, decision("deny_session", session="s-x", duration=60)) == []
    assert node.iplists.session_denied("s-x")
    seen = []
    node.decision_sinks.append(seen.append)
    apply_decision(node, decision("monitor"))
    assert len(seen) == 1


# -- problem ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(PROBLEMS))
def test_problem_documents(kind):
    doc = json.loads(problem_body(kind, "rid"))
    assert doc["status"] == PROBLEMS[kind].status and doc["request_id"] == "rid"
    raw = http1_problem(kind, "rid")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d " % doc["status"]) and b"Connection: close" in head
    assert b"Content-Length: %d" % len(body) in head and json.loads(body) == doc


# -- reload ----------------------------------------------------------------------------------

async def test_reconfigure_swaps_exceptions_and_trusted_proxies(tctx, node):
    import ipaddress

    node.iplists.add("deny", "203.0.113.7")
    cfg = EngineConfig(applications=app_config().applications,
                       exceptions=(ipaddress.ip_network("203.0.113.0/24"),))
    node.reconfigure(NodeSettings(trusted_proxies=()), cfg)
    f = await run(tctx, make_flow(), ok())
    assert f.response.status_code == 200 and f.metadata[META].list == "exception"
    f = await run(tctx, make_flow(peer="10.0.0.2", headers=[("X-Forwarded-For", "1.1.1.1")]),
                  ok())
    assert f.metadata[META].ip == "10.0.0.2"          # no longer a trusted proxy
    assert node.engine.config is cfg
    node.reconfigure(NodeSettings(), app_config())
    assert (await run(tctx, make_flow(), ok())).response.status_code == 403


def test_housekeeping_prunes_list_history_past_retention(tmp_path, caplog):
    from addons.housekeeping import Housekeeping
    from node.iplists import IPListStore

    clock = Clock()
    store = IPListStore(str(tmp_path / "lists.db"), clock=clock)
    lists = IPLists(store, clock=clock)
    n = NodeContext(NodeSettings(state_dir=str(tmp_path)), app_config(), lists,
                    NodeMetrics(CollectorRegistry()), engine=FakeEngine(), clock=clock)
    hk = Housekeeping(n)
    lists.add("deny", "198.51.100.1", duration=60)
    clock.t += 100 * 86400
    lists.sweep()                         # the expiry is young: it stays
    hk.prune_history()
    assert [e.action for e in store.history()] == ["expire"]
    store.close()
