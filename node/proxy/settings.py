"""The node's own settings (`node:` section of the configuration), compiled and frozen."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from node.config.section import Section
from node.errors import ConfigError
from node.eventlog import LOG_FORMATS
from node.proxy.forwarded import FORWARDED, HEADERS, XFF, TrustedProxy

KiB = 1024
MiB = 1024 * KiB
HEADER_LIMIT_CEILING = 64 * KiB  # requests heads must be rejected before they reach 64 KiB


@dataclass(frozen=True, slots=True)
class NodeSettings:
    listen_host: str = "0.0.0.0"
    listen_port: int = 8000
    upstream: str = "http://127.0.0.1:8080"    # scheme://host[:port], http or https
    admin_host: str | None = "127.0.0.1"       # None: no admin listener
    admin_port: int = 9090
    # proxies whose forwarding header we read, each for one header (a bare CIDR: XFF)
    trusted_proxies: tuple[TrustedProxy | str, ...] = ()
    tls_cert: str | None = None                # PEM certificate chain: terminate TLS with it
    tls_key: str | None = None                 # PEM key (may live in tls_cert's file)
    http2: bool = True
    http2_max_resets: int = 1000               # client stream resets a connection may owe
    keep_host_header: bool = True              # the upstream sees the client's Host
    max_header_bytes: int = 32 * KiB           # request line + headers (HTTP/1)
    max_request_body: int = 8 * MiB            # larger requests get 413
    stream_response_above: int = 1 * MiB       # larger responses stream, never buffered
    header_timeout: float = 10.0               # seconds for a request head to arrive
    idle_timeout: float = 75.0                 # seconds a connection may sit idle
    max_denied_sessions: int = 100_000
    max_attack_scan: int = 64 * KiB            # bytes of a graylisted body scanned for signs
    state_dir: str = "state"
    record_file: str | None = None             # JSON-lines request records (None = off)
    upstream_ssl_insecure: bool = False        # https upstream with a self-signed certificate
    # control plane: sync events up and IP lists down (None = standalone node)
    control_url: str | None = None             # http(s)://host:port[/prefix]
    control_token: str | None = field(default=None, repr=False)   # a `node` role token
    node_name: str | None = None               # None: <hostname>:<listen port>
    push_records: bool = True                  # send every request record (sessions explorer)
    log_format: str = "text"                   # text | json (node.eventlog)

    @property
    def mode(self) -> str:
        """mitmproxy's mode spec: `reverse:http://up:8080@host:port`."""
        return f"reverse:{self.upstream}@{self.listen_host}:{self.listen_port}"

    @property
    def confdir(self) -> str:
        return os.path.join(self.state_dir, "mitmproxy")


_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": KiB, "m": MiB, "g": 1024 * MiB}


