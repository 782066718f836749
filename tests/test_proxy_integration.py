"""The real node on loopback, in front of a tiny aiohttp upstream, spoken to over sockets."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import warnings

import aiohttp
import pytest
from aiohttp import web

with warnings.catch_warnings():
    # mitmproxy 12.2 calls pyparsing names that pyparsing 3.3 deprecates, at import time
    warnings.simplefilter("ignore", DeprecationWarning)
    import mitmproxy.master  # noqa: F401

    from node.config.model import EngineConfig
    from node.iplists import IPListStore, db_path
    from node.proxy.run import RunningNode
    from node.proxy.settings import NodeSettings

pytestmark = pytest.mark.integration
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Upstream:
    """Records every request it sees; /echo answers with what it received."""

    def __init__(self) -> None:
        self.seen: list[dict] = []
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def handle(self, req: web.Request) -> web.StreamResponse:
        body = await req.read()
        self.seen.append({"path": req.path_qs, "headers": dict(req.headers), "len": len(body)})
        if req.path == "/ws":
            ws = web.WebSocketResponse()
            await ws.prepare(req)
            async for msg in ws:
                await ws.send_str("echo:" + msg.data)
            return ws
        if req.path == "/big":
            return web.Response(body=b"x" * int(req.query.get("n", "0")))
        return web.json_response({"path": req.path_qs, "xff": req.headers.get("X-Forwarded-For"),
                                  "real_ip": req.headers.get("X-Real-IP")})

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    def paths(self) -> list[str]:
        return [s["path"] for s in self.seen]


@pytest.fixture
async def upstream():
    u = Upstream()
    await u.start()
    yield u
    await u.runner.cleanup()


def settings_for(upstream: Upstream, state_dir: str, **kw) -> NodeSettings:
    base = dict(listen_host="127.0.0.1", listen_port=0, upstream=f"http://127.0.0.1:{upstream.port}",
                admin_host="127.0.0.1", admin_port=0, state_dir=state_dir,
                trusted_proxies=("127.0.0.1/32",), header_timeout=1.0,
                max_request_body=256 * 1024, stream_response_above=64 * 1024,
                record_file="records.jsonl")
    base.update(kw)
    return NodeSettings(**base)


@pytest.fixture
async def node(upstream, tmp_path):
    n = RunningNode(settings_for(upstream, str(tmp_path)), EngineConfig())
    await n.start()
    yield n
    await n.stop()


def url(node: RunningNode, path: str) -> str:
    return f"http://127.0.0.1:{node.proxy_addrs[0][1]}{path}"


async def raw(node: RunningNode, data: bytes, *, timeout: float = 5.0) -> bytes:
    """Send bytes, read until the node closes the connection."""
    r, w = await asyncio.open_connection("127.0.0.1", node.proxy_addrs[0][1])
    out = b""
    try:
        w.write(data)
        await w.drain()
        async with asyncio.timeout(timeout):
            while chunk := await r.read(65536):
                out += chunk
    except (ConnectionResetError, BrokenPipeError):
        pass
    finally:
        w.close()
    return out


def status_of(resp: bytes) -> int:
    return int(resp.split(b" ", 2)[1])


def problem_of(resp: bytes) -> dict:
    head, _, body = resp.partition(b"\r\n\r\n")
    assert b"content-type: application/problem+json" in head.lower()
    doc = json.loads(body)
    assert doc["request_id"] and f"x-request-id: {doc['request_id']}".encode() in head.lower()
    return doc


async def metrics(node: RunningNode) -> str:
    async with aiohttp.ClientSession() as s, s.get(
            f"http://127.0.0.1:{node.admin_addr[1]}/metrics") as r:
        return await r.text()


def sample(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


# -- lists ---------------------------------------------------------------------------------------

async def test_denylisted_ip_via_trusted_xff(node, upstream):
    node.node.iplists.add("deny", "203.0.113.0/24", reason="test")
    async with aiohttp.ClientSession() as s:
        async with s.get(url(node, "/api/a"), headers={"X-Forwarded-For": "203.0.113.7"}) as r:
            assert r.status == 403
            assert r.headers["Content-Type"] == "application/problem+json"
            doc = await r.json(content_type=None)
            assert doc["status"] == 403 and doc["request_id"] == r.headers["X-Request-Id"]
        async with s.get(url(node, "/api/b"), headers={"X-Forwarded-For": "198.51.100.1"}) as r:
            assert r.status == 200
            body = await r.json()
            assert body["xff"] == "198.51.100.1, 127.0.0.1" and body["real_ip"] == "198.51.100.1"
    assert upstream.paths() == ["/api/b"]
    m = await metrics(node)
    assert sample(m, 'palisade_blocked_total{list="deny",reason="denylist"}') == 1
    assert sample(m, 'palisade_requests_total{verdict="pass"}') == 1
    assert sample(m, 'palisade_list_entries{list="deny"}') == 1


async def test_graylist_blocks_attack_only(node, upstream):
    node.node.iplists.add("gray", "203.0.113.7")
    xff = {"X-Forwarded-For": "203.0.113.7"}
    async with aiohttp.ClientSession() as s:
        async with s.get(url(node, "/api/items?id=1"), headers=xff) as r:
            assert r.status == 200
        async with s.get(url(node, "/api/items?id=1'%20OR%20'1'='1"), headers=xff) as r:
            assert r.status == 403
            assert (await r.json(content_type=None))["type"].endswith(":attack")
    assert upstream.paths() == ["/api/items?id=1"]
    assert sample(await metrics(node), 'palisade_blocked_total{list="gray",reason="sqli"}') == 1


async def test_allowlist_wins(node, upstream):
    node.node.iplists.add("deny", "203.0.113.0/24")
    node.node.iplists.add("allow", "203.0.113.7")
    async with aiohttp.ClientSession() as s, s.get(
            url(node, "/x"), headers={"X-Forwarded-For": "203.0.113.7"}) as r:
        assert r.status == 200
    assert upstream.paths() == ["/x"]


async def test_untrusted_forged_xff_is_replaced(upstream, tmp_path):
    n = RunningNode(settings_for(upstream, str(tmp_path), trusted_proxies=()), EngineConfig())
    await n.start()
    try:
        n.node.iplists.add("deny", "127.0.0.1")
        async with aiohttp.ClientSession() as s, s.get(
                url(n, "/x"), headers={"X-Forwarded-For": "198.51.100.1"}) as r:
            assert r.status == 403    # the forged header did not hide the real peer
    finally:
        await n.stop()
    assert upstream.seen == []


async def test_cli_change_seen_while_running(node, upstream):
    with IPListStore(db_path(node.settings.state_dir)) as cli:
        cli.add("deny", "198.51.100.0/24", who="cli")
    await asyncio.sleep(1.5)         # the node polls the store's change counter every second
    async with aiohttp.ClientSession() as s, s.get(
            url(node, "/x"), headers={"X-Forwarded-For": "198.51.100.3"}) as r:
        assert r.status == 403
    assert upstream.seen == []


# -- protocol guard ------------------------------------------------------------------------------

GOOD = b"GET /ok HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"


@pytest.mark.parametrize("name,data,status", [
    ("oversized headers", b"GET /h HTTP/1.1\r\nHost: a\r\nX: " + b"a" * 70_000 + b"\r\n\r\n", 431),
    ("oversized, no end", b"GET /h HTTP/1.1\r\nHost: a\r\nX: " + b"a" * 70_000, 431),
    ("huge body", b"POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n"
     + b"a" * 1_000_000, 413),
    ("huge chunked body", b"POST /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
     + (b"10000\r\n" + b"a" * 65536 + b"\r\n") * 8 + b"0\r\n\r\n", 413),
    ("folded header", b"GET /f HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", 400),
    ("NUL in value", b"GET /n HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n", 400),
    ("NUL in target", b"GET /n\x00x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("CL and TE", b"POST /s HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("two CL", b"POST /s HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"
     b"abcd", 400),
    ("TE on HTTP/1.0", b"POST /s HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"0\r\n\r\n", 400),
    ("absolute-form other host", b"GET http://evil.example/x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("two Host", b"GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("bad request line", b"GET\r\n\r\n", 400),
])
async def test_rejected_before_upstream(node, upstream, name, data, status):
    resp = await raw(node, data)
    assert status_of(resp) == status, resp[:200]
    problem_of(resp)
    assert b"<html" not in resp.lower()
    assert upstream.seen == []
    assert status_of(await raw(node, GOOD)) == 200   # the node still serves


async def test_slow_headers_time_out(node, upstream):
    r, w = await asyncio.open_connection("127.0.0.1", node.proxy_addrs[0][1])
    t0 = time.monotonic()
    w.write(b"GET /slow HTTP/1.1\r\nHost: a\r\n")
    out = b""
    async with asyncio.timeout(5):
        while True:
            await asyncio.sleep(0.2)
            try:
                w.write(b"X-Drip: 1\r\n")      # a byte now and then keeps idle timers quiet
                await w.drain()
            except (ConnectionResetError, BrokenPipeError):
                break
            if r.at_eof() or len(r._buffer):  # noqa: SLF001
                break
        out = await r.read(65536)
    w.close()
    assert status_of(out) == 408 and time.monotonic() - t0 < 3
    assert upstream.seen == []


async def test_metrics_count_rejections(node):
    await raw(node, b"GET /f HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n")
    await raw(node, b"GET /h HTTP/1.1\r\nHost: a\r\nX: " + b"a" * 70_000 + b"\r\n\r\n")
    m = await metrics(node)
    assert sample(m, 'palisade_blocked_total{list="none",reason="malformed"}') == 1
    assert sample(m, 'palisade_blocked_total{list="none",reason="headers_too_large"}') == 1
    assert sample(m, 'palisade_requests_total{verdict="rejected"}') == 2


async def test_large_response_streams_and_is_recorded(node):
    resp = await raw(node, b"GET /big?n=3000000 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert status_of(resp) == 200 and len(resp.partition(b"\r\n\r\n")[2]) == 3_000_000
    node.node.recorder.flush()
    with open(node.node.recorder.path) as f:
        rec = json.loads(f.read().splitlines()[-1])
    assert rec["path"] == "/big" and rec["resp_bytes"] == 3_000_000


async def test_upstream_down_is_problem_json(upstream, tmp_path):
    await upstream.runner.cleanup()
    n = RunningNode(settings_for(upstream, str(tmp_path)), EngineConfig())
    await n.start()
    try:
        resp = await raw(n, GOOD)
        assert status_of(resp) == 502 and problem_of(resp)["status"] == 502
    finally:
        await n.stop()


async def test_websocket_passes_through(node, upstream):
    async with aiohttp.ClientSession() as s, s.ws_connect(url(node, "/ws")) as ws:
        await ws.send_str("hi")
        assert (await ws.receive(timeout=5)).data == "echo:hi"


async def test_health_and_ready(node):
    async with aiohttp.ClientSession() as s:
        base = f"http://127.0.0.1:{node.admin_addr[1]}"
        async with s.get(base + "/healthz") as r:
            assert r.status == 200
        async with s.get(base + "/readyz") as r:
            assert r.status == 200 and (await r.json())["status"] == "ready"


# -- TLS -----------------------------------------------------------------------------------------

def self_signed(tmp_path) -> tuple[str, str]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
            .sign(key, hashes.SHA256()))
    c, k = tmp_path / "cert.pem", tmp_path / "key.pem"
    c.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    k.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    return str(c), str(k)


async def test_tls_termination_http1_and_h2(upstream, tmp_path):
    cert, key = self_signed(tmp_path)
    n = RunningNode(settings_for(upstream, str(tmp_path), tls_cert=cert, tls_key=key),
                    EngineConfig())
    await n.start()
    port = n.proxy_addrs[0][1]
    try:
        ctx = ssl.create_default_context(cafile=cert)
        async with aiohttp.ClientSession() as s, s.get(
                f"https://localhost:{port}/tls", ssl=ctx) as r:
            assert r.status == 200
        assert upstream.seen[-1]["headers"]["X-Forwarded-Proto"] == "https"
        assert (await h2_get(port, ctx, "/h2"))[0] == 200
        assert upstream.seen[-1]["path"] == "/h2"
        # plaintext on the TLS listener is refused
        assert await raw(n, GOOD) == b""
    finally:
        await n.stop()


async def h2_get(port: int, ctx: ssl.SSLContext, path: str,
                 extra: list[tuple[str, str]] = ()) -> tuple[int, bytes]:
    """One HTTP/2 request over TLS; (status, body), status 0 if the stream or connection
    was reset instead."""
    import h2.config
    import h2.connection
    import h2.events

    ctx.set_alpn_protocols(["h2"])
    r, w = await asyncio.open_connection("localhost", port, ssl=ctx)
    assert w.get_extra_info("ssl_object").selected_alpn_protocol() == "h2"
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.send_headers(1, [(":method", "GET"), (":path", path), (":scheme", "https"),
                          (":authority", f"localhost:{port}"), *extra], end_stream=True)
    w.write(conn.data_to_send())
    status, body = 0, b""
    try:
        async with asyncio.timeout(5):
            while data := await r.read(65536):
                for ev in conn.receive_data(data):
                    if isinstance(ev, h2.events.ResponseReceived):
                        status = int(dict(ev.headers)[b":status"])
                    elif isinstance(ev, h2.events.DataReceived):
                        body += ev.data
                    elif isinstance(ev, h2.events.StreamEnded):
                        return status, body
                    elif isinstance(ev, h2.events.StreamReset | h2.events.ConnectionTerminated):
                        return 0, body
                w.write(conn.data_to_send())
    finally:
        w.close()
    return status, body


async def test_h2_limits_and_errors(upstream, tmp_path):
    cert, key = self_signed(tmp_path)
    n = RunningNode(settings_for(upstream, str(tmp_path), tls_cert=cert, tls_key=key,
                                 max_header_bytes=8192), EngineConfig())
    await n.start()
    port = n.proxy_addrs[0][1]
    ctx = ssl.create_default_context(cafile=cert)
    try:
        assert (await h2_get(port, ctx, "/small", [("x-a", "a" * 4000)]))[0] == 200
        assert (await h2_get(port, ctx, "/big", [("x-a", "a" * 10_000)]))[0] == 0
        assert upstream.paths() == ["/small"]
        await upstream.runner.cleanup()
        status, body = await h2_get(port, ctx, "/down")
        assert status == 502 and json.loads(body)["status"] == 502
    finally:
        await n.stop()


# -- persistence across restart and SIGKILL -----------------------------------------------------

CHILD = r"""
import asyncio, json, sys, warnings
warnings.simplefilter("ignore", DeprecationWarning)
from node.config.model import EngineConfig
from node.proxy.run import RunningNode
from node.proxy.settings import NodeSettings

