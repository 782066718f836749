"""Traffic simulator: seeded, labelled human and bot traffic against the demo shop.

    from node.sim import Scenario, simulate, to_records, truth
    sc = Scenario.default(scale=1.0, seed=7)
    records = to_records(simulate(sc), seed=7)   # RequestRecord iterator, time-ordered
    labels = truth(sc)                           # ground truth per ip, session and actor

Families and their labels: `FAMILIES` (name → label). The HTTP driver is in
`node.sim.http_driver` (imports aiohttp, so it is not imported here).
"""

from node.sim.core import BOT_TYPES, HUMAN, LABELS, REGISTRY, Actor, Intent, family
from node.sim.scenario import DEFAULT_START, Scenario, simulate, to_records, truth

FAMILIES: dict[str, str] = {name: f.label for name, f in REGISTRY.items()}

__all__ = ["BOT_TYPES", "DEFAULT_START", "FAMILIES", "HUMAN", "LABELS", "REGISTRY", "Actor",
           "Intent", "Scenario", "family", "simulate", "to_records", "truth"]