def parse_size(value: Any) -> int:
    """`4096`, `"32k"`, `"8m"`, `"1MiB"` → bytes. Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError("expected a size like 32k or 8m")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("size must not be negative")
        return value
    m = _SIZE.match(str(value))
    if not m:
        raise ValueError(f"{value!r} is not a size (use e.g. 4096, 32k, 8m)")
    return int(m.group(1)) * _SIZE_UNITS[(m.group(2) or "")[:1].lower()]


def parse_hostport(text: str, default_port: int | None = None) -> tuple[str, int]:
    """`"0.0.0.0:8000"`, `"[::]:8000"`, `":8000"`, `"localhost:9090"` → (host, port)."""
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep:
            raise ValueError(f"{text!r}: missing ']'")
        port_s = rest[1:] if rest.startswith(":") else ""
        if rest and not rest.startswith(":"):
            raise ValueError(f"{text!r} is not host:port")
    elif text.count(":") == 1:
        host, _, port_s = text.partition(":")
    elif text.count(":") > 1:
        raise ValueError(f"{text!r}: write IPv6 addresses in brackets, e.g. [::]:8000")
    else:
        host, port_s = text, ""
    host = host or "0.0.0.0"
    if not port_s:
        if default_port is None:
            raise ValueError(f"{text!r} has no port")
        return host, default_port
    if not port_s.isdigit() or not 0 <= int(port_s) <= 65535:
        raise ValueError(f"{port_s!r} is not a port")
    if not (_is_ip(host) or re.fullmatch(r"[A-Za-z0-9.-]{1,253}", host)):
        raise ValueError(f"{host!r} is not an address or host name")
    return host, int(port_s)


def _is_ip(s: str) -> bool:
    try:
        ipaddress.ip_address(s)
    except ValueError:
        return False
    return True


def parse_upstream(text: str) -> str:
    u = urlsplit(text.strip())
    if u.scheme not in ("http", "https"):
        raise ValueError(f"{text!r}: the upstream must be an http:// or https:// URL")
    if not u.hostname:
        raise ValueError(f"{text!r} has no host")
    if u.path not in ("", "/") or u.query or u.fragment or u.username:
        raise ValueError(f"{text!r}: give only scheme://host[:port] (no path, query or user)")
    try:
        port = u.port
    except ValueError:
        raise ValueError(f"{text!r} has an invalid port") from None
    host = f"[{u.hostname}]" if ":" in u.hostname else u.hostname
    return f"{u.scheme}://{host}" + (f":{port}" if port else "")


_KEYS = ("listen", "upstream", "admin", "trusted_proxies", "tls", "http2", "keep_host_header",
         "limits", "state_dir", "record_file", "upstream_ssl_insecure", "control_url",
         "control_token", "control_token_env", "node_name", "push_records", "log_format")
MIN_TOKEN_LENGTH = 16
_NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$")
_LIMIT_KEYS = ("max_header_bytes", "max_request_body", "stream_response_above",
               "header_timeout", "idle_timeout", "max_denied_sessions", "max_attack_scan")


def parse_control_url(text: str) -> str:
    """`http(s)://host[:port][/prefix]` → the base URL without a trailing slash."""
    u = urlsplit(text.strip())
    if u.scheme not in ("http", "https"):
        raise ValueError(f"{text!r}: the control plane URL must be http:// or https://")
    if not u.hostname:
        raise ValueError(f"{text!r} has no host")
    if u.query or u.fragment or u.username or u.password:
        raise ValueError(f"{text!r}: give scheme://host[:port][/prefix] (no query or user; "
                         "the token goes in control_token)")
    try:
        u.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        raise ValueError(f"{text!r} has an invalid port") from None
    return text.strip().rstrip("/")


def compile_node_settings(raw: Mapping | None, where: str | Section = "<config>", *,
                          key: str = "node", base_dir: str | None = None,
                          env: Mapping[str, str] | None = None) -> NodeSettings:
    """Validate the `node:` mapping into NodeSettings; a mistake raises ConfigError naming
    the file, line and dotted key. `where` is the file name, or the Section of `raw` (which
    knows both). Relative paths resolve against `base_dir` (default: the working directory);
    `control_token_env` is read from `env` (default: the process environment)."""
    if isinstance(where, Section):
        s = Section(raw, where.file, where.where, where.line)
    else:
        s = Section(raw, where, key)
    s.only(*_KEYS)
    d = NodeSettings()
    out: dict[str, Any] = {}

    def conv(k: str, fn, *args, sec: Section = s):
        try:
            return fn(*args)
        except ValueError as e:
            raise sec.error(k, str(e)) from None

    if s.has("listen"):
        out["listen_host"], out["listen_port"] = conv(
            "listen", parse_hostport, s.str("listen"), d.listen_port)
    if s.has("upstream"):
        out["upstream"] = conv("upstream", parse_upstream, s.str("upstream"))
    admin = s.raw("admin")
    if admin is False or admin in ("off", "none", "disabled"):
        out["admin_host"] = None
    elif admin is not None:
        out["admin_host"], out["admin_port"] = conv(
            "admin", parse_hostport, s.str("admin"), d.admin_port)
    if s.has("trusted_proxies"):
        out["trusted_proxies"] = _trusted_proxies(s)
    if s.has("tls"):
        t = s.sub("tls")
        t.only("cert", "key")
        cert = t.str("cert")
        if not cert:
            raise t.error(None, "tls needs `cert` (PEM certificate chain, key may be inside)")
        out["tls_cert"] = _readable(t, "cert", cert, base_dir)
        if t.has("key"):
            out["tls_key"] = _readable(t, "key", t.str("key"), base_dir)
    if isinstance(s.raw("http2"), Mapping):      # `http2: {enabled, max_resets}` or a bool
        h = s.sub("http2")
        h.only("enabled", "max_resets")
        out["http2"] = h.bool("enabled", True)
        out["http2_max_resets"] = h.int("max_resets", d.http2_max_resets, minimum=0,
                                        maximum=1_000_000)
    elif s.has("http2"):
        out["http2"] = s.bool("http2", d.http2)
    for k in ("keep_host_header", "upstream_ssl_insecure"):
        if s.has(k):
            out[k] = s.bool(k, getattr(d, k))
    if s.has("limits"):
        lim = s.sub("limits")
        lim.only(*_LIMIT_KEYS)

        def size(k: str, lo: int, hi: int | None = None) -> None:
            if lim.has(k):
                v = conv(k, parse_size, lim.raw(k), sec=lim)
                if v < lo or (hi is not None and v > hi):
                    raise lim.error(k, f"must be between {lo} and {hi} bytes" if hi
                                    else f"must be at least {lo} bytes")
                out[k] = v

        size("max_header_bytes", 1024, HEADER_LIMIT_CEILING - 1)
        size("max_request_body", 1024)
        size("stream_response_above", 16 * KiB)
        size("max_attack_scan", 1024, 1024 * KiB)
        for k in ("header_timeout", "idle_timeout"):
            if lim.has(k):
                out[k] = lim.duration(k, getattr(d, k), minimum=1.0, maximum=86400.0)
        if lim.has("max_denied_sessions"):
            out["max_denied_sessions"] = lim.int("max_denied_sessions", d.max_denied_sessions,
                                                 minimum=100)
    if s.has("state_dir"):
        out["state_dir"] = _path(s.str("state_dir"), base_dir)
    if s.has("record_file"):
        out["record_file"] = s.str("record_file")
    if s.has("log_format"):
        out["log_format"] = s.str("log_format", choices=LOG_FORMATS)
    _control(s, out, os.environ if env is None else env)
    settings = NodeSettings(**out)
    if settings.tls_key and not settings.tls_cert:
        raise s.error("tls", "a key without a cert")
    if (settings.admin_host is not None and settings.admin_port == settings.listen_port
            and settings.listen_port != 0):
        raise s.error("admin", "the admin listener needs a port other than the proxy's")
    return settings


def _control(s: Section, out: dict[str, Any], env: Mapping[str, str]) -> None:
    """control_url + one of control_token / control_token_env, node_name, push_records."""
    if s.has("control_url"):
        try:
            out["control_url"] = parse_control_url(s.str("control_url") or "")
        except ValueError as e:
            raise s.error("control_url", str(e)) from None
    if s.has("control_token") and s.has("control_token_env"):
        raise s.error("control_token_env", "give control_token or control_token_env, not both")
    token_key = "control_token" if s.has("control_token") else "control_token_env"
    token = None
    if s.has(token_key):
        token = s.str(token_key) or ""
        if token_key == "control_token_env":
            if token not in env:
                raise s.error(token_key, f"environment variable {token} is not set")
            token = env[token].strip()
        if len(token) < MIN_TOKEN_LENGTH:
            raise s.error(token_key, f"a token has at least {MIN_TOKEN_LENGTH} characters "
                                     "(make one with: palisade control create-token NAME "
                                     "--role node)")
        out["control_token"] = token
    if "control_url" in out and token is None:
        raise s.error("control_url", "the control plane needs a token: set control_token or "
                                     "control_token_env (a token with the `node` role)")
    if token is not None and "control_url" not in out:
        raise s.error(token_key, "a control plane token without control_url")
    if s.has("node_name"):
        name = s.str("node_name") or ""
        if not _NODE_NAME.match(name):
            raise s.error("node_name", "1 to 64 characters: letters, digits and . _ : @ - "
                                       "(starting with a letter or digit)")
        out["node_name"] = name
    if s.has("push_records"):
        out["push_records"] = s.bool("push_records", True)


_HEADER_NAMES = {"x-forwarded-for": XFF, "xff": XFF, "forwarded": FORWARDED}


def _trusted_proxies(s: Section) -> tuple[TrustedProxy, ...]:
    """`["10.0.0.0/8", {cidr: 192.0.2.0/24, header: forwarded}]`: a bare CIDR is trusted
    for X-Forwarded-For only (what nginx, HAProxy and cloud balancers append to; they pass
    a client's own `Forwarded` through). `cidr` may also be a list."""
    out: dict[str, TrustedProxy] = {}
    for i, item in enumerate(s.list("trusted_proxies")):
        line = s.item_line("trusted_proxies", i)
        if isinstance(item, str):
            sec, key, cidrs, header = s, "trusted_proxies", [item], XFF
        elif isinstance(item, Mapping):
            sec = Section(item, s.file, s.key_path("trusted_proxies") + f"[{i}]", line)
            sec.only("cidr", "header")
            key, line, cidrs = "cidr", None, sec.str_list("cidr")
            if not cidrs:
                raise sec.error(None, "a trusted proxy needs `cidr`")
            name = sec.str("header", XFF) or XFF
            if name.lower() not in _HEADER_NAMES:
                raise sec.error("header", f"must be one of {', '.join(HEADERS)} (got {name!r})")
            header = _HEADER_NAMES[name.lower()]
        else:
            raise s.error("trusted_proxies", f"item {i + 1} must be a CIDR or a mapping "
                          f"{{cidr: ..., header: ...}} (got {item!r})", line=line)
        for cidr in cidrs:
            try:
                net = str(ipaddress.ip_network(cidr.strip(), strict=False))
            except ValueError:
                raise sec.error(key, f"{cidr!r} is not an IP address or CIDR",
                                line=line) from None
            if net in out and out[net].header != header:
                raise sec.error(key, f"{net} is listed twice, for {out[net].header} and "
                                     f"{header}", line=line)
            out[net] = TrustedProxy(net, header)
    return tuple(out.values())


def _path(p: str, base_dir: str | None) -> str:
    p = os.path.expanduser(p)
    return p if os.path.isabs(p) or base_dir is None else os.path.join(base_dir, p)


def _readable(sec: Section, key: str, value: str, base_dir: str | None) -> str:
    path = _path(value, base_dir)
    try:
        with open(path, "rb") as f:
            head = f.read(64 * KiB)
    except OSError as e:
        raise sec.error(key, f"cannot read {path}: {e.strerror or e}") from None
    if b"-----BEGIN " not in head:
        raise sec.error(key, f"{path} is not a PEM file")
    return path


__all__ = ["ConfigError", "NodeSettings", "compile_node_settings", "parse_control_url",
           "parse_hostport", "parse_size", "parse_upstream"]
