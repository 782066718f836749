"""Brute force on one account: many failed logins against one username.

The most-failed username of an actor is tracked with a one-counter Misra-Gries summary
(engine.auth.AuthStats): exact when one account is hammered, a lower bound otherwise.
A person who mistypes a password fails a few times, then gets in.
"""

from node.detectors.base import Detector, Finding, Param


class BruteForce(Detector):
    name = "brute_force"
    title = "Brute force"
    judges_customers = True
    specificity = 3
    votes = {"account_takeover": 2.0}
    params = {"max_failures": Param(8, "int", minimum=3,
                                    help="failed logins on one account a person may make")}
    observes_auth = True

    def observe(self, ev):
        if ev.auth_result != "fail":
            return False
        st = ev.session.auth
        return st is not None and st.top_fails == self.p["max_failures"] + 1

    def evaluate(self, actor, ev):
        st = actor.auth
        if st is None or not st.fails or st.top is None:
            return None
        v = st.top_fails
        limit = self.p["max_failures"]
        strength = 0.0 if v <= limit else min(1.0, 0.5 + (v - limit) / limit)
        return Finding(v, f"<= {limit} failures on one account", strength)
