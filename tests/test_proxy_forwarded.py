"""Client address resolution: trusted proxies only, each for its own header, walked from the
right."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys

import aiohttp
import pytest

from node.proxy.forwarded import (
    FORWARDED,
    XFF,
    Hop,
    TrustedProxy,
    forwarded_hops,
    outgoing_forwarded,
    outgoing_xff,
    resolve_client,
    trusted_matcher,
    xff_hops,
)

# 10/8, loopback and a v6 /48 write X-Forwarded-For (nginx-like); 172.16/12 and another v6
# /48 write Forwarded (an RFC 7239 proxy)
TRUSTED = trusted_matcher(["10.0.0.0/8", "127.0.0.1", "2001:db8:ffff::/48",
                           TrustedProxy("172.16.0.0/12", FORWARDED),
                           ("2001:db8:eeee::/48", FORWARDED)])
NGINX, RFC = "10.0.0.2", "172.16.0.2"

U, X, F = None, XFF, FORWARDED   # the header believed (U: peer untrusted)


@pytest.mark.parametrize("peer,xff,fwd,client,header,chain", [
    # untrusted peer: headers are the client's own claim and ignored
    ("203.0.113.7", ["198.51.100.1"], [], "203.0.113.7", U, ()),
    ("203.0.113.7", [], ["for=198.51.100.1"], "203.0.113.7", U, ()),
    # XFF proxy, one hop
    (NGINX, ["198.51.100.1"], [], "198.51.100.1", X, ("198.51.100.1",)),
    # forged left part: the first untrusted from the right wins; the forgery is not chained
    (NGINX, ["1.1.1.1, 198.51.100.1"], [], "198.51.100.1", X, ("198.51.100.1",)),
    # chain of trusted proxies is skipped
    (NGINX, ["198.51.100.1, 10.0.0.9, 10.1.1.1"], [], "198.51.100.1", X,
     ("198.51.100.1", "10.0.0.9", "10.1.1.1")),
    # forger puts a trusted address left of its own: never reached
    (NGINX, ["10.0.0.5, 6.6.6.6"], [], "6.6.6.6", X, ("6.6.6.6",)),
    # several header lines are one list
    (NGINX, ["1.1.1.1", "198.51.100.1"], [], "198.51.100.1", X, ("198.51.100.1",)),
    # ports and brackets are dropped, IPv6 is canonical
    (NGINX, ["198.51.100.1:5555"], [], "198.51.100.1", X, ("198.51.100.1",)),
    (NGINX, ["[2001:DB8:0::7]:443"], [], "2001:db8::7", X, ("2001:db8::7",)),
    (NGINX, ["2001:db8::7"], [], "2001:db8::7", X, ("2001:db8::7",)),
    # no header from a trusted peer: the peer is the client
    (NGINX, [], [], NGINX, X, ()),
    # every hop trusted: leftmost
    (NGINX, ["10.9.9.9"], [], "10.9.9.9", X, ("10.9.9.9",)),
    # garbage hop ends the walk at the last address read
    (NGINX, ["198.51.100.1, unknown"], [], NGINX, X, ()),
    (NGINX, ["unknown, 198.51.100.1"], [], "198.51.100.1", X, ("198.51.100.1",)),
    # an XFF proxy passes the client's Forwarded through: it is ignored entirely (issue 12:
    # a denylisted client got 200 with each of these)
    (NGINX, ["203.0.113.9"], ["for=7.7.7.7"], "203.0.113.9", X, ("203.0.113.9",)),
    (NGINX, ["203.0.113.9"], ["for=unknown"], "203.0.113.9", X, ("203.0.113.9",)),
    (NGINX, ["203.0.113.9"], ["by=1.1.1.1"], "203.0.113.9", X, ("203.0.113.9",)),
    (NGINX, ["203.0.113.9"], ['for="[2001:db8::1]:80"', "for=10.0.0.3"], "203.0.113.9", X,
     ("203.0.113.9",)),
    (NGINX, [], ["for=7.7.7.7"], NGINX, X, ()),
    # a Forwarded proxy: its header is read and X-Forwarded-For is the client's claim
    (RFC, ["1.1.1.1"], ["for=192.0.2.60;proto=http;by=203.0.113.43"], "192.0.2.60", F,
     ("192.0.2.60",)),
    (RFC, ["1.1.1.1"], [], RFC, F, ()),
    (RFC, [], ['for="[2001:db8:cafe::17]:4711", for=172.16.0.3'], "2001:db8:cafe::17", F,
     ("2001:db8:cafe::17", "172.16.0.3")),
    (RFC, [], ['for="[2001:db8:cafe::17]"'], "2001:db8:cafe::17", F, ("2001:db8:cafe::17",)),
    (RFC, [], ['for="192.0.2.43:47011"'], "192.0.2.43", F, ("192.0.2.43",)),
    (RFC, [], ["For=198.51.100.9"], "198.51.100.9", F, ("198.51.100.9",)),
    # the client's own elements left of the proxy's are never reached
    (RFC, [], ["for=7.7.7.7, for=198.51.100.9"], "198.51.100.9", F, ("198.51.100.9",)),
    (RFC, [], ["for=unknown, for=198.51.100.9"], "198.51.100.9", F, ("198.51.100.9",)),
    (RFC, [], ["by=1.1.1.1", "for=198.51.100.9"], "198.51.100.9", F, ("198.51.100.9",)),
    (RFC, [], ['for="_hidden", for=198.51.100.9'], "198.51.100.9", F, ("198.51.100.9",)),
    # an unbalanced quote from the client does not swallow the proxy's element
    (RFC, [], ['for="7.7.7.7, for=198.51.100.9'], "198.51.100.9", F, ("198.51.100.9",)),
    # the proxy obfuscates or omits the client: the proxy is the client we know
    (RFC, [], ["for=7.7.7.7, for=unknown"], RFC, F, ()),
    (RFC, [], ["for=7.7.7.7, for=_abc123"], RFC, F, ()),
    (RFC, [], ["for=7.7.7.7, by=172.16.0.2"], RFC, F, ()),
    (RFC, [], ["for=7.7.7.7;for=8.8.8.8"], RFC, F, ()),       # for= twice: not an address
    # a proxy trusted for Forwarded does not vouch for an X-Forwarded-For chain, and the
    # other way round: the walk stops at it
    (NGINX, ["198.51.100.1, 172.16.0.9"], [], "172.16.0.9", X, ("172.16.0.9",)),
    (RFC, [], ["for=198.51.100.1, for=10.0.0.9"], "10.0.0.9", F, ("10.0.0.9",)),
    # IPv6 peers, trusted and not; v4-mapped peer is folded
    ("2001:db8:ffff::1", ["2001:db8::42"], [], "2001:db8::42", X, ("2001:db8::42",)),
    ("2001:db8:eeee::1", ["2001:db8::42"], ['for="[2001:db8::43]"'], "2001:db8::43", F,
     ("2001:db8::43",)),
    ("2001:db8:1::1", ["2001:db8::42"], [], "2001:db8:1::1", U, ()),
    ("::ffff:10.0.0.2", ["198.51.100.1"], [], "198.51.100.1", X, ("198.51.100.1",)),
    ("::ffff:203.0.113.7", ["198.51.100.1"], [], "203.0.113.7", U, ()),
])
def test_resolve_client(peer, xff, fwd, client, header, chain):
    r = resolve_client(peer, xff, fwd, TRUSTED)
    assert (r.client, r.header, r.chain) == (client, header, chain)
    assert r.peer_trusted == (header is not None)


def test_no_trusted_proxies_configured():
    r = resolve_client("10.0.0.2", ["198.51.100.1"], [], trusted_matcher([]))
    assert r.client == "10.0.0.2" and not r.peer_trusted


def test_unknown_header_in_matcher():
    with pytest.raises(ValueError, match="x-forwarded-for, forwarded"):
        trusted_matcher([("10.0.0.0/8", "x-real-ip")])


def test_hops_are_bounded():
    hops = xff_hops([", ".join(f"10.0.{i // 256}.{i % 256}" for i in range(1000))])
    assert len(hops) == 32 and hops[-1] == "10.0.3.231"
    assert len(forwarded_hops(["for=1.1.1.1," * 100])) == 32


@pytest.mark.parametrize("values,hops", [
    (["for=192.0.2.60;proto=https;host=shop.example"],
     [Hop("192.0.2.60", "https", "shop.example")]),
    (['for="[2001:db8::1]:4711";by=x'], [Hop("2001:db8::1")]),
    (["by=1.1.1.1"], [Hop("")]),
    (["for=unknown", "for=_x"], [Hop("unknown"), Hop("_x")]),
    (["for=1.1.1.1;FOR=2.2.2.2"], [Hop("")]),
    (["for=1.1.1.1, , for=2.2.2.2"], [Hop("1.1.1.1"), Hop("2.2.2.2")]),
])
def test_forwarded_hops(values, hops):
    assert forwarded_hops(values) == hops


@pytest.mark.parametrize("peer,incoming,fwd,expected", [
    ("203.0.113.7", ["6.6.6.6"], [], "203.0.113.7"),                   # untrusted: replaced
    (NGINX, ["198.51.100.1"], [], "198.51.100.1, 10.0.0.2"),           # trusted: appended
    # the forged part left of the client is dropped: either end names the same client
    (NGINX, ["1.1.1.1", "198.51.100.1"], [], "198.51.100.1, 10.0.0.2"),
    (NGINX, ["198.51.100.1, 10.0.0.9"], [], "198.51.100.1, 10.0.0.9, 10.0.0.2"),
    (NGINX, ["198.51.100.1:80, unknown"], [], "10.0.0.2"),
    (NGINX, [], [], "10.0.0.2"),
    # an XFF proxy passing a forged Forwarded: XFF stays the chain we read
    (NGINX, ["203.0.113.9"], ["for=7.7.7.7"], "203.0.113.9, 10.0.0.2"),
    # a Forwarded proxy with the client's own XFF: the client from Forwarded, and XFF
    # says the same (it kept the incoming chain before, so the upstream saw two clients)
    (RFC, ["1.1.1.1"], ["for=198.51.100.1"], "198.51.100.1, 172.16.0.2"),
    (RFC, ["1.1.1.1"], ['for="[2001:db8::9]:1"'], "2001:db8::9, 172.16.0.2"),
    (RFC, ["1.1.1.1"], [], "172.16.0.2"),
    ("::ffff:10.0.0.2", ["198.51.100.1"], [], "198.51.100.1, 10.0.0.2"),
])
def test_outgoing_xff(peer, incoming, fwd, expected):
    r = resolve_client(peer, incoming, fwd, TRUSTED)
    assert outgoing_xff(r) == expected and outgoing_xff(r).split(", ")[0] == r.client


@pytest.mark.parametrize("peer,xff,fwd,expected", [
    ("203.0.113.7", [], ["for=7.7.7.7"], None),                     # untrusted: dropped
    (NGINX, ["203.0.113.9"], ["for=7.7.7.7"], None),                # not what NGINX writes
    (RFC, [], ["for=7.7.7.7, for=198.51.100.1;proto=https"],
     "for=198.51.100.1, for=172.16.0.2;proto=http"),
    (RFC, [], ['for="[2001:db8::9]:1"'], 'for="[2001:db8::9]", for=172.16.0.2;proto=http'),
    ("2001:db8:eeee::1", [], [], 'for="[2001:db8:eeee::1]";proto=http'),
])
def test_outgoing_forwarded(peer, xff, fwd, expected):
    assert outgoing_forwarded(resolve_client(peer, xff, fwd, TRUSTED), "http") == expected


# -- behind Debian's real nginx ---------------------------------------------------------------

NGINX_CONF = """
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/nginx-body;
    proxy_temp_path {dir}/nginx-proxy;
    fastcgi_temp_path {dir}/nginx-fastcgi;
    uwsgi_temp_path {dir}/nginx-uwsgi;
    scgi_temp_path {dir}/nginx-scgi;
    map $http_forwarded $forwarded_prior {{ "" ""; default "$http_forwarded, "; }}
    # the usual reverse-proxy block: appends to X-Forwarded-For, passes every other header
    server {{
        listen 127.0.0.1:{xff_port};
        location / {{
            proxy_pass http://127.0.0.1:{node_port};
            proxy_bind {xff_addr};
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
    # an RFC 7239 proxy (nginx's documented recipe): appends to Forwarded, and to XFF too
    server {{
        listen 127.0.0.1:{fwd_port};
        location / {{
            proxy_pass http://127.0.0.1:{node_port};
            proxy_bind {fwd_addr};
            proxy_set_header Host $host;
            proxy_set_header Forwarded "${{forwarded_prior}}for=$remote_addr;proto=$scheme";
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
    }}
}}
"""
# every party on its own loopback address: the client's is not the proxy's
DENIED, CLIENT, XFF_NGINX, FWD_NGINX = "127.0.0.2", "127.0.0.4", "127.0.0.3", "127.0.0.5"

FORGED = [
    {"Forwarded": "for=7.7.7.7"},
    {"Forwarded": "for=unknown"},
    {"Forwarded": "by=1.1.1.1"},
    {"Forwarded": 'for="[2001:db8::7]:443";proto=https'},
    {"Forwarded": f"for={XFF_NGINX}, for={FWD_NGINX}"},
    {"X-Real-IP": "7.7.7.7"},
    {"True-Client-IP": "7.7.7.7"},
    {"CF-Connecting-IP": "7.7.7.7"},
    {"X-Forwarded-For": "7.7.7.7"},
    {"X-Forwarded-For": f"7.7.7.7, {XFF_NGINX}, {FWD_NGINX}"},
    {"Forwarded": "for=7.7.7.7", "X-Forwarded-For": "7.7.7.7", "X-Real-IP": "7.7.7.7",
     "True-Client-IP": "7.7.7.7", "CF-Connecting-IP": "7.7.7.7"},
]


def _nginx() -> str:
    path = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx")
                                     else None)
    if path is None:
        reason = "Debian's nginx is not installed (apt-get install nginx-light)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + "; CI=true requires it")
        pytest.skip(reason)
    return path


@pytest.fixture
async def behind_nginx(tmp_path):
    """A real upstream ← `palisade node` (a process) ← nginx (a process), on loopback."""
    from tests.cluster import Node, free_port, until
    from tests.test_proxy_integration import Upstream

    nginx_bin = _nginx()
    up = Upstream()
    await up.start()
    node = Node("node", tmp_path, up, None, trusted_proxies=[
        XFF_NGINX, {"cidr": FWD_NGINX, "header": "forwarded"}])
    subprocess.run([sys.executable, "-m", "node.cli", "ip-list", "--state-dir",
                    str(node.state), "--create", "add", "deny", DENIED, "--reason", "test"],
                   check=True, capture_output=True, cwd=node.workdir.parent)
    ports = {"xff_port": free_port(), "fwd_port": free_port()}
    conf = tmp_path / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=tmp_path, node_port=node.port, xff_addr=XFF_NGINX,
                                      fwd_addr=FWD_NGINX, **ports))
    nginx = subprocess.Popen([nginx_bin, "-c", str(conf), "-e", str(tmp_path / "nginx-err.log")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        await node.start()

        async def listening() -> bool:
            assert nginx.poll() is None, (tmp_path / "nginx-err.log").read_text()
            try:
                _, w = await asyncio.open_connection("127.0.0.1", ports["fwd_port"])
            except OSError:
                return False
            w.close()
            return True
        await until("nginx listening", listening, 30, 0.05)
        yield up, {k: f"http://127.0.0.1:{p}" for k, p in ports.items()}
    finally:
        os.killpg(nginx.pid, signal.SIGTERM)    # its worker too
        nginx.wait(15)
        node.terminate()
        await up.runner.cleanup()


async def _get(base: str, source: str, headers: dict[str, str]) -> tuple[int, str, bytes]:
    conn = aiohttp.TCPConnector(local_addr=(source, 0))
    async with aiohttp.ClientSession(connector=conn) as s, s.get(
            base + "/api/items", headers=headers, timeout=aiohttp.ClientTimeout(total=10)) as r:
        return r.status, r.headers.get("Content-Type", ""), await r.read()


@pytest.mark.integration
@pytest.mark.parametrize("proxy,proxy_addr", [("xff_port", XFF_NGINX), ("fwd_port", FWD_NGINX)])
async def test_forged_client_headers_behind_nginx(behind_nginx, proxy, proxy_addr):
    """Issue 12: a denylisted client got 200 through nginx by sending `Forwarded: for=...`
    (nginx passes it through) and could make detection blame someone else. Now every forged
    claim leaves it itself, and the upstream is told the true client in X-Forwarded-For."""
    up, bases = behind_nginx
    for forged in FORGED:
        status, ctype, body = await _get(bases[proxy], DENIED, forged)
        assert (status, ctype) == (403, "application/problem+json"), (forged, status, body)
        assert json.loads(body)["status"] == 403
        seen = len(up.seen)
        status, _, body = await _get(bases[proxy], CLIENT, forged)
        assert status == 200, (forged, status, body)
        assert len(up.seen) == seen + 1
        h = {k.lower(): v for k, v in up.seen[-1]["headers"].items()}
        assert h["x-forwarded-for"] == f"{CLIENT}, {proxy_addr}", forged
        assert h["x-real-ip"] == CLIENT and h["x-forwarded-proto"] == "http", forged
        assert "7.7.7.7" not in json.dumps(h), forged
        assert "true-client-ip" not in h and "cf-connecting-ip" not in h, forged
        if proxy == "fwd_port":
            assert h["forwarded"] == f"for={CLIENT}, for={FWD_NGINX};proto=http", forged
        else:
            assert "forwarded" not in h, forged
    assert all(s["path"] == "/api/items" for s in up.seen)
