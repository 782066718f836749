"""Credential stuffing: many distinct usernames tried from one stable source — a session, an
IP address or an IPv6 network. Usernames are counted in a HyperLogLog (engine.auth), so a
source with thousands of attempts costs 128 bytes.

People try one account (a shared computer: two). An IP or network is judged per session, so
25 colleagues behind one NAT who each log in to their own account stay one username each.
"""

from node.detectors.base import Detector, Finding, Param
from node.engine.sketch import hll_count


class CredentialStuffing(Detector):
    name = "credential_stuffing"
    title = "Credential stuffing"
    judges_customers = True
    specificity = 3
    votes = {"account_takeover": 2.0}
    params = {"min_users": Param(5, "int", minimum=2),
              "per_session": Param(3.0, minimum=1.0,
                                   help="distinct usernames per session above which a source "
                                        "cycles accounts")}

    def evaluate(self, actor, ev):
        st = actor.auth
        if st is None or st.attempts < 2:
            return None
        users = st.distinct_users
        if not users:
            return None             # usernames not captured: nothing to judge
        sessions = 1.0
        if actor.kind != "session":
            sessions = max(1.0, min(hll_count(actor.sessions), actor.nsess or 1))
        per_session = users / sessions
        known = st.fails + st.oks
        failing = not known or st.fails / known >= 0.5
        limit = self.p["min_users"]
        fired = users >= limit and per_session >= self.p["per_session"] and failing
        strength = min(1.0, 0.5 + (users - limit) / (2 * limit)) if fired else 0.0
        return Finding(users, f"< {limit} usernames per source", strength)
