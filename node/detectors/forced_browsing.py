"""Forced browsing: probing for sensitive files, admin interfaces, backdoors, traversal and
known exploit paths, and a high share of 404s over many distinct paths.

Security crawlers betray themselves by what they ask for, whatever user agent they send.
Path classification is node.signatures.probes (linear-time, cached). One probe is weak
evidence (a typo, a curious person); several, or a wall of 404s, is a scanner.
"""

from node.detectors.base import Detector, Finding, Param
from node.signatures.probes import probe_kind


class ForcedBrowsing(Detector):
    name = "forced_browsing"
    title = "Forced browsing"
    votes = {"security_crawlers": 3.0, "scraping": 0.5, "api_abuse": 0.5}
    params = {"probes": Param(3, "int", minimum=1, help="probe requests for full strength"),
              "min_404": Param(10, "int", minimum=2),
              "max_404_share": Param(0.5, maximum=1.0)}
    slots = ("probes",)
    observes = True

    def observe(self, ev):
        rec = ev.rec
        kind = probe_kind(rec.path, rec.query)
        if kind is None:
            return False
        for a in ev.actors():
            self.add(a, 0)
        return True

    def evaluate(self, actor, ev):
        probes = self.get(actor, 0)
        share404 = actor.n_404 / actor.n if actor.n else 0.0
        many404 = actor.n_404 >= self.p["min_404"] and share404 >= self.p["max_404_share"]
        if not probes and not many404:
            if actor.n < 10:
                return None
            return Finding(0, "0 probes", 0.0)
        strength = min(1.0, 0.25 + 0.75 * probes / self.p["probes"]) if probes else 0.0
        if many404:
            strength = max(strength, min(1.0, 0.5 + share404 / 2))
        value = int(probes) if probes else round(share404, 2)
        normal = "0 probes" if probes else f"< {self.p['max_404_share']} share of 404s"
        return Finding(value, normal, strength)
