"""The simulator's API worlds (payments, SaaS): deterministic, every family present, the status
conventions docs/worlds.md documents, consistent truth, and the per-world evaluation."""

from __future__ import annotations

import json
from collections import Counter, defaultdict

import pytest

from node.engine import Decision
from node.evaluate import evaluate_against, evaluation_dict
from node.logs import LogReader
from node.record import record_from_json
from node.sim import REGISTRIES, WORLDS, Intent, Scenario, simulate, to_records, truth
from node.sim import devtool as dt
from node.sim import paybank as pb
from node.sim.apikit import form, jbody

API_WORLDS = ("payments", "saas")


def _small(world: str, seed: int = 3) -> Scenario:
    return Scenario.default(scale=0.1, seed=seed, duration=3600, world=world)


@pytest.fixture(scope="module", params=API_WORLDS)
def world(request):
    sc = _small(request.param)
    intents = list(simulate(sc))
    return sc, intents, list(to_records(intents, seed=3)), truth(sc, intents)


def test_same_seed_same_records_other_seed_other_records():
    for w in API_WORLDS:
        sc = Scenario.default(scale=0.05, seed=5, duration=300, world=w)
        a = [r.to_json() for r in to_records(simulate(sc), seed=5)]
        assert a == [r.to_json() for r in to_records(simulate(sc), seed=5)] and len(a) > 300
        other = Scenario.default(scale=0.05, seed=6, duration=300, world=w)
        assert [r.to_json() for r in to_records(simulate(other), seed=6)] != a


def test_every_family_runs_on_the_worlds_host(world):
    sc, intents, records, _ = world
    assert {it.family for it in intents} == set(REGISTRIES[sc.world])
    assert {r.host for r in records} == {WORLDS[sc.world].host}
    ts = [it.ts for it in intents]
    assert ts == sorted(ts) and sc.start <= ts[0] and ts[-1] < sc.start + sc.duration


def test_truth_has_world_and_kind_and_covers_everything(world):
    sc, intents, _, tr = world
    assert {it.ip for it in intents} == set(tr["ips"]) and tr["mixed_ips"] == []
    assert {it.session for it in intents if it.session} == set(tr["sessions"])
    fams = REGISTRIES[sc.world]
    kinds = Counter()
    for a in tr["actors"].values():
        f = fams[a["family"]]
        assert a["world"] == sc.world and a["label"] == f.label and a["kind"] == f.kind
        assert (a["kind"] == "bot") == (a["label"] != "human")
        kinds[a["kind"]] += 1
    assert kinds["person"] > 50 and kinds["integration"] >= 10
    assert kinds["bot"] >= sum(not f.human for f in fams.values()) >= 14


def _statuses(intents, records, family):
    return Counter(r.status for it, r in zip(intents, records, strict=True)
                   if it.family == family)


def test_payments_traffic_shows_its_conventions():
    sc = Scenario.default(scale=0.3, seed=7, duration=3600, world="payments")
    intents = list(simulate(sc))
    records = list(to_records(intents, seed=7))
    assert _statuses(intents, records, "pay_brute_dist")[423] > 0  # locked accounts
    assert _statuses(intents, records, "pay_mfa_brute")[403] > 0
    cards = _statuses(intents, records, "pay_card_testing")
    assert cards[402] > 4 * cards[200] > 0  # card testing: mostly declined
    assert _statuses(intents, records, "pay_key_enum") == Counter(
        {401: _statuses(intents, records, "pay_key_enum")[401]})
    web = _statuses(intents, records, "pay_web")
    assert web[204] > 0 and web[403] > 0 and web[200] > web[204]  # preflights, MFA
    assert set(_statuses(intents, records, "pay_sms_pumping")) <= {202, 429}


