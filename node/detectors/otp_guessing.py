"""One-time code guessing: failed verifications of an SMS / e-mail / authenticator code.
A six-digit code is a million guesses: a person mistypes once or twice and asks for a new
code, a script after a right password tries code after code (OAT-007 on the second factor).
"""

from node.detectors.base import Detector, Finding, Param
from node.engine.flows import flow_bad, flow_count
from node.engine.roles import OTP_VERIFY, ROLE_INDEX

_RI = ROLE_INDEX[OTP_VERIFY]


class OtpGuessing(Detector):
    name = "otp_guessing"
    title = "One-time code guessing"
    judges_customers = True
    specificity = 3
    votes = {"account_takeover": 2.5}
    params = {"max_failures": Param(5, "int", minimum=2,
                                    help="failed code verifications a person may make")}
    observes_unsafe = True

    def observe(self, ev):
        return (ev.role is OTP_VERIFY and ev.outcome is not None
                and flow_bad(ev.session, _RI) == self.p["max_failures"] + 1)

    def evaluate(self, actor, ev):
        if not flow_count(actor, _RI):
            return None
        bad = flow_bad(actor, _RI)
        limit = self.p["max_failures"]
        strength = 0.0 if bad <= limit else min(1.0, 0.75 + (bad - limit) / (2 * limit))
        return Finding(bad, f"<= {limit} failed code verifications", strength)
