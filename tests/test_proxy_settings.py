"""NodeSettings compilation: values, and an error naming file, line and key per mistake."""

from __future__ import annotations

import pytest

from node.config.yamlloc import load_yaml_text
from node.errors import ConfigError
from node.proxy.forwarded import FORWARDED, XFF, TrustedProxy
from node.proxy.settings import (
    NodeSettings,
    compile_node_settings,
    parse_hostport,
    parse_size,
    parse_upstream,
)


def compile_yaml(text: str, **kw) -> NodeSettings:
    return compile_node_settings(load_yaml_text(text, "palisade.yaml")["node"], "palisade.yaml",
                                 **kw)


def test_defaults():
    s = compile_node_settings({}, "x.yaml")
    assert s == NodeSettings()
    assert s.mode == "reverse:http://127.0.0.1:8080@0.0.0.0:8000"
    assert s.max_header_bytes < 64 * 1024


def test_full(tmp_path):
    pem = tmp_path / "cert.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\nxx\n-----END CERTIFICATE-----\n")
    s = compile_yaml(f"""
node:
  listen: "[::]:8443"
  upstream: https://api.internal:9443/
  admin: 127.0.0.1:9191
  trusted_proxies:
    - 10.0.0.0/8
    - {{cidr: "2001:db8::/32"}}
    - {{cidr: [192.0.2.1, 198.51.100.0/24], header: Forwarded}}
  tls: {{cert: {pem}}}
  http2: false
  keep_host_header: false
  limits:
    max_header_bytes: 16k
    max_request_body: 2m
    header_timeout: 5s
    idle_timeout: 2m
  state_dir: /var/lib/palisade
  record_file: records.jsonl
""")
    assert (s.listen_host, s.listen_port) == ("::", 8443)
    assert s.upstream == "https://api.internal:9443"
    assert (s.admin_host, s.admin_port) == ("127.0.0.1", 9191)
    assert s.trusted_proxies == (TrustedProxy("10.0.0.0/8", XFF),
                                 TrustedProxy("2001:db8::/32", XFF),
                                 TrustedProxy("192.0.2.1/32", FORWARDED),
                                 TrustedProxy("198.51.100.0/24", FORWARDED))
    assert s.tls_cert == str(pem) and s.tls_key is None
    assert not s.http2 and not s.keep_host_header
    assert (s.max_header_bytes, s.max_request_body) == (16384, 2 * 1024 * 1024)
    assert (s.header_timeout, s.idle_timeout) == (5.0, 120.0)
    assert s.mode == "reverse:https://api.internal:9443@:::8443"


def test_called_with_a_section():
    from node.config.section import Section

    root = Section(load_yaml_text("x: 1\nnode:\n  listen: nope:port\n", "p.yaml"), "p.yaml")
    with pytest.raises(ConfigError) as e:
        compile_node_settings(root.data["node"], root.sub("node"))
    assert str(e.value).startswith("p.yaml:3: node.listen: ")


def test_admin_off_and_relative_paths(tmp_path):
    s = compile_node_settings({"admin": False, "state_dir": "state"}, "x.yaml",
                              base_dir=str(tmp_path))
    assert s.admin_host is None and s.state_dir == str(tmp_path / "state")


@pytest.mark.parametrize("text,line,key,message", [
    ("node:\n  upstrem: x\n", 2, "node.upstrem", "did you mean 'upstream'"),
    ("node:\n  listen: 0.0.0.0:99999\n", 2, "node.listen", "is not a port"),
    ("node:\n  listen: ':::8000'\n", 2, "node.listen", "brackets"),
    ("node:\n  upstream: ftp://x\n", 2, "node.upstream", "http:// or https://"),
    ("node:\n  upstream: http://x:8080/api\n", 2, "node.upstream", "no path"),
    ("node:\n  trusted_proxies: [10.0.0.0/33]\n", 2, "node.trusted_proxies", "not an IP"),
    ("node:\n  trusted_proxies:\n    - 10.0.0.0/8\n    - bogus\n", 4, "node.trusted_proxies",
     "not an IP"),
    ("node:\n  trusted_proxies:\n    - 10.0.0.0/8\n    - {cidr: 10.0.0.0/33}\n", 4,
     "node.trusted_proxies[1].cidr", "not an IP"),
    ("node:\n  trusted_proxies:\n    - cidr: 10.0.0.0/8\n      header: x-real-ip\n", 4,
     "node.trusted_proxies[0].header", "one of x-forwarded-for, forwarded"),
    ("node:\n  trusted_proxies:\n    - {header: forwarded}\n", 3, "node.trusted_proxies[0]",
     "needs `cidr`"),
    ("node:\n  trusted_proxies:\n    - {cidr: 10.0.0.0/8, headers: forwarded}\n", 3,
     "node.trusted_proxies[0].headers", "did you mean 'header'"),
    ("node:\n  trusted_proxies:\n    - 10.0.0.0/8\n    - {cidr: 10.0.0.0/8, header: forwarded}\n",
     4, "node.trusted_proxies[1].cidr", "listed twice"),
    ("node:\n  trusted_proxies: [[10.0.0.0/8]]\n", 2, "node.trusted_proxies",
     "must be a CIDR or a mapping"),
    ("node:\n  limits:\n    max_header_bytes: 64k\n", 3, "node.limits.max_header_bytes",
     "between 1024 and 65535"),
    ("node:\n  limits:\n    max_request_body: lots\n", 3, "node.limits.max_request_body",
     "is not a size"),
    ("node:\n  limits:\n    header_timeout: 0s\n", 3, "node.limits.header_timeout",
     "at least"),
    ("node:\n  limits:\n    bogus: 1\n", 3, "node.limits.bogus", "unknown key"),
    ("node:\n  tls:\n    cert: /nonexistent.pem\n", 3, "node.tls.cert", "cannot read"),
    ("node:\n  tls:\n    key: /x.pem\n", 3, "node.tls", "needs `cert`"),
    ("node:\n  http2: maybe\n", 2, "node.http2", "true or false"),
    ("node:\n  http2:\n    max_resets: -1\n", 3, "node.http2.max_resets", ">= 0"),
    ("node:\n  http2:\n    max_resets: lots\n", 3, "node.http2.max_resets", "a number"),
    ("node:\n  http2:\n    max_reset: 5\n", 3, "node.http2.max_reset", "max_resets"),
    ("node:\n  listen: 127.0.0.1:9090\n", 2, "node.admin", "other than the proxy's"),
    ("node: [1, 2]\n", 1, "node", "expected a mapping"),
])
def test_errors(text, line, key, message):
    with pytest.raises(ConfigError) as e:
        compile_yaml(text)
    assert e.value.file == "palisade.yaml" and e.value.key == key
    assert e.value.line == line, str(e.value)
    assert message in str(e.value)


