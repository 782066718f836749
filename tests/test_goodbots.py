"""Good-bot verification against a real DNS server on loopback (a small UDP responder written
with the standard library, speaking the wire format), not a mock of the resolver."""

from __future__ import annotations

import socket
import struct
import threading
import time

import pytest

from node.engine import Engine
from node.engine.context import Event
from node.goodbots import (
    IMPOSTOR,
    PENDING,
    UNKNOWN,
    VERIFIED,
    DnsResolver,
    GoodBotVerifier,
    encode_name,
    read_name,
)
from tests.detector_kit import T0, rec

GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
# Addresses outside Google's published ranges, so only DNS can tell (the ranges are tested below)
REAL = "66.249.95.5"          # a Googlebot address (FCrDNS passes on our test server)
LIAR = "45.33.32.156"          # PTR says googlebot.com, but the name does not resolve back
NOPTR = "45.33.32.157"         # no PTR at all
SLOW = "45.33.32.158"          # the server never answers (timeout → unknown)
V6 = "2001:4860:4864:99::1"    # AAAA path


class LoopbackDns:
    """PTR / A / AAAA records from a dict; NXDOMAIN for anything else; one thread."""

    def __init__(self, records: dict[tuple[str, int], list[str]], silent: set[str]) -> None:
        self.records = records
        self.silent = silent
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.queries = 0
        self._stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> LoopbackDns:
        self.sock.settimeout(0.1)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        self.thread.join(2)
        self.sock.close()

    def _serve(self) -> None:
        while not self._stop:
            try:
                data, peer = self.sock.recvfrom(512)
            except TimeoutError:
                continue
            except OSError:
                return
            self.queries += 1
            qid, _, _, _, _, _ = struct.unpack(">HHHHHH", data[:12])
            name, off = read_name(data, 12)
            qtype, _ = struct.unpack(">HH", data[off:off + 4])
            question = data[12:off + 4]
            if name in self.silent:
                continue
            answers = self.records.get((name.lower(), qtype))
            rcode = 0 if answers is not None else 3
            body = b""
            for a in answers or ():
                if qtype == 12:
                    rdata = encode_name(a)
                elif qtype == 1:
                    rdata = socket.inet_pton(socket.AF_INET, a)
                else:
                    rdata = socket.inet_pton(socket.AF_INET6, a)
                # Owner name as a compression pointer to the question (offset 12).
                body += struct.pack(">HHHIH", 0xC00C, qtype, 1, 60, len(rdata)) + rdata
            head = struct.pack(">HHHHHH", qid, 0x8180 | rcode, 1, len(answers or ()), 0, 0)
            self.sock.sendto(head + question + body, peer)


def _ptr(ip: str) -> str:
    import ipaddress
    return ipaddress.ip_address(ip).reverse_pointer


@pytest.fixture(scope="module")
def dns():
    records = {
        (_ptr(REAL), 12): ["crawl-66-249-95-5.googlebot.com"],
        ("crawl-66-249-95-5.googlebot.com", 1): [REAL],
        (_ptr(LIAR), 12): ["crawl-1-2-3-4.googlebot.com"],
        ("crawl-1-2-3-4.googlebot.com", 1): ["66.249.66.99"],
        (_ptr(V6), 12): ["crawl-v6.googlebot.com"],
        ("crawl-v6.googlebot.com", 28): [V6],
    }
    with LoopbackDns(records, silent={_ptr(SLOW)}) as server:
        yield server


@pytest.fixture
def resolver(dns):
    return DnsResolver("127.0.0.1", dns.port, timeout=0.3)


def test_dns_client_reads_ptr_a_and_nxdomain(resolver):
    assert resolver.reverse(REAL) == ["crawl-66-249-95-5.googlebot.com"]
    assert resolver.forward("crawl-66-249-95-5.googlebot.com") == [REAL]
    assert resolver.reverse(NOPTR) == []
    assert resolver.reverse(SLOW) is None            # timeout: temporary, not a verdict


@pytest.mark.parametrize(("ip", "expected"), [
    (REAL, VERIFIED), (V6, VERIFIED), (LIAR, IMPOSTOR), (NOPTR, IMPOSTOR), (SLOW, UNKNOWN),
    ("10.1.2.3", IMPOSTOR), ("203.0.113.7", IMPOSTOR),       # no crawler lives there
    ("108.177.2.5", VERIFIED),                               # Google's published range
])
def test_sync_verdicts(resolver, ip, expected):
    v = GoodBotVerifier(resolver, sync=True)
    assert v.verdict(ip, "googlebot", T0) == expected


def test_unknown_vendor_and_no_resolver_are_no_evidence():
    v = GoodBotVerifier(None)
    assert v.verdict(REAL, "applebot", T0) == UNKNOWN      # publishes no ranges: DNS decides
    assert v.verdict(REAL, "no-such-vendor", T0) == UNKNOWN
    assert v.verdict("3.12.251.153", "uptimerobot", T0) == VERIFIED   # ranges need no DNS


