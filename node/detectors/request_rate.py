"""Request rate: sustained requests per second well above what a person clicks.

The actor's rate is an exponentially decayed count (time constant 30 s, see engine.actor),
so a page that fires ten API calls at once is a blip, while a client that keeps up several
requests a second for half a minute is not a person reading pages.
"""

from node.detectors.base import Detector, Finding, Param, fmt


class RequestRate(Detector):
    name = "request_rate"
    title = "Request rate"
    votes = {"scraping": 1.0, "api_abuse": 1.0, "resource_consumption": 0.5,
             "account_takeover": 0.5, "security_crawlers": 0.5}
    params = {"max_rps": Param(2.0, help="sustained requests/s above which a client is fast"),
              "min_requests": Param(20, "int", minimum=2)}

    def evaluate(self, actor, ev):
        if actor.n < self.p["min_requests"]:
            return None
        limit = self.p["max_rps"]
        v = actor.peak_rate
        strength = 0.0 if v <= limit else min(1.0, 0.5 + (v / limit - 1.0))
        return Finding(round(v, 2), f"< {fmt(limit)}/s", strength)
