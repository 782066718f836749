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
  bounded) through a byte counter so the request record still knows their size;
- HTTP/2 rapid reset (CVE-2023-44487): mitmproxy turns every stream a client opens into a
  flow, hooks and an upstream request, even when the client resets it in the same breath,
  and never limits resets. A stream opened and reset within one read is dropped before
  mitmproxy sees it, and a connection whose resets outrun its completed responses by
  `max_resets` gets GOAWAY(ENHANCE_YOUR_CALM) and is closed (`GuardedH2Connection`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

import h2.config
import h2.errors
import h2.events
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
from mitmproxy.proxy.layers.http._http_h2 import BufferedH2Connection
from mitmproxy.utils import human

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
LINGER = 1.0   # seconds an HTTP/2 connection cut off for resets is read (and dropped) before close


@dataclass(frozen=True, slots=True)
class HttpGuard:
    max_header_bytes: int = 32 * 1024
    header_timeout: float = 10.0
    stream_response_above: int = 1024 * 1024
    require_tls: bool = False
    max_resets: int = 1000      # HTTP/2 client resets a connection may owe (0: no limit)
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


class ResetFlood(h2.events.Event):
    """Not an h2 event: `GuardedH2Connection` ends a read's events with it when the client's
    resets reached the limit; the events after that point are dropped."""

    def __init__(self, resets: int, last_stream_id: int) -> None:
        self.resets = resets
        self.last_stream_id = last_stream_id   # the last stream processed, for the GOAWAY


class GuardedH2Connection(BufferedH2Connection):
    """mitmproxy's h2 connection, with the client's stream resets accounted for.

    What production servers did about rapid reset: nginx caps new streams per read and
    requests per connection, Envoy closes a connection when "premature" resets pass half of
    its streams, Tomcat and h2o keep a budget that resets spend and completed requests earn
    back, HAProxy counts "glitches" per connection. Here: `reset_debt` grows by one per
    RST_STREAM from the client and shrinks by one per response completed (never below
    zero, so a long honest connection banks no credit); when it reaches `max_resets`,
    `ResetFlood` is the last event of the read and the layer sends GOAWAY. A browser that
    cancels a few requests owes a handful; an attacker owes one per stream.

    Streams opened and reset within the same read are removed from the events: mitmproxy
    never sees them (no flow, no hook task, no upstream request). Their flow-control credit
    is given back here, as mitmproxy would for data it consumed. A read (up to 64 KiB, some
    2,000 attack streams) is parsed `CHUNK` bytes at a time, and parsing stops once the
    limit is reached: what follows would be thrown away, and parsing it in pure Python
    holds up every other connection of the node.
    """

    CHUNK = 8 * 1024

    def __init__(self, config: h2.config.H2Configuration, max_resets: int) -> None:
        super().__init__(config)
        self.max_resets = max_resets
        self.reset_debt = 0
        self.resets = 0          # client resets on this connection, for the log line

    def receive_data(self, data: bytes) -> list[h2.events.Event]:
        events: list[h2.events.Event] = []
        pending = 0                                  # client resets parsed in this read
        for i in range(0, len(data), self.CHUNK):
            more = super().receive_data(data[i:i + self.CHUNK])
            events += more
            pending += sum(1 for e in more if type(e) is h2.events.StreamReset and e.remote_reset)
            if self.max_resets and self.reset_debt + pending >= self.max_resets:
                break
        return self._account(events) if pending else events

    def _account(self, events: list[h2.events.Event]) -> list[h2.events.Event]:
        resets = {e.stream_id for e in events
                  if type(e) is h2.events.StreamReset and e.remote_reset}
        drop = resets & {e.stream_id for e in events
                         if type(e) is h2.events.RequestReceived}
        out: list[h2.events.Event] = []
        for e in events:
            sid = getattr(e, "stream_id", None)
            if type(e) is h2.events.StreamReset and e.remote_reset:
                self.resets += 1
                self.reset_debt += 1
                if self.max_resets and self.reset_debt >= self.max_resets:
                    out.append(ResetFlood(self.resets, sid))
                    return out
                if sid in drop:
                    continue
            elif sid in drop:
                if type(e) is h2.events.DataReceived:
                    self.acknowledge_received_data(e.flow_controlled_length, sid)
                continue
            out.append(e)
        return out

    def stream_completed(self) -> None:
        if self.reset_debt:
            self.reset_debt -= 1


class GuardedHttp2Server(Http2Server):
    """HTTP/2: the same head limit (as SETTINGS_MAX_HEADER_LIST_SIZE, enforced by the HPACK
    decoder, whose own default is 64 KiB), problem+json for mitmproxy's own errors, and the
    rapid-reset guard (`GuardedH2Connection`)."""

    h2_conn: GuardedH2Connection

    def __init__(self, context: Context, guard: HttpGuard) -> None:
        super().__init__(context)
        self.guard = guard
        # replaces the BufferedH2Connection mitmproxy just made (nothing was sent on it yet)
        self.h2_conn = GuardedH2Connection(self.h2_conf, guard.max_resets)
        self.h2_conn.local_settings.max_header_list_size = guard.max_header_bytes
        self.h2_conn.local_settings.acknowledge()   # sent with the initial SETTINGS frame
        self.h2_conn.decoder.max_header_list_size = guard.max_header_bytes
        self._requests: dict[int, object] = {}     # stream id → request, for its request id
        self._linger: commands.RequestWakeup | None = None

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
                self.h2_conn.stream_completed()
                yield commands.SendData(self.conn, self.h2_conn.data_to_send())
                return
        elif isinstance(event, ResponseEndOfMessage):
            self._requests.pop(event.stream_id, None)
            self.h2_conn.stream_completed()
        for cmd in super()._handle_event(event):
            if isinstance(cmd, ReceiveHttp):
                if isinstance(cmd.event, RequestHeaders) and len(self._requests) < 1024:
                    self._requests[cmd.event.stream_id] = cmd.event.request
                elif isinstance(cmd.event, RequestProtocolError):
                    self._requests.pop(cmd.event.stream_id, None)
            yield cmd

    def handle_h2_event(self, event: h2.events.Event) -> layer.CommandGenerator[bool]:
        if isinstance(event, ResetFlood):
            yield from self._cut_off(event)
            return True
        return (yield from super().handle_h2_event(event))

    def _cut_off(self, event: ResetFlood) -> layer.CommandGenerator[None]:
        """mitmproxy's protocol_error() + close_connection(), except that the GOAWAY names
        the last stream processed (those parsed after it were dropped unseen) and the close
        lingers: closing a socket with unread data in it makes the kernel send RST, and a
        client that receives RST before reading the GOAWAY loses it."""
        self.guard.rejected("h2_rapid_reset")
        msg = f"HTTP/2 rapid reset: {event.resets} streams reset by the client"
        yield commands.Log(f"{human.format_address(self.conn.peername)}: {msg}")
        self.h2_conn.close_connection(h2.errors.ErrorCodes.ENHANCE_YOUR_CALM, msg.encode(),
                                      last_stream_id=event.last_stream_id)
        yield commands.SendData(self.conn, self.h2_conn.data_to_send())
        yield commands.CloseTcpConnection(self.conn, half_close=True)
        for stream_id in self.streams:
            yield ReceiveHttp(self.ReceiveProtocolError(stream_id, msg,
                                                        self.ReceiveProtocolError.code))
        self.streams.clear()
        self._linger = commands.RequestWakeup(LINGER)
        yield self._linger
        self._handle_event = self._lingering  # type: ignore[method-assign]

    def _lingering(self, event: events.Event) -> layer.CommandGenerator[None]:
        """After the GOAWAY: what the client still sends is read and dropped until it closes
        or LINGER seconds have passed (nginx's lingering close)."""
        if isinstance(event, events.ConnectionClosed) or (
                isinstance(event, events.Wakeup) and event.command is self._linger):
            yield commands.CloseConnection(self.conn)
            self._handle_event = self.done  # type: ignore[method-assign]


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
