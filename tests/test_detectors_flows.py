"""Business-flow and account-side detectors: each fires on the abuse it targets and stays quiet
on people and on customers' integrations doing the same flows the ordinary way."""

from __future__ import annotations

import pytest

from node.config import parse_config_text as load_config_text
from node.engine import Engine
from node.engine.roles import infer_role
from node.sim import Scenario, simulate, to_records
from tests.detector_kit import CHROME, T0, finding, fired, fires, quiet, rec, record_firings, run

HOST = "api.pay.example"
PY = "python-requests/2.32.3"


def post(i, path, status, *, ts, ip="198.51.100.7", session=None, user=None, ua=CHROME):
    return rec(i, path, ts=ts, ip=ip, method="POST", status=status, session=session,
               user=user, ua=ua, host=HOST, resp_bytes=90)


@pytest.mark.parametrize(("method", "path", "role"), [
    ("POST", "/oauth/token", "login"),
    ("POST", "/api/session", "login"),
    ("POST", "/v1/auth/refresh", "refresh"),
    ("POST", "/v1/otp/send", "otp_send"),
    ("POST", "/v1/mfa/verify", "otp_verify"),
    ("POST", "/v1/signup", "signup"),
    ("POST", "/api/users/register", "signup"),
    ("POST", "/v1/cards/verify", "card_check"),
    ("POST", "/v1/cards/{id}/verify", "card_check"),
    ("POST", "/v1/billing/payment-methods", "card_check"),
    ("POST", "/v1/user/phone", "otp_send"),
    ("POST", "/api/session/otp", "otp_verify"),
    ("POST", "/v1/orgs", "signup"),
    ("POST", "/v1/payments", "payment"),
    ("GET", "/v1/payments", None),          # listing payments changes nothing
    ("POST", "/api/auth/forgot-password", "password_reset"),
    ("POST", "/graphql", "graphql"),
    ("GET", "/v1/exports/{id}", "export"),
    ("GET", "/healthz", "health"),
    ("GET", "/api/products/{id}", None),
    ("POST", "/webhooks/payments", "webhook"),   # a provider's callback, not a payment
])
def test_roles_inferred_from_vocabulary(method, path, role):
    assert infer_role(method, path) == role


def test_configured_role_overrides_inference():
    cfg = load_config_text("""
applications:
  - name: pay
    endpoint_roles:
      "POST /v1/customers": signup
      "POST /v1/otp/send": none
""").engine
    eng = Engine(cfg)
    assert eng._endpoint(0, "POST", "/v1/customers").role == "signup"
    assert eng._endpoint(0, "POST", "/v1/otp/send").role is None


def test_unknown_role_in_configuration_is_one_error():
    from node.errors import ConfigError
    with pytest.raises(ConfigError, match=r"endpoint_roles.*must be one of"):
        load_config_text("applications:\n  - name: a\n    endpoint_roles:\n"
                         "      'POST /x': lgin\n")


@fires("account_attack")
def test_account_attack_fires_on_one_account_from_many_addresses():
    # 40 addresses, one or two guesses each, all at the same account; its owner logs in
    # from home in the middle of it.
    recs, i = [], 0
    for k in range(40):
        for _ in range(1 + k % 2):
            i += 1
            recs.append(post(i, "/oauth/token", 400, ts=T0 + i * 7, ip=f"100.{k}.3.{k + 1}",
                             user="victim@example.com"))
        if k == 20:
            i += 1
            recs.append(post(i, "/oauth/token", 200, ts=T0 + i * 7, ip="192.0.2.80",
                             user="victim@example.com"))
    eng = Engine()
    out = [d for r in recs for d in eng.process(r)]
    assert out and {d.bot_type for d in out} == {"account_takeover"}
    named = {a for d in out for a in d.ips}
    assert len(named) >= 20
    assert "192.0.2.80" not in named          # the owner is never named
    assert any(n == "account_attack" for d in out for n, _, _ in d.detectors)


@fires("otp_guessing")
def test_otp_guessing_fires_on_codes_tried_after_a_right_password():
    recs = [post(1, "/oauth/token", 401, ts=T0, session="tok-1", user="a@example.com")]
    recs += [post(i, "/v1/mfa/verify", 401, ts=T0 + i, session="tok-1") for i in range(2, 30)]
    eng = run(recs)
    f = finding(eng, "otp_guessing", "198.51.100.7")
    assert fired(f) and f.value >= 20


@fires("sms_pumping")
def test_sms_pumping_fires_on_codes_sent_and_never_verified():
    recs = [post(i, "/v1/otp/send", 202, ts=T0 + 3 * i) for i in range(1, 40)]
    eng = run(recs)
    assert fired(finding(eng, "sms_pumping", "198.51.100.7"))


@fires("card_testing")
def test_card_testing_fires_on_declined_card_checks():
    recs = [post(i, "/v1/cards/verify", 402 if i % 10 else 200, ts=T0 + 2 * i,
                 session="tok-9") for i in range(1, 60)]
    eng = run(recs)
    f = finding(eng, "card_testing", "198.51.100.7")
    assert fired(f) and f.value > 40


