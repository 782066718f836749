"""The simulated worlds: each an API of its own (host, endpoints, status conventions, response
model) with its own population of families (`@family(..., world=name)`).

    shop      shop.example          the demo shop (node/sim/shopmodel.py, humans.py, bots.py)
    payments  api.paybank.example   a bank's API (paybank.py, paybank_pop.py)
    saas      api.devtool.example   a developer SaaS API (devtool.py, devtool_pop.py)

docs/worlds.md describes the endpoints, conventions and populations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import node.sim.bots  # noqa: F401  (importing registers the families)
import node.sim.devtool_pop  # noqa: F401
import node.sim.humans  # noqa: F401
import node.sim.paybank_pop  # noqa: F401
from node.sim import devtool, paybank, shopmodel
from node.sim.apikit import Responder
from node.sim.core import REGISTRIES, Intent


def _shop(seed: int) -> Responder:
    respond = shopmodel.ShopModel(seed).respond

    def r(it: Intent) -> tuple[int, int, float]:
        return respond(it.method, it.path, it.query, it.body, it.session,
                       it.headers.get("Content-Type"))

    return r


@dataclass(frozen=True, slots=True)
class World:
    name: str
    host: str
    model: Callable[[int], Responder]  # seed → responder (intent → status, size, ms)


WORLDS: dict[str, World] = {
    "shop": World("shop", shopmodel.HOST, _shop),
    "payments": World("payments", paybank.HOST, lambda s: paybank.PaybankModel(s).respond),
    "saas": World("saas", devtool.HOST, lambda s: devtool.DevtoolModel(s).respond),
}
assert set(WORLDS) == set(REGISTRIES), "every world has a model and families"
# family name → world, for records and truth of a scenario that mixes worlds
FAMILY_WORLD = {name: w for w, reg in REGISTRIES.items() for name in reg}
