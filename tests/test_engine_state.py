"""Engine state: bounded actor tables, sketches, templates, baselines persistence."""

import random

import pytest

from node.engine.actor import EVIDENCE_KEEP, Actor, ActorTable
from node.engine.baselines import Baselines
from node.engine.sketch import hll_add, hll_count, hll_new
from node.engine.templates import TemplateInferrer, classify_segment


def test_actor_table_cap_evicts_least_recently_used():
    ended = []
    t = ActorTable("ip", cap=100, ttl=60, on_end=ended.append)
    for i in range(1000):
        t.touch(f"10.0.{i // 256}.{i % 256}", float(i) / 100)
    assert len(t) == 100
    assert t.evictions == 900 and len(ended) == 900
    t.touch("10.0.3.231", 10.0)            # touched → most recent, survives the next evictions
    for i in range(99):
        t.touch(f"k{i}", 10.0)
    assert t.get("10.0.3.231") is not None


def test_actor_table_order_is_right_to_a_time_bucket():
    """A hot actor is moved at most once per bucket (ttl / 64), yet never falls behind keys
    first seen a bucket after its last touch: evictions still take the idle ones."""
    t = ActorTable("ip", cap=50, ttl=64)          # 1 s buckets
    for i in range(2000):
        ts = i * 0.01                              # the hot key every 10th touch, 20 s in all
        t.touch("hot" if i % 10 == 0 else f"k{i}", ts)
    assert t.get("hot") is not None and len(t) == 50


def test_evidence_keeps_the_first_and_last_requests_in_order():
    a = Actor("session", "s", 0.0)
    for i in range(1, 31):
        a.observe(float(i), i % 1024, 0, 1, 200, False, False, 0, 0, i)
    assert a.evidence() == (1, *range(31 - EVIDENCE_KEEP, 31))


def test_distinct_requests_exact_enough_short_and_long():
    rng = random.Random(3)
    walk = Actor("session", "w", 0.0)
    person = Actor("session", "p", 0.0)
    pages = [hash(f"/p/{i}") & 1023 for i in range(40)]
    for i in range(5000):                  # a walk that never repeats, ~7 bitmaps long
        walk.observe(float(i), hash(f"/item/{i}") & 1023, 0, 1, 200, False, False, 0, 0, i)
        if i % 97 == 0:
            walk.distinct_requests()       # evaluations bank a bitmap past half full
        if i < 400:                        # a person coming back to 40 pages
            person.observe(float(i), rng.choice(pages), 0, 1, 200, False, False, 0, 0, i)
    assert walk.distinct_requests() / walk.n >= 0.95
    assert 30 <= person.distinct_requests() <= 45


def test_actor_table_inactivity_timeout_starts_a_new_actor():
    t = ActorTable("session", cap=10, ttl=1800)
    a = t.touch("s", 0.0)
    a.observe(0.0, 1, 2, 1, 200, False, False, 0, 0, 1)
    assert t.touch("s", 1799.0) is a
    b = t.touch("s", 1799.0 + 1801.0)
    assert b is not a and b.n == 0 and t.expirations == 1


def test_actor_table_expire_sweeps_idle_actors():
    t = ActorTable("ip", cap=10_000, ttl=100)
    for i in range(50):
        t.touch(i, 0.0)
    t.touch("late", 500.0)
    assert t.expire(500.0) == 50 and len(t) == 1


@pytest.mark.parametrize("n", [1, 7, 30, 120, 1000, 20000])
def test_hll_estimate_close(n):
    # Hashes of our own, not hash(): the salt changes per process, and 128 registers have a
    # ~9 % standard error, so a 30 % bound failed about once in 150 random salts.
    import hashlib

    regs = hll_new()
    for i in range(n):
        h = hashlib.blake2b(f"item-{i}".encode(), digest_size=8).digest()
        hll_add(regs, int.from_bytes(h, "little", signed=True))
    assert abs(hll_count(regs) - n) <= max(2, 0.3 * n)


@pytest.mark.parametrize(("seg", "expected"), [
    ("42", "{id}"), ("-3", "{id}"), ("550e8400-e29b-41d4-a716-446655440000", "{uuid}"),
    ("da39a3ee5e6b4b0d3255bfef95601890afd80709", "{hash}"), ("alice@example.com", "{email}"),
    ("a1b2c3d4e5f6g7h8", "{id}"), ("products", None), ("app.js", None), ("", None),
    ("v2", None), ("wp-login.php", None),
])
def test_classify_segment(seg, expected):
    assert classify_segment(seg) == expected


def test_templates_configured_win_and_slugs_collapse():
    t = TemplateInferrer(("/api/users/me", "/api/{tenant}/login"))
    assert t.template("/api/products/42") == "/api/products/{id}"
    assert t.template("/api/users/me") == "/api/users/me"
    assert t.template("/api/acme/login") == "/api/{tenant}/login"
    assert t.template("/.git/config") == "/.git/config"
    for i in range(60):
        t.template(f"/blog/some-post-{chr(97 + i % 26)}{chr(97 + i // 26)}")
    assert t.template("/blog/another-one") == "/blog/{var}"


def test_templates_bounded_under_a_flood_of_paths():
    t = TemplateInferrer(max_paths=1000, max_parents=100)
    for i in range(20000):
        t.template(f"/x{i}/y{i}/z")
    assert len(t.cache) <= 1000 and len(t._children) <= 100


def test_baselines_learn_and_survive_save_load(tmp_path):
    b = Baselines()
    for i in range(500):
        b.learn("shop", "/api/products/{id}", 10.0 + i % 10, 1000 + i % 50, 0)
    for i in range(200):
        b.learn_session(100, 50_000 + i)
    eb = b.get("shop", "/api/products/{id}")
    assert eb.latency.pct is not None and 10 <= eb.latency.pct[0] <= 20
    path = str(tmp_path / "model.npz")
    b.save(path)
    c = Baselines.load(path)
    assert c.seen == b.seen == 500
    restored = c.get("shop", "/api/products/{id}").latency.pct
    assert restored == pytest.approx(eb.latency.pct, abs=1.0)
    assert c.sessions_resp.pct == pytest.approx(b.sessions_resp.pct, rel=0.05)
