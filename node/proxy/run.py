"""Run the node: lean mitmproxy master + IP lists + engine + admin listener, on one loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sqlite3
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector

from node.capture import load_hash_key
from node.config.model import EngineConfig
from node.errors import PalisadeError
from node.iplists import IPLists, IPListStore, db_path
from node.metrics import NodeMetrics
from node.proxy.admin import create_admin_app
from node.proxy.context import NodeContext
from node.proxy.gcpolicy import GenerationalFreeze
from node.proxy.layers import HttpGuard
from node.proxy.recorder import RecordWriter
from node.proxy.settings import NodeSettings

logger = logging.getLogger(__name__)
BASELINES = "baselines.npz"
CLOSE_TIMEOUT = 1.0   # seconds the open client connections get to close at stop


class _Errors(logging.Handler):
    """Collects mitmproxy's error log lines while the listeners come up."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def make_engine(engine_config: EngineConfig, state_dir: str):
    """The detection engine, with learned baselines from the last run if there are any."""
    from node.engine import Baselines, Engine

    path = os.path.join(state_dir, BASELINES)
    baselines = None
    if os.path.exists(path):
        try:
            baselines = Baselines.load(path, engine_config.limits.templates)
        except (OSError, ValueError, KeyError) as e:
            logger.warning("ignoring unreadable baselines %s: %s", path, e)
    from node.goodbots import GoodBotVerifier, SystemResolver, resolver_from_env

    # Good-bot claims are checked by forward-confirmed reverse DNS in a small thread pool
    # (never on the event loop); PALISADE_DNS=off leaves only the published ranges.
    resolver = resolver_from_env() if os.environ.get("PALISADE_DNS") else SystemResolver()
    return Engine(engine_config, baselines=baselines, verifier=GoodBotVerifier(resolver))


class RunningNode:
    """A started node. `proxy_addrs` / `admin_addr` are the bound addresses (port 0 works).
    `gc`: the process's garbage-collection policy, for a process that is the node (the
    CLI); embedded (tests) the interpreter's own policy stays."""

    def __init__(self, settings: NodeSettings, engine_config: EngineConfig, *,
                 registry: CollectorRegistry | None = None, engine=None,
                 with_engine: bool = True, gc: GenerationalFreeze | None = None) -> None:
        self.settings = settings
        self.gc = gc
        self._gc_task: asyncio.Task | None = None
        if registry is None:
            registry = CollectorRegistry()
            for c in (ProcessCollector, PlatformCollector, GCCollector):
                c(registry=registry)
        self.registry = registry
        try:
            os.makedirs(settings.state_dir, mode=0o700, exist_ok=True)
            self.store = IPListStore(db_path(settings.state_dir))
            hash_key = load_hash_key(settings.state_dir)
        except (OSError, sqlite3.Error) as e:
            raise PalisadeError(f"state directory {settings.state_dir}: "
                                f"{getattr(e, 'strerror', None) or e}") from None
        if engine is None and with_engine:
            engine = make_engine(engine_config, settings.state_dir)
        names = _engine_label_sets(engine_config)
        self.metrics = NodeMetrics(registry, **names)
        recorder = None
        if settings.record_file:
            path = settings.record_file
            recorder = RecordWriter(path if os.path.isabs(path)
                                    else os.path.join(settings.state_dir, path))
        self.node = NodeContext(settings, engine_config,
                                IPLists(self.store, session_cap=settings.max_denied_sessions),
                                self.metrics, engine=engine, recorder=recorder,
                                hash_key=hash_key)
        self.guard = HttpGuard(max_header_bytes=settings.max_header_bytes,
                               header_timeout=settings.header_timeout,
                               stream_response_above=settings.stream_response_above,
                               require_tls=bool(settings.tls_cert),
                               max_resets=settings.http2_max_resets,
                               on_reject=self._rejected)
        self.sync = None
        if settings.control_url:
            from node.proxy.sync import NodeSync

            self.sync = NodeSync(self.node, settings, registry=registry)
        self.master = None
        self._run: asyncio.Task | None = None
        self._admin: web.AppRunner | None = None
        self.proxy_addrs: list[tuple] = []
        self.admin_addr: tuple | None = None

    def _rejected(self, kind: str) -> None:
        self.metrics.block(kind, "none")
        self.metrics.request("rejected")

    async def start(self) -> None:
        from node.proxy.master import NodeMaster

        s = self.settings
        self.master = m = NodeMaster(s, self.node, self.guard,
                                     baselines_path=os.path.join(s.state_dir, BASELINES))
        errors = _Errors()
        logging.getLogger("mitmproxy").addHandler(errors)
        try:
            ok = await m.addons.get("proxyserver").setup_servers()
        finally:
            logging.getLogger("mitmproxy").removeHandler(errors)
        if not ok:
            await self._close()
            why = "; ".join(errors.messages) or "unknown error"
            raise PalisadeError(f"cannot listen on {s.listen_host}:{s.listen_port}: {why}")
        self.proxy_addrs = m.addons.get("proxyserver").listen_addrs()
        if self.sync is not None:
            try:
                await self.sync.start(self.proxy_addrs[0][1])
            except OSError as e:
                await self._close()
                raise PalisadeError(f"cannot open the sync spool in {s.state_dir}: "
                                    f"{e.strerror or e}") from None
        if s.admin_host is not None:
            self._admin = web.AppRunner(create_admin_app(self.node, self.registry),
                                        access_log=None, handle_signals=False)
            await self._admin.setup()
            site = web.TCPSite(self._admin, s.admin_host, s.admin_port)
            try:
                await site.start()
            except OSError as e:
                await self._close()
                raise PalisadeError(f"cannot listen on {s.admin_host}:{s.admin_port} "
                                    f"(admin): {e.strerror or e}") from None
            self.admin_addr = site._server.sockets[0].getsockname()  # type: ignore[union-attr]
        self._run = asyncio.get_running_loop().create_task(m.run(), name="mitmproxy master")
        while not self.node.ready and not self._run.done():
            await asyncio.sleep(0.005)   # running() hooks fire right after run() starts
        if self._run.done():
            self._run.result()
        if self.gc is not None:
            self.gc.start()
            self._gc_task = asyncio.get_running_loop().create_task(self._gc_loop(), name="gc")
        logger.info("node listening on %s, upstream %s", self.proxy_addrs, s.upstream)

    async def _gc_loop(self) -> None:
        assert self.gc is not None
        while True:
            await asyncio.sleep(1.0)
            try:
                self.gc.tick()
            except Exception:
                logger.exception("gc policy failed; back to the interpreter's own")
                self.gc.stop()
                return

    async def wait(self) -> None:
        assert self._run is not None
        await asyncio.shield(self._run)

    async def stop(self) -> None:
        """Stop listening, finish the master (done() hooks), release files."""
        if self._gc_task is not None:
            self._gc_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._gc_task
            self._gc_task = None
        if self.master is not None:
            ps = self.master.addons.get("proxyserver")
            with contextlib.suppress(Exception):
                await ps.servers.update([])   # close the listeners first
            await _close_client_connections(ps)
            self.master.shutdown()
        if self._run is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._run
            self._run = None
        await self._close()
        if self.gc is not None:
            self.gc.stop()

    async def _close(self) -> None:
        if self.sync is not None:
            await self.sync.stop()   # after the master: the last records are queued
        if self._admin is not None:
            await self._admin.cleanup()
            self._admin = None
        if self.node.recorder is not None:
            self.node.recorder.close()
        self.store.close()
        verifier = getattr(self.node.engine, "verifier", None) if self.node else None
        if verifier is not None:
            verifier.close()

    def reload(self, settings: NodeSettings, engine_config: EngineConfig) -> None:
        changed = [k for k in ("listen_host", "listen_port", "upstream", "admin_host",
                               "admin_port", "tls_cert", "tls_key", "state_dir", "control_url",
                               "control_token", "node_name", "push_records", "log_format",
                               "http2_max_resets")
                   if getattr(settings, k) != getattr(self.settings, k)]
        if changed:
            logger.warning("reload: %s change only on restart", ", ".join(changed))
        self.node.reconfigure(settings, engine_config)
        logger.info("configuration reloaded")