async def main():
    s = NodeSettings(**json.loads(sys.argv[1]))
    n = RunningNode(s, EngineConfig(), with_engine=False)
    await n.start()
    if len(sys.argv) > 2:
        n.node.iplists.add("deny", sys.argv[2], reason="child", who="test")
    print(json.dumps({"port": n.proxy_addrs[0][1]}), flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def start_child(settings: NodeSettings, *extra: str) -> tuple[subprocess.Popen, int]:
    fields = {k: getattr(settings, k) for k in settings.__slots__}
    fields["trusted_proxies"] = list(fields["trusted_proxies"])
    proc = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(fields), *extra],
                            stdout=subprocess.PIPE, cwd=ROOT, text=True)
    line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30)
    return proc, json.loads(line)["port"]


def reap(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
    proc.wait(10)
    proc.stdout.close()


async def status_from(port: int, ip: str) -> int:
    async with aiohttp.ClientSession() as s, s.get(
            f"http://127.0.0.1:{port}/p", headers={"X-Forwarded-For": ip}) as r:
        return r.status


async def test_denylist_survives_restart_and_sigkill(upstream, tmp_path):
    s = settings_for(upstream, str(tmp_path), admin_host=None, record_file=None)
    proc, port = await start_child(s, "203.0.113.0/24")
    try:
        assert await status_from(port, "203.0.113.9") == 403
        reap(proc, signal.SIGKILL)                 # no chance to flush or close anything
        proc, port = await start_child(s)
        assert await status_from(port, "203.0.113.9") == 403
        assert await status_from(port, "198.51.100.9") == 200
        reap(proc)
        proc, port = await start_child(s)          # and after a clean stop
        assert await status_from(port, "203.0.113.9") == 403
    finally:
        reap(proc, signal.SIGKILL)
    assert upstream.paths() == ["/p"]