@pytest.mark.parametrize("text,enabled,max_resets", [
    ("node: {}\n", True, 1000),
    ("node:\n  http2: false\n", False, 1000),
    ("node:\n  http2: {max_resets: 200}\n", True, 200),
    ("node:\n  http2: {enabled: false, max_resets: 0}\n", False, 0),   # 0: no limit
])
def test_http2(text, enabled, max_resets):
    s = compile_yaml(text)
    assert (s.http2, s.http2_max_resets) == (enabled, max_resets)


@pytest.mark.parametrize("value,expected", [(4096, 4096), ("32k", 32768), ("8m", 8 << 20),
                                            ("1MiB", 1 << 20), ("1g", 1 << 30), ("10 KB", 10240)])
def test_parse_size(value, expected):
    assert parse_size(value) == expected


@pytest.mark.parametrize("text,expected", [
    ("0.0.0.0:8000", ("0.0.0.0", 8000)), ("[::1]:80", ("::1", 80)), (":8000", ("0.0.0.0", 8000)),
    ("localhost:9090", ("localhost", 9090)), ("10.0.0.1", ("10.0.0.1", 7)),
])
def test_parse_hostport(text, expected):
    assert parse_hostport(text, 7) == expected


@pytest.mark.parametrize("text,expected", [
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080"), ("https://api/", "https://api"),
    ("http://[::1]:8080", "http://[::1]:8080"),
])
def test_parse_upstream(text, expected):
    assert parse_upstream(text) == expected


def test_top_level_state_dir_fills_in():
    from node.config import parse_config_text
    from node.proxy.main import node_settings

    cfg = parse_config_text("state_dir: /srv/p\nnode:\n  listen: 127.0.0.1:8000\n")
    assert node_settings(cfg).state_dir == "/srv/p"
    cfg = parse_config_text("state_dir: /srv/p\nnode:\n  state_dir: /srv/n\n")
    assert node_settings(cfg).state_dir == "/srv/n"
    assert node_settings(parse_config_text("state_dir: /srv/p\n")).state_dir == "/srv/p"


# -- control plane sync settings -----------------------------------------------------------------
TOKEN = "t" * 24


def test_control_settings():
    s = compile_yaml(f"""
node:
  control_url: https://control.internal:8790/palisade/
  control_token: {TOKEN}
  node_name: edge-1.eu
  push_records: false
""")
    assert (s.control_url, s.control_token, s.node_name, s.push_records) == (
        "https://control.internal:8790/palisade", TOKEN, "edge-1.eu", False)
    assert TOKEN not in repr(s)
    s = compile_yaml("node:\n  control_url: http://127.0.0.1:8790\n"
                     "  control_token_env: PAL_TOKEN\n", env={"PAL_TOKEN": TOKEN + "\n"})
    assert s.control_token == TOKEN and s.node_name is None and s.push_records


@pytest.mark.parametrize("text,key,message", [
    ("control_url: ftp://c\n  control_token: " + TOKEN, "control_url", "http:// or https://"),
    ("control_url: http://u:p@c\n  control_token: " + TOKEN, "control_url", "no query or user"),
    ("control_url: http://c:99999\n  control_token: " + TOKEN, "control_url", "invalid port"),
    ("control_url: http://c", "control_url", "needs a token"),
    ("control_token: " + TOKEN, "control_token", "without control_url"),
    ("control_url: http://c\n  control_token: short", "control_token", "at least 16"),
    ("control_url: http://c\n  control_token_env: NOPE", "control_token_env", "is not set"),
    ("control_url: http://c\n  control_token: " + TOKEN + "\n  control_token_env: X",
     "control_token_env", "not both"),
    ("control_url: http://c\n  control_token: " + TOKEN + "\n  node_name: 'a b'", "node_name",
     "letters, digits"),
])
def test_control_errors(text, key, message):
    with pytest.raises(ConfigError) as e:
        compile_yaml("node:\n  " + text + "\n", env={})
    assert e.value.key == f"node.{key}" and message in str(e.value) and e.value.line