@pytest.mark.parametrize("ip, vendor, expected", [
    ("66.249.66.1", "googlebot", VERIFIED),       # googlebot.json
    ("108.177.2.5", "googlebot", VERIFIED),       # special-crawlers.json
    ("34.1.2.3", "googlebot", IMPOSTOR),          # Google Cloud, not Googlebot
    ("52.94.0.1", "bingbot", IMPOSTOR),           # AWS
    ("157.55.39.1", "bingbot", VERIFIED),         # bingbot.json
    ("81.2.69.142", "gptbot", IMPOSTOR),
    ("81.2.69.142", "perplexitybot", IMPOSTOR),
    ("81.2.69.142", "google-fetcher", UNKNOWN),   # user-triggered: its lists are not shipped
    ("81.2.69.142", "yandex", UNKNOWN),
])
def test_published_ranges_decide_without_dns(ip, vendor, expected):
    """A vendor that publishes all its ranges needs no DNS to unmask an impostor."""
    assert GoodBotVerifier(None).verdict(ip, vendor, T0) == expected


def test_dns_still_has_the_last_word_outside_complete_ranges(resolver):
    # REAL is outside Google's published ranges (our copy may be older than Google's), yet
    # FCrDNS verifies it when a resolver is configured.
    assert GoodBotVerifier(resolver, sync=True).verdict(REAL, "googlebot", T0) == VERIFIED


def test_async_verdict_is_pending_then_cached(resolver, dns):
    v = GoodBotVerifier(resolver, sync=False)
    try:
        assert v.verdict(REAL, "googlebot", T0) == PENDING        # never blocks the engine
        deadline = time.monotonic() + 5
        while v.verdict(REAL, "googlebot", T0) == PENDING and time.monotonic() < deadline:
            time.sleep(0.01)
        assert v.verdict(REAL, "googlebot", T0) == VERIFIED
        before = dns.queries
        for _ in range(100):
            assert v.verdict(REAL, "googlebot", T0 + 10) == VERIFIED
        assert dns.queries == before                            # from the cache
    finally:
        v.close()


def test_cache_is_bounded(resolver):
    v = GoodBotVerifier(resolver, sync=True, cache_max=8)
    for i in range(50):
        v.verdict(f"45.33.40.{i}", "googlebot", T0)
    assert len(v._cache) <= 8


def test_engine_exempts_verified_and_decides_impostor(resolver):
    eng = Engine(verifier=GoodBotVerifier(resolver, sync=True))
    real = [d for i in range(400) for d in eng.process(
        rec(i, f"/api/products/{i}", ua=GOOGLEBOT, ip=REAL, ts=T0 + i * 0.2))]
    assert not real
    fake = [d for i in range(20) for d in eng.process(
        rec(1000 + i, f"/api/products/{i}", ua=GOOGLEBOT, ip=LIAR, ts=T0 + 100 + i))]
    assert fake and any(n == "fake_good_bot" for n, _, _ in fake[0].detectors)


def test_engine_without_dns_unmasks_a_googlebot_from_a_cloud_address():
    """Issue 11 item 7: published ranges alone are evidence (replay without --dns)."""
    eng = Engine()                              # no resolver
    fake = [d for i in range(20) for d in eng.process(
        rec(i, f"/api/products/{i}", ua=GOOGLEBOT, ip="34.1.2.3", ts=T0 + i))]
    assert fake and ("fake_good_bot", 1, "a verified googlebot address") in fake[0].detectors
    real = [d for i in range(400) for d in eng.process(
        rec(1000 + i, f"/api/products/{i}", ua=GOOGLEBOT, ip="66.249.66.1", ts=T0 + i * 0.2))]
    assert not real                             # verified by range: exempt, even at 5 req/s


def test_engine_without_dns_leaves_a_vendor_without_ranges_to_dns():
    applebot = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, "
                "like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; "
                "+http://www.apple.com/go/applebot)")
    eng = Engine()
    for i in range(5):
        eng.process(rec(i, f"/api/products/{i}", ua=applebot, ip="34.1.2.4", ts=T0 + i * 10))
    det = next(d for d in eng.detectors if d.name == "fake_good_bot")
    sess = next(iter(eng.sessions))
    ev = Event(rec(9, ua=applebot, ip="34.1.2.4"), eng.apps[0], "/", sess,
               eng.ips.get("34.1.2.4"), None, False, False)
    assert det.evaluate(sess, ev) is None       # unknown, not an impostor


def test_replay_without_dns_flags_the_impostor_only(tmp_path, capsys):
    from node.cli import main

    line = ('{ip} - - [02/Dec/2026:06:00:{s:02d} +0000] "GET /products/{s} HTTP/1.1" 200 900 "-" '
            '"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"\n')
    log = tmp_path / "access.log"
    log.write_text("".join(line.format(ip=ip, s=s) for s in range(30)
                           for ip in ("34.1.2.3", "66.249.66.1")))
    assert main(["replay", "--json", "--no-progress", str(log)]) == 0
    out = capsys.readouterr().out
    assert "34.1.2.3" in out and "fake_good_bot" in out
    assert "66.249.66.1" not in out
