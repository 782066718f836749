"""What the node's addons share: settings, lists, metrics, engine and capture rules."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from node.capture import Capture
from node.config.model import Application, EngineConfig
from node.iplists import IPKey, IPLists, NetMatcher
from node.metrics import NodeMetrics
from node.proxy.forwarded import trusted_matcher
from node.proxy.recorder import RecordWriter
from node.proxy.settings import NodeSettings
from node.record import RequestRecord
from node.signatures import attack_signs

AttackSigns = Callable[[str, str, Any, bytes], frozenset[str]]


@dataclass
class NodeContext:
    settings: NodeSettings
    engine_config: EngineConfig
    iplists: IPLists
    metrics: NodeMetrics
    engine: Any = None                       # node.engine.Engine, or None (no detection)
    recorder: RecordWriter | None = None
    attack_signs: AttackSigns = attack_signs
    clock: Callable[[], float] = time.time
    # called with every Decision after it is applied (e.g. the control-plane sync)
    decision_sinks: list[Callable[[Any], None]] = field(default_factory=list)
    # called with every request record and its flow's FlowMeta, once built (before detection)
    record_sinks: list[Callable[[RequestRecord, FlowMeta], None]] = field(default_factory=list)
    hash_key: bytes | None = field(default=None, repr=False)   # keys session / username hashes
    capture: Capture = field(init=False)
    trusted: NetMatcher[str] = field(init=False)   # trusted proxy network → its header
    ready: bool = False

    def __post_init__(self) -> None:
        self.capture = Capture(self.engine_config, self.hash_key)
        self.trusted = trusted_matcher(self.settings.trusted_proxies)
        self.iplists.set_config_entries(
            "exception", [str(n) for n in self.engine_config.exceptions])

    def reconfigure(self, settings: NodeSettings, engine_config: EngineConfig) -> None:
        """Swap in a reloaded configuration; lists, sessions and learned state are kept.
        Listen addresses, TLS and limits of open listeners need a restart."""
        self.capture = Capture(engine_config, self.hash_key)
        self.trusted = trusted_matcher(settings.trusted_proxies)
        self.iplists.set_config_entries("exception", [str(n) for n in engine_config.exceptions])
        if self.engine is not None:
            self.engine.reconfigure(engine_config)
        self.settings, self.engine_config = settings, engine_config


META = "palisade"   # flow.metadata key


@dataclass(slots=True)
class FlowMeta:
    """What the addons decided about one flow, left in `flow.metadata["palisade"]`."""

    id: str                                 # request id (X-Request-Id)
    ip: str                                 # resolved client address
    ipkey: IPKey | None = None
    peer_trusted: bool = False
    host: str = ""                          # Host as the client sent it
    list: str | None = None                 # allow | exception | deny | gray | None
    blocked: str | None = None              # block reason (metrics label) when blocked
    session: str | None = None              # session value as recorded (hashed)
    app: Application | None = None
    signs: frozenset[str] = frozenset()     # attack signs found (graylisted requests only)
    record: RequestRecord | None = None
    decisions: tuple = ()
