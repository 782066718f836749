"""record: after the response, the request record (docs/records.md) — blocked ones included."""

from __future__ import annotations

from mitmproxy import http

from node.capture import make_record
from node.eventlog import UpstreamFailures
from node.metrics import REJECT_REASONS
from node.proxy.context import META, FlowMeta, NodeContext
from node.proxy.layers import ByteCounter

from .enforce import header_getter


def _error_status(msg: str) -> int:
    """The status the client got (or would have) for a flow that ended in an error."""
    m = msg.lower()
    if "body_size_limit" in m:
        return 413
    if "refusing" in m or "validation" in m or "malformed" in m:
        return 400
    if "client disconnected" in m or "killed" in m:
        return 499   # nginx's "client closed request"
    return 502


class Record:
    def __init__(self, node: NodeContext) -> None:
        self.node = node
        self.upstream_failures = UpstreamFailures()

    def response(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None:
            self._record(flow, flow.response.status_code, flow.response)

    def error(self, flow: http.HTTPFlow) -> None:
        meta: FlowMeta | None = flow.metadata.get(META)
        if flow.error is None or meta is None:
            return
        status = _error_status(flow.error.msg)
        if status in (400, 413) and meta.blocked in (None, "denylist", "deny_session"):
            # mitmproxy refused it (framing, size) and answered itself, whatever we had set
            meta.blocked = "malformed" if status == 400 else "too_large"
            self.node.metrics.block(meta.blocked, "none")
        elif status == 502 and meta.blocked is None:   # the upstream failed this request
            self.upstream_failures.failed(
                self.node.settings.upstream, flow.error.msg, status, ip=meta.ip,
                method=flow.request.method, path=flow.request.path)
        self._record(flow, status, None)

    def _record(self, flow: http.HTTPFlow, status: int, resp: http.Response | None) -> None:
        meta: FlowMeta | None = flow.metadata.get(META)
        if meta is None or meta.record is not None:
            return
        node, req = self.node, flow.request
        if resp is not None and isinstance(resp.stream, ByteCounter):
            resp_bytes = resp.stream.n
        else:
            resp_bytes = len(resp.raw_content or b"") if resp is not None else 0
        end = (resp.timestamp_end if resp is not None else None) or node.clock()
        user = None
        if meta.app is not None and req.method in ("POST", "PUT", "PATCH"):
            user = node.capture.username(meta.app, req.method, req.path.partition("?")[0],
                                         req.raw_content or b"", req.headers.get("content-type"),
                                         header_getter(req.headers))
        meta.record = rec = make_record(
            ts=req.timestamp_start, ip=meta.ip, method=req.method, host=meta.host,
            target=req.path, status=status, req_bytes=len(req.raw_content or b""),
            resp_bytes=resp_bytes, duration_ms=round((end - req.timestamp_start) * 1000, 3),
            ua=req.headers.get("user-agent", ""), session=meta.session, user=user,
            request_id=meta.id, referer=req.headers.get("referer"),
            content_type=resp.headers.get("content-type") if resp is not None else None,
            blocked=meta.blocked is not None)
        if node.recorder is not None:
            node.recorder.write(rec)
        for sink in node.record_sinks:
            sink(rec, meta)
        if meta.blocked is not None:
            verdict = "rejected" if meta.blocked in REJECT_REASONS else "blocked"
        elif resp is None:
            verdict = "error"
        else:
            verdict = meta.list if meta.list in ("allow", "exception") else "pass"
        node.metrics.request(verdict)
