"""Traffic simulator: seeded, labelled human and bot traffic against the demo shop.

    from node.sim import Scenario, simulate, to_records, truth
    sc = Scenario.default(scale=1.0, seed=7)    # ~1 h, ~550 humans, every bot family
    for intent in simulate(sc): ...             # time-ordered `Intent`s
    records = to_records(simulate(sc), seed=7)  # `RequestRecord`s via the shop model
    labels = truth(sc)                          # ground truth per ip, session and actor

Also `Scenario.humans_only(...)`, `Scenario.only("scanner", "account_takeover", humans=0.1)`,
`sc.with_counts(scraper=10)`; `python -m node.sim` writes JSON lines. `FAMILIES` maps each
actor family to its label ("human" or a SPEC §5 bot type). A family is one class in
`humans.py` or `bots.py` with `@family(name, label, count)`.

Same scenario and seed, same output, byte for byte. Speed on one core (2-CPU CI box, shared):
~60-68k intents/s for `simulate`, ~20k records/s for `to_records(simulate(...))` (the shop
model renders each answer once, then serves it from a cache). Scale 1 is ~56k requests.
Memory follows the actors running at a time, not the scenario's length.

The HTTP driver is `node.sim.http_driver.drive` (imports aiohttp, so not imported here).
"""

from node.sim.core import BOT_TYPES, HUMAN, LABELS, REGISTRY, Actor, Intent, family
from node.sim.scenario import DEFAULT_START, Scenario, simulate, to_records, truth

FAMILIES: dict[str, str] = {name: f.label for name, f in REGISTRY.items()}

__all__ = ["BOT_TYPES", "DEFAULT_START", "FAMILIES", "HUMAN", "LABELS", "REGISTRY", "Actor",
           "Intent", "Scenario", "family", "simulate", "to_records", "truth"]
