"""Peer corpus (CrowdSec hub tests, ../shared/corpus): replay each in-scope case's log and
check that the IPs the source expects are flagged; and `palisade replay` survives every log
of the corpus. Thresholds differ from CrowdSec's, so only *which IPs* are compared."""

from __future__ import annotations

import os

import pytest

from node import corpus
from node.cli import main

ROOT = corpus.corpus_dir()
pytestmark = pytest.mark.corpus


def _need_corpus() -> None:
    if not (ROOT / "manifest.json").exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"corpus {ROOT} is missing under CI")
        pytest.skip(f"corpus {ROOT} not found (a clone without ../shared)")


def _cases(group: str) -> list[dict]:
    if not (ROOT / "manifest.json").exists():
        return [{"case": "corpus-missing", "group": group}]
    return [c for c in corpus.load_manifest(ROOT) if c["group"] == group]


def _check_case(case: dict, gaps: dict[str, str]) -> None:
    _need_corpus()
    name = case["case"]
    if name in corpus.OUT_OF_SCOPE:
        pytest.skip(corpus.OUT_OF_SCOPE[name])
    result = corpus.run_case(case, ROOT)
    if name in gaps and not result.passed:
        pytest.xfail(gaps[name])
    assert result.error is None, result.error
    assert not result.missed, f"{name}: expected {sorted(result.expected)}, missed " \
                              f"{sorted(result.missed)}"


@pytest.mark.parametrize("case", _cases("core"), ids=lambda c: c["case"])
def test_core_case_flags_expected_ips(case):
    _check_case(case, corpus.KNOWN_GAPS)


@pytest.mark.parametrize("case", _cases("cve"), ids=lambda c: c["case"])
def test_cve_case_flags_expected_ips(case):
    """Single-request exploits: one unambiguous payload or exploited endpoint decides."""
    _check_case(case, corpus.CVE_GAPS)


def test_replay_survives_every_corpus_log(capsys):
    _need_corpus()
    logs = [str(ROOT / c["log"]) for c in corpus.load_manifest(ROOT)]
    assert len(logs) >= 90
    assert main(["replay", "--no-progress", *logs]) == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert "skipped" in out and "records/s" in out


def test_replay_json_one_detection_per_line(capsys):
    _need_corpus()
    import json

    log = ROOT / "crowdsec-hub/core/nginx-http-sensitive-files/nginx-http-sensitive-files.log"
    assert main(["replay", "--json", "--no-progress", str(log)]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert lines and all({"ip", "session", "bot_type", "confidence", "ts", "detectors"} <= set(d)
                         for d in lines)
    assert all({"name", "value", "normal"} <= set(x) for d in lines for x in d["detectors"])
