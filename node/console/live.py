"""A control plane with the console and demo data, on loopback, in a background thread.

For browser tests and screenshots (sync Playwright must not share a thread with a running
event loop, so the server gets its own):

    with LiveConsole(tmp_path) as live:
        live.url            # http://127.0.0.1:PORT
        live.call(live.storage.list_nodes())   # run a coroutine on the server's loop
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from node.config.compile import default_config
from node.console.app import setup_console
from node.console.demo_data import demo_items, history_items, push_http
from node.control.api import create_app
from node.control.storage import Storage, open_storage
from node.control.storage.base import Retention

OPERATOR_TOKEN = "console-operator-token-0123456789"
VIEWER_TOKEN = "console-viewer-token-0123456789"
NODE_TOKEN = "console-node-token-0123456789"
TOKENS = [(OPERATOR_TOKEN, "alice", "operator"), (VIEWER_TOKEN, "victor", "viewer"),
          (NODE_TOKEN, "node-1", "node")]


class LiveConsole:
    def __init__(self, state_dir: str | Path, *, scale: float = 0.2, seed: int = 7,
                 hostile: bool = True, history: bool = True, storage_url: str | None = None,
                 min_requests: int = 1000) -> None:
        self.state_dir = Path(state_dir)
        self.scale, self.seed, self.hostile, self.history = scale, seed, hostile, history
        self.storage_url = storage_url or f"sqlite:///{self.state_dir / 'control.db'}"
        self.min_requests = min_requests
        self.url = ""
        self.now = 0.0
        self.items: list[dict[str, Any]] = []
        self.storage: Storage | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._ready: Future[str] = Future()

    # -- lifecycle ----------------------------------------------------------------------------
    def __enter__(self) -> LiveConsole:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 180.0) -> str:
        self._thread = threading.Thread(target=self._main, name="live-console", daemon=True)
        self._thread.start()
        self.url = self._ready.result(timeout)
        return self.url

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(30)

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 30.0) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as e:  # report a failed start to the waiting test
            if not self._ready.done():
                self._ready.set_exception(e)
            raise

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        storage = self.storage = await open_storage(self.storage_url)
        config = default_config()
        app = create_app(storage, tokens=TOKENS, min_requests=self.min_requests,
                         close_storage=True)
        setup_console(app, engine=config.engine)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            url = f"http://{host}:{port}"
            await self._fill(url, storage, config)
            self._ready.set_result(url)
            await self._stop.wait()
        finally:
            await runner.cleanup()

    async def _fill(self, url: str, storage: Storage, config: Any) -> None:
        self.now = time.time()
        items = await asyncio.to_thread(
            demo_items, end=self.now - 60, scale=self.scale, seed=self.seed,
            config=config.engine, hostile=self.hostile)
        if self.history:
            items = history_items(items, end=self.now) + items
        self.items = items
        async with aiohttp.ClientSession() as http:
            await push_http(http, url, NODE_TOKEN, items)
        # Retention as the control plane runs it: details older than 31 days are dropped.
        await storage.apply_retention(self.now, Retention())
        # node-1 has pulled every IP-list change; node-2 stopped reporting ten minutes ago.
        version = await storage.list_version()
        await storage.touch_node("node-1", time.time(), list_version=version, spooled=0,
                                 dropped=0)
        await storage.touch_node("node-2", self.now - 600, version="0.1.0", addr="127.0.0.2",
                                 last_push=self.now - 600, lag_seconds=2.5,
                                 list_version=max(0, version - 40), spooled=1200, dropped=0)
