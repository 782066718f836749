"""Key guessing: request after request refused for want of a valid credential (401) outside
the login, fast -- API keys or tokens being enumerated (OAT-007 against the key itself). An
integration with an expired key fails a few times and stops or renews it; a monitor polling
a protected URL once a minute is slow.
"""

from node.detectors.base import Detector, Finding, Param


class KeyGuessing(Detector):
    name = "key_guessing"
    title = "API key guessing"
    judges_customers = True
    specificity = 3
    votes = {"api_abuse": 2.0, "account_takeover": 1.0}
    params = {"min_refusals": Param(20, "int", minimum=3,
                                    help="requests answered 401 from one source"),
              "min_share": Param(0.8, maximum=1.0, help="share of its requests refused"),
              "max_gap": Param(10.0, "duration",
                               help="mean seconds between them (slower: a monitor)")}

    def evaluate(self, actor, ev):
        refused = actor.n_401
        if refused < 3:
            return None
        st = actor.auth
        logins = st.attempts if st is not None else 0
        refused -= min(refused, logins)      # failed logins are the ATO detectors' business
        limit = self.p["min_refusals"]
        fired = (refused > limit and refused >= actor.n * self.p["min_share"]
                 and actor.duration <= refused * self.p["max_gap"])
        strength = min(1.0, 0.75 + (refused - limit) / (4 * limit)) if fired else 0.0
        return Finding(refused, f"<= {limit} requests refused for a credential", strength)
