"""Datacenter agent: a browser's or app's agent from cloud addresses is a hint alone and a
campaign as a pool; SDKs on cloud servers and people at home are not judged."""

from __future__ import annotations

from node.engine import Engine
from node.sim import Scenario, simulate, to_records
from tests.detector_kit import (
    CHROME,
    T0,
    finding,
    fired,
    fires,
    quiet,
    rec,
    record_firings,
    run,
)

OKHTTP = "okhttp/4.12.0"
AWS = [f"3.{a}.{b}.{c}" for a, b, c in ((80, 1, 9), (81, 7, 2), (82, 3, 3), (90, 4, 1),
                                        (91, 9, 8), (92, 5, 4), (93, 2, 7), (94, 8, 1))]


def _pool(n: int, ua: str) -> list:
    # A harvester: each cloud address fetches three directory pages and moves on.
    out = []
    for k in range(n):
        ip = f"52.{20 + k // 200}.{k % 200}.{7 + k % 13}"
        for j in range(3):
            i = k * 3 + j
            out.append(rec(i, f"/v1/branches/{i}", ts=T0 + i * 0.7, ip=ip, ua=ua))
    return out


@fires("datacenter_agent")
def test_one_app_agent_from_a_pool_of_cloud_addresses_is_a_campaign():
    eng = Engine()
    out = [d for r in _pool(40, OKHTTP) for d in eng.process(r)]
    assert out and {d.bot_type for d in out} == {"scraping"}
    named = {a for d in out for a in d.ips}
    assert len(named) >= 20
    assert any(n == "datacenter_agent" for d in out for n, _, _ in d.detectors)


def test_one_browser_on_a_cloud_address_is_a_hint_not_a_decision():
    recs = [rec(i, f"/v1/branches/{i % 5}", ts=T0 + i * 20, ip="3.80.1.9") for i in range(10)]
    eng = run([])
    assert not [d for r in recs for d in eng.process(r)]
    eng.last["3.80.1.9"] = recs[-1]
    f = finding(eng, "datacenter_agent", "3.80.1.9")
    assert fired(f) and f.strength < 1.0


def test_sdks_on_cloud_servers_and_people_at_home_are_not_judged():
    recs = [rec(i, "/v1/balance", ts=T0 + i, ip=AWS[i % 8], ua="stripe-python/11.1.0")
            for i in range(80)]
    recs += [rec(100 + i, "/v1/branches", ts=T0 + i, ip="81.2.3.4", ua=CHROME)
             for i in range(10)]
    eng = run(recs)
    assert finding(eng, "datacenter_agent", AWS[0]) is None
    assert finding(eng, "datacenter_agent", "81.2.3.4") is None


@quiet("datacenter_agent")
def test_datacenter_agent_quiet_on_simulated_people():
    sc = Scenario.humans_only(scale=0.5, seed=5, duration=3600.0)
    eng = Engine()
    seen = record_firings(eng)
    for r in to_records(simulate(sc), seed=5):
        eng.process(r)
    assert not any("datacenter_agent" in v for v in seen.values())
