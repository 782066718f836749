"""Node metrics on an injected registry: names, closed label sets, engine stats mirroring."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from node.metrics import OTHER, NodeMetrics


@pytest.fixture
def reg():
    return CollectorRegistry()


@pytest.fixture
def m(reg):
    return NodeMetrics(reg, bot_types=["scraping"], profiles=["default"],
                       detectors=["request_rate"])


def val(reg, name, **labels):
    return reg.get_sample_value(name, labels or None)


def test_requests_and_blocks(reg, m):
    m.request("pass")
    m.request("pass")
    m.request("blocked")
    m.request("203.0.113.7")             # never a label value outside the closed set
    m.block("denylist", "deny")
    m.block("sqli", "gray")
    m.block("/etc/passwd", "gray")
    assert val(reg, "palisade_requests_total", verdict="pass") == 2
    assert val(reg, "palisade_requests_total", verdict="blocked") == 1
    assert val(reg, "palisade_requests_total", verdict=OTHER) == 1
    assert val(reg, "palisade_requests_total", verdict="allow") == 0   # pre-created
    assert val(reg, "palisade_blocked_total", reason="denylist", list="deny") == 1
    assert val(reg, "palisade_blocked_total", reason="sqli", list="gray") == 1
    assert val(reg, "palisade_blocked_total", reason=OTHER, list="gray") == 1


def test_detections(reg, m):
    m.detection("scraping", "default", ["request_rate", "query_abuse"], 42.0)
    m.detection("scraping", "default", ["request_rate"], None)
    assert val(reg, "palisade_detections_total", bot_type="scraping", profile="default") == 2
    assert val(reg, "palisade_detector_firings_total", detector="request_rate") == 2
    assert val(reg, "palisade_detector_firings_total", detector="query_abuse") == 1
    assert val(reg, "palisade_time_to_detection_seconds_count") == 1
    assert val(reg, "palisade_time_to_detection_seconds_sum") == 42.0


def test_open_label_sets_are_capped(reg, m):
    for i in range(200):
        m.detection("scraping", f"p{i}", [], None)
    profiles = {s.labels["profile"] for metric in reg.collect()
                if metric.name == "palisade_detections" for s in metric.samples}
    assert len(profiles) <= 65 and OTHER in profiles


def test_gauges_and_engine_stats(reg, m):
    m.set_list_counts({"deny": 3, "gray": 1})
    assert val(reg, "palisade_list_entries", list="deny") == 3
    assert val(reg, "palisade_list_entries", list="allow") == 0
    m.engine_stats({"sessions": 17, "evictions": {"sessions": 5, "ips": 0}})
    m.engine_stats({"sessions": 12, "evictions": {"sessions": 9, "ips": 2}})
    assert val(reg, "palisade_sessions_tracked") == 12
    assert val(reg, "palisade_evictions_total", table="sessions") == 9
    assert val(reg, "palisade_evictions_total", table="ips") == 2


def test_engine_seconds(reg, m):
    m.engine_time(2e-5)
    m.engine_time(3e-4)
    assert val(reg, "palisade_engine_seconds_count") == 2
    assert val(reg, "palisade_engine_seconds_bucket", le="5e-05") == 1


def test_every_name_has_the_prefix(reg, m):
    names = [metric.name for metric in reg.collect()]
    assert names and all(n.startswith("palisade_") for n in names)
