"""Datacenter agent: a browser's or a mobile app's user agent sent from a public cloud's
address (node.signatures.cloud: the providers' published ranges). People browse and use apps
from homes, offices and carriers; a headless browser or a harvester replaying the app's own
agent runs on rented servers. Programs that say what they are (an SDK, python-requests) run
there honestly and are not judged here.

One such client is a hint, never enough alone (its strength stays below `min_votes`). One
agent from several cloud addresses, without credentials -- a pool -- is a campaign: the
finding names its addresses (engine.auth.Cluster, per application and user agent, decayed
over about an hour). A phone app's agent needs fewer: phones reach an API through carriers
and home networks, while a company's egress through a cloud proxy carries many people's
browsers (of one version, often).
"""

from node.detectors.base import Detector, Finding, Param
from node.signatures.cloud import provider

_PEOPLE_AGENTS = frozenset(("browser", "app"))
_UNKNOWN, _NOT_CLOUD, _CLOUD = 0, 1, 2


class DatacenterAgent(Detector):
    name = "datacenter_agent"
    title = "Browser or app agent from a datacenter"
    specificity = 2
    votes = {"scraping": 2.0, "api_abuse": 1.0}
    params = {"min_pool": Param(10, "int", minimum=2,
                                help="cloud addresses sending one browser agent, no credential"),
              "min_pool_app": Param(3, "int", minimum=2,
                                    help="cloud addresses sending one app agent, no credential"),
              "single": Param(0.6, maximum=1.0,
                              help="strength of one such client (below min_votes alone)")}
    slots = ("cloud",)
    observes_start = True

    def observe(self, ev):
        ip = ev.ip
        state = self.get(ip, 0)
        if state == _UNKNOWN:
            state = _CLOUD if provider(ev.rec.ip, self.ctx.config.cloud_ranges) else _NOT_CLOUD
            self.set(ip, 0, state)
        kind = ev.session.ua_kind
        if state != _CLOUD or kind not in _PEOPLE_AGENTS or ev.rec.session is not None:
            return False
        c = self.ctx.clusters.touch(("dc", ev.app_index, hash(ev.rec.ua)), ev.rec.ts)
        c.add_ip(ev.rec.ip, ts=ev.rec.ts)
        return c.distinct_ips >= self._limit(kind)

    def _limit(self, kind: str) -> int:
        return self.p["min_pool_app"] if kind == "app" else self.p["min_pool"]

    def evaluate(self, actor, ev):
        if actor.kind == "session":
            if actor.ua_kind not in _PEOPLE_AGENTS or self.get(ev.ip, 0) != _CLOUD:
                return None
        elif self.get(actor, 0) != _CLOUD or ev.session.ua_kind not in _PEOPLE_AGENTS:
            return None
        c = self.ctx.clusters.get(("dc", ev.app_index, hash(ev.rec.ua)))
        pool = c.distinct_ips if c is not None else 1
        limit = self._limit(ev.session.ua_kind)
        if pool >= limit:
            return Finding(pool, f"< {limit} cloud addresses per browser or app agent", 1.0,
                           ips=c.ips or None)
        return Finding(pool, "not from a datacenter", self.p["single"])
