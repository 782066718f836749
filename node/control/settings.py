"""The control plane's settings (`control:` section of the configuration), compiled and frozen.

    control:
      listen: 127.0.0.1:8790
      storage: sqlite:///var/lib/palisade/control.db   # or postgresql://user@host/db
      tokens:
        - {name: node-1, role: node, token_env: PALISADE_NODE_TOKEN}
        - {name: alice, role: operator, sha256: 3b4c...}    # only the digest in the file
        - {name: wall, role: viewer, token: a-long-random-string}
      retention: {requests: 7d, detail: 31d, aggregates: 400d}
      retention_interval: 10m
      min_requests: 1000     # fewer requests in the period → "insufficient_data"
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from node.config.section import Section
from node.control.storage.base import DAY, ROLES, Retention
from node.eventlog import LOG_FORMATS

MIN_TOKEN_LENGTH = 16
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_KEYS = ("listen", "storage", "tokens", "retention", "retention_interval", "min_requests",
         "state_dir", "log_format")


@dataclass(frozen=True, slots=True)
class TokenSpec:
    name: str
    role: str
    secret: str = field(repr=False)  # the token, or "sha256:<hex digest>"


@dataclass(frozen=True, slots=True)
class ControlSettings:
    listen_host: str = "127.0.0.1"
    listen_port: int = 8790
    storage_url: str | None = None          # None: sqlite:///<state_dir>/control.db
    state_dir: str = "state"
    tokens: tuple[TokenSpec, ...] = ()
    retention: Retention = field(default_factory=Retention)
    retention_interval: float = 600.0
    min_requests: int = 1000
    log_format: str = "text"                # text | json (node.eventlog)

    @property
    def storage(self) -> str:
        if self.storage_url:
            return self.storage_url
        return f"sqlite:///{os.path.abspath(os.path.join(self.state_dir, 'control.db'))}"

    def token_triples(self) -> list[tuple[str, str, str]]:
        return [(t.secret, t.name, t.role) for t in self.tokens]


def _hostport(text: str, default_port: int) -> tuple[str, int]:
    m = re.match(r"^\[([0-9a-fA-F:.]+)\](?::(\d+))?$", text) or \
        re.match(r"^([^:\[\]]*)(?::(\d+))?$", text)
    if not m:
        raise ValueError(f"{text!r} is not host:port (IPv6 as [::1]:8790)")
    host = m.group(1) or "127.0.0.1"
    port = int(m.group(2)) if m.group(2) else default_port
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} out of range")
    return host, port


def compile_control_settings(raw: Mapping[str, Any] | None, where: str | Section = "<config>",
                             *, env: Mapping[str, str] | None = None) -> ControlSettings:
    """Validate the `control:` mapping; a mistake raises ConfigError naming file, line, key.
    `where` is the file name, or the Section of this mapping when the caller has one."""
    s = where if isinstance(where, Section) else Section(raw, where, "control")
    env = os.environ if env is None else env
    s.only(*_KEYS)
    d = ControlSettings()
    out: dict[str, Any] = {}
    if s.has("listen"):
        try:
            out["listen_host"], out["listen_port"] = _hostport(s.str("listen") or "",
                                                               d.listen_port)
        except ValueError as e:
            raise s.error("listen", str(e)) from None
    if s.has("storage"):
        url = s.str("storage") or ""
        if not url.startswith(("sqlite:", "postgresql://", "postgres://")):
            raise s.error("storage", "use sqlite:///PATH or postgresql://USER@HOST/DB")
        if url.startswith("sqlite:") and not url[len("sqlite:"):].lstrip("/"):
            raise s.error("storage", "sqlite needs a file path: sqlite:///PATH")
        out["storage_url"] = url
    if s.has("state_dir"):
        out["state_dir"] = s.str("state_dir")
    out["tokens"] = tuple(_token(t, env) for _, t in s.sections("tokens"))
    names = [t.name for t in out["tokens"]]
    for name in names:
        if names.count(name) > 1:
            raise s.error("tokens", f"token name {name!r} is used twice")
    if s.has("retention"):
        r = s.sub("retention")
        r.only("requests", "detail", "aggregates")
        base = Retention()
        out["retention"] = Retention(
            requests=r.duration("requests", base.requests, minimum=3600) or base.requests,
            detail=r.duration("detail", base.detail, minimum=DAY) or base.detail,
            aggregates=r.duration("aggregates", base.aggregates, minimum=31 * DAY)
            or base.aggregates)
    if s.has("retention_interval"):
        out["retention_interval"] = s.duration("retention_interval", d.retention_interval,
                                               minimum=10, maximum=DAY)
    if s.has("log_format"):
        out["log_format"] = s.str("log_format", choices=LOG_FORMATS)
    if s.has("min_requests"):
        out["min_requests"] = s.int("min_requests", d.min_requests, minimum=0)
    return ControlSettings(**out)


def _token(t: Section, env: Mapping[str, str]) -> TokenSpec:
    t.only("name", "role", "token", "token_env", "sha256")
    name = t.str("name")
    if not name:
        raise t.error("name", "each token needs a name")
    role = t.str("role", choices=ROLES)
    if not role:
        raise t.error("role", f"each token needs a role: {', '.join(ROLES)}")
    given = [k for k in ("token", "token_env", "sha256") if t.has(k)]
    if len(given) != 1:
        raise t.error(None, "give exactly one of token, token_env, sha256")
    key = given[0]
    value = t.str(key) or ""
    if key == "sha256":
        if not _HEX64.match(value):
            raise t.error(key, "expected the 64 hex digits of the token's sha256")
        return TokenSpec(name, role, "sha256:" + value.lower())
    if key == "token_env":
        if value not in env:
            raise t.error(key, f"environment variable {value} is not set")
        value = env[value]
    if len(value) < MIN_TOKEN_LENGTH:
        raise t.error(key, f"a token must be at least {MIN_TOKEN_LENGTH} characters "
                           "(generate one with: python -c 'import secrets; "
                           "print(secrets.token_urlsafe(32))')")
    return TokenSpec(name, role, value)

