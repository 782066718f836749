"""`palisade control`: run the control plane until cancelled."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from typing import Any

from aiohttp import web

from node.control.api import create_app
from node.control.settings import ControlSettings
from node.control.storage import make_storage
from node.errors import PalisadeError

log = logging.getLogger("palisade.control")
SHUTDOWN_TIMEOUT = 1.0   # seconds for requests in flight at SIGTERM (the stop stays under 2 s)


def apply_reload(app: web.Application, old: ControlSettings, new: ControlSettings,
                 engine: Any = None) -> None:
    """Swap a reloaded configuration into the running control plane: configured tokens (the
    console sessions of a token that left end now), retention, `min_requests`, the console's
    profiles view. The listen address and the storage need a restart: said, not applied."""
    from node.control.api import OPTIONS
    from node.control.routing import AUTH, SESSION_AUTH

    gone = app[AUTH].replace_configured(new.token_triples())
    opts = app[OPTIONS]
    opts.retention, opts.min_requests = new.retention, new.min_requests
    ended = 0
    try:
        from node.console.app import CONSOLE
        from node.console.data import profile_views
    except ImportError:
        pass
    else:
        if CONSOLE in app:
            if gone:
                ended = app[SESSION_AUTH].end_for(gone)
            if engine is not None:
                app[CONSOLE].profiles = profile_views(engine)
                app[CONSOLE].warmup_requests = int(engine.warmup_requests)
    for what, a, b in (("listen address", (old.listen_host, old.listen_port),
                        (new.listen_host, new.listen_port)),
                       ("storage", old.storage, new.storage)):
        if a != b:
            log.warning("control: the %s changed in the file; it takes effect on restart", what)
    log.info("control: configuration reloaded (%d configured tokens%s)", len(new.tokens),
             f"; {ended} console sessions of removed tokens ended" if ended else "")


async def run_control(settings: ControlSettings, *,
                      ready: asyncio.Event | Callable[[str], Any] | None = None,
                      engine: Any = None,
                      reload: Callable[[], tuple[ControlSettings, Any]] | None = None) -> None:
    """Open storage (migrating it), serve the API on settings.listen_host:port and the web
    console under /console/, run retention every settings.retention_interval, until the
    task is cancelled.

    ready: an asyncio.Event set once listening, or a callable given the base URL (useful with
    port 0, which binds a free port). engine: the nodes' EngineConfig, when known, for the
    console's read-only profiles view. reload: called on SIGHUP for the new (settings,
    engine); a reload that raises PalisadeError keeps the running configuration."""
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
    # On shutdown long polls answer at once (ListWatch.close); other requests in flight get
    # SHUTDOWN_TIMEOUT to finish (a cut push is re-sent from the node's spool).
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
    await runner.setup()
    hup = False
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
        current = settings

        def on_hup() -> None:
            nonlocal current
            try:
                new, new_engine = reload()  # type: ignore[misc]
            except PalisadeError as e:
                log.error("control: reload failed, keeping the running configuration: %s", e)
                return
            apply_reload(app, current, new, new_engine)
            current = new

        if reload is not None:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, on_hup)
                hup = True
        if isinstance(ready, asyncio.Event):
            ready.set()
        elif ready is not None:
            ready(url)
        await asyncio.Event().wait()  # until cancelled
    finally:
        if hup:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        with contextlib.suppress(Exception):
            await runner.cleanup()  # also closes storage (the app owns it)
