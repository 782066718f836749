"""guard: refuse ambiguous requests before they can reach the upstream.

mitmproxy already refuses (400) malformed request lines, invalid header names (NUL, space,
colon), conflicting or repeated Content-Length / Transfer-Encoding, and Transfer-Encoding
on HTTP/1.0. It *accepts* and forwards obs-folded headers (joined with CRLF SP), NUL and
control bytes in header values and in the path, absolute-form targets naming another host,
and repeated Host headers; `check_request` refuses those.
"""

from __future__ import annotations

import re

from mitmproxy import http

from node.problem import REQUEST_ID_HEADER, new_request_id, problem_body, problem_headers
from node.proxy.context import META, NodeContext

_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")    # CTLs except HTAB (covers CR LF NUL)
_BAD_TARGET = re.compile(rb"[\x00-\x20\x7f]")            # no CTL or space inside the target
_TOKEN = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


def check_request(req: http.Request) -> str | None:
    """Why this request is ambiguous, or None. Pure: reads the request only."""
    data = req.data
    if not _TOKEN.match(data.method):
        return "method is not a token"
    if _BAD_TARGET.search(data.path):
        return "control byte in the request target"
    if not (data.path.startswith(b"/") or (data.path == b"*" and data.method == b"OPTIONS")):
        return "request target is not origin-form"
    for _name, value in req.headers.fields:
        if _BAD_VALUE.search(value):
            return "folded header or control byte in a header value"
    hosts = req.headers.get_all("host")
    if len(hosts) > 1:
        return "more than one Host header"
    if req.is_http11 and not hosts:
        return "HTTP/1.1 request without Host"
    if data.authority and not (req.is_http2 or req.is_http3):
        # absolute-form (`GET http://other/ HTTP/1.1`): accepted only naming the Host itself
        if not hosts or data.authority.decode("latin-1").lower() != hosts[0].lower():
            return "absolute-form target for another host"
    elif data.authority and hosts and data.authority.decode("latin-1").lower() != hosts[0].lower():
        return ":authority and Host disagree"
    return None


class Guard:
    def __init__(self, node: NodeContext) -> None:
        self.node = node

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error:
            return
        why = check_request(flow.request)
        if why is None:
            if flow.request.data.authority and flow.request.is_http11:
                flow.request.authority = ""   # forward origin-form: no second opinion on host
            return
        meta = flow.metadata.get(META)
        rid = meta.id if meta else new_request_id()
        if meta:
            meta.blocked = "malformed"
        headers = problem_headers(rid)
        if not (flow.request.is_http2 or flow.request.is_http3):
            headers["Connection"] = "close"   # what follows on this connection is suspect too
        flow.response = http.Response.make(400, problem_body("bad_request", rid, detail=why),
                                           headers)
        self.node.metrics.block("malformed", "none")

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        meta = flow.metadata.get(META)
        if meta and flow.response:
            flow.response.headers[REQUEST_ID_HEADER] = meta.id
