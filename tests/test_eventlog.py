"""Operator log lines: one per decision and per upstream failure, text or JSON, with every
attacker-controlled string bounded and free of control characters."""

from __future__ import annotations

import json
import logging
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from node.config import parse_config_text
from node.engine import Decision
from node.errors import ConfigError
from node.eventlog import (
    EVENTS,
    JsonFormatter,
    UpstreamFailures,
    decision_fields,
    error_kind,
    log_decision,
    render_text,
)
from tests.test_addons import Clock, decision, make_flow, node, run, tctx  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = 'ev"il\\ \x1b[2J\r\nFAKE 127.0.0.1 INFO line\u202e\x85' + "x" * 5000


def hostile_decision() -> Decision:
    return Decision(ts=1.0, ip="203.0.113.9", ips=("203.0.113.9", "203.0.113.10"),
                    session=HOSTILE, app="shop", bot_type="scraping", confidence=0.7251,
                    profile="shop-default", reaction="denylist", duration=None,
                    detectors=(("query_abuse", 68.0, "< 30 varied queries"),
                               ("request_rate", 4.125, "< 2/s")),
                    evidence=("r1",), ttd_requests=32, ttd_seconds=20.04)


def safe(line: str) -> bool:
    return not any(ord(c) < 32 or 127 <= ord(c) < 160 or c in "\u2028\u2029\u202e"
                   for c in line)


def test_text_line_says_who_what_why_and_escapes():
    line = render_text("decision", decision_fields(hostile_decision(), listed=2))
    assert line.startswith(r'decision ip=203.0.113.9 ips=2 session="ev\"il\\ \x1b[2J\x0d\x0aFAKE')
    for part in ("bot_type=scraping", "confidence=0.725", "reaction=denylist",
                 "duration=forever", "profile=shop-default", "listed=2",
                 "addresses=203.0.113.9,203.0.113.10", 'why="query_abuse 68 (normal < 30 '
                 'varied queries); request_rate 4.12 (normal < 2/s)"'):
        assert part in line, line
    assert safe(line) and len(line) < 1000


def test_json_line_has_the_fields_and_escapes():
    rec = logging.LogRecord("palisade.events", logging.INFO, __file__, 1, "%s", ("x",), None)
    rec.palisade_event = ("decision", decision_fields(hostile_decision()))
    line = JsonFormatter().format(rec)
    assert safe(line) and line.isascii() and len(line) < 1500
    d = json.loads(line)
    assert (d["event"], d["level"], d["ip"], d["ips"], d["reaction"]) == (
        "decision", "INFO", "203.0.113.9", 2, "denylist")
    assert d["duration"] == "forever" and d["confidence"] == 0.725
    assert d["detectors"][0] == {"name": "query_abuse", "value": 68.0,
                                 "normal": "< 30 varied queries"}
    assert d["session"].startswith('ev"il\\ \x1b[2J\r\nFAKE') and len(d["session"]) <= 129


def test_plain_records_as_json_are_escaped_too():
    rec = logging.LogRecord("x", logging.ERROR, __file__, 1, "bad %s", (HOSTILE,), None)
    line = JsonFormatter().format(rec)
    assert safe(line) and line.isascii()
    d = json.loads(line)
    assert d["level"] == "ERROR" and d["msg"].startswith("bad ev") and len(d["msg"]) <= 4001


def test_applied_decision_is_logged_once(node, caplog):  # noqa: F811 (the fixture)
    from addons.detect import apply_decision

    with caplog.at_level(logging.INFO, logger=EVENTS.name):
        assert apply_decision(node, decision("denylist", ip="192.0.2.44")) == ["192.0.2.44"]
        apply_decision(node, decision("deny_session", session="s-9", duration=60))
    lines = [r.getMessage() for r in caplog.records if r.name == EVENTS.name]
    assert len(lines) == 2
    assert lines[0].startswith("decision ip=192.0.2.44 ips=1 session=- ")
    assert "reaction=denylist duration=3600" in lines[0] and "listed=1" in lines[0]
    assert 'why="request_rate 120 (normal < 10)"' in lines[0]
    assert "session=s-9" in lines[1] and "reaction=deny_session" in lines[1]


async def test_decision_on_an_excepted_client_is_logged_as_skipped(node, tctx, caplog):  # noqa: F811
    from tests.test_addons import ok

    node.iplists.add("exception", "203.0.113.7")
    node.engine.next = [decision(ip="203.0.113.7")]
    with caplog.at_level(logging.INFO, logger=EVENTS.name):
        await run(tctx, make_flow(), ok())
    (line,) = [r.getMessage() for r in caplog.records if r.name == EVENTS.name]
    assert 'listed=0 skipped="exception list"' in line


