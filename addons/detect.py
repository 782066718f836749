"""detect: feed the record to the engine and apply the decisions it returns.

`engine.process()` is pure CPU (tens of µs, measured into palisade_engine_seconds), so it
runs inline in the response hook: handing it to a thread would cost more than it saves
and would reorder records, which the engine expects in time order.
"""

from __future__ import annotations

import logging
import time

from mitmproxy import http

from node.eventlog import log_decision
from node.iplists import canonical_network
from node.proxy.context import META, FlowMeta, NodeContext

logger = logging.getLogger(__name__)

_LIST_OF = {"denylist": "deny", "graylist": "gray"}
# blocked by a list the engine already acted on, or unusable: nothing new to learn
_NOT_FED = frozenset({"denylist", "deny_session", "malformed", "headers_too_large",
                      "header_timeout", "too_large"})


class Detect:
    def __init__(self, node: NodeContext) -> None:
        self.node = node

    def response(self, flow: http.HTTPFlow) -> None:
        self._detect(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._detect(flow)

    def _detect(self, flow: http.HTTPFlow) -> None:
        meta: FlowMeta | None = flow.metadata.get(META)
        node = self.node
        if (meta is None or meta.record is None or node.engine is None or meta.decisions
                or meta.blocked in _NOT_FED):
            return
        t0 = time.perf_counter()
        decisions = node.engine.process(meta.record)
        node.metrics.engine_time(time.perf_counter() - t0)
        if not decisions:
            return
        meta.decisions = tuple(decisions)
        if meta.list in ("allow", "exception"):
            for d in decisions:        # never react to allowlisted or excepted clients
                log_decision(d, listed=0, skipped=f"{meta.list} list")
            return
        for d in decisions:
            try:
                apply_decision(node, d)
            except Exception:  # one bad decision must not stop the others or the flow
                logger.exception("cannot apply decision for %s", d.ip)


def apply_decision(node: NodeContext, d) -> list[str]:
    """Turn a Decision into list entries / a session denial; returns what was listed."""
    node.metrics.detection(d.bot_type, d.profile, [name for name, *_ in d.detectors],
                           d.ttd_seconds)
    listed: list[str] = []
    if d.reaction in _LIST_OF:
        list_name = _LIST_OF[d.reaction]
        names = tuple(name for name, *_ in d.detectors)
        reason = f"{d.bot_type} (confidence {d.confidence:.2f})"
        for target in d.ips or (d.ip,):
            if _worth_adding(node, list_name, target, d.duration):
                node.iplists.add(list_name, target, reason=reason, duration=d.duration,
                                 who=f"profile:{d.profile}", source=f"profile:{d.profile}",
                                 detectors=names)
                node.metrics.list_added(list_name)
                listed.append(target)
    elif d.reaction == "deny_session" and d.session:
        node.iplists.deny_session(d.session, d.duration)
    log_decision(d, listed=len(listed))
    for sink in node.decision_sinks:
        sink(d)
    return listed


def _worth_adding(node: NodeContext, list_name: str, target: str, duration: float | None
                  ) -> bool:
    """Skip exceptions and allowlisted addresses, and entries already in force as long."""
    try:
        net = canonical_network(target)
    except ValueError:
        return False
    addr = net.split("/", 1)[0]
    v = node.iplists.verdict(addr)
    if v.list in ("allow", "exception"):
        return False
    if v.list == "deny" and list_name == "gray":
        return False  # already blocked harder
    cur = node.iplists.entry(list_name, net)
    if cur is None:
        return True
    if cur.expires is None:
        return False
    return duration is None or node.clock() + duration > cur.expires + 60
