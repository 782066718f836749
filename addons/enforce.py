"""enforce: the IP-list verdict, applied before anything reaches the upstream.

deny → 403 at once; a denied session → 403; gray → 403 only when the request carries
attack signs (checked once the body is in); allow / exception → pass, and detection will
not react to them. Blocked requests are still recorded.
"""

from __future__ import annotations

import logging

from mitmproxy import http

from node.capture import session_value
from node.problem import problem_body, problem_headers
from node.proxy.context import META, FlowMeta, NodeContext

logger = logging.getLogger(__name__)

# the metrics reason for a graylist block: the first sign found in this order
_SIGN_ORDER = ("sqli", "xss", "cmd_injection", "path_traversal", "scanner_probe")


def block(node: NodeContext, flow: http.HTTPFlow, meta: FlowMeta, kind: str, reason: str,
          list_name: str) -> None:
    flow.response = http.Response.make(403, problem_body(kind, meta.id),
                                       problem_headers(meta.id))
    meta.blocked = reason
    node.metrics.block(reason, list_name)


def header_getter(headers: http.Headers):
    """`name -> value` for capture; HTTP/2 splits Cookie into several fields: rejoin with `;`."""
    def get(name: str) -> str | None:
        if name.lower() == "cookie":
            return "; ".join(headers.get_all("cookie")) or None
        return headers.get(name)
    return get


class Enforce:
    def __init__(self, node: NodeContext) -> None:
        self.node = node

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        meta: FlowMeta | None = flow.metadata.get(META)
        if meta is None or flow.response or flow.error:
            return
        node = self.node
        now = node.clock()
        verdict = node.iplists.verdict(meta.ipkey, now)
        meta.list = verdict.list
        meta.app = app = node.capture.app_for(meta.host)
        try:
            meta.session = session_value(app.session, header_getter(flow.request.headers),
                                         node.capture.hash_key)
        except Exception:  # a hostile header must never skip the verdict below (fail safe)
            logger.exception("session capture failed; enforcing on the address only")
            meta.session = None
        if verdict.list in ("allow", "exception"):
            return
        if verdict.list == "deny":
            block(node, flow, meta, "denylisted", "denylist", "deny")
        elif node.iplists.session_denied(meta.session, now):
            block(node, flow, meta, "session_denied", "deny_session", "session")

    def request(self, flow: http.HTTPFlow) -> None:
        meta: FlowMeta | None = flow.metadata.get(META)
        if meta is None or meta.list != "gray" or flow.response or flow.error:
            return
        req = flow.request
        path, _, query = req.path.partition("?")
        headers = [(k.lower(), v) for k, v in req.headers.items(multi=True)]
        body = (req.raw_content or b"")[: self.node.settings.max_attack_scan]
        meta.signs = signs = self.node.attack_signs(path, query, headers, body)
        if signs:
            reason = next((s for s in _SIGN_ORDER if s in signs), "attack")
            block(self.node, flow, meta, "attack", reason, "gray")
