"""The traffic simulator (node/sim/) and its HTTP driver."""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import itertools
import json
import re
import time

import pytest
from aiohttp import web

from node.demo.shop import start_shop
from node.record import record_from_json
from node.sim import (
    BOT_TYPES,
    FAMILIES,
    HUMAN,
    Intent,
    Scenario,
    simulate,
    to_records,
    truth,
)
from node.sim.http_driver import drive

# Half an hour, every family (bots keep at least one actor), fewer humans: ~15k requests.
SMALL = Scenario.default(scale=0.2, seed=11, duration=1800)


@pytest.fixture(scope="module")
def intents() -> list[Intent]:
    return list(simulate(SMALL))


@pytest.fixture(scope="module")
def records(intents):
    return list(to_records(intents, seed=11))


@pytest.fixture(scope="module")
def labels(intents):
    return truth(SMALL, intents)


def by_family(intents, name):
    return [it for it in intents if it.family == name]


def test_same_seed_same_records_other_seed_other_records():
    sc = Scenario.default(scale=0.05, seed=5, duration=300)
    a = [r.to_json() for r in to_records(simulate(sc), seed=5)]
    b = [r.to_json() for r in to_records(simulate(sc), seed=5)]
    assert a == b and len(a) > 1000
    other = list(simulate(Scenario.default(scale=0.05, seed=6, duration=300)))
    assert [(it.ts, it.path) for it in other] != [(r.ts, r.path) for r in
                                                  map(record_from_json, a)]


def test_time_ordered_and_inside_the_window(intents):
    ts = [it.ts for it in intents]
    assert ts == sorted(ts)
    assert SMALL.start <= ts[0] and ts[-1] < SMALL.start + SMALL.duration


def test_every_family_and_bot_type_appears(intents):
    assert {it.family for it in intents} == set(FAMILIES)
    assert {it.label for it in intents} == {HUMAN, *BOT_TYPES}
    for it in intents[:2000]:
        assert FAMILIES[it.family] == it.label


def test_default_scale_has_the_documented_size():
    sc = Scenario.default()
    actors = sc.actors()
    humans = [a for a in actors if a.label == HUMAN]
    assert 450 <= len(humans) <= 600
    assert len(actors) - len(humans) >= 20


def test_a_family_does_not_depend_on_the_others(intents):
    alone = list(simulate(Scenario.only("scanner", scale=0.2, seed=11, duration=1800)))
    assert {it.family for it in alone} == {"scanner"}
    assert alone == by_family(intents, "scanner")


def test_only_accepts_bot_types_and_human_background():
    sc = Scenario.only("account_takeover", humans=0.01)
    assert {"cred_stuffing", "distributed_cred_stuffing", "brute_force", "slow_ato"} <= set(
        sc.families)
    assert sc.labels() == {"account_takeover", HUMAN}
    assert Scenario.humans_only(0.1).labels() == {HUMAN}
    with pytest.raises(ValueError, match="unknown family"):
        Scenario.only("nope")


def test_records_are_complete_and_valid(records, intents):
    assert [r.id for r in records[:3]] == [1, 2, 3] and len(records) == len(intents)
    for r, it in zip(records[::5], intents[::5], strict=True):
        assert record_from_json(r.to_json()) == r
        assert r.session == it.session and r.user == it.user
        assert r.status in (200, 201, 400, 401, 404, 405, 409, 413)
        assert r.duration_ms > 0 and r.host == "shop.example"
        assert r.user is None or r.path == "/api/login"


