"""Request uniqueness: nearly every request asks for something new (path + query).

People come back to lists, carts and pages they saw; a scraper walks a catalogue once.
Distinct requests are counted in the actor's linear-counting bitmap (engine.sketch), whose
estimate is off by up to about 5 % (two standard errors): a walk that never repeats can read
0.95, so the comparison allows that error rather than missing the walk by the sketch's noise.
"""

from node.detectors.base import Detector, Finding, Param, fmt

SKETCH_ERROR = 0.05


class RequestUniqueness(Detector):
    name = "request_uniqueness"
    title = "Request uniqueness"
    specificity = 2
    votes = {"scraping": 1.5, "api_abuse": 0.5}
    params = {"max_ratio": Param(0.9, maximum=1.0), "min_unique": Param(30, "int", minimum=5)}

    def evaluate(self, actor, ev):
        if actor.n < 20:
            return None
        uniq = min(actor.distinct_requests(), actor.n)
        ratio = uniq / actor.n
        limit = self.p["max_ratio"]
        fired = ratio >= limit - SKETCH_ERROR and uniq >= self.p["min_unique"]
        return Finding(round(ratio, 3), f"< {fmt(limit)} unique share", 1.0 if fired else 0.0)
