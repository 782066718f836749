"""mitmproxy addons: thin glue between flows and the detection engine in `node`.

`default_addons()` lists ours in pipeline order, the way mitmproxy's own
`mitmproxy.addons.default_addons()` does; every hook runs through them in this order.
"""

from __future__ import annotations

from node.proxy.context import NodeContext
from node.proxy.layers import HttpGuard

from .client_ip import ClientIP
from .detect import Detect
from .enforce import Enforce
from .guard import Guard
from .housekeeping import Housekeeping
from .layers import CloseLeftovers, NextLayer
from .record import Record


def default_addons(node: NodeContext, guard: HttpGuard | None = None, *,
                   baselines_path: str | None = None) -> list:
    return [
        NextLayer(guard or HttpGuard()),  # reverse stack with the guarded HTTP/1 layer
        CloseLeftovers(),     # close client sockets mitmproxy leaves open (12.2 bug)
        ClientIP(node),       # who is the client (trusted proxies only), X-Forwarded-* upstream
        Guard(node),          # refuse ambiguous requests mitmproxy would forward
        Enforce(node),        # IP-list verdict: deny / gray + attack signs / denied session
        Record(node),         # request record after the response, blocked ones included
        Detect(node),         # engine.process(record) → list entries, session denials
        Housekeeping(node, baselines_path),  # list sync, expiry, gauges, record flush
    ]


__all__ = ["ClientIP", "CloseLeftovers", "Detect", "Enforce", "Guard", "Housekeeping",
           "NextLayer", "Record", "default_addons"]
