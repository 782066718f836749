"""Card testing (carding, OAT-001 / OAT-010): many payment or card-verification attempts,
most of them declined -- a list of stolen numbers checked one by one. A customer whose card
is declined tries another card or two. Declines are what the payment endpoint answers (402,
or the 4xx it learned to use; engine.roles).
"""

from node.detectors.base import Detector, Finding, Param
from node.engine.flows import flow_bad, flow_count
from node.engine.roles import PAYMENT, ROLE_INDEX

_RI = ROLE_INDEX[PAYMENT]


class CardTesting(Detector):
    name = "card_testing"
    title = "Card testing"
    judges_customers = True
    specificity = 3
    votes = {"api_abuse": 2.5}
    params = {"max_declines": Param(4, "int", minimum=2,
                                    help="declined payments a customer may have"),
              "min_share": Param(0.4, maximum=1.0,
                                 help="share of the attempts declined")}
    observes_unsafe = True

    def observe(self, ev):
        return ev.role is PAYMENT and ev.outcome is not None and flow_bad(
            ev.session, _RI) == self.p["max_declines"] + 1

    def evaluate(self, actor, ev):
        attempts = flow_count(actor, _RI)
        if not attempts:
            return None
        declines = flow_bad(actor, _RI)
        limit = self.p["max_declines"]
        fired = declines > limit and declines >= attempts * self.p["min_share"]
        strength = min(1.0, 0.75 + (declines - limit) / (2 * limit)) if fired else 0.0
        return Finding(declines, f"<= {limit} declined payments", strength)
