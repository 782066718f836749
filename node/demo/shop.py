"""The demo shop API: a small in-memory store that `palisade demo` puts behind the node.

A thin aiohttp adapter over `node.sim.shopmodel.ShopState`, the same logic the simulator uses
offline, so simulated records and the real shop answer alike. Deterministic for a seed.
"""

from __future__ import annotations

import asyncio
import logging
import random

from aiohttp import web
from aiohttp.typedefs import Handler

from node.sim.shopmodel import SID_COOKIE, UPLOAD_CAP, ShopState, error_body

log = logging.getLogger(__name__)

SHOP = web.AppKey("shop", ShopState)
WORK_SCALE = web.AppKey("work_scale", float)
# An upload over the cap is read up to this much more before we give up on the connection:
# answering 413 without draining would make most clients fail on a broken pipe instead.
_DRAIN_LIMIT = 4 * UPLOAD_CAP


async def _drain(request: web.Request) -> int:
    n = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        n += len(chunk)
        if n > _DRAIN_LIMIT:
            break
    return n


async def _dispatch(request: web.Request) -> web.StreamResponse:
    shop = request.app[SHOP]
    url = request.rel_url
    path, query = url.raw_path, url.raw_query_string
    body_len = None
    if request.method == "POST" and path == "/api/upload":
        body, body_len = b"", await _drain(request)  # counted, not kept
    else:
        body = await request.read()
    r = shop.handle(request.method, path, query, body, request.cookies.get(SID_COOKIE),
                    request.headers.get("Content-Type"), body_len)
    if r.work_ms and request.app[WORK_SCALE] > 0:
        await asyncio.sleep(r.work_ms / 1000 * request.app[WORK_SCALE])  # export, hashing
    charset = "utf-8" if r.content_type.startswith("text/") else None
    resp = web.Response(status=r.status, body=r.body, content_type=r.content_type,
                        charset=charset)
    if r.set_sid is not None:
        resp.set_cookie(SID_COOKIE, r.set_sid, path="/", httponly=True, samesite="Lax")
    return resp


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error is a small JSON body, never aiohttp's HTML/text pages."""
    try:
        return await handler(request)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        return web.Response(status=e.status, body=error_body(e.status),
                            content_type="application/json")
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        log.exception("shop: unhandled error on %s %s", request.method, request.path)
        return web.Response(status=500, body=error_body(500), content_type="application/json")


def create_app(seed: int = 0, *, work_scale: float = 1.0) -> web.Application:
    """The shop app. `seed` drives the session tokens; the catalog is fixed. Slow endpoints
    (export ~100-300 ms, login 25 ms) sleep their server time times `work_scale`."""
    rng = random.Random(seed)
    app = web.Application(middlewares=[_json_errors], client_max_size=UPLOAD_CAP)
    app[SHOP] = ShopState(lambda: f"{rng.getrandbits(128):032x}")
    app[WORK_SCALE] = work_scale
    # One route: ShopState routes, answers 404/405 itself, and so does the offline model.
    app.router.add_route("*", "/{tail:.*}", _dispatch)
    return app


async def start_shop(host: str = "127.0.0.1", port: int = 0, seed: int = 0,
                     work_scale: float = 1.0) -> web.AppRunner:
    """Serve the shop on host:port (0 picks a free port: read it from `runner.addresses`).
    The caller owns the runner and ends it with `await runner.cleanup()`."""
    runner = web.AppRunner(create_app(seed, work_scale=work_scale), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner
