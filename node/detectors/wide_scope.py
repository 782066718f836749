"""Wide scope: the breadth of endpoints an actor touches (distinct endpoint templates).

A person uses the few endpoints behind the pages they visit; scanners and scrapers map the
whole API. Endpoints are templates (`/api/products/{id}` is one), counted in a sketch.
"""

from node.detectors.base import Detector, Finding, Param
from node.engine.sketch import hll_count


class WideScope(Detector):
    name = "wide_scope"
    title = "Wide scope"
    votes = {"security_crawlers": 1.0, "scraping": 1.0, "api_abuse": 0.5}
    params = {"max_endpoints": Param(30, "int", minimum=3)}

    def evaluate(self, actor, ev):
        if actor.n < 10:
            return None
        v = round(hll_count(actor.endpoints))
        limit = self.p["max_endpoints"]
        strength = 0.0 if v <= limit else min(1.0, 0.5 + (v - limit) / limit)
        return Finding(v, f"< {limit} endpoints", strength)
