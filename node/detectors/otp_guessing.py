"""One-time code guessing: failed verifications of an SMS / e-mail / authenticator code.
A six-digit code is a million guesses: a person mistypes once or twice and asks for a new
code, a script after a right password tries code after code (OAT-007 on the second factor).
Counted per source and per account (engine.flows.Accounts: the session's login names it), so
a guesser that moves to a new address every few codes is still one attack on one account;
the finding then names the addresses that failed on it.
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
    params = {"max_failures": Param(3, "int", minimum=2,
                                    help="failed code verifications a person may make"),
              "max_account_failures": Param(6, "int", minimum=2,
                                            help="failed codes on one account, any source")}
    observes_unsafe = True

    def _account(self, actor, ev):
        st = actor.auth
        if st is None or st.u0 is None:
            return None
        return self.ctx.accounts.get((ev.app_index, st.u0))

    def observe(self, ev):
        if ev.role is not OTP_VERIFY or ev.outcome is None:
            return False
        if flow_bad(ev.session, _RI) == self.p["max_failures"] + 1:
            return True
        a = self._account(ev.session, ev)
        return a is not None and a.codes > self.p["max_account_failures"]

    def evaluate(self, actor, ev):
        if not flow_count(actor, _RI):
            return None
        bad = flow_bad(actor, _RI)
        limit = self.p["max_failures"]
        if bad > limit:
            return Finding(bad, f"<= {limit} failed code verifications",
                           min(1.0, 0.75 + (bad - limit) / (2 * limit)))
        a = self._account(actor, ev)
        alimit = self.p["max_account_failures"]
        if bad and a is not None and a.codes > alimit and ev.rec.ip not in a.owners:
            return Finding(round(a.codes), f"<= {alimit} failed codes on one account", 1.0,
                           ips=a.attackers())
        return Finding(bad, f"<= {limit} failed code verifications", 0.0)
