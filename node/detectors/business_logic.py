"""Business logic score: heavy use of critical / sensitive endpoints (checkout, payment,
password reset, export, orders, accounts) — configured per application, with generic
defaults when an application names none.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from node.config.model import EndpointRule
from node.detectors.base import Detector, Finding, Param
from node.engine.context import UNSET

DEFAULT_CRITICAL = (
    EndpointRule("POST", "*/checkout*"), EndpointRule("POST", "*/payment*"),
    EndpointRule("POST", "*/transfer*"), EndpointRule(None, "*/password*"),
    EndpointRule("POST", "*/reset*"), EndpointRule("POST", "*/otp*"),
    EndpointRule("POST", "*/gift*"), EndpointRule("POST", "*/coupon*"),
)
DEFAULT_SENSITIVE = (
    EndpointRule(None, "*/export*"), EndpointRule(None, "*/download*"),
    EndpointRule(None, "*/report*"), EndpointRule(None, "*/orders/*"),
    EndpointRule(None, "*/users/*"), EndpointRule(None, "*/accounts/*"),
    EndpointRule(None, "*/invoices/*"),
)


def matches(rules: tuple[EndpointRule, ...], method: str, template: str, path: str) -> bool:
    for r in rules:
        if r.method is not None and r.method != method:
            continue
        if fnmatchcase(template, r.pattern) or fnmatchcase(path, r.pattern):
            return True
    return False


class BusinessLogic(Detector):
    name = "business_logic"
    title = "Business logic score"
    specificity = 2
    votes = {"api_abuse": 1.5, "account_takeover": 0.5, "resource_consumption": 0.5,
             "scraping": 0.5}
    params = {"max_calls": Param(15, "int", minimum=2),
              "min_share": Param(0.3, maximum=1.0)}
    slots = ("calls",)
    observes = True

    @staticmethod
    def _weight(ev) -> int:
        rec = ev.rec
        crit = ev.app.critical or (DEFAULT_CRITICAL if not ev.app.sensitive else ())
        sens = ev.app.sensitive or (DEFAULT_SENSITIVE if not ev.app.critical else ())
        return 2 if matches(crit, rec.method, ev.template, rec.path) else (
            1 if matches(sens, rec.method, ev.template, rec.path) else 0)

    def observe(self, ev):
        memo = ev.endpoint.memo
        w = memo[self.memo]
        if w is UNSET:               # judged once per endpoint (its first path decides)
            w = memo[self.memo] = self._weight(ev)
        if w and ev.rec.status != 404:
            for a in ev.actors():
                self.add(a, 0)
        return False

    def evaluate(self, actor, ev):
        calls = int(self.get(actor, 0))
        if actor.n < 5 or not calls:
            return None             # never touched a critical endpoint: nothing to judge
        limit = self.p["max_calls"]
        fired = calls > limit and calls / actor.n >= self.p["min_share"]
        strength = min(1.0, 0.5 + (calls - limit) / limit) if fired else 0.0
        return Finding(calls, f"< {limit} critical/sensitive calls", strength)
