"""Protocol guards inside mitmproxy's HTTP layer, where no addon hook reaches.

mitmproxy 12.2 reads an HTTP/1 request head into an unbounded buffer ("FIXME: protect
against header size DoS" in `_http1.py`) with no deadline, answers protocol errors with an
HTML page, and applies `body_size_limit` to requests and responses alike. These small
subclasses, installed by our `next_layer` addon for the reverse-proxy stack, add:

- a request-head size cap (431) and a head-read deadline (408) — slowloris;
- a cap on bytes a client may pipeline while its previous request is in flight;
- problem+json instead of HTML for the errors mitmproxy sends itself (400/413/502),
  over HTTP/1 and HTTP/2 (where the head limit becomes SETTINGS_MAX_HEADER_LIST_SIZE);
- responses are never refused for size: past a threshold they stream (memory stays
  bounded) through a byte counter so the request record still knows their size.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from mitmproxy.connection import ConnectionState
from mitmproxy.net.http.http1 import expected_http_body_size
from mitmproxy.net.tls import starts_like_tls_record
from mitmproxy.proxy import commands, events, layer, tunnel
from mitmproxy.proxy.context import Context
from mitmproxy.proxy.layers import ClientTLSLayer, ServerTLSLayer
from mitmproxy.proxy.layers.http import HttpLayer, HTTPMode, HttpStream, ResponseData
from mitmproxy.proxy.layers.http._base import ReceiveHttp
from mitmproxy.proxy.layers.http._events import (
    RequestHeaders,
    RequestProtocolError,
    ResponseEndOfMessage,
    ResponseProtocolError,
)
from mitmproxy.proxy.layers.http._http1 import Http1Server
from mitmproxy.proxy.layers.http._http2 import Http2Server

from node.problem import (
    CONTENT_TYPE,
    REQUEST_ID_HEADER,
    http1_problem,
    new_request_id,
    problem_body,
    problem_for_status,
)

logger = logging.getLogger(__name__)

# h11's end-of-head pattern (it accepts bare LF line endings too)
_HEAD_END = re.compile(rb"\n\r?\n")


@dataclass(frozen=True, slots=True)
class HttpGuard:
    max_header_bytes: int = 32 * 1024
    header_timeout: float = 10.0
    stream_response_above: int = 1024 * 1024
    require_tls: bool = False
    on_reject: Callable[[str], None] | None = None   # kind → metrics

    def rejected(self, kind: str) -> None:
        if self.on_reject is not None:
            try:
                self.on_reject(kind)
            except Exception:  # counting must never break the connection handling
                logger.exception("reject callback failed")


class ByteCounter:
    """A `Response.stream` callable that passes chunks through and counts them."""

    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, data: bytes) -> bytes:
        self.n += len(data)
        return data


class GuardedHttp1Server(Http1Server):
    def __init__(self, context: Context, guard: HttpGuard) -> None:
        super().__init__(context)
        self.guard = guard
        self._head_timer: commands.RequestWakeup | None = None

    def _handle_event(self, event: events.Event) -> layer.CommandGenerator[None]:
        if isinstance(event, events.Wakeup):
            if event.command is self._head_timer and self.state == self.read_headers and self.buf:
                self._head_timer = None
                yield from self._reject("header_timeout")
            return  # stale timers (the head completed in time) are dropped
        yield from super()._handle_event(event)
        if (self.state == self.wait and len(self.buf) > self.guard.max_header_bytes):
            # mitmproxy has no pipelining: it buffers what arrives meanwhile, unbounded
            yield from self._reject("headers_too_large")

    def read_headers(self, event: events.ConnectionEvent) -> layer.CommandGenerator[None]:
        if isinstance(event, events.DataReceived) and self.buf:
            limit = self.guard.max_header_bytes
            if len(self.buf) > limit and not _HEAD_END.search(bytes(self.buf), 0, limit + 2):
                yield from self._reject("headers_too_large")
                return
        for cmd in super().read_headers(event):
            if isinstance(cmd, commands.SendData) and cmd.connection is self.conn:
                # read_headers writes to the client only to refuse a request (HTML 400 page)
                status = _status_of(cmd.data)
                self.guard.rejected("malformed")
                cmd = commands.SendData(self.conn, http1_problem(problem_for_status(status)))
            yield cmd
        if self.state != self.read_headers:
            self._head_timer = None
        elif self.buf and self._head_timer is None:
            # A head left incomplete by the data so far gets header_timeout to complete.
            # Armed only then: a timer is an asyncio task sleeping that long, and a head
            # nearly always arrives whole (one timer per request was ~8,000 live tasks at
            # 800 req/s, all reaching the GC's oldest generation).
            self._head_timer = commands.RequestWakeup(self.guard.header_timeout)
            yield self._head_timer

    def send(self, event) -> layer.CommandGenerator[None]:
        if (isinstance(event, ResponseProtocolError) and not self.response
                and self.conn.state & ConnectionState.CAN_WRITE):
            status = event.code.http_status_code()
            if status is not None:
                rid = self.request.headers.get(REQUEST_ID_HEADER) if self.request else None
                yield commands.SendData(self.conn, http1_problem(problem_for_status(status), rid))
                yield commands.CloseConnection(self.conn)
                return
        yield from super().send(event)

    def _reject(self, kind: str) -> layer.CommandGenerator[None]:
        self.guard.rejected(kind)
        yield commands.SendData(self.conn, http1_problem(kind))
        yield commands.CloseConnection(self.conn)
        self.state = self.done


class GuardedHttp2Server(Http2Server):
    """HTTP/2: the same head limit (as SETTINGS_MAX_HEADER_LIST_SIZE, enforced by the HPACK
    decoder, whose own default is 64 KiB) and problem+json for mitmproxy's own errors."""

    def __init__(self, context: Context, guard: HttpGuard) -> None:
        super().__init__(context)
        self.guard = guard
        self.h2_conn.local_settings.max_header_list_size = guard.max_header_bytes
        self.h2_conn.local_settings.acknowledge()   # sent with the initial SETTINGS frame
        self.h2_conn.decoder.max_header_list_size = guard.max_header_bytes
        self._requests: dict[int, object] = {}     # stream id → request, for its request id

    def _handle_event(self, event: events.Event) -> layer.CommandGenerator[None]:
        if isinstance(event, ResponseProtocolError):
            request = self._requests.pop(event.stream_id, None)
            status = event.code.http_status_code()
            stream = self.h2_conn.streams.get(event.stream_id)
            if (status is not None and stream is not None and self.is_open_for_us(event.stream_id)
                    and not stream.state_machine.headers_sent):
                rid = getattr(request, "headers", {}).get(REQUEST_ID_HEADER) or new_request_id()
                body = problem_body(problem_for_status(status), rid)
                self.h2_conn.send_headers(event.stream_id, [
                    (b":status", b"%d" % status), (b"content-type", CONTENT_TYPE.encode()),
                    (b"x-request-id", rid.encode()), (b"content-length", b"%d" % len(body))])
                self.h2_conn.send_data(event.stream_id, body, end_stream=True)
                yield commands.SendData(self.conn, self.h2_conn.data_to_send())
                return
        elif isinstance(event, ResponseEndOfMessage):
            self._requests.pop(event.stream_id, None)
        for cmd in super()._handle_event(event):
            if isinstance(cmd, ReceiveHttp):
                if isinstance(cmd.event, RequestHeaders) and len(self._requests) < 1024:
                    self._requests[cmd.event.stream_id] = cmd.event.request
                elif isinstance(cmd.event, RequestProtocolError):
                    self._requests.pop(cmd.event.stream_id, None)
            yield cmd