def test_saas_sdk_sleeps_out_its_429():
    sc = Scenario.only("dev_sdk", seed=2, duration=3600, world="saas")
    intents = list(simulate(sc))
    records = list(to_records(intents, seed=2))
    by_actor = defaultdict(list)
    for it, r in zip(intents, records, strict=True):
        by_actor[it.actor].append((it.ts, r.status))
    limited = 0
    for reqs in by_actor.values():
        for (t, st), (t2, _) in zip(reqs, reqs[1:], strict=False):
            if st == 429:
                limited += 1
                assert int(t2) // 60 > int(t) // 60  # the next request waits for the window
    assert limited > 0


def _it(method, path, query="", body=None, headers=None, ts=1000.0, session=None, ip="1.2.3.4"):
    return Intent(ts, ip, method, path, query, "UA", headers or {}, body, session, None, "a",
                  "human", "x")


def test_payments_model_conventions():
    m = pb.PaybankModel(1)
    st = lambda it: m.handle(it)[0]  # noqa: E731
    fh = {"Content-Type": "application/x-www-form-urlencoded"}
    n, user = 12, pb.customer(12)

    def grant(pw, ts, device="dev-x", client="web-spa"):
        return _it("POST", "/oauth/token", body=form(grant_type="password", client_id=client,
                                                      username=user, password=pw,
                                                      device_id=device), headers=fh, ts=ts)

    assert st(_it("OPTIONS", "/v1/accounts")) == 204
    assert st(grant("nope", 1000)) == 400  # invalid_grant
    assert st(grant(pb.password_for(n), 1001, client="evil")) == 401  # invalid_client
    assert st(grant(pb.password_for(n), 1002)) == 403  # mfa_required from a new device
    tok = pb.mfa_token(n, 1002)
    assert st(_it("POST", "/v1/mfa/verify", body=jbody({"mfa_token": tok, "code": "x"}))) == 400
    assert st(_it("POST", "/v1/mfa/verify", body=jbody(
        {"mfa_token": tok, "code": pb.sms_code(tok)}), ts=1010)) == 200
    assert st(grant(pb.password_for(n), 1020, device=pb.known_device(n, 1))) == 200
    for k in range(pb.LOCK_AFTER):
        assert st(grant("wrong", 1100 + k)) == 400
    assert st(grant(pb.password_for(n), 1200, device=pb.known_device(n))) == 423
    assert st(grant(pb.password_for(n), 1100 + pb.LOCK_SECONDS + 10,
                    device=pb.known_device(n))) == 200
    access, refresh = pb.login_tokens(n, "d", 2000.0)
    bearer = {"Authorization": "Bearer " + access}
    assert st(_it("GET", "/v1/accounts", headers=bearer, ts=2001)) == 200
    assert st(_it("GET", "/v1/accounts", headers=bearer, ts=2000 + pb.ACCESS_TTL + 1)) == 401
    acct = pb.accounts_of(n)[0]
    path = f"/v1/accounts/{acct}/transactions"
    assert st(_it("GET", path, f"cursor={pb.cursor(acct, 50)}", headers=bearer, ts=2002)) == 200
    assert st(_it("GET", path, "cursor=32.deadbeef", headers=bearer, ts=2002)) == 400
    assert st(_it("POST", "/oauth/token", body=form(grant_type="refresh_token", client_id="ios-app",
                                                     refresh_token=refresh), headers=fh)) == 200
    pk = {"X-Api-Key": pb.publishable_key(3)}
    pan = pb.customer_card(5)
    card = {"number": pan, "exp": pb.card_exp(pan), "cvc": pb.card_cvc(pan)}
    assert st(_it("POST", "/v1/cards/verify", body=jbody(card), headers=pk)) == 200
    bad = {**card, "cvc": f"{(int(card['cvc']) + 1) % 1000:03d}"}
    assert st(_it("POST", "/v1/cards/verify", body=jbody(bad), headers=pk)) == 402  # declined
    assert st(_it("GET", "/v1/balance", headers=pk)) == 403  # a publishable key only verifies
    assert st(_it("GET", "/v1/balance", headers={"X-Api-Key": "sk_live_0001" + "0" * 24})) == 401
    sends = [st(_it("POST", "/v1/otp/send", body=jbody({"phone": "+4915112345678"}),
                    ts=3000 + k)) for k in range(pb.OTP_PER_PHONE + 1)]
    assert sends == [202] * pb.OTP_PER_PHONE + [429]


