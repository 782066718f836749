"""Excessive request / response consumption: total bytes sent or received over a session's
lifetime far beyond what finished sessions learned as normal (p99 of their totals), with a
floor so that a thin baseline never makes ordinary use look excessive.
"""

from node.detectors.base import Detector, Finding, Param

_MB = 1024 * 1024


class _Consumption(Detector):
    attr = ""
    ring = ""
    specificity = 3
    votes = {"resource_consumption": 2.0, "scraping": 0.5}
    actors = frozenset({"session", "ip"})

    def evaluate(self, actor, ev):
        if actor.n < 3:
            return None
        total = getattr(actor, self.attr)
        limit = self.p["floor_mb"] * _MB
        ring = getattr(self.ctx.baselines, self.ring)
        if ring.pct is not None and self.ctx.warmed_up:
            limit = max(limit, ring.pct[2] * self.p["p99_factor"])
        if total < limit * 0.1:
            return None             # a small consumer: this detector has nothing to say
        strength = 0.0 if total <= limit else min(1.0, 0.5 + (total / limit - 1.0))
        return Finding(round(total / _MB, 2), f"< {limit / _MB:.1f} MiB", strength)


class ExcessiveRequestConsumption(_Consumption):
    name = "excessive_request_consumption"
    title = "Excessive request consumption"
    attr = "req_bytes"
    ring = "sessions_req"
    params = {"floor_mb": Param(20.0), "p99_factor": Param(3.0, minimum=1.0)}


class ExcessiveResponseConsumption(_Consumption):
    name = "excessive_response_consumption"
    title = "Excessive response consumption"
    attr = "resp_bytes"
    ring = "sessions_resp"
    params = {"floor_mb": Param(10.0), "p99_factor": Param(3.0, minimum=1.0)}
