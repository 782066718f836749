"""Fake account creation (OAT-019): many sign-ups from one source. A person signs up once; a
family or a class behind one address signs up a few times, spread over the day; an account
factory registers account after account. Sign-ups are requests to the application's sign-up
endpoint (engine.roles), successful or not.
"""

from node.detectors.base import Detector, Finding, Param
from node.engine.flows import flow_count
from node.engine.roles import ROLE_INDEX, SIGNUP

_RI = ROLE_INDEX[SIGNUP]


class FakeAccounts(Detector):
    name = "fake_accounts"
    title = "Account creation"
    judges_customers = True
    specificity = 3
    votes = {"api_abuse": 2.5}
    params = {"max_signups": Param(3, "int", minimum=1,
                                   help="sign-ups from one session"),
              "max_signups_ip": Param(8, "int", minimum=1,
                                      help="sign-ups from one address or network")}
    observes_unsafe = True

    def _limit(self, actor):
        return self.p["max_signups"] if actor.kind == "session" else self.p["max_signups_ip"]

    def observe(self, ev):
        if ev.role is not SIGNUP:
            return False
        return (flow_count(ev.session, _RI) == self.p["max_signups"] + 1
                or flow_count(ev.ip, _RI) == self.p["max_signups_ip"] + 1)

    def evaluate(self, actor, ev):
        n = flow_count(actor, _RI)
        if not n:
            return None
        limit = self._limit(actor)
        strength = 0.0 if n <= limit else min(1.0, 0.75 + (n - limit) / (2 * limit))
        return Finding(n, f"<= {limit} sign-ups per source", strength)
