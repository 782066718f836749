"""Outdated browser: a browser user agent years older than anything still updated.

Bots paste old browser strings; people's browsers auto-update. Versions come from uap-core
regexes (ua-parser, cached); minimum versions per browser family are configuration.
A version its discontinued family never shipped (`MSIE 66.0`) is forged: it counts too.
A current browser abstains (any bot can claim one); a single outdated visitor gains too
few votes on its own to be decided (engine min_votes).
"""

from node.detectors.base import Detector, Finding, Param
from node.signatures.browser import DEFAULT_MIN_VERSIONS, LAST_MAJOR, forged_major, is_outdated


class OutdatedBrowser(Detector):
    name = "outdated_browser"
    title = "Outdated browser"
    votes = {"scraping": 1.0, "api_abuse": 0.5, "account_takeover": 1.0}
    params = {"min_versions": Param(DEFAULT_MIN_VERSIONS, "mapping")}
    slots = ("major", "minimum", "last")
    observes_start = True     # the user agent is judged once, on a session's first request
    actors = frozenset({"session"})

    def observe(self, ev):
        s = ev.session
        if s.n != 1:
            return False
        hit = is_outdated(ev.rec.ua, self.p["min_versions"])
        if hit:
            family, major, minimum = hit
            self.set(s, 0, major)
            self.set(s, 1, minimum)
            if forged_major(family, major):      # `MSIE 66.0`: never released
                self.set(s, 2, LAST_MAJOR[family])
        return False

    def evaluate(self, actor, ev):
        major = self.get(actor, 0)
        if not major:
            return None
        last = int(self.get(actor, 2))
        normal = f"<= {last} (last release)" if last else f">= {int(self.get(actor, 1))}"
        return Finding(int(major), normal, 1.0)