@fires("fake_accounts")
def test_fake_accounts_fires_on_a_sign_up_factory():
    recs = [post(i, "/v1/signup", 201, ts=T0 + 5 * i) for i in range(1, 30)]
    eng = run(recs)
    assert fired(finding(eng, "fake_accounts", "198.51.100.7"))


# -- quiet: people and customers doing the same flows the ordinary way -------------------------

def _person(k: int, t: float) -> list:
    """Sign up, get a code, mistype it once, enter it, log in (MFA), pay, a declined card
    then a good one."""
    ip, s = f"203.0.113.{k % 200 + 1}", f"tok-{k}"
    steps = [("/v1/signup", 201), ("/v1/otp/send", 202), ("/v1/otp/verify", 401),
             ("/v1/otp/verify", 200), ("/oauth/token", 401), ("/v1/mfa/verify", 200),
             ("/v1/cards/verify", 402), ("/v1/cards/verify", 200), ("/v1/payments", 201)]
    return [post(k * 100 + j, p, st, ts=t + j * 20, ip=ip, session=s,
                 user=f"u{k}@example.com" if p == "/oauth/token" else None)
            for j, (p, st) in enumerate(steps)]


def _integration(t: float) -> list:
    """A merchant's server: an hourly batch of 30 payments on its API key, every one
    accepted, from one address, with its HTTP library's agent."""
    return [post(10_000 + h * 100 + j, "/v1/payments", 201, ts=t + h * 3600 + j, ip="192.0.2.50",
                 session="key-merchant", ua=PY) for h in range(6) for j in range(30)]


FLOWS = ["account_attack", "otp_guessing", "sms_pumping", "card_testing", "fake_accounts"]
for _name in FLOWS:     # the quiet tests below are parametrized over these
    quiet(_name)(lambda: None)


@pytest.fixture(scope="module")
def flows_quiet():
    recs = [r for k in range(300) for r in _person(k, T0 + k * 30)] + _integration(T0)
    recs.sort(key=lambda r: r.ts)
    eng = Engine()
    seen = record_firings(eng)
    out = [d for r in recs for d in eng.process(r)]
    return seen, out


@pytest.mark.parametrize("name", FLOWS)
def test_flow_detectors_quiet_on_people_and_integrations(flows_quiet, name):
    seen, out = flows_quiet
    assert not any(name in v for v in seen.values()), name
    assert not out


@pytest.fixture(scope="module")
def shop_humans():
    sc = Scenario.humans_only(scale=0.5, seed=5, duration=3600.0)
    eng = Engine()
    seen = record_firings(eng)
    for r in to_records(simulate(sc), seed=5):
        eng.process(r)
    return seen


@pytest.mark.parametrize("name", FLOWS)
def test_flow_detectors_quiet_on_shop_humans(shop_humans, name):
    assert not any(name in v for v in shop_humans.values()), name


def test_an_integration_is_never_ip_blocked_for_being_a_machine():
    # A cron job on its API key: every minute, the same three calls, python-requests.
    recs = []
    for m in range(240):
        for j, p in enumerate(("/v1/balance", "/v1/payouts", "/v1/transactions")):
            recs.append(rec(m * 3 + j, p, ts=T0 + 60 * m + j * 0.2, ip="192.0.2.60", ua=PY,
                            session="key-cron", host=HOST))
    eng = Engine()
    out = [d for r in recs for d in eng.process(r)]
    assert not [d for d in out if d.reaction in ("denylist", "graylist")]


@fires("key_guessing")
def test_key_guessing_fires_on_fast_refusals_outside_the_login():
    recs = [rec(i, "/v1/projects", ts=T0 + i * 0.3, ip="45.32.213.147", ua="curl/7.81.0",
                status=401, host=HOST) for i in range(1, 80)]
    eng = run(recs)
    f = finding(eng, "key_guessing", "45.32.213.147")
    assert fired(f) and f.value > 60


@quiet("key_guessing")
def test_key_guessing_quiet_on_an_expired_key_and_a_slow_monitor():
    # An integration whose key expired: a few 401s, then it renews and goes on.
    recs = [rec(i, "/v1/projects", ts=T0 + i, ip="192.0.2.70", ua=PY, status=401, host=HOST)
            for i in range(1, 4)]
    recs += [rec(i, "/v1/projects", ts=T0 + i, ip="192.0.2.70", ua=PY, session="key-new",
                 host=HOST) for i in range(4, 60)]
    # A monitor checking a protected URL once a minute for an hour.
    recs += [rec(100 + i, "/v1/me", ts=T0 + 60 * i, ip="192.0.2.71", ua="Pingdom.com_bot",
                 status=401, host=HOST) for i in range(60)]
    recs.sort(key=lambda r: r.ts)
    eng = run(recs)
    for ip in ("192.0.2.70", "192.0.2.71"):
        assert not fired(finding(eng, "key_guessing", ip)), ip
    eng2 = Engine()
    assert not [d for r in recs for d in eng2.process(r)]


@pytest.mark.parametrize("name", ["card_testing"])
def test_card_checks_in_volume_are_card_testing_even_when_declines_answer_200(name):
    recs = [post(i, "/v1/billing/payment-methods", 200, ts=T0 + 3 * i, session="s-1")
            for i in range(1, 40)]
    eng = run(recs)
    assert fired(finding(eng, name, "198.51.100.7"))
