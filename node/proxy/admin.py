"""The admin listener (default 127.0.0.1:9090): /metrics, /healthz, /readyz."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from node.proxy.context import NodeContext

NODE = web.AppKey("node", NodeContext)
REGISTRY = web.AppKey("registry", CollectorRegistry)
routes = web.RouteTableDef()


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """Alive: the event loop answers."""
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """Ready: the proxy listens and the lists are loaded."""
    if request.app[NODE].ready:
        return web.json_response({"status": "ready"})
    return web.json_response({"status": "starting"}, status=503)


def create_admin_app(node: NodeContext, registry: CollectorRegistry) -> web.Application:
    app = web.Application()
    app[NODE] = node
    app[REGISTRY] = registry
    app.add_routes(routes)
    return app
