"""The detection engine (SPEC §2, §4, §5): no mitmproxy, runs on the records' own clock.

Names are loaded on first use: detectors import engine helpers (`node.engine.sketch`), and the
engine imports the detector table, so neither may pull the other in at package import time.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from node.engine.baselines import Baselines
    from node.engine.core import Engine
    from node.engine.decision import Decision

_LAZY = {"Baselines": "node.engine.baselines", "Engine": "node.engine.core",
         "Decision": "node.engine.decision"}
__all__ = ["Baselines", "Decision", "Engine"]


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'node.engine' has no attribute {name!r}")
    return getattr(import_module(mod), name)
