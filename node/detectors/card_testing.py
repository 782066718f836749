"""Card testing (carding, OAT-001 / OAT-010): stolen card numbers checked one by one.

Two shapes: many payments or card checks, most of them declined (402, or the 4xx the
endpoint learned to use; engine.roles), and -- where the API answers a declined check with
200 and says so in the body -- many card checks or attachments at all: a customer checks or
adds a card or two, a merchant's server charges cards but does not attach hundreds of them.
"""

from node.detectors.base import Detector, Finding, Param
from node.engine.flows import flow_bad, flow_count
from node.engine.roles import CARD_CHECK, PAYMENT, ROLE_INDEX

_PAY = ROLE_INDEX[PAYMENT]
_CARD = ROLE_INDEX[CARD_CHECK]


class CardTesting(Detector):
    name = "card_testing"
    title = "Card testing"
    judges_customers = True
    specificity = 3
    votes = {"api_abuse": 2.5}
    params = {"max_declines": Param(4, "int", minimum=2,
                                    help="declined payments a customer may have"),
              "min_share": Param(0.4, maximum=1.0,
                                 help="share of the attempts declined"),
              "max_card_checks": Param(10, "int", minimum=2,
                                       help="cards checked or attached from one source")}
    observes_unsafe = True

    def observe(self, ev):
        role = ev.role
        if role is not PAYMENT and role is not CARD_CHECK:
            return False
        s = ev.session
        return (flow_bad(s, _PAY) + flow_bad(s, _CARD) == self.p["max_declines"] + 1
                or flow_count(s, _CARD) == self.p["max_card_checks"] + 1)

    def evaluate(self, actor, ev):
        attempts = flow_count(actor, _PAY) + flow_count(actor, _CARD)
        if not attempts:
            return None
        declines = flow_bad(actor, _PAY) + flow_bad(actor, _CARD)
        limit = self.p["max_declines"]
        if declines > limit and declines >= attempts * self.p["min_share"]:
            return Finding(declines, f"<= {limit} declined payments",
                           min(1.0, 0.75 + (declines - limit) / (2 * limit)))
        checks = flow_count(actor, _CARD)
        climit = self.p["max_card_checks"]
        if checks > climit:
            return Finding(checks, f"<= {climit} cards checked or attached",
                           min(1.0, 0.75 + (checks - climit) / (2 * climit)))
        return Finding(declines, f"<= {limit} declined payments", 0.0)
