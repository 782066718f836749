"""Response time anomaly: requests that take far longer than the endpoint usually does —
crafted expensive queries, huge page sizes, search terms that defeat caches.

Compares each request's duration with its endpoint's learned latency (p50 / p99 from the
numpy baseline). Silent until the endpoint has a baseline and the engine is warmed up.
"""

from node.detectors.base import Detector, Finding, Param


class ResponseTimeAnomaly(Detector):
    name = "response_time_anomaly"
    title = "Response time anomaly"
    judges_customers = True
    specificity = 3
    votes = {"resource_consumption": 1.5, "api_abuse": 0.5}
    params = {"p99_factor": Param(2.0, minimum=1.0), "min_ms": Param(50.0),
              "max_slow": Param(5, "int", minimum=1), "min_share": Param(0.2, maximum=1.0)}
    slots = ("checked", "slow")
    observes = True
    learned = True

    def observe(self, ev):
        d = ev.rec.duration_ms
        if d is None or d <= self.p["min_ms"] or not self.ctx.warmed_up:
            return False             # fast requests are never anomalous: no lookup at all
        eb = self.ctx.baselines.get(ev.app.name, ev.template)
        if eb is None or eb.latency.pct is None:
            return False
        p50, _, p99 = eb.latency.pct
        slow = d > max(p99 * self.p["p99_factor"], p50 * 4, self.p["min_ms"])
        for a in (ev.session, ev.ip):
            self.add(a, 0)
            if slow:
                self.add(a, 1)
        return False

    def evaluate(self, actor, ev):
        # Logs without request times cannot tell: abstain rather than vote "normal".
        if actor.n < 10 or ev.rec.duration_ms is None:
            return None
        slow = int(self.get(actor, 1))
        limit = self.p["max_slow"]
        fired = slow >= limit and slow / actor.n >= self.p["min_share"]
        return Finding(slow, f"< {limit} slow responses", 1.0 if fired else 0.0)
