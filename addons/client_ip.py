"""client_ip: who is the client, and what the upstream is told about it."""

from __future__ import annotations

from mitmproxy import http
from mitmproxy.net.http import url

from node.iplists import parse_ip
from node.problem import REQUEST_ID_HEADER, new_request_id
from node.proxy.context import META, FlowMeta, NodeContext
from node.proxy.forwarded import FORWARDED, XFF, outgoing_forwarded, outgoing_xff, resolve_client

# client-address headers some CDNs write; we read none of them, so none reaches the upstream
# (a client's forged one would contradict X-Forwarded-For)
CLIENT_IP_CLAIMS = ("true-client-ip", "cf-connecting-ip", "x-client-ip", "x-cluster-client-ip",
                    "fastly-client-ip", "client-ip")
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

        # what the upstream is told is what we decided, and nothing else: one client
        h["X-Forwarded-For"] = outgoing_xff(res)
        h["X-Real-IP"] = res.client
        for name in CLIENT_IP_CLAIMS:
            if name in h:
                del h[name]
        own = "https" if flow.client_conn.tls_established else "http"
        fwd = outgoing_forwarded(res, own)
        if fwd is None:
            h.pop("forwarded", None)
        else:
            h["Forwarded"] = fwd
        # proto and host as the proxy we believe wrote them, else as we saw them
        if res.header == FORWARDED:
            proto, fwd_host = res.proto, res.host
        elif res.header == XFF:
            proto, fwd_host = h.get("x-forwarded-proto"), h.get("x-forwarded-host")
        else:
            proto = fwd_host = None
        h["X-Forwarded-Proto"] = proto if proto in ("http", "https") else own
        if fwd_host or host:
            h["X-Forwarded-Host"] = fwd_host or host
        else:
            h.pop("x-forwarded-host", None)
        h[REQUEST_ID_HEADER] = rid
        if not self.node.settings.keep_host_header:
            # mitmproxy runs with keep_host_header so records see the client's Host;
            # the rewrite toward the upstream address happens here instead
            req.host_header = url.hostport(req.scheme, req.host, req.port)
