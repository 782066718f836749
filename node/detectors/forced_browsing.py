"""Forced browsing: probing for sensitive files, admin interfaces, backdoors, traversal and
known exploit paths, and a high share of 404s over many distinct paths.

Security crawlers betray themselves by what they ask for, whatever user agent they send.
Path classification is node.signatures.probes (linear-time, cached). Each kind of probe
weighs by how sure it is that no person sends it: an exploit path or a backdoor is certain on
its own; an admin page or a technology a person might type is weak until it repeats.
"""

import re

from node.detectors.base import Detector, Finding, Param
from node.engine.context import UNSET
from node.signatures.probes import PROBE_KINDS, payload_kind, percent_decode, probe_kind, with_query

# What real API clients never send to a reverse proxy: CONNECT, absolute-form URIs (open
# proxy probing), and request lines that are not HTTP at all (method INVALID from the logs).
_OPEN_PROXY = frozenset({"CONNECT"})
_NOT_HTTP = frozenset({"INVALID", "-", "PRI"})
_CRAFTED = re.compile(r"[A-Z]{3,7} /[^ ]{0,2048} HTTP/\d")
_PROBE_KIND = frozenset(PROBE_KINDS)     # path verdicts a query may sharpen (not open_proxy...)
WEIGHTS = {
    "cve": 1.0, "backdoor": 1.0, "path_traversal": 1.0, "sqli": 1.0, "xss": 1.0,
    "scanner": 1.0, "open_proxy": 1.0, "bad_http_version": 1.0,
    "sensitive_file": 0.6, "not_http": 0.6, "admin_interface": 0.4, "technology": 0.4,
}


def classify(method: str, path: str, query: str) -> str | None:
    if method in _OPEN_PROXY or (path[:1] != "/" and path.startswith(("http:", "https:"))):
        return "open_proxy"
    if path[:3] in ("%2F", "%2f"):
        # No client percent-encodes the leading slash: a filter evasion. What it hides is
        # judged (`%2Fcatalog-portal%2F...%24%7B"freemarker...`), else it is not HTTP.
        path, _, q = percent_decode(path).partition("?")
        kind = probe_kind(path, q or query) if path[:1] == "/" else None
        if kind is not None:
            return kind
        return "not_http"
    if method in _NOT_HTTP or path[:1] != "/":
        # `GET / HTTP/1.2`: a well-formed line with a version no client speaks is crafted.
        return "bad_http_version" if _CRAFTED.match(path) else "not_http"
    return probe_kind(path, query)


class ForcedBrowsing(Detector):
    name = "forced_browsing"
    title = "Forced browsing"
    judges_customers = True
    specificity = 3
    votes = {"security_crawlers": 3.0, "scraping": 0.5, "api_abuse": 0.5}
    params = {"min_404": Param(10, "int", minimum=2),
              "max_404_share": Param(0.5, maximum=1.0)}
    slots = ("weight", "probes")
    observes = True

    def _kind(self, ev) -> str | None:
        # The path's verdict is kept on the endpoint where every path of it gets the same
        # one: a literal path, or `/api/products/{id}` (numeric / uuid / hex ids), so a
        # catalogue walk classifies one path, not each. The query is judged every time.
        rec = ev.rec
        memo = ev.endpoint.memo
        kind = memo[self.memo]
        if kind is UNSET:
            t = ev.template
            kind = classify(rec.method, rec.path, "")
            if t == rec.path or ("{" in t and "{var}" not in t and "{token}" not in t
                                 and "{email}" not in t and "{static}" not in t):
                memo[self.memo] = kind
        q = rec.query
        if q and (kind is None or kind in _PROBE_KIND):
            kind = with_query(kind, q)
        ref = rec.referer     # Log4Shell and friends ride in any logged header
        if kind is None and ref and ("{" in ref or "%7" in ref):    # a lookup's brace
            kind = payload_kind(ref)
        return kind

    def observe(self, ev):
        kind = self._kind(ev)
        if kind is None:
            return False
        w = WEIGHTS.get(kind, 0.5)
        rising = False
        for a in ev.actors():
            rising = self.add(a, 0, w) - w < 1.0 or rising
            self.add(a, 1)
        # Evaluate now while the evidence is still rising; past full strength, a scanner's
        # thousandth probe changes nothing the regular checkpoints would not see.
        return rising

    def evaluate(self, actor, ev):
        weight = self.get(actor, 0)
        probes = int(self.get(actor, 1))
        share404 = actor.n_404 / actor.n if actor.n else 0.0
        many404 = actor.n_404 >= self.p["min_404"] and share404 >= self.p["max_404_share"]
        if not probes and not many404:
            if actor.n < 10:
                return None
            return Finding(0, "0 probes", 0.0)
        strength = min(1.0, weight)
        if many404:
            strength = max(strength, min(1.0, 0.5 + share404 / 2))
        if probes:
            return Finding(probes, "0 probes", strength)
        return Finding(round(share404, 2), f"< {self.p['max_404_share']} share of 404s",
                       strength)
