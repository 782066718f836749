"""next_layer: the reverse-proxy stack with our guarded HTTP layer (node/proxy/layers.py)."""

from __future__ import annotations

from mitmproxy import connection, ctx
from mitmproxy.proxy import layer
from mitmproxy.proxy.layers import modes

from node.proxy.layers import HttpGuard, Refuse, reverse_stack


class NextLayer:
    # stands in for mitmproxy's NextLayer addon (proxyserver looks it up by this name):
    # the node only runs reverse mode, whose stack we build ourselves
    name = "nextlayer"

    def __init__(self, guard: HttpGuard) -> None:
        self.guard = guard

    def next_layer(self, nextlayer: layer.NextLayer) -> None:
        if nextlayer.layer:
            return
        ctx = nextlayer.context
        if len(ctx.layers) == 1 and isinstance(ctx.layers[0], modes.ReverseProxy):
            nextlayer.layer = reverse_stack(ctx, nextlayer.data_client(), self.guard)
        else:
            nextlayer.layer = Refuse(ctx)


class CloseLeftovers:
    """Close a client socket mitmproxy forgot (mitmproxy 12.2 bug).

    When a hook task closes the client connection (e.g. 413 after the error hook) while the
    connection handler waits for the event lock, the handler's CancelledError escapes
    `server_event` inside `handle_connection`, skipping `writer.close()`: the socket stays
    open (an fd leak a client can trigger at will). At disconnect we close what is left.
    """

    def client_disconnected(self, client: connection.Client) -> None:
        ps = ctx.master.addons.get("proxyserver")
        handler = ps.connections.get(client.id) if ps else None
        io = handler.transports.get(client) if handler else None
        if io is not None and io.writer is not None and not io.writer.is_closing():
            io.writer.close()
