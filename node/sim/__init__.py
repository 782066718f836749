"""Traffic simulator: seeded, labelled human and bot traffic against simulated APIs ("worlds":
the demo shop, a payments API, a developer SaaS API; docs/worlds.md).

    from node.sim import Scenario, simulate, to_records, truth
    sc = Scenario.default(scale=1.0, seed=7)    # ~1 h, ~550 humans, every bot family
    for intent in simulate(sc): ...             # time-ordered `Intent`s
    records = to_records(simulate(sc), seed=7)  # `RequestRecord`s via the shop model
    labels = truth(sc)                          # ground truth per ip, session and actor
    Scenario.default(world="payments")          # another world; "all" runs every world

Also `Scenario.humans_only(...)`, `Scenario.only("scanner", "account_takeover", humans=0.1)`,
`sc.with_counts(scraper=10)`; `python -m node.sim` writes JSON lines or an nginx log.
`FAMILIES` maps each shop family to its label ("human" or a SPEC §5 bot type), `REGISTRIES`
has every world's families. A family is one class with `@family(name, label, count,
world=..., kind=...)` in `humans.py` / `bots.py` (shop), `paybank_pop.py`, `devtool_pop.py`.

Same scenario and seed, same output, byte for byte. Speed on one core (2-CPU CI box, shared):
~60-68k intents/s for `simulate`, ~20k records/s for `to_records(simulate(...))` (the shop
model renders each answer once, then serves it from a cache). Scale 1 is ~56k requests.
Memory follows the actors running at a time, not the scenario's length.

The HTTP driver is `node.sim.http_driver.drive` (imports aiohttp, so not imported here).
"""

from node.sim.core import (
           BOT_TYPES,
           HUMAN,
           KINDS,
           LABELS,
           REGISTRIES,
           REGISTRY,
           Actor,
           Intent,
           family,
)
from node.sim.scenario import DEFAULT_START, Scenario, simulate, to_records, truth
from node.sim.world import WORLDS

FAMILIES: dict[str, str] = {name: f.label for name, f in REGISTRY.items()}

__all__ = ["BOT_TYPES", "DEFAULT_START", "FAMILIES", "HUMAN", "KINDS", "LABELS", "REGISTRIES",
           "REGISTRY", "WORLDS", "Actor", "Intent", "Scenario", "family", "simulate",
           "to_records", "truth"]