def test_humans_browse_like_humans(records, labels):
    human = [r for r in records if labels["ips"][r.ip] == HUMAN]
    status = collections.Counter(r.status for r in human)
    assert status[404] == 0 and status[201] > 0  # nobody probes; some buy
    # Current browsers only (except the monitor and the partner, which say what they are).
    browsers = {r.ua for r in human if r.ua.startswith("Mozilla/5.0 (") and "Uptime" not in r.ua}
    for ua in browsers:
        m = re.search(r"(?:Chrome|CriOS|Firefox|Version)/(\d+)", ua)
        assert m and int(m.group(1)) in {18, 26, 130, 140, 141, 142, 144, 145}, ua
    # Gaps between a human's page actions: seconds to minutes, irregular.
    by_session = collections.defaultdict(list)
    for r in human:
        if r.session and not r.ua.startswith("acme"):
            by_session[r.session].append(r.ts)
    gaps = [b - a for ts in by_session.values() for a, b in itertools.pairwise(ts) if b - a > 0.7]
    gaps.sort()
    assert 2 < gaps[len(gaps) // 2] < 30 and gaps[int(len(gaps) * 0.99)] > 60


def test_human_visits_are_5_to_80_requests(intents):
    visits = collections.Counter()
    n = collections.Counter()
    for it in by_family(intents, "human"):
        n[it.actor] += it.path == "/" and it.session is None  # a visit starts
        visits[(it.actor, n[it.actor])] += 1
    sizes = sorted(visits.values())
    assert sizes[-1] <= 80 and sizes[len(sizes) // 2] >= 5


def test_office_nat_puts_25_people_on_one_address(labels):
    per_ip = collections.Counter(ip for a in labels["actors"].values()
                                 if a["family"] == "office_nat" for ip in a["ips"])
    assert list(per_ip.values()) == [25]
    ip = next(iter(per_ip))
    assert labels["ips"][ip] == HUMAN
    sessions = {sid for sid, label in labels["sessions"].items() if label == HUMAN}
    assert len(sessions) > 25


def test_carrier_users_share_a_64_and_a_cgnat_address(labels):
    v6 = [a["ips"][0] for a in labels["actors"].values() if a["family"] == "mobile_v6"]
    nets = {ipaddress.ip_network(f"{ip}/64", strict=False) for ip in v6}
    assert len(nets) == 1 and len(set(v6)) == len(v6) >= 25
    cgnat = {ip for a in labels["actors"].values() if a["family"] == "cgnat" for ip in a["ips"]}
    assert len(cgnat) == 1
    assert sum(a["family"] == "cgnat" for a in labels["actors"].values()) >= 35


def test_no_address_is_both_human_and_bot(labels):
    assert labels["mixed_ips"] == []


def test_password_retry_fails_three_times_then_succeeds(records, intents):
    fam = {it.actor for it in by_family(intents, "password_retry")}
    by_actor = collections.defaultdict(list)
    for r, it in zip(records, intents, strict=True):
        if it.actor in fam and r.path == "/api/login":
            by_actor[it.actor].append(r.status)
    assert by_actor and all(s[:4] == [401, 401, 401, 200] for s in by_actor.values())


def test_uptime_monitor_every_60_seconds(intents):
    ts = [it.ts for it in by_family(intents, "uptime_monitor")]
    gaps = [b - a for a, b in itertools.pairwise(ts)]
    assert len(ts) >= 28 and all(59.95 < g < 60.05 for g in gaps)


def test_scrapers_are_fast_and_regular(intents):
    sc = by_family(intents, "scraper")
    per = collections.defaultdict(list)
    for it in sc:
        per[it.actor].append(it.ts)
    for ts in per.values():
        gaps = [b - a for a, b in itertools.pairwise(ts)][5:]
        mean = sum(gaps) / len(gaps)
        sd = (sum((g - mean) ** 2 for g in gaps) / len(gaps)) ** 0.5
        assert mean <= 1.05 and sd / mean < 0.1


def test_scanners_probe_and_miss(records, labels):
    crawl = [r for r in records if labels["ips"][r.ip] == "security_crawlers"]
    share_404 = sum(r.status == 404 for r in crawl) / len(crawl)
    assert share_404 > 0.3
    paths = {r.path for r in crawl}
    assert {"/.env", "/.git/config", "/wp-login.php", "/phpmyadmin/"} <= paths
    browser_ua = {r.ua for r in crawl if r.ua.startswith("Mozilla/5.0 (Windows")
                  or r.ua.startswith("Mozilla/5.0 (Macintosh")}
    assert browser_ua  # one scanner hides behind a browser


def test_credential_stuffing_shapes(labels, intents):
    one_ip = by_family(intents, "cred_stuffing")
    by_ip = collections.defaultdict(set)
    for it in one_ip:
        if it.user:
            by_ip[it.ip].add(it.user)
    assert all(len(users) > 100 for users in by_ip.values())
    dist = by_family(intents, "distributed_cred_stuffing")
    ips = collections.Counter(it.ip for it in dist)
    assert 50 <= len(ips) <= 200 and max(ips.values()) <= 3
    assert len({it.ua for it in dist}) == 1
    actor = labels["actors"][dist[0].actor]
    assert len(actor["ips"]) == len(ips) and actor["label"] == "account_takeover"


def test_resource_hog_downloads_and_uploads_big(records, labels):
    hog = [r for r in records if labels["ips"][r.ip] == "resource_consumption"]
    assert sum(r.resp_bytes for r in hog) > 20_000_000
    assert any(r.status == 413 for r in hog) and max(r.req_bytes for r in hog) > 2_000_000
    exports = [r.duration_ms for r in hog if r.path == "/api/export"]
    assert min(exports) > 80


def test_session_rotation_cycles_sessions_on_one_address(intents):
    rot = by_family(intents, "session_rotation")
    assert len({it.ip for it in rot}) == 1
    assert len({it.session for it in rot}) > 50


def test_truth_maps_every_ip_and_session(intents, labels):
    assert {it.ip for it in intents} == set(labels["ips"])
    assert {it.session for it in intents if it.session} == set(labels["sessions"])
    for a in labels["actors"].values():
        assert a["label"] == FAMILIES[a["family"]] and a["ips"] and a["requests"] > 0


def test_truth_without_intents_reruns_the_simulation():
    sc = Scenario.only("slow_ato", seed=2)
    assert truth(sc) == truth(sc, list(simulate(sc)))


@pytest.mark.integration
def test_generation_speed():
    sc = Scenario.default()
    t = time.perf_counter()
    n = sum(1 for _ in simulate(sc))
    rate = n / (time.perf_counter() - t)
    assert 50_000 <= n <= 150_000
    assert rate > 20_000, f"{rate:.0f} intents/s"


# -- HTTP driver -----------------------------------------------------------------------------

async def _ok(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def _intent(ts, path="/api/health", session=None, actor="a", method="GET", body=None, **kw):
    return Intent(ts, kw.get("ip", "198.18.0.9"), method, path, kw.get("query", ""), "UA/1",
                  kw.get("headers", {}), body, session, None, actor, HUMAN, "human")


async def test_driver_sends_address_ua_cookie_and_body(aiohttp_server):
    seen = []

    async def echo(request: web.Request) -> web.Response:
        seen.append((request.method, request.rel_url.raw_path, request.rel_url.raw_query_string,
                     request.headers.get("X-Forwarded-For"), request.headers["User-Agent"],
                     request.cookies.get("sid"), await request.read()))
        resp = web.Response(text="ok")
        if request.path == "/login":
            resp.set_cookie("sid", "server-2")
        elif "sid" not in request.cookies:
            resp.set_cookie("sid", "server-1")
        return resp

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    server = await aiohttp_server(app)
    plan = [
        _intent(0.0, "/", None),
        _intent(0.1, "/x", "sim-1", query="q=%27a", ip="2001:db8::7"),
        _intent(0.2, "/login", "sim-1", method="POST", body=b"{}"),
        _intent(0.3, "/y", "sim-2"),
        _intent(0.3, "/..%2fetc/passwd", None, actor="b"),
    ]
    results = []
    stats = await drive(plan, str(server.make_url("/")), speedup=0, concurrency=4,
                        on_result=lambda it, status: results.append((it.path, status)))
    assert stats.sent == 5 and stats.errors == 0 and stats.statuses[200] == 5
    assert sorted(results) == sorted((it.path, 200) for it in plan)
    a = [s for s in seen if s[1] != "/..%2fetc/passwd"]
    assert [(m, p, c) for m, p, _, _, _, c, _ in a] == [
        ("GET", "/", None), ("GET", "/x", "server-1"), ("POST", "/login", "server-1"),
        ("GET", "/y", "server-2")]  # the server's cookies replace the simulated ones
    assert a[1][2] == "q=%27a" and a[1][3] == "2001:db8::7" and a[1][4] == "UA/1"
    assert a[2][6] == b"{}"
    assert ("GET", "/..%2fetc/passwd") in {s[:2] for s in seen}


async def test_driver_replays_time_gaps_divided_by_speedup(aiohttp_server):
    app = web.Application()
    app.router.add_get("/api/health", _ok)
    server = await aiohttp_server(app)
    plan = [_intent(100.0), _intent(101.0, actor="b"), _intent(103.0, actor="c")]
    t = time.perf_counter()
    await drive(plan, str(server.make_url("")), speedup=20, concurrency=2, trust_xff=False)
    assert 0.14 < time.perf_counter() - t < 1.0


async def test_driver_stops_cleanly_when_cancelled(aiohttp_server):
    app = web.Application()
    app.router.add_get("/api/health", _ok)
    server = await aiohttp_server(app)
    sent = []
    plan = (_intent(float(k)) for k in range(1000))
    task = asyncio.ensure_future(drive(plan, str(server.make_url("")), speedup=10,
                                       on_result=lambda it, s: sent.append(s)))
    await asyncio.sleep(0.35)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert 2 <= len(sent) <= 6


async def test_driver_against_the_shop_matches_the_model():
    runner = await start_shop("127.0.0.1", 0, seed=4, work_scale=0)
    try:
        host, port = runner.addresses[0][:2]
        sc = Scenario.default(scale=0.05, seed=4, duration=600).with_counts(
            resource_hog=0, scraper=0, query_abuse=0, pagination_abuse=0, cred_stuffing=0)
        plan = list(itertools.islice(simulate(sc), 400))
        model = [r.status for r in to_records(plan, seed=4)]
        got: dict[int, int] = {}
        stats = await drive(plan, f"http://{host}:{port}", speedup=0, concurrency=16,
                            on_result=lambda it, status: got.__setitem__(id(it), status))
        assert stats.errors == 0
        assert [got[id(it)] for it in plan] == model
        assert 401 in model or 201 in model  # logins and carts took part
    finally:
        await runner.cleanup()


def test_command_line_writes_records_and_truth(tmp_path, capsys):
    from node.sim.__main__ import main

    out, tr = tmp_path / "t.jsonl", tmp_path / "truth.json"
    assert main(["--only", "brute_force", "--duration", "120", "-o", str(out),
                 "--truth", str(tr)]) == 0
    recs = [record_from_json(line) for line in out.read_text().splitlines()]
    assert recs and all(r.path == "/api/login" for r in recs)
    assert set(json.loads(tr.read_text())["ips"].values()) == {"account_takeover"}
    assert main(["--only", "nope"]) == 2
    assert "unknown family" in capsys.readouterr().err
