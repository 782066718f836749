"""What a detector is: a name, the bot types it votes for (with weights), a measured value and
the normal it compares against. One small class per detector; the engine knows only this.

Two kinds of "no":
- `evaluate()` returns None when the detector cannot judge this actor (too little data, not
  warmed up, not applicable, or — for signature detectors — nothing matched: a plain browser
  user agent is not evidence of a human, since any bot can send one);
- a Finding with strength 0 means it judged and found the actor normal: its votes still count
  in the denominator of confidence (SPEC §5: votes gained / votes of detectors that worked).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from node.config.section import Section
    from node.engine.actor import Actor
    from node.engine.context import EngineContext, Event


@dataclass(frozen=True, slots=True)
class Param:
    default: Any
    kind: str = "number"          # number | int | duration | mapping
    minimum: float | None = 0
    maximum: float | None = None
    help: str = ""


@dataclass(slots=True)       # not frozen: frozen init costs ~4x, and one is made per evaluation
class Finding:
    value: float
    normal: str                   # human-readable normal range, e.g. "< 10"
    strength: float               # 0 = normal, 1 = fully anomalous
    only: Mapping[str, float] | None = None   # per-bot-type strength override
    ips: Sequence[str] | None = None          # linked addresses, oldest first, that a
                                              # reaction should also cover (read at once)


class Detector:
    name: ClassVar[str]
    title: ClassVar[str]
    votes: ClassVar[Mapping[str, float]]
    params: ClassVar[Mapping[str, Param]] = {}
    slots: ClassVar[tuple[str, ...]] = ()     # private per-actor counters (in actor.ext)
    observes: ClassVar[bool] = False          # observe() runs on every request ...
    observes_auth: ClassVar[bool] = False     # ... or only on authentication attempts
    observes_start: ClassVar[bool] = False    # ... or only on a session's first request
    observes_query: ClassVar[bool] = False    # ... or only on requests with a query string
    observes_unsafe: ClassVar[bool] = False   # ... or only on unsafe methods (POST, ...)
    learned: ClassVar[bool] = False           # silent until the engine's warm-up is done
    # Judges an established client (a credentialed session whose calls succeed): detectors
    # of abuse do; those of being a machine (agent, schedule, pace, breadth) do not.
    judges_customers: ClassVar[bool] = False
    # How plainly a firing names what the actor does, for its primary bot type: 3 a behaviour
    # of one type (declined cards, probes, many usernames), 2 a strong lean (uniqueness),
    # 1 a trait many kinds of bot share (rate, rhythm, an HTTP library's agent).
    specificity: ClassVar[int] = 1
    actors: ClassVar[frozenset[str]] = frozenset({"session", "ip", "net"})
    memo: int = 0             # this detector's slot in Endpoint.memo (set by the engine)

    def __init__(self, params: Mapping[str, Any], ctx: EngineContext, slot_base: int) -> None:
        self.p = params
        self.ctx = ctx
        self.base = slot_base

    @classmethod
    def compile_params(cls, sec: Section) -> dict[str, Any]:
        out = {}
        for key, spec in cls.params.items():
            if spec.kind == "duration":
                out[key] = sec.duration(key, spec.default, minimum=spec.minimum or 0)
            elif spec.kind == "int":
                out[key] = sec.int(key, spec.default, minimum=spec.minimum, maximum=spec.maximum)
            elif spec.kind == "mapping":
                sub = sec.sub(key)
                merged = dict(spec.default)
                for k, _ in sub.items():
                    merged[k] = sub.int(k, 0, minimum=0)
                out[key] = merged
            else:
                out[key] = sec.number(key, spec.default, minimum=spec.minimum,
                                      maximum=spec.maximum)
        return out

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {k: (dict(v.default) if v.kind == "mapping" else v.default)
                for k, v in cls.params.items()}

    def observe(self, ev: Event) -> bool:
        """Per-request O(1) update of private counters; True asks for an evaluation now."""
        return False

    def evaluate(self, actor: Actor, ev: Event) -> Finding | None:
        raise NotImplementedError

    # -- private per-actor counters ---------------------------------------------------------
    def get(self, actor: Actor, i: int = 0) -> float:
        ext = actor.ext
        return ext[self.base + i] if ext is not None else 0

    def add(self, actor: Actor, i: int = 0, by: float = 1) -> float:
        ext = actor.ext
        if ext is None:
            ext = actor.ext = [0] * self.ctx.ext_size
        v = ext[self.base + i] + by
        ext[self.base + i] = v
        return v

    def set(self, actor: Actor, i: int, value: float) -> None:
        ext = actor.ext
        if ext is None:
            ext = actor.ext = [0] * self.ctx.ext_size
        ext[self.base + i] = value


def fmt(v: float) -> str:
    return f"{v:.2f}".rstrip("0").rstrip(".") if isinstance(v, float) else str(v)
