"""node.signatures against the external corpus (../shared/corpus): CrowdSec hub probing cases,
OWASP CRS regression cases and the benign-bot allow-lists.

The corpus is read in place, never copied. Without it these tests skip, unless CI=true.
"""

import json
import os
import re
from pathlib import Path

import pytest
import yaml

from node.signatures import attack_signs, classify_ua, probe_kind

pytestmark = pytest.mark.corpus

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"

# One nginx / Apache "combined" line: ip - user [time] "request" status size "referer" "ua".
_COMBINED = re.compile(r'(\S+) \S+ \S+ \[[^\]]*\] "([^"]*)" (\d{3}) \S+ "([^"]*)" "([^"]*)"')


@pytest.fixture(scope="module")
def corpus() -> Path:
    if not CORPUS.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail("corpus ../shared/corpus not found (CI=true)")
        pytest.skip("corpus ../shared/corpus not found")
    return CORPUS


def _flagged_requests(case_dir: Path) -> list[tuple[str, str, str]]:
    """(path, query, user agent) of every log line from an IP the source expects flagged."""
    expected = json.loads((case_dir / "expected.json").read_text())
    ips = set(expected["expected_flagged_ips"])
    out = []
    for line in (case_dir / expected["log_file"]).read_text(errors="replace").splitlines():
        m = _COMBINED.search(line)
        if not m or m.group(1) not in ips:
            continue
        parts = m.group(2).split(" ")
        if len(parts) < 2:
            continue
        path, _, query = parts[1].partition("?")
        out.append((path, query, m.group(5)))
    return out


def _scenario_name(case_dir: Path) -> str:
    (scenario,) = case_dir.glob("scenario__*.yaml")
    docs = [d for d in yaml.safe_load_all(scenario.read_text()) if d]
    return docs[0]["name"]


def _probe(path, query, ua):
    return probe_kind(path, query)


def _ua(path, query, ua):
    return classify_ua(ua).kind


# case, the scenario it tests, our function, what counts as "classified"
CASES = [
    ("nginx-http-sensitive-files", "http-sensitive-files", _probe, {"sensitive_file"}),
    ("nginx-http-backdoor", "http-backdoors-attempts", _probe, {"backdoor"}),
    ("http-admin-interface-probing", "http-admin-interface-probing", _probe, {"admin_interface"}),
    ("nginx-http-path-traversal", "http-path-traversal-probing", _probe, {"path_traversal"}),
    ("nginx-http-sqli-probing", "http-sqli-probbing-detection", _probe, {"sqli"}),
    ("nginx-http-xss-probing", "http-xss-probbing", _probe, {"xss"}),
    ("nginx-bad-user-agent", "http-bad-user-agent", _ua, {"scanner"}),
    ("http-cve-probing", "http-cve-probing", _probe, {"cve"}),
]


@pytest.mark.parametrize(
    ("case", "scenario", "classify", "accepted"), CASES, ids=[c[0] for c in CASES]
)
def test_crowdsec_probing_cases(corpus, case, scenario, classify, accepted):
    case_dir = corpus / "crowdsec-hub" / "core" / case
    assert _scenario_name(case_dir) == f"crowdsecurity/{scenario}"
    requests = _flagged_requests(case_dir)
    assert requests, "no log line from an expected-flagged IP"
    results = [classify(*r) for r in requests]
    hits = sum(r in accepted for r in results)
    assert hits >= 0.8 * len(requests), list(zip(requests, results, strict=True))


# The graylist's view of the same injection probes.
SIGN_CASES = [
    ("nginx-http-path-traversal", "path_traversal"),
    ("nginx-http-sqli-probing", "sqli"),
    ("nginx-http-xss-probing", "xss"),
    ("nginx-http-sensitive-files", "scanner_probe"),
    ("nginx-http-backdoor", "scanner_probe"),
]


@pytest.mark.parametrize(("case", "sign"), SIGN_CASES, ids=[c[0] for c in SIGN_CASES])
def test_crowdsec_cases_carry_attack_signs(corpus, case, sign):
    requests = _flagged_requests(corpus / "crowdsec-hub" / "core" / case)
    hits = sum(sign in attack_signs(p, q, [("user-agent", ua)]) for p, q, ua in requests)
    assert hits >= 0.8 * len(requests)


def _crs_cases(corpus: Path, rule: str) -> list[dict]:
    return json.loads((corpus / "owasp-crs" / "tests_summary.json").read_text())[rule]


def test_crs_scanner_user_agents(corpus):
    """CRS 913100: scanner UAs are "scanner", its negative cases are not."""
    for t in _crs_cases(corpus, "913100.yaml"):
        kind = classify_ua(t["ua"]).kind
        if t["expect"]:
            assert kind == "scanner", t
        else:
            assert kind != "scanner", t


@pytest.mark.parametrize("rule", ["920311.yaml", "920320.yaml", "920330.yaml"])
def test_crs_missing_or_empty_user_agent(corpus, rule):
    for t in _crs_cases(corpus, rule):
        ua = None if t["ua"] == "<absent>" else t["ua"]
        assert (classify_ua(ua).kind == "empty") == bool(t["expect"]), t


def test_crs_restricted_files(corpus):
    """CRS 930130: mostly flagged; its negative cases (ordinary assets) never are."""
    cases = _crs_cases(corpus, "930130.yaml")
    flagged = [t for t in cases if t["expect"]]
    hits = sum(probe_kind(*t["uri"].partition("?")[::2]) is not None for t in flagged)
    assert hits >= 0.8 * len(flagged)
    for t in cases:
        if not t["expect"]:
            assert probe_kind(*t["uri"].partition("?")[::2]) is None, t


def _legit_bot_tokens(corpus: Path) -> list[tuple[str, str]]:
    out = []
    for f in sorted(
        (corpus / "crowdsec-sec-lists/whitelists/benign_bots/legit_bots").glob("*.json")
    ):
        for line in f.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                entry = json.loads(line)
                out += [(entry["name"], t) for t in entry["user_agent"].split("|")]
    return out


def test_benign_bots_are_not_scanners(corpus):
    """sec-lists' allow-listed bots: never "scanner"; announced as bots they are bots."""
    tokens = _legit_bot_tokens(corpus)
    assert len(tokens) >= 20
    for name, token in tokens:
        assert classify_ua(token).kind != "scanner", (name, token)
        ua = f"Mozilla/5.0 (compatible; {token}/2.1; +https://{name}.example/bot.html)"
        assert classify_ua(ua).kind in ("good_bot", "crawler"), (name, ua)


def test_benign_bot_claims_name_their_vendor(corpus):
    """The good-bot name is the legit_bots file name, so the verifier can find its rules."""
    names = {name for name, _ in _legit_bot_tokens(corpus)}
    for _, token in _legit_bot_tokens(corpus):
        ua = f"Mozilla/5.0 (compatible; {token}/2.1)"
        result = classify_ua(ua)
        if result.kind == "good_bot":
            assert result.name in names, (token, result)
