"""Session rotation: one source (an IP or an IPv6 network) cycling through fresh sessions or
user agents — cookies dropped on every request, a user agent per request — to stay below
per-session limits. Counted in the source's sketches of session keys and user agents.

People behind one address (an office NAT) also bring many sessions, but each of them lasts:
the value is the share of the source's requests that opened a new session.
"""

from node.detectors.base import Detector, Finding, Param
from node.engine.sketch import hll_count


class SessionRotation(Detector):
    name = "session_rotation"
    title = "Session rotation"
    votes = {"api_abuse": 1.0, "scraping": 1.0, "account_takeover": 1.0,
             "security_crawlers": 0.5}
    params = {"min_sessions": Param(8, "int", minimum=2),
              "min_share": Param(0.3, maximum=1.0)}
    actors = frozenset({"ip", "net"})

    def evaluate(self, actor, ev):
        if actor.n < 8:
            return None
        distinct = max(hll_count(actor.sessions), hll_count(actor.uas))
        distinct = min(round(distinct), actor.n)
        share = distinct / actor.n
        limit = self.p["min_sessions"]
        fired = distinct >= limit and share >= self.p["min_share"]
        strength = min(1.0, 0.5 + share) if fired else 0.0
        return Finding(distinct, f"< {limit} sessions or < {self.p['min_share']:.0%} new", strength)
