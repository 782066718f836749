"""Configuration: YAML in, validated immutable objects out (SPEC §6)."""

from node.config.compile import compile_config, default_config, load_config, parse_config_text
from node.config.model import (
    BOT_TYPES,
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
from node.config.section import Section, parse_duration

__all__ = [
    "BOT_TYPES", "REACTIONS", "TOLERANCE", "Application", "AuthEndpoint", "Config",
    "EndpointRule", "EngineConfig", "Limits", "Profile", "Reaction", "Section", "SessionParams",
    "compile_config", "default_config", "load_config", "parse_config_text", "parse_duration",
]
