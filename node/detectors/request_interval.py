"""Request interval: the lack of randomness in the gaps between requests.

People read, think and click in bursts: the coefficient of variation (std / mean) of their
inter-arrival gaps is near or above 1 (heavy-tailed think times: 0.6 at the very least in the
simulator's thousands of visits). A loop with a fixed sleep has a CV near 0, and the usual
disguise, a sleep drawn uniformly from [a, b], can never exceed 1/sqrt(3) = 0.58: the bound
sits below both, at 0.5. Uses the actor's Welford running mean / variance (O(1) per request).
Schedules slower than `max_mean_gap` (30 s: a cron job, an uptime monitor, a customer's
poller) are no evidence: on an API many honest clients are programs on a timer.
With whole-second timestamps (an access log) gaps shorter than `coarse_min_gap` on average
are mostly rounding: the detector abstains there rather than read rounding as rhythm.
"""

from node.detectors.base import Detector, Finding, Param, fmt


class RequestInterval(Detector):
    name = "request_interval"
    title = "Request interval"
    votes = {"scraping": 1.0, "api_abuse": 1.0, "account_takeover": 0.5,
             "resource_consumption": 0.5}
    params = {"max_cv": Param(0.5, help="gap CV below which timing is machine-regular"),
              "min_intervals": Param(12, "int", minimum=3),
              "max_mean_gap": Param(30.0, "duration",
                                  help="slower schedules are cron jobs and monitors"),
              "coarse_min_gap": Param(3.0, "duration")}

    def evaluate(self, actor, ev):
        if actor.iv_n < self.p["min_intervals"]:
            return None
        cv = actor.interval_cv
        if cv is None or actor.iv_mean > self.p["max_mean_gap"]:
            return None
        if self.ctx.coarse_clock and actor.iv_mean < self.p["coarse_min_gap"]:
            return None
        limit = self.p["max_cv"]
        strength = 1.0 if cv < limit else 0.0
        return Finding(round(cv, 3), f"> {fmt(limit)} (gap CV)", strength)