def test_saas_model_conventions():
    m = dt.DevtoolModel(1)
    st = lambda it: m.handle(it)[0]  # noqa: E731
    js = {"Content-Type": "application/json"}

    def login(n, pw, ts):
        return _it("POST", "/api/session", body=jbody({"email": dt.user_email(n), "password": pw}),
                   headers=js, ts=ts)

    assert st(login(3, "nope", 1000)) == 401
    assert st(login(3, dt.password_for(3), 1001)) == 200
    n = 8  # two-factor
    assert dt.has_2fa(n) and st(login(n, dt.password_for(n), 1002)) == 200
    tok = dt.otp_token(n, 1002)
    otp = lambda code, ts: _it("POST", "/api/session/otp", body=jbody(  # noqa: E731
        {"otp_token": tok, "code": code}), headers=js, ts=ts)
    assert st(otp("000000" if dt.totp(n, 1010) != "000000" else "1", 1010)) == 401
    assert st(otp(dt.totp(n, 1011), 1011)) == 200
    for k in range(dt.FAIL_LIMIT):
        assert st(login(5, "x", 1100 + k)) == 401
    assert st(login(5, dt.password_for(5), 1200)) == 429  # throttled, Retry-After
    key = {"Authorization": "Bearer " + dt.api_key(7)}
    got = [st(_it("GET", "/v1/projects", headers=key, ts=6000 + k * 0.1))
           for k in range(dt.RATE + 1)]
    assert got == [200] * dt.RATE + [429]
    assert st(_it("GET", "/v1/projects", headers=key, ts=6060.5)) == 200  # the next minute
    assert st(_it("GET", "/v1/projects", headers={"X-Api-Key": "dtk_0007" + "0" * 28})) == 401
    jw = {"Authorization": "Bearer " + dt.jwt(3, "s1", 7000.0), **js}
    gql = lambda body: _it("POST", "/graphql", body=jbody(body), headers=jw, ts=7001)  # noqa: E731
    assert st(gql({"query": "{ __schema { types { name } } }"})) == 200  # errors in the body
    assert st(gql([{"query": "{ viewer { login } }"}] * (dt.MAX_BATCH + 1))) == 400
    assert st(_it("POST", "/graphql", body=b"{", headers=jw, ts=7001)) == 400
    assert st(_it("GET", "/graphql", headers=jw, ts=7001)) == 405
    org = dt.org_of(3)
    p = dt.projects_of(org)[0]
    pages = f"/v1/projects/{p}/issues"
    assert st(_it("GET", pages, "page=9999&per_page=100", headers=jw, ts=7002)) == 200
    assert st(_it("GET", pages, "per_page=500", headers=jw, ts=7002)) == 422
    exports = [st(_it("POST", "/v1/exports", body=jbody({"project": p}), headers=jw,
                      ts=7003 + k)) for k in range(dt.MAX_PENDING_EXPORTS + 1)]
    assert exports == [202] * dt.MAX_PENDING_EXPORTS + [429]
    eid = dt.export_id(org, p, 7003)
    dl = f"/v1/exports/{eid}/download"
    assert st(_it("GET", dl, headers=jw, ts=7004)) == 409
    ready = 7003 + dt.export_seconds(p) + 1
    jw2 = {"Authorization": "Bearer " + dt.jwt(3, "s1", ready - 1)}
    assert st(_it("GET", dl, headers=jw2, ts=ready)) == 200
    card = {"number": "4242424242424241", "exp": "01/27", "cvc": "000"}
    assert st(_it("POST", "/v1/billing/payment-methods", body=jbody({"card": card}),
                  headers=jw, ts=7005)) == 200  # declines are 200 with status "declined"


