"""Fast, bounded classification of user agents, probe paths and attack signs.

Pure functions with bounded caches, linear in their (truncated) input; no proxy imports.
"""

from .attack_signs import ATTACK_SIGNS, attack_signs
from .browser import DEFAULT_MIN_VERSIONS, browser_version, is_outdated
from .probes import PROBE_KINDS, probe_kind
from .ua import KINDS as UA_KINDS
from .ua import UAClass, classify_ua

__all__ = [
    "ATTACK_SIGNS",
    "DEFAULT_MIN_VERSIONS",
    "PROBE_KINDS",
    "UA_KINDS",
    "UAClass",
    "attack_signs",
    "browser_version",
    "classify_ua",
    "is_outdated",
    "probe_kind",
]
