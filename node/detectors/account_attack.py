"""Account attack: one account failing from many addresses, each sending a guess or two --
a distributed brute force that no single source shows (engine.flows.Accounts).

The reaction protects the account: it names the addresses that failed on it, never those
that logged in to it successfully (the owner's), so the owner is not locked out.
"""

from node.detectors.base import Detector, Finding, Param


class AccountAttack(Detector):
    name = "account_attack"
    title = "Account attacked from many addresses"
    judges_customers = True
    specificity = 3
    votes = {"account_takeover": 2.0}
    params = {"min_failures": Param(10, "int", minimum=3,
                                    help="decayed failures on one account"),
              "min_ips": Param(5, "int", minimum=2,
                               help="distinct addresses those failures came from")}
    observes_auth = True

    def _account(self, actor, ev):
        st = actor.auth
        if st is None or not st.fails:
            return None
        user = st.top if st.top is not None else st.u0
        if user is None:
            return None
        return self.ctx.accounts.get((ev.app_index, user))

    def observe(self, ev):
        if ev.auth_result != "fail" or not ev.rec.user:
            return False
        a = self._account(ev.session, ev)
        return (a is not None and a.fails >= self.p["min_failures"]
                and a.distinct_ips >= self.p["min_ips"])

    def evaluate(self, actor, ev):
        a = self._account(actor, ev)
        if a is None or a.fails < 3:
            return None
        ips = a.distinct_ips
        limit = self.p["min_ips"]
        mine = ev.rec.ip not in a.owners
        fired = mine and a.fails >= self.p["min_failures"] and ips >= limit
        if not fired:
            return Finding(ips, f"< {limit} addresses failing on one account", 0.0)
        return Finding(ips, f"< {limit} addresses failing on one account",
                       min(1.0, 0.75 + (ips - limit) / (2 * limit)), ips=a.attackers())
