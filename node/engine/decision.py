"""A detection and the reaction it asks for (what the node applies and replay prints)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Decision:
    ts: float                       # when the detection was made (the record's clock)
    ip: str
    ips: tuple[str, ...]            # every address (or CIDR) the reaction should cover
    session: str | None
    app: str
    bot_type: str
    confidence: float
    profile: str
    reaction: str                   # monitor | graylist | denylist | deny_session
    duration: float | None          # seconds; None = forever
    detectors: tuple[tuple[str, float, str], ...]   # (name, value, normal) of those that fired
    evidence: tuple[Any, ...]       # ids of the requests behind it
    ttd_requests: int               # time to detection: requests since the actor's first
    ttd_seconds: float              # ... and seconds since it
    actor: str = "session"          # session | ip | net
    features: dict[str, float] = field(default_factory=dict)   # heatmap axes
    also: dict[str, float] = field(default_factory=dict)   # other bot types scored, confidence

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "ip": self.ip, "session": self.session, "bot_type": self.bot_type,
            "confidence": round(self.confidence, 3), "ts": self.ts,
            "detectors": [{"name": n, "value": v, "normal": m} for n, v, m in self.detectors],
        }
        if len(self.ips) > 1 or (self.ips and self.ips[0] != self.ip):
            d["ips"] = list(self.ips)
        d.update(app=self.app, profile=self.profile, reaction=self.reaction,
                 duration=self.duration, actor=self.actor, evidence=list(self.evidence),
                 ttd_requests=self.ttd_requests, ttd_seconds=round(self.ttd_seconds, 3),
                 features=self.features)
        if self.also:
            d["also"] = self.also
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)
