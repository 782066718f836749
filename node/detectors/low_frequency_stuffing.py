"""Low-frequency credential stuffing: many sessions that each make one or two login attempts
and nothing else, spread over many addresses so that no single source looks busy.

Judged on the population, not the actor: the engine counts "login-only" sessions (a login
attempt with at most two other requests first; un-counted if the session goes on to use the
application) per user agent and per IPv4 /24, decayed over about an hour (engine.auth). A
cluster is anomalous when its login-only sessions are many and far above what the rest of the
application shows for the same number of sessions — learned from the application's own
traffic, so a mobile app that logs in first thing raises the expectation for everyone.
A detection names the cluster's recent addresses so the reaction covers the pool.
"""

from node.detectors.base import Detector, Finding, Param

_KINDS = ("ua", "net")


MAX_ATTEMPTS = 3   # per session: more is ordinary (high-frequency) stuffing or brute force


def login_only(actor) -> bool:
    """The actor's attempts come from login-only sessions that try a few times each (a
    session, or an IP / network whose sessions do)."""
    st = actor.auth
    if st is None or not st.attempts:
        return False
    if actor.kind == "session":
        return st.login_only and st.attempts <= MAX_ATTEMPTS
    # An address or network: its traffic is mostly logins, a few per session.
    return st.attempts * 2 >= actor.n and st.attempts <= MAX_ATTEMPTS * max(actor.nsess, 1)


def cluster_keys(ev) -> tuple:
    rec = ev.rec
    ai = ev.app_index
    keys = [("ua", ai, hash(rec.ua))]
    if ":" not in rec.ip:
        i = rec.ip.rfind(".")
        if i > 0:
            keys.append(("net", ai, rec.ip[:i]))
    return tuple(keys)


class LowFrequencyStuffing(Detector):
    name = "low_frequency_stuffing"
    title = "Low-frequency credential stuffing"
    specificity = 3
    votes = {"account_takeover": 1.5}
    params = {"min_sessions": Param(10, "int", minimum=3,
                                    help="login-only sessions in an hour per user agent or /24"),
              "factor": Param(5.0, minimum=1.0,
                              help="times the rest of the application's login-only share")}
    observes_auth = True

    def observe(self, ev):
        # Login-only sessions are a request or two long: they never reach a checkpoint.
        st = ev.session.auth
        return (ev.auth is not None and st is not None and st.login_only
                and st.attempts <= MAX_ATTEMPTS)

    def evaluate(self, actor, ev):
        if not login_only(actor):
            return None
        clusters = self.ctx.clusters
        app = clusters.get(("app", ev.app_index))
        if app is None:
            return None
        best = None
        for key in cluster_keys(ev):
            c = clusters.get(key)
            if c is None:
                continue
            c.decay(ev.rec.ts)
            others_lo = max(0.0, app.lo_sessions - c.lo_sessions)
            others = max(0.0, app.sessions - c.sessions)
            expected = (others_lo + 1.0) / (others + 10.0) * max(c.sessions, 1.0)
            limit = max(float(self.p["min_sessions"]), self.p["factor"] * expected)
            known = c.fails + c.oks        # unknown results (a 200 either way) don't excuse
            failing = known < 1 or c.fails / known >= 0.5
            score = c.lo_sessions / limit
            if best is None or score > best[0]:
                best = (score, c, limit, failing)
        if best is None:
            return None
        score, c, limit, failing = best
        if score < 1.0 or not failing:
            # A quiet cluster is no evidence of a person (people do not make login-only
            # sessions at all; a single-source attacker does not fill a cluster): abstain.
            return None
        return Finding(round(c.lo_sessions), f"< {limit:.0f} login-only sessions / h",
                       min(1.0, 0.5 + (score - 1.0)), ips=c.ips or None)
