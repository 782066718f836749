"""SMS pumping (toll fraud, OAT-003 against a one-time-code flow): codes sent and never
verified. A person asks for a code, maybe a second one, and enters it; a pumping script sends
code after code to numbers it profits from and never verifies any.
"""

from node.detectors.base import Detector, Finding, Param
from node.engine.flows import flow_bad, flow_count
from node.engine.roles import OTP_SEND, OTP_VERIFY, ROLE_INDEX

_SEND = ROLE_INDEX[OTP_SEND]
_VERIFY = ROLE_INDEX[OTP_VERIFY]


class SmsPumping(Detector):
    name = "sms_pumping"
    title = "Codes sent, never verified"
    judges_customers = True
    specificity = 3
    votes = {"api_abuse": 2.5}
    params = {"max_unverified": Param(4, "int", minimum=2,
                                      help="codes sent without a verification a person may ask"),
              "max_ratio": Param(0.5, maximum=1.0,
                                 help="verified codes per code sent below which sends count")}
    observes_unsafe = True

    def observe(self, ev):
        return ev.role is OTP_SEND and flow_count(ev.session, _SEND) == (
            self.p["max_unverified"] + 1)

    def evaluate(self, actor, ev):
        sent = flow_count(actor, _SEND)
        if not sent:
            return None
        verified = flow_count(actor, _VERIFY) - flow_bad(actor, _VERIFY)
        unverified = max(0, sent - verified)
        limit = self.p["max_unverified"]
        fired = unverified > limit and verified <= sent * self.p["max_ratio"]
        strength = min(1.0, 0.75 + (unverified - limit) / (2 * limit)) if fired else 0.0
        return Finding(unverified, f"<= {limit} codes sent and never verified", strength)
