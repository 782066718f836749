"""The HTTP/2 rapid-reset guard in node/proxy/layers.py, against a real h2 client, no sockets.

`GuardedH2Connection` is fed the bytes an `h2` client writes; `GuardedHttp2Server` runs as
mitmproxy's layer machinery would run it (its `handle_event`), so a change in mitmproxy's
Http2Server internals we rely on (the `h2_conn` it makes in `__init__`, `receive_data` on it
for every read, `handle_h2_event` per event) fails here.
"""

from __future__ import annotations

import warnings

import h2.config
import h2.connection
import h2.errors
import h2.events
import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from mitmproxy.addons.proxyserver import Proxyserver
    from mitmproxy.proxy import commands, events
    from mitmproxy.proxy.context import Context
    from mitmproxy.proxy.layers.http._base import ReceiveHttp
    from mitmproxy.proxy.layers.http._events import RequestHeaders, ResponseEndOfMessage
    from mitmproxy.proxy.layers.http._http2 import Http2Server
    from mitmproxy.proxy.layers.http._http_h2 import BufferedH2Connection
    from mitmproxy.test import taddons, tflow

    from node.proxy.layers import (
        LINGER,
        GuardedH2Connection,
        GuardedHttp2Server,
        HttpGuard,
        ResetFlood,
    )


class Client:
    """An h2 client whose bytes we hand over by hand."""

    def __init__(self) -> None:
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()

    def request(self, reset: bool = False) -> int:
        sid = self.conn.get_next_available_stream_id()
        self.conn.send_headers(sid, [(":method", "GET"), (":path", "/x"), (":scheme", "https"),
                                     (":authority", "shop.example")], end_stream=True)
        if reset:
            self.conn.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
        return sid

    def reset(self, sid: int) -> None:
        self.conn.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)

    def data(self) -> bytes:
        return self.conn.data_to_send()


def server(max_resets: int) -> GuardedH2Connection:
    s = GuardedH2Connection(Http2Server.h2_conf, max_resets)
    s.initiate_connection()
    return s


def kinds(evs: list) -> list[str]:
    return [type(e).__name__ for e in evs]


def test_streams_opened_and_reset_in_one_read_never_surface():
    s, c = server(100), Client()
    keep = c.request()
    for _ in range(5):
        c.request(reset=True)
    evs = s.receive_data(c.data())
    assert [e.stream_id for e in evs if isinstance(e, h2.events.RequestReceived)] == [keep]
    assert not any(isinstance(e, h2.events.StreamReset) for e in evs)
    assert s.resets == s.reset_debt == 5


def test_a_reset_in_a_later_read_reaches_mitmproxy_and_counts():
    s, c = server(100), Client()
    sid = c.request()
    assert "RequestReceived" in kinds(s.receive_data(c.data()))
    c.reset(sid)
    evs = s.receive_data(c.data())
    assert [e.stream_id for e in evs if isinstance(e, h2.events.StreamReset)] == [sid]
    assert s.reset_debt == 1


def test_limit_ends_the_read_with_reset_flood_naming_the_last_stream():
    s, c = server(10), Client()
    sids = [c.request(reset=True) for _ in range(50)]
    evs = s.receive_data(c.data())
    assert isinstance(evs[-1], ResetFlood)
    assert evs[-1].resets == 10 and evs[-1].last_stream_id == sids[9]
    assert not any(isinstance(e, h2.events.RequestReceived) for e in evs)


def test_parsing_stops_at_the_limit():
    s, c = server(10), Client()
    for _ in range(3000):                        # ~90 KiB of frames in one read
        c.request(reset=True)
    data = c.data()
    assert len(data) > 4 * GuardedH2Connection.CHUNK
    s.receive_data(data)
    assert s.highest_inbound_stream_id < 2 * 1000  # far from the 3,000th stream's id 5,999


@pytest.mark.parametrize("pattern,cut", [
    ("r" * 9, False),               # r: a stream reset by the client, in its own read
    ("r" * 10, True),               # the 10th reset reaches the limit
    ("rc" * 50, False),             # c: a completed response pays one reset back
    ("c" * 100 + "r" * 10, True),   # no credit banked ahead: the debt floors at zero
])
def test_completed_responses_pay_back_resets(pattern, cut):
    s, c = server(10), Client()
    evs: list = []
    for step in pattern:
        if step == "c":
            s.stream_completed()
            continue
        sid = c.request()
        evs += s.receive_data(c.data())
        c.reset(sid)
        evs += s.receive_data(c.data())
    assert any(isinstance(e, ResetFlood) for e in evs) is cut


@pytest.fixture
def layer():
    with taddons.context(Proxyserver()) as tctx:
        ctx = Context(tflow.tclient_conn(), tctx.options)
        ctx.client.alpn = b"h2"
        yield GuardedHttp2Server(ctx, HttpGuard(max_resets=10))


def run(layer: GuardedHttp2Server, event: events.Event) -> list[commands.Command]:
    return list(layer.handle_event(event))


def test_mitmproxy_internals_we_replace():
    """Http2Server still builds a BufferedH2Connection in __init__ (ours replaces it before
    anything is sent) from a class-level h2_conf."""
    assert isinstance(Http2Server.h2_conf, h2.config.H2Configuration)
    with taddons.context(Proxyserver()) as tctx:
        ctx = Context(tflow.tclient_conn(), tctx.options)
        assert type(Http2Server(ctx).h2_conn) is BufferedH2Connection


def test_layer_cuts_off_with_goaway_and_lingers(layer):
    cmds = run(layer, events.Start())
    assert isinstance(layer.h2_conn, GuardedH2Connection)
    c = Client()
    c.conn.receive_data(b"".join(x.data for x in cmds if isinstance(x, commands.SendData)))
    keep = c.request()
    for _ in range(30):
        c.request(reset=True)
    cmds = run(layer, events.DataReceived(layer.conn, c.data()))
    # the stream before the flood reached mitmproxy's HTTP layer, then it got errored
    heads = [x.event for x in cmds
             if isinstance(x, ReceiveHttp) and isinstance(x.event, RequestHeaders)]
    assert [h.stream_id for h in heads] == [keep]
    goaway = [e for x in cmds if isinstance(x, commands.SendData)
              for e in c.conn.receive_data(x.data)
              if isinstance(e, h2.events.ConnectionTerminated)]
    assert goaway[0].error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
    assert goaway[0].last_stream_id == 2 * 11 - 1    # the 10th reset stream (11th stream)
    closes = [x for x in cmds if isinstance(x, commands.CloseConnection)]
    assert len(closes) == 1 and closes[0].half_close        # FIN, still reading
    wake = next(x for x in cmds if isinstance(x, commands.RequestWakeup))
    assert wake.delay == LINGER
    # what the client still sends is dropped; the wakeup closes for good
    assert run(layer, events.DataReceived(layer.conn, b"\x00" * 100)) == []
    cmds = run(layer, events.Wakeup(wake))
    assert [type(x) for x in cmds] == [commands.CloseConnection]
    assert not getattr(cmds[0], "half_close", False)


def test_layer_counts_completed_responses(layer):
    run(layer, events.Start())
    layer.h2_conn.reset_debt = 3
    run(layer, ResponseEndOfMessage(1))
    assert layer.h2_conn.reset_debt == 2
