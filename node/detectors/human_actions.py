"""Successful human actions: evidence *against* automation. A login that succeeds (after at
most a few typos) and is followed by ordinary use, or a completed checkout, is what a
customer does. The detector always judges "normal" (strength 0), so its votes add to the
denominator of confidence (SPEC §5) and weaken thin evidence against a real customer.

A successful login changes the session cookie: the engine carries the success over to the
session that starts right after it from the same address and user agent. Many "checkouts"
are not a customer (carding): past `max_checkouts` the detector abstains.
"""

from node.detectors.base import Detector, Finding, Param
from node.detectors.business_logic import DEFAULT_CRITICAL, matches
from node.engine.context import UNSET


class HumanActions(Detector):
    name = "human_actions"
    title = "Successful human actions"
    votes = {"account_takeover": 1.5, "api_abuse": 2.0, "scraping": 2.0}
    params = {"max_failures": Param(3, "int", minimum=0),
              "min_after": Param(3, "int", minimum=1,
                                 help="requests after a login that make it 'followed by use'"),
              "max_checkouts": Param(5, "int", minimum=1)}
    slots = ("checkouts",)
    observes_unsafe = True

    def observe(self, ev):
        rec = ev.rec
        if ev.auth is not None or not 200 <= rec.status < 300:
            return False
        memo = ev.endpoint.memo
        hit = memo[self.memo]
        if hit is UNSET:
            hit = memo[self.memo] = matches(ev.app.critical or DEFAULT_CRITICAL, rec.method,
                                            ev.template, rec.path)
        if hit:
            self.add(ev.session, 0)
            self.add(ev.ip, 0)
        return False

    def evaluate(self, actor, ev):
        checkouts = int(self.get(actor, 0))
        if checkouts > self.p["max_checkouts"]:
            return None
        logins = 0
        st = actor.auth
        if st is not None and st.oks:
            if st.fails > self.p["max_failures"] * max(1, st.oks):
                return None            # successes among many failures: a stuffing hit
            if actor.n - st.ok_at >= self.p["min_after"]:
                logins = st.oks
        v = logins + checkouts
        if not v:
            return None
        return Finding(v, "successful logins and checkouts", 0.0)
