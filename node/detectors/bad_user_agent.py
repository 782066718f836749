"""Bad user agent: attack tools, spam bots and e-mail harvesters, HTTP libraries, crawlers and
missing user agents. A mobile app's HTTP stack (okhttp, Alamofire, Dart) is a customer's agent,
like a browser's.

A declared crawler of a known category (node/data/ua_ai_agents.txt: GPTBot and ClaudeBot crawl
to train models, ChatGPT-User and Claude-User fetch for a person, Googlebot and OAI-SearchBot
index for search) follows its profile's `crawlers:` policy: `block` is strong evidence of
scraping, judged at once; `allow` and `monitor` (the default) are no evidence: an agent that
says who it is is not lying about it, and its behaviour is judged like anyone's.

Matching is linear-time (node.signatures.ua: literal matching over a bounded prefix, cached).
A claim to be a major search engine's crawler is otherwise left to good-bot verification, and a
browser-looking agent is no evidence either way (any bot can send one): both abstain, as
does a log that does not record the agent at all (`common` format).
"""

from node.detectors.base import Detector, Finding
from node.signatures.ua import CATEGORIES, classify_ua

_STRENGTH = {
    # kind: per bot type strength
    "scanner": {"security_crawlers": 1.0, "scraping": 1.0, "api_abuse": 1.0,
                "account_takeover": 1.0},
    "spam_bot": {"security_crawlers": 0.6, "scraping": 1.0, "api_abuse": 1.0,
                 "account_takeover": 1.0},
    "library": {"security_crawlers": 0.3, "scraping": 1.0, "api_abuse": 1.0,
                "account_takeover": 1.0},
    "crawler": {"security_crawlers": 0.3, "scraping": 1.0, "api_abuse": 0.5,
                "account_takeover": 0.5},
    "empty": {"security_crawlers": 0.6, "scraping": 1.0, "api_abuse": 1.0,
              "account_takeover": 1.0},
}
# A crawler whose category the profile blocks: what it does is scraping, by its own word.
_BLOCKED = {"scraping": 1.0, "api_abuse": 1.0, "security_crawlers": 0.3, "account_takeover": 0.3}
_JUDGE_AT_ONCE = ("scanner", "spam_bot")
_CAT_CODE = 16            # an IP's slot holds kind code + 16 * category code


class BadUserAgent(Detector):
    name = "bad_user_agent"
    title = "Bad user-agent"
    judges_customers = True   # an attack tool's agent counts even with a valid credential
    votes = {"security_crawlers": 2.0, "scraping": 1.0, "api_abuse": 1.0,
             "account_takeover": 1.0}
    slots = ("kind",)
    observes_start = True     # the user agent is judged once, on a session's first request
    _KINDS = ("browser", "scanner", "library", "crawler", "empty", "good_bot", "other", "app",
              "spam_bot")

    def __init__(self, params, ctx, slot_base):
        super().__init__(params, ctx, slot_base)
        # Per application (Event.app_index), the crawler policy of the profile covering it,
        # found the way the engine finds the profile.
        cfg = ctx.config
        self._policies = tuple(
            next((p.crawlers for p in cfg.profiles if p.covers(a.name)), {})
            for a in cfg.applications)

    def observe(self, ev):
        # A session's kind lives in the shared `ua_kind` slot (other detectors read it too);
        # only an IP that sent a bad agent, or a session with a declared category, gets a
        # private counter, so floods stay small.
        ua = ev.rec.ua
        if ua is None:           # a log without the field (`common`): no evidence either way
            ev.session.ua_kind = "unknown"
            return False
        c = classify_ua(ua)
        kind = c.kind
        ev.session.ua_kind = kind
        cat = CATEGORIES.index(c.category) + 1 if c.category else 0
        if cat:
            self.set(ev.session, 0, cat)
        ip = ev.ip
        if (kind in _STRENGTH or cat) and not self.get(ip, 0):
            self.set(ip, 0, self._KINDS.index(kind) + 1 + _CAT_CODE * cat)
        return kind in _JUDGE_AT_ONCE or bool(cat) and self._policy(ev, cat) == "block"

    def _policy(self, ev, cat: int) -> str:
        policies = self._policies[ev.app_index] if ev.app_index < len(self._policies) else {}
        return policies.get(CATEGORIES[cat - 1], "monitor")

    def evaluate(self, actor, ev):
        if actor.kind == "session":
            kind = actor.ua_kind
            if actor.customer and kind not in ("scanner", "spam_bot"):
                return None      # a customer's integration sends its HTTP library's agent
            cat = int(self.get(actor, 0))
        else:
            code = int(self.get(actor, 0))
            kind = self._KINDS[code % _CAT_CODE - 1] if code else None
            cat = code // _CAT_CODE
        if cat:
            if self._policy(ev, cat) == "block":
                return Finding(1, f"no {CATEGORIES[cat - 1]} (blocked by the profile)", 1.0,
                               _BLOCKED)
            return None           # allowed or monitored: a declared crawler's name is no lie
        if kind is None:
            return None
        only = _STRENGTH.get(kind)
        if only is None:
            return None
        return Finding(1, f"not a {kind} user agent", 1.0, only)
