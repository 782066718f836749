"""A lean embedded mitmproxy master: only what reverse proxying needs, plus our addons.

mitmdump's DumpMaster loads ~35 addons (default_addons + dumper, keepserving, readfile,
errorcheck), and every hook walks all of them. A reverse-proxy node needs: core (option
checks), proxyserver (listeners, body/timeout options), tlsconfig (TLS to clients and to an
https upstream) and a next_layer decision — ours, which builds the guarded reverse stack.
Not loaded: block (so `block_global` does not exist and nothing is blocked for being
global), keepserving/readfile (no replay), errorcheck (startup errors are raised by
`run_node` as one line instead of `sys.exit`), termlog (logging is the caller's).
Hooks go through `node.proxy.dispatch.HookDispatch`: only the addons that define a hook are
called for it.
"""

from __future__ import annotations

import os

from mitmproxy import master, options
from mitmproxy.addons import core, proxyserver, tlsconfig

from addons import default_addons
from node.proxy import dispatch
from node.proxy.context import NodeContext
from node.proxy.layers import HttpGuard
from node.proxy.settings import NodeSettings


class NodeMaster(master.Master):
    def __init__(self, settings: NodeSettings, node: NodeContext, guard: HttpGuard, *,
                 baselines_path: str | None = None) -> None:
        super().__init__(options.Options(), with_termlog=False)
        dispatch.install(self)
        self.addons.add(core.Core(), proxyserver.Proxyserver(), tlsconfig.TlsConfig())
        self.addons.add(*default_addons(node, guard, baselines_path=baselines_path))
        self.options.update(**mitmproxy_options(settings))


def mitmproxy_options(settings: NodeSettings) -> dict:
    """Every option we rely on, set on purpose (defaults are for an interactive proxy)."""
    opts = dict(
        mode=[settings.mode],
        confdir=settings.confdir,            # mitmproxy writes its CA here even in reverse mode
        connection_strategy="lazy",          # no upstream connection before a request is allowed
        body_size_limit=str(settings.max_request_body),  # requests (responses stream, layers.py)
        stream_large_bodies=None,            # requests are never streamed: hooks see whole bodies
        keep_host_header=True,               # records need the client's Host; client_ip rewrites
        validate_inbound_headers=True,       # CL/TE smuggling checks
        tcp_timeout=max(1, int(settings.idle_timeout)),
        http2=settings.http2,
        http3=False,                         # no QUIC listener behind an https upstream
        websocket=True,                      # websockets pass through after the upgrade
        rawtcp=False,
        upstream_cert=False,                 # nothing to mimic: we serve our own certificate
        ssl_insecure=settings.upstream_ssl_insecure,
        server=True,
    )
    if settings.tls_cert:
        opts["certs"] = [f"*={tls_pem(settings)}"]
    return opts


def tls_pem(settings: NodeSettings) -> str:
    """mitmproxy wants certificate chain and key in one PEM: join them in the state dir."""
    assert settings.tls_cert
    if not settings.tls_key or settings.tls_key == settings.tls_cert:
        return settings.tls_cert
    os.makedirs(settings.confdir, mode=0o700, exist_ok=True)
    path = os.path.join(settings.confdir, "palisade-tls.pem")
    with open(settings.tls_cert, "rb") as c, open(settings.tls_key, "rb") as k:
        data = c.read().rstrip(b"\n") + b"\n" + k.read()
    fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(path + ".tmp", path)
    return path
