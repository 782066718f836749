"""node/engine/core.py: the exception list (SPEC §6: never blocked by detection)."""

from __future__ import annotations

from ipaddress import ip_network

import pytest

from node.config.model import EngineConfig
from node.engine import Engine
from tests.detector_kit import rec

PROBES = ("/.env", "/.git/config", "/wp-login.php", "/phpmyadmin/", "/.aws/credentials",
          "/server-status", "/backup.sql", "/config.php.bak")
# the partners' networks, among a few thousand other entries (a list an operator imports)
EXCEPTIONS = (ip_network("198.51.100.0/24"), ip_network("2001:db8:5::/48"),
              ip_network("192.0.2.1"),
              *(ip_network(f"10.{i // 256}.{i % 256}.0/24") for i in range(4000)),
              *(ip_network(f"2001:db8:ff:{i:x}::/64") for i in range(1000)))


def scan(ip: str) -> list:
    return [rec(i, p, ip=ip, ua="sqlmap/1.7", status=404) for i, p in enumerate(PROBES)]


@pytest.mark.parametrize("ip,excepted", [
    ("198.51.100.7", True),
    ("2001:db8:5:1::9", True),
    ("192.0.2.1", True),
    ("10.15.159.3", True),
    # a v4-mapped address as a dual-stack socket reports it: the linear scan of
    # ipaddress networks missed it (an IPv6Address is never in an IPv4Network)
    ("::ffff:198.51.100.7", True),
    ("198.51.101.7", False),
    ("192.0.2.2", False),
    ("2001:db8:6::1", False),
    ("10.15.160.3", False),
])
def test_exception_list(ip, excepted):
    eng = Engine(EngineConfig(exceptions=EXCEPTIONS))
    decisions = [d for r in scan(ip) for d in eng.process(r)]
    assert (decisions == []) is excepted, [(d.ip, d.bot_type) for d in decisions]


def test_reconfigure_swaps_the_exception_list():
    eng = Engine(EngineConfig())
    assert [d for r in scan("198.51.100.7") for d in eng.process(r)]
    eng.reconfigure(EngineConfig(exceptions=EXCEPTIONS))
    assert not [d for r in scan("198.51.100.8") for d in eng.process(r)]
