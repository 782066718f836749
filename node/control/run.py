"""`palisade control`: run the control plane until cancelled."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from node.control.api import create_app
from node.control.settings import ControlSettings
from node.control.storage import make_storage
from node.errors import PalisadeError

log = logging.getLogger("palisade.control")


async def run_control(settings: ControlSettings, *,
                      ready: asyncio.Event | Callable[[str], Any] | None = None,
                      engine: Any = None) -> None:
    """Open storage (migrating it), serve the API on settings.listen_host:port and the web
    console under /console/, run retention every settings.retention_interval, until the
    task is cancelled.

    ready: an asyncio.Event set once listening, or a callable given the base URL (useful with
    port 0, which binds a free port). engine: the nodes' EngineConfig, when known, for the
    console's read-only profiles view."""
    try:
        storage = make_storage(settings.storage)
    except ValueError as e:
        raise PalisadeError(f"control storage: {e}") from None
    try:
        await storage.open()
    except (OSError, RuntimeError) as e:
        raise PalisadeError(f"control storage {storage.url_scheme}: cannot open: {e}") from None
    app = create_app(storage, tokens=settings.token_triples(), retention=settings.retention,
                     retention_interval=settings.retention_interval,
                     min_requests=settings.min_requests, close_storage=True)
    try:
        from node.console import setup_console
    except ImportError as e:   # the API runs without the console's templates or jinja2
        log.warning("control: web console unavailable: %s", e)
    else:
        setup_console(app, engine=engine)
    if not settings.tokens:
        log.warning("control: no tokens configured; only tokens created in storage will work")
    # Long polls in flight get 5 s to finish on shutdown; nodes simply poll again.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=5)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.listen_host, settings.listen_port)
        try:
            await site.start()
        except OSError as e:
            raise PalisadeError(f"control: cannot listen on {settings.listen_host}:"
                                f"{settings.listen_port}: {e.strerror or e}") from None
        host, port = runner.addresses[0][:2]
        url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
        log.info("control plane listening on %s (storage %s)", url, storage.url_scheme)
        if isinstance(ready, asyncio.Event):
            ready.set()
        elif ready is not None:
            ready(url)
        await asyncio.Event().wait()  # until cancelled
    finally:
        with contextlib.suppress(Exception):
            await runner.cleanup()  # also closes storage (the app owns it)