def test_all_worlds_merge_in_time_order_on_their_hosts():
    sc = Scenario.default(scale=0.05, seed=4, duration=300, world="all")
    intents = list(simulate(sc))
    records = list(to_records(intents, seed=4))
    assert [it.ts for it in intents] == sorted(it.ts for it in intents)
    assert {r.host for r in records} == {w.host for w in WORLDS.values()}
    tr = truth(sc, intents)
    assert {a["world"] for a in tr["actors"].values()} == set(WORLDS) and not tr["mixed_ips"]
    # Each world's records are the ones it makes alone (ids aside): worlds do not interact.
    shop = Scenario.default(scale=0.05, seed=4, duration=300)
    alone = [r.to_json() for r in to_records(simulate(shop), seed=4)]
    mine = [r for r in records if r.host == WORLDS["shop"].host]
    for r in mine:
        r.id = None
    assert [json.loads(x) | {"id": None} for x in alone] == [json.loads(r.to_json()) | {"id": None}
                                                             for r in mine]


def test_command_line_worlds_and_combined_log(tmp_path, capsys):
    from node.sim.__main__ import main

    log, tr = tmp_path / "access.log", tmp_path / "truth.json"
    assert main(["--world", "payments", "--scale", "0.05", "--duration", "300", "--format",
                 "combined", "-o", str(log), "--truth", str(tr)]) == 0
    lines = log.read_text().splitlines()
    recs = list(LogReader([str(log)]))
    assert len(recs) == len(lines) > 300
    assert all(r.session is None and r.user is None and r.duration_ms is not None for r in recs)
    assert {a["world"] for a in json.loads(tr.read_text())["actors"].values()} == {"payments"}
    with pytest.raises(SystemExit) as e:
        main(["--world", "mars"])
    assert e.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


# -- evaluation per world --------------------------------------------------------------------

def _d(ip, bot_type, reaction, ts, ips=None, session=None, actor="ip"):
    return Decision(ts=ts, ip=ip, ips=tuple(ips or (ip,)), session=session, app="a",
                    bot_type=bot_type, confidence=0.9, profile="default", reaction=reaction,
                    duration=None, detectors=(), evidence=(), ttd_requests=3, ttd_seconds=1.0,
                    actor=actor)


def _actor(world, label, kind, ips, family="f"):
    return {"label": label, "family": family, "world": world, "kind": kind, "ips": ips,
            "first_ts": 0.0, "requests": 10}


HAND = {
    "ips": {}, "sessions": {"s-person": "human", "s-bot": "scraping"},
    "actors": {
        "b1": _actor("payments", "account_takeover", "bot", ["9.0.0.1"], "pay_stuffing_dc"),
        "b2": _actor("payments", "scraping", "bot", ["9.0.0.2"], "pay_low_slow"),
        "b3": _actor("payments", "api_abuse", "bot", ["9.0.0.3"], "pay_key_enum"),
        "p1": _actor("payments", "human", "person", ["8.0.0.1"]),
        "p2": _actor("payments", "human", "person", ["8.0.0.2"]),
        "p3": _actor("payments", "human", "person", ["8.0.0.3"]),
        "i1": _actor("payments", "human", "integration", ["7.0.0.1"], "pay_nightly"),
        "i2": _actor("payments", "human", "integration", ["7.0.0.2"], "pay_sdk"),
        "sb": _actor("saas", "scraping", "bot", ["6.0.0.1"], "dev_headless"),
        "sp": _actor("saas", "human", "person", ["6.0.0.2", "6.0.0.3"]),
    },
}


