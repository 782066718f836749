"""client_ip: who is the client, and what the upstream is told about it."""

from __future__ import annotations

from mitmproxy import http
from mitmproxy.net.http import url

from node.iplists import parse_ip
from node.problem import REQUEST_ID_HEADER, new_request_id
from node.proxy.context import META, FlowMeta, NodeContext
from node.proxy.forwarded import outgoing_xff, resolve_client

_ID_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


class ClientIP:
    def __init__(self, node: NodeContext) -> None:
        self.node = node

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if META in flow.metadata:
            return
        req = flow.request
        peer = flow.client_conn.peername[0] if flow.client_conn.peername else ""
        h = req.headers
        res = resolve_client(peer, h.get_all("x-forwarded-for"), h.get_all("forwarded"),
                             self.node.trusted)
        # a trusted proxy's request id is kept, so logs correlate across hops
        rid = h.get(REQUEST_ID_HEADER, "") if res.peer_trusted else ""
        if not (0 < len(rid) <= 64 and _ID_OK.issuperset(rid)):
            rid = new_request_id()
        host = req.host_header or ""
        flow.metadata[META] = FlowMeta(id=rid, ip=res.client, ipkey=parse_ip(res.client),
                                       peer_trusted=res.peer_trusted, host=host)

        h["X-Forwarded-For"] = outgoing_xff(res, peer, h.get_all("x-forwarded-for"))
        h["X-Real-IP"] = res.client
        if not (res.peer_trusted and "x-forwarded-proto" in h):
            h["X-Forwarded-Proto"] = "https" if flow.client_conn.tls_established else "http"
        if not (res.peer_trusted and "x-forwarded-host" in h) and host:
            h["X-Forwarded-Host"] = host
        if not res.peer_trusted and "forwarded" in h:
            del h["forwarded"]  # the client's own claim; X-Forwarded-For now tells the truth
        h[REQUEST_ID_HEADER] = rid
        if not self.node.settings.keep_host_header:
            # mitmproxy runs with keep_host_header so records see the client's Host;
            # the rewrite toward the upstream address happens here instead
            req.host_header = url.hostport(req.scheme, req.host, req.port)
