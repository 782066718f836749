"""YAML → validated, immutable `Config`. Every mistake is one ConfigError naming file:line: key."""

from __future__ import annotations

import ipaddress
import os
from types import MappingProxyType
from typing import Any

from node.config.model import (
    BOT_TYPES,
    CRAWLER_CATEGORIES,
    CRAWLER_POLICIES,
    DEFAULT_REACTION_DURATION,
    REACTIONS,
    TOLERANCE,
    Application,
    AuthEndpoint,
    Config,
    EndpointRule,
    EngineConfig,
    Limits,
    Profile,
    Reaction,
    SessionParams,
)
from node.config.section import Section
from node.config.yamlloc import load_yaml_file, load_yaml_text
from node.engine.roles import ROLES
from node.errors import InputError

_TOP = ("engine", "applications", "profiles", "exceptions", "detectors", "node", "control",
        "state_dir")
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
MIN_REACTION = 300.0  # SPEC §6: reactions last from 5 minutes to forever


def load_config(path: str | None) -> Config:
    """Load and validate a configuration file; None gives the built-in defaults."""
    if path is None:
        return default_config()
    return compile_config(load_yaml_file(path), path)


def parse_config_text(text: str, name: str = "<text>") -> Config:
    return compile_config(load_yaml_text(text, name), name)


def default_config() -> Config:
    return Config(engine=EngineConfig(), node=None, control=None)


def compile_config(data: Any, file: str) -> Config:
    root = Section(data, file)
    root.only(*_TOP)
    engine = _engine(root)
    node = control = None
    if root.has("node"):
        from node.proxy.settings import compile_node_settings

        node = compile_node_settings(root.data["node"], root.sub("node"))
    if root.has("control"):
        from node.control.settings import compile_control_settings

        control = compile_control_settings(root.data["control"], root.sub("control"))
    return Config(engine=engine, node=node, control=control,
                  state_dir=root.str("state_dir"), source=file)


def _engine(root: Section) -> EngineConfig:
    eng = root.sub("engine")
    eng.only("session_timeout", "ip_ttl", "max_sessions", "max_ips", "max_networks",
             "max_templates", "ipv6_prefix", "min_votes", "warmup_requests",
             "shared_ip_sessions", "cloud_ranges")
    d = Limits()
    limits = Limits(
        sessions=eng.int("max_sessions", d.sessions, minimum=100, maximum=10_000_000),
        ips=eng.int("max_ips", d.ips, minimum=100, maximum=10_000_000),
        networks=eng.int("max_networks", d.networks, minimum=100, maximum=10_000_000),
        templates=eng.int("max_templates", d.templates, minimum=10, maximum=1_000_000),
        session_timeout=eng.duration("session_timeout", d.session_timeout, minimum=10,
                                     maximum=86400),
        ip_ttl=eng.duration("ip_ttl", d.ip_ttl, minimum=10, maximum=30 * 86400),
        ipv6_prefix=eng.int("ipv6_prefix", d.ipv6_prefix, minimum=16, maximum=128),
    )
    apps = tuple(_application(s) for _, s in root.sections("applications")) or (
        Application("default"),)
    names = [a.name for a in apps]
    for i, n in enumerate(names):
        if n in names[:i]:
            raise root.error("applications", f"duplicate application name {n!r}")
    profiles = tuple(_profile(s, names) for _, s in root.sections("profiles")) or (
        Profile("default"),)
    det_params, disabled = _detectors(root.sub("detectors"))
    base = EngineConfig()
    return EngineConfig(
        applications=apps,
        profiles=profiles,
        exceptions=tuple(root.networks("exceptions")),
        detectors=MappingProxyType(det_params),
        disabled_detectors=frozenset(disabled),
        limits=limits,
        min_votes=eng.number("min_votes", base.min_votes, minimum=0.5, maximum=100),
        warmup_requests=eng.int("warmup_requests", base.warmup_requests, minimum=0),
        shared_ip_sessions=eng.int("shared_ip_sessions", base.shared_ip_sessions, minimum=2),
        cloud_ranges=_cloud_ranges(eng),
        source=root.file,
    )


def _cloud_ranges(eng: Section) -> Any:
    """`engine.cloud_ranges: PATH` (what `palisade ranges update` writes), loaded now so a bad
    file is a configuration error, not a surprise at the first request."""
    path = eng.str("cloud_ranges")
    if path is None:
        return None
    from node.signatures import cloud

    if not os.path.isabs(path) and eng.file and os.path.exists(eng.file):
        path = os.path.join(os.path.dirname(os.path.abspath(eng.file)), path)
    try:
        return cloud.load(path)
    except InputError as e:
        raise eng.error("cloud_ranges", str(e)) from None