def test_evaluation_per_world_on_a_hand_made_case():
    ds = [
        _d("9.0.0.1", "scraping", "monitor", 5.0),            # b1: first detection wrong type
        _d("9.0.0.1", "account_takeover", "denylist", 9.0),   # ... then right
        _d("9.0.0.2", "scraping", "denylist", 3.0),           # b2: right at once
        _d("8.0.0.1", "account_takeover", "denylist", 4.0, ips=["8.0.0.0/24"]),  # p1, p2, p3
        _d("8.0.0.2", "scraping", "deny_session", 6.0, session="s-person", actor="session"),
        _d("7.0.0.1", "api_abuse", "graylist", 7.0),          # i1 IP-blocked
        _d("7.0.0.2", "api_abuse", "monitor", 7.0),           # i2 monitor only
        _d("6.0.0.3", "api_abuse", "monitor", 2.0),           # sp monitor only
        _d("6.0.0.1", "scraping", "deny_session", 8.0, session="s-bot", actor="session"),
    ]
    ev = evaluate_against(ds, HAND)
    pay, saas = ev.worlds["payments"], ev.worlds["saas"]
    assert (pay.bots_detected, pay.first_typed) == (2, 1)
    assert pay.types["account_takeover"].recall == 1.0 and pay.types["api_abuse"].recall == 0.0
    assert pay.persons == 3 and pay.person_ips_ip_blocked == {"8.0.0.1", "8.0.0.2", "8.0.0.3"}
    assert pay.persons_ip_blocked == 3 and pay.persons_session_denied == 0  # blocked wins
    assert pay.integrations_ip_blocked == ["i1"] and pay.integrations_monitor_only == 1
    assert pay.integration_families_blocked == {"pay_nightly": 1}
    assert (saas.bots_detected, saas.first_typed, saas.persons_monitor_only) == (1, 1, 1)
    assert saas.person_ips == {"6.0.0.2", "6.0.0.3"} and not saas.person_ips_ip_blocked
    d = evaluation_dict(ev)["worlds"]
    assert d["payments"]["first_type_accuracy"] == 0.5
    assert d["payments"]["integrations_ip_blocked"] == ["i1"]
    assert d["saas"]["people_monitor_only"] == 1
    # A session denied on a shared address reaches the session's owner kind, not the address.
    ds2 = [_d("8.0.0.2", "scraping", "deny_session", 6.0, session="s-person", actor="session")]
    pay2 = evaluate_against(ds2, HAND).worlds["payments"]
    assert pay2.persons_session_denied == 1 and not pay2.person_ips_ip_blocked


def test_truth_without_world_reads_as_the_shop():
    old = {"actors": {"h": {"label": "human", "family": "human", "ips": ["1.1.1.1"]},
                      "b": {"label": "scraping", "family": "scraper", "ips": ["2.2.2.2"]}}}
    ev = evaluate_against([_d("2.2.2.2", "scraping", "denylist", 1.0)], old)
    assert set(ev.worlds) == {"shop"} and ev.worlds["shop"].persons == 1
    assert ev.worlds["shop"].first_typed == 1


def test_replay_json_ends_with_the_evaluation(tmp_path, capsys):
    from node.cli import main

    sc = Scenario.default(scale=0.05, seed=2, duration=600, world="saas")
    intents = list(simulate(sc))
    path, tr = tmp_path / "r.jsonl", tmp_path / "t.json"
    path.write_text("".join(r.to_json() + "\n" for r in to_records(intents, seed=2)))
    tr.write_text(json.dumps(truth(sc, intents)))
    assert main(["replay", "--json", "--no-progress", "--truth", str(tr), str(path)]) == 0
    cap = capsys.readouterr()
    last = json.loads(cap.out.splitlines()[-1])["evaluation"]
    assert set(last["worlds"]) == {"saas"} and last["worlds"]["saas"]["people"] > 10
    assert "per world" in cap.err
    for line in cap.out.splitlines()[:-1]:
        assert "bot_type" in json.loads(line)
    assert record_from_json(path.read_text().splitlines()[0]).host == dt.HOST


def test_actors_schedule_forward(monkeypatch):
    """An actor's own plan never goes back in time (beyond a preflight's delay, which `req`
    absorbs): polls, refreshes and batches are interleaved, not appended out of order."""
    from node.sim import apikit

    late: Counter = Counter()
    orig = apikit.ApiActor.req

    def req(self, t, *a, **kw):
        if t < self._t - 0.2:
            late[self.family] += 1
        return orig(self, t, *a, **kw)

    monkeypatch.setattr(apikit.ApiActor, "req", req)
    for w in API_WORLDS:
        assert sum(1 for _ in simulate(_small(w, seed=9))) > 1000
    assert not late
