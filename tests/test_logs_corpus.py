"""LogReader over every log of the public corpus (../shared/corpus, see its manifest.json)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from node.errors import InputError
from node.logs import SKIP_REASONS, LogReader

pytestmark = pytest.mark.corpus

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"

try:
    CASES = json.loads((CORPUS / "manifest.json").read_text())["cases"]
except (OSError, ValueError, KeyError):
    CASES = []

# Files whose every line is in a format we do not read (error logs, the nginx-proxy-manager
# layout that needs --log-format): nothing parses, so InputError.
NOTHING_PARSES = {"nginx_req_limit_exceeded", "litespeed-admin-bf", "nginx_http-catch-npm"}
# log_type -> the format detected, where it is not the combined family
FORMAT_OF = {"caddy": "caddy", "aws-alb": "alb", "containerd": "envoy", "haproxy": "haproxy",
             "zoraxy": "zoraxy"}
# case -> the format detected, where the log type does not say (Upsun: journald JSON around
# nginx lines)
FORMAT_OF_CASE = {"base-upsun-generic-test": "wrapped"}
NPM_FORMAT = ('[$time_local] $host $remote_addr $request_time "$request" $status '
              "$body_bytes_sent $request_length $http_referer $http_user_agent")


@pytest.fixture(scope="module")
def corpus() -> Path:
    if not (CORPUS / "manifest.json").is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"corpus {CORPUS} not found (CI=true)")
        pytest.skip("corpus ../shared/corpus not found")
    return CORPUS


def _combined_lines(case: dict) -> int:
    return sum(n for k, n in case["line_formats"].items() if "combined" in k or "common" in k)


@pytest.mark.parametrize("case", CASES or [None], ids=lambda c: c["case"] if c else "corpus")
def test_reads_case(corpus, case):
    if case is None:
        pytest.fail("manifest.json lists no case")
    reader = LogReader([corpus / case["log"]])
    if case["case"] in NOTHING_PARSES:
        with pytest.raises(InputError, match="unknown log format"):
            list(reader)
        return
    recs = list(reader)
    assert recs, reader.skipped
    assert set(reader.skipped) <= set(SKIP_REASONS)
    want = _combined_lines(case)
    if want:
        assert reader.format_name == "combined"
        assert len(recs) >= want, reader.skipped  # every combined / common line, junk included
    else:
        fmt = FORMAT_OF_CASE.get(case["case"]) or FORMAT_OF.get(
            case["log_type"], "traefik" if "json" in case["line_formats"] else "combined")
        assert reader.format_name == fmt
    if not any("error" in k for k in case["line_formats"]):  # else an IP may be in those only
        assert set(case["expected_flagged_ips"]) <= {r.ip for r in recs}
    assert all(r.ts > 1e9 and r.method and r.id for r in recs)


def test_every_corpus_file_with_each_format_never_raises_but_input_error(corpus):
    """Forcing every format on every file: lines are skipped by reason, never a crash."""
    for case in CASES:
        for fmt in LogReader.FORMATS:
            kw = {"log_format": NPM_FORMAT} if fmt == "log_format" else {}
            reader = LogReader([corpus / case["log"]], fmt=fmt, **kw)
            try:
                for _ in reader:
                    pass
            except InputError:
                continue
            assert set(reader.skipped) <= set(SKIP_REASONS)


def test_nginx_proxy_manager_with_log_format(corpus):
    reader = LogReader([corpus / "crowdsec-hub/parser-only/nginx_http-catch-npm/"
                        "nginx_http-catch-npm.log"], log_format=NPM_FORMAT)
    recs = list(reader)
    assert reader.format_name == "log_format"
    assert len(recs) == 4  # the last two lines use NPM's other (proxy) layout
    assert recs[0].host == "mx.example.org" and recs[0].duration_ms == 227.0
    assert recs[3].method == "INVALID"
    assert reader.malformed == {"malformed-request": 1}
    assert reader.skipped == {"unparsable": 2}
