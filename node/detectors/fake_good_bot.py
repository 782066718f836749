"""Fake good bot: a client that claims to be a known crawler (Googlebot, Bingbot, ...) from an
address the vendor does not crawl from — failing forward-confirmed reverse DNS or, with DNS
verification off, outside the ranges of a vendor that publishes them all (Google, Bing,
OpenAI, Perplexity, ...; node.goodbots). Impostors hide behind the claim because sites let
search engines crawl freely: the lie itself is strong evidence.

A verified crawler is exempt from decisions (engine); an unverified claim whose DNS check is
still running is "pending" and this detector abstains until the verdict is in.
"""

from node.detectors.base import Detector, Finding
from node.goodbots import IMPOSTOR
from node.signatures.ua import classify_ua


class FakeGoodBot(Detector):
    name = "fake_good_bot"
    title = "Fake good bot"
    judges_customers = True
    specificity = 3
    votes = {"scraping": 2.0, "security_crawlers": 1.0, "api_abuse": 1.0}
    observes_start = True     # the user agent is judged once, on a session's first request

    def observe(self, ev):
        # Judge a claim at once: in replay the verdict is ready, live it may still be pending.
        return ev.session.n == 1 and ev.session.ua_kind == "good_bot"

    def evaluate(self, actor, ev):
        if ev.session.ua_kind != "good_bot" or self.ctx.verifier is None:
            return None
        rec = ev.rec
        vendor = classify_ua(rec.ua).name
        if self.ctx.verifier.verdict(rec.ip, vendor, rec.ts) != IMPOSTOR:
            return None
        return Finding(1, f"a verified {vendor} address", 1.0)
