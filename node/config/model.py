"""Compiled, immutable configuration objects (what the engine reads; YAML never reaches it)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from node.signatures.ua import CATEGORIES

BOT_TYPES: tuple[str, ...] = (
    "api_abuse", "account_takeover", "security_crawlers", "scraping", "resource_consumption",
)
# Tolerance → the confidence at which a profile reacts. Low tolerance reacts on thinner
# evidence; high tolerance waits for most detectors that judged the actor to agree.
TOLERANCE: MappingProxyType[str, float] = MappingProxyType(
    {"low": 0.35, "normal": 0.5, "high": 0.65})
REACTIONS: tuple[str, ...] = ("monitor", "graylist", "denylist", "deny_session")
# Declared crawlers per category (node.signatures.ua CATEGORIES): `block` makes the claim
# strong evidence, `allow` no evidence at all, `monitor` (default) lets them crawl but names
# them, and their behaviour is judged like anyone's.
CRAWLER_CATEGORIES: tuple[str, ...] = CATEGORIES
CRAWLER_POLICIES: tuple[str, ...] = ("allow", "monitor", "block")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class SessionParams:
    """Where an application's clients present their session (first present wins)."""

    cookie: str | None = None
    header: str | None = None
    jwt_claim: str | None = None          # claim read from a Bearer JWT in `header`
    api_key_header: str | None = None
    hash_values: bool = True              # session keys stored hashed (SPEC §4)


@dataclass(frozen=True, slots=True)
class AuthEndpoint:
    method: str
    path: str                             # exact path or template (`/api/{tenant}/login`)
    username_in: str = "json"             # json | form | header
    username_field: str = "username"
    success: tuple[int, ...] = (200, 201, 204, 302)
    failure: tuple[int, ...] = (400, 401, 403, 422)


@dataclass(frozen=True, slots=True)
class EndpointRule:
    """A critical / sensitive endpoint: method (None = any) and a path glob or template."""

    method: str | None
    pattern: str


@dataclass(frozen=True, slots=True)
class Application:
    name: str
    hosts: tuple[str, ...] = ("*",)
    session: SessionParams = SessionParams()
    auth: tuple[AuthEndpoint, ...] = ()
    critical: tuple[EndpointRule, ...] = ()
    sensitive: tuple[EndpointRule, ...] = ()
    templates: tuple[str, ...] = ()
    hash_usernames: bool = True
    # Endpoint roles set by the operator (engine.roles): (rule, role or None = no role),
    # first match wins over the inferred role.
    roles: tuple[tuple[EndpointRule, str | None], ...] = ()


# SPEC §6: a reaction written without a duration lasts an hour. A module constant, not
# `Reaction.duration`: on a slots dataclass that is a member descriptor, not the default.
DEFAULT_REACTION_DURATION = 3600.0


@dataclass(frozen=True, slots=True)
class Reaction:
    action: str = "denylist"
    duration: float | None = DEFAULT_REACTION_DURATION   # seconds; None = forever


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    applications: tuple[str, ...] = ("*",)
    bot_types: frozenset[str] = frozenset(BOT_TYPES)
    tolerance: str = "normal"
    reactions: MappingProxyType = field(
        default_factory=lambda: MappingProxyType({t: Reaction() for t in BOT_TYPES}))
    crawlers: MappingProxyType = field(       # category → allow | monitor | block
        default_factory=lambda: MappingProxyType({c: "monitor" for c in CRAWLER_CATEGORIES}))

    @property
    def threshold(self) -> float:
        return TOLERANCE[self.tolerance]

    def covers(self, app: str) -> bool:
        return "*" in self.applications or app in self.applications


@dataclass(frozen=True, slots=True)
class Limits:
    """Hard caps on in-memory state: a flood of keys evicts, it never grows memory."""

    sessions: int = 100_000
    ips: int = 100_000
    networks: int = 20_000
    templates: int = 5_000
    session_timeout: float = 1800.0
    ip_ttl: float = 3600.0
    ipv6_prefix: int = 64


@dataclass(frozen=True, slots=True)
class EngineConfig:
    applications: tuple[Application, ...] = (Application("default"),)
    profiles: tuple[Profile, ...] = (Profile("default"),)
    exceptions: tuple[Network, ...] = ()
    detectors: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    disabled_detectors: frozenset[str] = frozenset()
    limits: Limits = Limits()
    min_votes: float = 2.0                # votes an actor must gain before any decision
    warmup_requests: int = 2000           # traffic seen before learned detectors vote
    shared_ip_sessions: int = 3           # human-looking sessions that make an IP "shared"
    # node.signatures.cloud.CloudRanges loaded from `engine.cloud_ranges`; None: the packaged
    # ranges (cloud.provider(ip, config.cloud_ranges) reads either).
    cloud_ranges: Any = None
    source: str = "<built-in defaults>"


@dataclass(frozen=True, slots=True)
class Config:
    engine: EngineConfig
    node: Any = None
    control: Any = None
    state_dir: str | None = None
    source: str = "<built-in defaults>"