def _status_of(data: bytes) -> int:
    try:
        return int(data[9:12])
    except ValueError:
        return 400


class GuardedHttpStream(HttpStream):
    def __init__(self, context: Context, stream_id: int, guard: HttpGuard) -> None:
        super().__init__(context, stream_id)
        self.guard = guard

    def check_body_size(self, request: bool) -> layer.CommandGenerator[bool]:
        if request:
            # body_size_limit is the request limit (stream_large_bodies stays unset, so
            # requests are never streamed: the body is whole when the hooks see it)
            return (yield from super().check_body_size(True))
        resp = self.flow.response
        if resp is None or resp.stream:
            return False
        if self.response_body_buf:
            size: int | None = len(self.response_body_buf)
        else:
            try:
                size = expected_http_body_size(self.flow.request, resp)
            except ValueError:
                size = None
        if size is None or size <= self.guard.stream_response_above:
            return False
        resp.stream = ByteCounter()
        if self.response_body_buf:
            body = bytes(self.response_body_buf)
            self.response_body_buf.clear()
            yield from self.start_response_stream()
            yield from self.handle_event(ResponseData(self.stream_id, body))
        return False


class GuardedHttpLayer(HttpLayer):
    def __init__(self, context: Context, mode: HTTPMode, guard: HttpGuard) -> None:
        super().__init__(context, mode)
        self.guard = guard

    def _handle_event(self, event: events.Event):
        if isinstance(event, events.Start):
            alpn = self.context.client.alpn
            # HttpLayer picks its client connection with setdefault: ours wins
            if not alpn or alpn == b"http/1.1":
                self.connections.setdefault(
                    self.context.client, GuardedHttp1Server(self.context.fork(), self.guard))
            elif alpn == b"h2":
                self.connections.setdefault(
                    self.context.client, GuardedHttp2Server(self.context.fork(), self.guard))
        yield from super()._handle_event(event)

    def make_stream(self, stream_id: int) -> layer.CommandGenerator[None]:
        ctx = self.context.fork()
        self.streams[stream_id] = GuardedHttpStream(ctx, stream_id, self.guard)
        yield from self.event_to_child(self.streams[stream_id], events.Start())


class Refuse(layer.Layer):
    """Close the client connection (plaintext on a TLS-only listener, UDP/QUIC)."""

    def _handle_event(self, event: events.Event) -> layer.CommandGenerator[None]:
        if isinstance(event, events.Start):
            yield commands.CloseConnection(self.context.client)


def reverse_stack(context: Context, data_client: bytes, guard: HttpGuard) -> layer.Layer | None:
    """The layer stack below ReverseProxy for an http(s) upstream; None = need more bytes."""
    spec = context.client.proxy_mode
    if context.client.transport_protocol != "tcp":
        return Refuse(context)  # an https reverse spec also binds UDP: no HTTP/3 here
    if len(data_client) < 3:
        return None
    stack = tunnel.LayerStack()
    if getattr(spec, "scheme", "http") == "https":
        stack /= ServerTLSLayer(context)
    if starts_like_tls_record(data_client):
        stack /= ClientTLSLayer(context)
    elif guard.require_tls:
        guard.rejected("malformed")
        return Refuse(context)
    stack /= GuardedHttpLayer(context, HTTPMode.transparent, guard)
    return stack[0]