def _application(s: Section) -> Application:
    s.only("name", "hosts", "session", "auth_endpoints", "critical_endpoints",
           "sensitive_endpoints", "templates", "hash_usernames", "endpoint_roles")
    name = s.str("name")
    if not name:
        raise s.error(None, "an application needs a name")
    sess = s.sub("session")
    sess.only("cookie", "header", "jwt_claim", "api_key_header", "hash")
    session = SessionParams(
        cookie=sess.str("cookie"), header=sess.str("header"), jwt_claim=sess.str("jwt_claim"),
        api_key_header=sess.str("api_key_header"), hash_values=sess.bool("hash", True))
    if session.jwt_claim and not session.header:
        session = SessionParams(session.cookie, "Authorization", session.jwt_claim,
                                session.api_key_header, session.hash_values)
    auth = []
    for _, a in s.sections("auth_endpoints"):
        a.only("method", "path", "username", "success", "failure")
        path = a.str("path")
        if not path or not path.startswith("/"):
            raise a.error("path", "an authentication endpoint needs a path starting with /")
        where, fld = "json", "username"
        if a.has("username"):
            u = a.sub("username")
            u.only("json", "form", "header")
            if len(u.data) != 1:
                raise u.error(None, "give exactly one of json, form, header")
            where = next(iter(u.data))
            fld = u.str(where)
        auth.append(AuthEndpoint(
            method=a.str("method", "POST", choices=_METHODS), path=path,
            username_in=where, username_field=fld,
            success=_statuses(a, "success", AuthEndpoint.success),
            failure=_statuses(a, "failure", AuthEndpoint.failure)))
    templates = s.str_list("templates")
    for t in templates:
        if not t.startswith("/"):
            raise s.error("templates", f"template {t!r} must start with /")
    return Application(
        name=name, hosts=tuple(h.lower() for h in s.str_list("hosts", ["*"])),
        session=session, auth=tuple(auth),
        critical=_rules(s, "critical_endpoints"), sensitive=_rules(s, "sensitive_endpoints"),
        templates=tuple(templates), hash_usernames=s.bool("hash_usernames", True),
        roles=_roles(s))


def _roles(s: Section) -> tuple[tuple[EndpointRule, str | None], ...]:
    """`endpoint_roles: {"POST /v1/customers": none, "POST /v2/enroll": signup}`."""
    rs = s.sub("endpoint_roles")
    out = []
    for key in rs.data:
        role = rs.str(key, choices=(*ROLES, "none"))
        rule = _rule(rs, key, str(key))
        out.append((rule, None if role == "none" else role))
    return tuple(out)


def _statuses(s: Section, key: str, default: tuple[int, ...]) -> tuple[int, ...]:
    if not s.has(key):
        return default
    out = []
    for v in s.list(key):
        if isinstance(v, bool) or not isinstance(v, int) or not 100 <= v <= 599:
            raise s.error(key, f"{v!r} is not an HTTP status")
        out.append(v)
    return tuple(out)


def _rules(s: Section, key: str) -> tuple[EndpointRule, ...]:
    return tuple(_rule(s, key, item) for item in s.str_list(key))


def _rule(s: Section, key: str, item: str) -> EndpointRule:
    parts = item.split(None, 1)
    if len(parts) == 2 and parts[0].upper() in _METHODS:
        method, pattern = parts[0].upper(), parts[1].strip()
    else:
        method, pattern = None, item.strip()
    if not pattern.startswith(("/", "*")):
        raise s.error(key, f"{item!r}: expected '[METHOD] /path' (globs and {{param}} ok)")
    return EndpointRule(method, pattern)


def _profile(s: Section, app_names: list[str]) -> Profile:
    s.only("name", "applications", "bot_types", "tolerance", "reactions", "crawlers")
    name = s.str("name")
    if not name:
        raise s.error(None, "a profile needs a name")
    apps = tuple(s.str_list("applications", ["*"]))
    for a in apps:
        if a != "*" and a not in app_names:
            raise s.error("applications", f"unknown application {a!r}")
    types = s.str_list("bot_types", list(BOT_TYPES))
    for t in types:
        if t not in BOT_TYPES:
            raise s.error("bot_types", f"unknown bot type {t!r} (known: {', '.join(BOT_TYPES)})")
    reactions = {t: Reaction() for t in BOT_TYPES}
    rs = s.sub("reactions")
    for key in rs.data:
        if key not in BOT_TYPES and key != "default":
            raise rs.error(key, f"unknown bot type (known: {', '.join(BOT_TYPES)}, default)")
    order = ["default"] + [t for t in BOT_TYPES]
    for key in order:
        if key not in rs.data:
            continue
        r = rs.sub(key) if isinstance(rs.data[key], dict) else None
        if r is None:  # shorthand: `scraping: graylist`
            action = rs.str(key, choices=REACTIONS)
            reaction = Reaction(action, DEFAULT_REACTION_DURATION)
        else:
            r.only("action", "duration")
            reaction = Reaction(
                r.str("action", "denylist", choices=REACTIONS),
                r.duration("duration", DEFAULT_REACTION_DURATION, minimum=MIN_REACTION,
                           allow_forever=True))
        for t in (BOT_TYPES if key == "default" else (key,)):
            if key == "default" and t in rs.data:
                continue
            reactions[t] = reaction
    cs = s.sub("crawlers")
    cs.only(*CRAWLER_CATEGORIES)
    crawlers = {c: cs.str(c, "monitor", choices=CRAWLER_POLICIES) for c in CRAWLER_CATEGORIES}
    return Profile(name=name, applications=apps, bot_types=frozenset(types),
                   tolerance=s.str("tolerance", "normal", choices=tuple(TOLERANCE)),
                   reactions=MappingProxyType(reactions), crawlers=MappingProxyType(crawlers))


def _detectors(s: Section) -> tuple[dict[str, MappingProxyType], set[str]]:
    """Per-detector overrides; each detector validates its own parameters."""
    from node.detectors import REGISTRY

    params: dict[str, MappingProxyType] = {}
    disabled: set[str] = set()
    for name in s.data:
        if name not in REGISTRY:
            raise s.error(name, f"unknown detector (known: {', '.join(sorted(REGISTRY))})")
        sub = s.sub(name)
        cls = REGISTRY[name]
        sub.only("enabled", *cls.params)
        if not sub.bool("enabled", True):
            disabled.add(name)
        params[name] = MappingProxyType(cls.compile_params(sub))
    return params, disabled


def parse_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text.strip(), strict=False)
