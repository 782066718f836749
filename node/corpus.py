"""Replay the public peer corpus (`../shared/corpus`, CrowdSec hub tests) and compare which
IPs we flag with the IPs the source expects. Used by tests and by `python -m node.corpus`."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from node.config import load_config
from node.errors import InputError
from node.replay import replay

CORPUS_ENV = "PALISADE_CORPUS"
# Cases whose behaviour belongs to later work or to no behavioural detector at all.
OUT_OF_SCOPE = {
    "http-generic-test": "a canary path, no behaviour to detect",
    "nginx_req_limit_exceeded": "an nginx error log (limit_req messages), not an access log",
}


# In scope, not (yet) flagged by default thresholds; the reason is the honest one.
KNOWN_GAPS = {
    "http-technology-probing": "10.0.0.2 sends one request (/crx/packmgr/service.jsp, curl): one "
                               "admin-page probe is below min_votes by design",
    "http-wordpress_user-enum": "12 requests of /?author=N: a short enumeration loop gains "
                                "fewer votes than a decision needs",
}

# `cve` group: single-request exploits. A decision on one request needs an unambiguous sign;
# these cases carry none an access log shows, or only one a real deployment also sends.
CVE_GAPS = {
    "CVE-2019-18935": "Telerik's upload handler (WebResource.axd?type=rau) is a real endpoint on "
                      "every Telerik site: not listed",
    "CVE-2022-41697": "six failed POSTs to Ghost's admin session: a login brute force below "
                      "brute_force's max_failures",
    "CVE-2022-46169": "Cacti's remote_agent.php is Cacti's own poller endpoint (not listed); the "
                      "exploit's payload is in a header the log does not show",
    "apache-cve-2021-41773": "88.168.206.87 appears only in an Apache error-log line, not an "
                             "access log",
    "vmware-vcenter-vmsa-2021-0027": "192.168.1.4 asks for a provider logo from an internal "
                                     "URL (SSRF): an ordinary-looking request",
    "zoneminder_cve-39285": "ZoneMinder's own pages with ordinary-looking parameters: only an "
                            "application-specific rule tells the CSRF / stored XSS",
    "zoneminder_cve-39290": "ZoneMinder's own pages with ordinary-looking parameters: only an "
                            "application-specific rule tells the CSRF / stored XSS",
    "zoneminder_cve-39291": "ZoneMinder's own pages with ordinary-looking parameters: only an "
                            "application-specific rule tells the CSRF / stored XSS",
}


def corpus_dir() -> Path:
    env = os.environ.get(CORPUS_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "corpus"


@dataclass
class CaseResult:
    case: str
    expected: set[str]
    flagged: set[str]
    error: str | None = None

    @property
    def missed(self) -> set[str]:
        return self.expected - self.flagged

    @property
    def passed(self) -> bool:
        return self.error is None and not self.missed


def load_manifest(root: Path | None = None) -> list[dict]:
    root = root or corpus_dir()
    return json.loads((root / "manifest.json").read_text())["cases"]


def run_case(case: dict, root: Path | None = None) -> CaseResult:
    root = root or corpus_dir()
    expected = set(case["expected_flagged_ips"])
    try:
        res = replay([str(root / case["log"])], load_config(None))
    except InputError as e:
        return CaseResult(case["case"], expected, set(), str(e))
    flagged = {ip for d in res.decisions for ip in d.ips}
    flagged |= {d.ip for d in res.decisions}
    return CaseResult(case["case"], expected, _normalise(flagged, expected))


def _normalise(flagged: set[str], expected: set[str]) -> set[str]:
    """Compare addresses, not spellings (`2001:0db8::` vs `2001:db8::`)."""
    import ipaddress

    canon = {}
    for e in expected:
        try:
            canon[str(ipaddress.ip_address(e))] = e
        except ValueError:
            canon[e] = e
    out = set()
    for f in flagged:
        try:
            key = str(ipaddress.ip_address(f))
        except ValueError:
            key = f
        out.add(canon.get(key, f))
    return out


def main(argv: list[str] | None = None) -> int:
    """`python -m node.corpus [GROUP]`: each case of a group (default core), pass or fail."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    group = args[0] if args else "core"
    cases = [c for c in load_manifest() if c["group"] == group]
    ok = 0
    for c in cases:
        if c["case"] in OUT_OF_SCOPE:
            print(f"skip {c['case']:<34} {OUT_OF_SCOPE[c['case']]}")
            continue
        r = run_case(c)
        ok += r.passed
        extra = r.flagged - r.expected
        print(f"{'PASS' if r.passed else 'FAIL'} {r.case:<34} expected {sorted(r.expected)[:4]} "
              f"missed {sorted(r.missed)[:4]} extra {sorted(extra)[:4]}"
              + (f" error {r.error}" if r.error else ""))
    print(f"{ok} of {len(cases)} passed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