async def _close_client_connections(ps) -> None:
    """End the open client connections (idle keep-alive ones included) while the master
    still runs their disconnect hooks. Left to the event loop's final cancellation, each one
    logged an ERROR traceback (asyncio's StreamReaderProtocol callback reading a cancelled
    task) and left its transport unclosed."""
    for handler in list(ps.connections.values()):
        io = handler.transports.get(handler.client)
        if io is not None and io.handler is not None:
            io.handler.cancel("node stopping")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CLOSE_TIMEOUT
    while ps.connections and loop.time() < deadline:
        await asyncio.sleep(0.01)


def _engine_label_sets(cfg: EngineConfig) -> dict:
    from node.config.model import BOT_TYPES

    try:
        from node.detectors import DETECTORS
        detectors = [d.name for d in DETECTORS]
    except ImportError:
        detectors = []
    return {"bot_types": BOT_TYPES, "profiles": [p.name for p in cfg.profiles],
            "detectors": detectors}


async def run_node(settings: NodeSettings, engine_config: EngineConfig, *,
                   registry: CollectorRegistry | None = None,
                   ready: asyncio.Event | None = None,
                   reload: Callable[[], tuple[NodeSettings, EngineConfig]] | None = None,
                   gc: GenerationalFreeze | None = None) -> None:
    """Run until cancelled or SIGTERM / SIGINT; SIGHUP calls `reload()` (when given) and
    swaps the configuration in without dropping connections or state. A reload that
    raises keeps the running configuration and logs why. `ready` is set once listening."""
    node = RunningNode(settings, engine_config, registry=registry, gc=gc)
    await node.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    installed: list[int] = []

    def on_hup() -> None:
        try:
            s, e = reload()  # type: ignore[misc]
        except PalisadeError as err:
            logger.error("reload failed, keeping the running configuration: %s", err)
            return
        node.reload(s, e)

    handlers = {signal.SIGTERM: stop.set, signal.SIGINT: stop.set}
    if reload is not None:
        handlers[signal.SIGHUP] = on_hup
    for sig, fn in handlers.items():
        try:
            loop.add_signal_handler(sig, fn)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread / not supported: the caller handles signals
    if ready is not None:
        ready.set()
    waiter = loop.create_task(stop.wait())
    runner = loop.create_task(node.wait())
    try:
        await asyncio.wait({waiter, runner}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        waiter.cancel()
        runner.cancel()
        await node.stop()
        logger.info("node stopped")


def serve(settings: NodeSettings, engine_config: EngineConfig, *,
          reload: Callable[[], tuple[NodeSettings, EngineConfig]] | None = None) -> int:
    """Blocking entry for the CLI: run_node on uvloop. Returns an exit code."""
    try:
        import uvloop
        factory = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(run_node(settings, engine_config, reload=reload, gc=GenerationalFreeze()))
    return 0
