"""Outdated browser: a browser user agent years older than anything still updated.

Bots paste old browser strings; people's browsers auto-update. Versions come from uap-core
regexes (ua-parser, cached); minimum versions per browser family are configuration.
A current browser abstains (any bot can claim one); a single outdated visitor gains too
few votes on its own to be decided (engine min_votes).
"""

from node.detectors.base import Detector, Finding, Param
from node.signatures.browser import DEFAULT_MIN_VERSIONS, is_outdated


class OutdatedBrowser(Detector):
    name = "outdated_browser"
    title = "Outdated browser"
    votes = {"scraping": 1.0, "api_abuse": 0.5, "account_takeover": 1.0}
    params = {"min_versions": Param(DEFAULT_MIN_VERSIONS, "mapping")}
    slots = ("major", "minimum")
    observes_start = True     # the user agent is judged once, on a session's first request
    actors = frozenset({"session"})

    def observe(self, ev):
        s = ev.session
        if s.n != 1:
            return False
        hit = is_outdated(ev.rec.ua, self.p["min_versions"])
        if hit:
            self.set(s, 0, hit[1])
            self.set(s, 1, hit[2])
        return False

    def evaluate(self, actor, ev):
        major = self.get(actor, 0)
        if not major:
            return None
        return Finding(int(major), f">= {int(self.get(actor, 1))}", 1.0)
