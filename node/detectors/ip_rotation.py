"""IP rotation: one client behind a pool of addresses.

Two links across addresses:
- a session cookie presented from many networks (a scraper behind a rotating proxy keeps its
  cookie); people move between a few networks (home, phone), rarely more, and an
  integration's workers sit in cloud providers' ranges;
- login-only attempts that share a user agent (engine.auth clusters) coming from many
  addresses with only a few attempts each: one campaign spread thin over a proxy pool --
  provided many of that agent's sessions stop at the login and its known outcomes mostly
  fail (a mobile app's customers share one agent too, but they log in and use the app).
A detection names the linked addresses (up to 256) so the reaction covers the pool.
"""

from node.detectors.base import Detector, Finding, Param
from node.detectors.low_frequency_stuffing import login_only
from node.signatures.cloud import provider

_NO_ATO = {"scraping": 1.0, "api_abuse": 1.0, "account_takeover": 0.0}


def _network(ip: str) -> str:
    if ":" in ip:
        return ":".join(ip.split(":")[:4])
    return ip.rsplit(".", 1)[0]


class IpRotation(Detector):
    name = "ip_rotation"
    title = "IP rotation"
    specificity = 2
    votes = {"account_takeover": 1.5, "scraping": 1.5, "api_abuse": 1.0}
    params = {"min_networks": Param(3, "int", minimum=2,
                                    help="networks one session cookie may come from"),
              "min_pool": Param(10, "int", minimum=3,
                                help="addresses behind one user agent's login-only attempts"),
              "max_per_ip": Param(3.0, minimum=1.0,
                                  help="attempts per address that look spread thin")}

    def _fleet(self, ips) -> bool:
        # Integrations run on rented servers (one customer's token may be in two of them);
        # a rotating proxy pool hands out homes' and phones' addresses.
        ranges = self.ctx.config.cloud_ranges
        return all(provider(a, ranges) is not None for a in ips)

    def evaluate(self, actor, ev):
        if actor.kind == "session" and actor.ips and len(actor.ips) >= 2:
            nets = len({_network(a) for a in actor.ips})
            limit = self.p["min_networks"]
            if nets >= limit and self._fleet(actor.ips):
                return Finding(len(actor.ips), f"< {limit} networks per session", 0.0)
            if nets >= limit:
                # Account takeover only when the rotating client tries to log in.
                only = None if actor.auth is not None and actor.auth.attempts else _NO_ATO
                return Finding(len(actor.ips), f"< {limit} networks per session",
                               min(1.0, 0.5 + (nets - limit + 1) / limit), only)
            if not login_only(actor):
                return Finding(len(actor.ips), f"< {limit} networks per session", 0.0)
        if not login_only(actor):
            return None
        c = self.ctx.clusters.get(("ua", ev.app_index, hash(ev.rec.ua)))
        if c is None or c.ip_hll is None:
            return None
        c.decay(ev.rec.ts)
        # A mobile app sends one user agent from all its customers' addresses, and each of
        # them logs in first: a pool only if many of these sessions stopped at the login
        # (a session that goes on to use the application is un-counted), and the attempts
        # whose outcome shows mostly fail.
        if c.lo_sessions < self.p["min_pool"]:
            return None
        known = c.fails + c.oks
        if known >= 1 and c.fails < known * 0.5:
            return None
        pool = c.distinct_ips
        per_ip = c.attempts / max(pool, 1)
        limit = self.p["min_pool"]
        if pool < limit or per_ip > self.p["max_per_ip"]:
            return None     # no pool behind this user agent: no evidence either way
        return Finding(pool, f"< {limit} addresses per user agent's login-only attempts",
                       min(1.0, 0.5 + (pool - limit) / (2 * limit)),
                       ips=c.ips or None)
