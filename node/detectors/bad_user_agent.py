"""Bad user agent: attack tools, HTTP libraries, crawlers and missing user agents. A mobile
app's HTTP stack (okhttp, Alamofire, Dart) is a customer's agent, like a browser's.

Matching is linear-time (node.signatures.ua: literal matching over a bounded prefix, cached).
A claim to be a major search engine's crawler is left to good-bot verification, and a
browser-looking agent is no evidence either way (any bot can send one): both abstain, as
does a log that does not record the agent at all (`common` format).
"""

from node.detectors.base import Detector, Finding
from node.signatures.ua import classify_ua

_STRENGTH = {
    # kind: per bot type strength
    "scanner": {"security_crawlers": 1.0, "scraping": 1.0, "api_abuse": 1.0,
                "account_takeover": 1.0},
    "library": {"security_crawlers": 0.3, "scraping": 1.0, "api_abuse": 1.0,
                "account_takeover": 1.0},
    "crawler": {"security_crawlers": 0.3, "scraping": 1.0, "api_abuse": 0.5,
                "account_takeover": 0.5},
    "empty": {"security_crawlers": 0.6, "scraping": 1.0, "api_abuse": 1.0,
              "account_takeover": 1.0},
}


class BadUserAgent(Detector):
    name = "bad_user_agent"
    title = "Bad user-agent"
    judges_customers = True   # an attack tool's agent counts even with a valid credential
    votes = {"security_crawlers": 2.0, "scraping": 1.0, "api_abuse": 1.0,
             "account_takeover": 1.0}
    slots = ("kind",)
    observes_start = True     # the user agent is judged once, on a session's first request
    _KINDS = ("browser", "scanner", "library", "crawler", "empty", "good_bot", "other", "app")

    def observe(self, ev):
        # A session's kind lives in the shared `ua_kind` slot (other detectors read it too);
        # only an IP that sent a bad agent gets a private counter, so floods stay small.
        ua = ev.rec.ua
        if ua is None:           # a log without the field (`common`): no evidence either way
            ev.session.ua_kind = "unknown"
            return False
        kind = classify_ua(ua).kind
        ev.session.ua_kind = kind
        ip = ev.ip
        if kind in _STRENGTH and self.get(ip, 0) < 2:
            self.set(ip, 0, self._KINDS.index(kind) + 1)
        return kind == "scanner"

    def evaluate(self, actor, ev):
        if actor.kind == "session":
            kind = actor.ua_kind
            if actor.customer and kind != "scanner":
                return None      # a customer's integration sends its HTTP library's agent
        else:
            code = int(self.get(actor, 0))
            kind = self._KINDS[code - 1] if code else None
        if kind is None:
            return None
        only = _STRENGTH.get(kind)
        if only is None:
            return None
        return Finding(1, f"not a {kind} user agent", 1.0, only)