async def test_upstream_failure_is_logged_with_kind_and_status(node, tctx, caplog):  # noqa: F811
    with caplog.at_level(logging.INFO, logger=EVENTS.name):
        await run(tctx, make_flow("/api/x"), error="[Errno 111] Connection refused\x1b[2J")
    (rec,) = [r for r in caplog.records if r.name == EVENTS.name]
    assert rec.levelno == logging.WARNING
    msg = rec.getMessage()
    assert msg.startswith(f"upstream_error upstream={node.settings.upstream} error=refused "
                          "status=502 ")
    assert "ip=203.0.113.7 method=GET" in msg and safe(msg)


def test_upstream_failures_are_throttled_per_kind(caplog):
    clock = Clock()
    fails = UpstreamFailures(clock=clock)
    with caplog.at_level(logging.INFO, logger=EVENTS.name):
        logged = [fails.failed("http://u", "Connection refused", 502, ip="1.2.3.4",
                               method="GET", path="/") for _ in range(50)]
        assert fails.failed("http://u", "timed out", 502, ip=None, method="GET", path="/")
        clock.t += 1.5
        assert fails.failed("http://u", "Connection refused", 502, ip="1.2.3.4",
                            method="GET", path="/")
    assert logged.count(True) == 1
    assert "repeated=49" in caplog.records[-1].getMessage()


@pytest.mark.parametrize("message,kind", [
    ("[Errno 111] Connection refused", "refused"), ("Connection reset by peer", "reset"),
    ("[Errno -2] Name or service not known", "dns"), ("timed out", "timeout"),
    ("Certificate verify failed", "tls"), ("Server closed connection", "closed"),
    ("???", "other")])
def test_error_kind(message, kind):
    assert error_kind(message) == kind


def test_log_format_is_validated():
    cfg = parse_config_text("node: {log_format: json}\ncontrol: {log_format: json}\n")
    assert cfg.node.log_format == cfg.control.log_format == "json"
    with pytest.raises(ConfigError, match=r"p.yaml:1: node.log_format: must be one of text, "
                                          r"json \(got 'xml'\)"):
        parse_config_text("node: {log_format: xml}\n", "p.yaml")


def test_log_decision_skips_work_when_disabled(caplog):
    with caplog.at_level(logging.WARNING, logger=EVENTS.name):
        log_decision(hostile_decision())
    assert not caplog.records


# -- the real processes -------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int) -> None:
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)


@pytest.mark.integration
def test_node_logs_json_lines_for_a_block_and_a_dead_upstream(tmp_path):
    port, dead = free_port(), free_port()              # nothing listens on `dead`
    cfg = tmp_path / "node.yaml"
    cfg.write_text(json.dumps({"state_dir": str(tmp_path / "state"), "node": {
        "listen": f"127.0.0.1:{port}", "admin": "off", "log_format": "json",
        "upstream": f"http://127.0.0.1:{dead}"}}))
    proc = subprocess.Popen([sys.executable, "-m", "node.cli", "node", "-c", str(cfg)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    try:
        wait_port(port)
        statuses = []
        for path in ("/.env", "/wp-login.php", "/.git/config", "/phpmyadmin/"):
            req = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                         headers={"User-Agent": "sqlmap/1.7"})
            try:
                urllib.request.urlopen(req, timeout=10).close()
            except urllib.error.HTTPError as e:
                statuses.append(e.code)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        lines = [json.loads(line) for line in proc.stderr.read().splitlines()]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    assert statuses[0] == 502 and 403 in statuses
    events = {d.get("event"): d for d in lines if d.get("event")}
    up = events["upstream_error"]
    assert (up["upstream"], up["error"], up["status"], up["path"]) == (
        f"http://127.0.0.1:{dead}", "refused", 502, "/.env")
    dec = events["decision"]
    assert dec["ip"] == "127.0.0.1" and dec["reaction"] == "denylist" and dec["listed"] == 1
    assert dec["bot_type"] == "security_crawlers" and dec["profile"] == "default"
    assert {"bad_user_agent", "forced_browsing"} <= {x["name"] for x in dec["detectors"]}
    assert all(d["level"] and d["ts"] for d in lines)


@pytest.mark.integration
def test_control_logs_json_lines(tmp_path):
    cfg = tmp_path / "p.yaml"
    cfg.write_text(json.dumps({"control": {"listen": "127.0.0.1:0", "log_format": "json",
                                           "state_dir": str(tmp_path)}}))
    proc = subprocess.Popen([sys.executable, "-m", "node.cli", "control", "-c", str(cfg)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "listening on" in proc.stdout.readline()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        lines = [json.loads(line) for line in proc.stderr.read().splitlines()]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert any("control plane listening" in d.get("msg", "") for d in lines), lines
