"""The detection engine (SPEC §2, §4, §5): no mitmproxy, runs on the records' own clock."""

from node.engine.baselines import Baselines
from node.engine.core import Engine
from node.engine.decision import Decision

__all__ = ["Baselines", "Decision", "Engine"]
