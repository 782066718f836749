"""Persistent account takeover: slow login failures from one source over hours and days —
a few attempts an hour stay below every rate limit, but they never succeed and they try
several accounts. The value is the failures since the source's last success (the streak),
judged only once the streak spans `min_span`: three typos in a minute are not slow.

Kept in the engine's long-term table (engine.auth.LongTermAuth): keyed by (IP, user agent),
TTL seven days, hard cap, failures decayed with a one-day time constant and usernames in a
HyperLogLog. A person who forgot a password fails a few times on one account and then logs
in (or resets it); the office NAT's people succeed far more often than they fail.
"""

from node.detectors.base import Detector, Finding, Param, fmt


class PersistentAto(Detector):
    name = "persistent_ato"
    title = "Persistent ATO"
    judges_customers = True
    specificity = 3
    votes = {"account_takeover": 2.0}
    params = {"min_failures": Param(3.0, minimum=1.0,
                                    help="decayed failed logins without success"),
              "min_span": Param(600.0, "duration",
                                help="slow: attempts spread over at least this long")}
    observes_auth = True
    actors = frozenset({"session", "ip"})

    def _entry(self, ev):
        return self.ctx.long_auth.get((ev.rec.ip, hash(ev.rec.ua)))

    def observe(self, ev):
        if ev.auth_result != "fail":
            return False
        e = self._entry(ev)
        return e is not None and round(e.streak) >= self.p["min_failures"] and e.attempts <= 64

    def evaluate(self, actor, ev):
        if actor.auth is None:
            return None
        e = self._entry(ev)
        if e is None or e.attempts < 2 or e.last_ts - e.streak_ts < self.p["min_span"]:
            return None             # no slow streak (yet): the fast detectors judge bursts
        fails = round(e.streak, 1)     # decayed: three failures an hour apart are still ~3
        limit = self.p["min_failures"]
        users = len(e.streak_users)
        fired = round(fails) >= limit and (users >= 2 or fails >= 2 * limit)
        # Each further account that fails without a success weighs as much as more failures:
        # a person forgets one password, not three.
        strength = (min(1.0, 0.5 + max(0.0, fails - limit) / limit + 0.25 * (users - 1))
                    if fired else 0.0)
        return Finding(fails, f"< {fmt(limit)} failed logins without success",
                       strength)
