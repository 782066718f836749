"""Authentication abuse: far more authentication attempts than the application's own clients
make, and a client whose traffic is mostly authentication.

The normal is learned from the application's traffic: the p99 of attempts per finished
session that was never flagged (engine baselines), so a busy login page raises its own bar.
Until enough sessions are learned a floor applies. An IP or network is judged per session
(its attempts over its distinct sessions): an office NAT of 25 people logging in is 25
sessions of one attempt each, not one client with 25.
"""

from node.detectors.base import Detector, Finding, Param, fmt
from node.engine.sketch import hll_count


class AuthenticationAbuse(Detector):
    name = "authentication_abuse"
    title = "Authentication abuse"
    judges_customers = True
    specificity = 2
    votes = {"account_takeover": 1.5, "api_abuse": 0.5}
    params = {"min_attempts": Param(5, "int", minimum=2,
                                    help="floor on attempts per session"),
              "p99_factor": Param(2.0, minimum=1.0),
              "min_share": Param(0.5, maximum=1.0,
                                 help="share of the actor's requests that are logins")}
    observes_auth = True

    def limit(self) -> float:
        lim = float(self.p["min_attempts"])
        ring = self.ctx.baselines.sessions_auth
        if ring.pct is not None and self.ctx.warmed_up:
            lim = max(lim, ring.pct[2] * self.p["p99_factor"])
        return lim

    def observe(self, ev):
        # Short sessions are evaluated only at checkpoints: ask as the session crosses the bar.
        st = ev.session.auth
        return ev.auth is not None and st is not None and st.attempts == int(self.limit()) + 1

    def evaluate(self, actor, ev):
        st = actor.auth
        if st is None or st.attempts < 3:
            return None
        sessions = 1.0
        if actor.kind != "session":
            sessions = max(1.0, min(hll_count(actor.sessions), actor.nsess or 1))
        per_session = st.attempts / sessions
        share = st.attempts / max(actor.n, 1)
        limit = self.limit()
        fired = per_session > limit and share >= self.p["min_share"]
        strength = min(1.0, 0.5 + (per_session - limit) / limit) if fired else 0.0
        return Finding(round(per_session, 1), f"< {fmt(limit)} attempts per session", strength)
