"""`palisade control [-c CONFIG]`: run the control plane until SIGTERM / SIGINT (SIGHUP
re-reads CONFIG: tokens, retention, the profiles view), and
`palisade control create-token NAME --role viewer|operator|node`: make an API token.

Without a configuration (or without a `control:` section) the control plane listens on
127.0.0.1:8790 and keeps SQLite in ./state (or the file's top-level `state_dir`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import signal
import sys
from typing import Any

from node.control.settings import ControlSettings
from node.control.storage.base import ROLES
from node.errors import PalisadeError
from node.eventlog import configure_logging

_DEFAULT_STATE_DIR = ControlSettings().state_dir


def control_settings(config_path: str | None) -> ControlSettings:
    """The `control:` section of the file (or defaults), with the top-level `state_dir`
    when the section names none."""
    return _load(config_path)[0]


def _load(config_path: str | None) -> tuple[ControlSettings, Any]:
    """(control settings, the file's EngineConfig for the console's profiles view)."""
    if not config_path:
        return ControlSettings(), None
    import node.engine  # noqa: F401  (first: config → detectors → engine is an import cycle)
    from node.config import load_config

    cfg = load_config(config_path)
    s = cfg.control if isinstance(cfg.control, ControlSettings) else ControlSettings()
    if cfg.state_dir and s.state_dir == _DEFAULT_STATE_DIR:
        s = dataclasses.replace(s, state_dir=cfg.state_dir)
    return s, cfg.engine


def main(args: argparse.Namespace) -> int:
    if getattr(args, "control_cmd", None) == "create-token":
        return control_token_command(args)
    path = getattr(args, "config", None)
    settings, engine = _load(path)
    configure_logging(settings.log_format)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    return _run(_serve(settings, engine, reload=(lambda: _load(path)) if path else None))


def _run(coro: Any) -> int:
    try:
        import uvloop
        factory = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)


async def _serve(settings: ControlSettings, engine: Any = None, reload: Any = None) -> int:
    from node.control.run import run_control

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    installed = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)

    def ready(url: str) -> None:
        print(f"palisade control: listening on {url} (API {url}/api/v1, console "
              f"{url}/console/)", flush=True)

    task = loop.create_task(run_control(settings, ready=ready, engine=engine, reload=reload),
                            name="control")
    waiter = loop.create_task(stop.wait(), name="control-stop")
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        waiter.cancel()
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task   # re-raises a PalisadeError from start-up (one line via the CLI)
    return 0


# -- create-token ---------------------------------------------------------------------------------
def add_control_token_parser(control_parser: argparse.ArgumentParser) -> None:
    """Give `palisade control` an optional sub-command: `create-token NAME --role ROLE`.

    `palisade control -c CONFIG create-token ci-node --role node` (or with -c after the
    name) stores the token's hash in the control plane's storage and prints the token."""
    sub = control_parser.add_subparsers(dest="control_cmd", metavar="ACTION")
    t = sub.add_parser("create-token", help="create an API token and print it (shown once)",
                       description="Create an API token for a node, an operator or a viewer; "
                       "only its hash is stored.")
    t.add_argument("name", help="who or what uses it (e.g. node-1, alice)")
    t.add_argument("--role", required=True, choices=ROLES,
                   help="node: push / pull only; operator: read-write; viewer: read-only")
    t.add_argument("--config", "-c", dest="token_config", default=None,
                   help="configuration YAML naming the storage (default: ./state/control.db)")


def control_token_command(args: argparse.Namespace) -> int:
    """Create the token in the configured storage; print it alone on stdout."""
    name = (args.name or "").strip()
    if not name or len(name) > 64:
        raise PalisadeError("the token name must be 1 to 64 characters")
    settings = control_settings(getattr(args, "token_config", None) or
                                getattr(args, "config", None))
    token = _run(_create_token(settings, name, args.role))
    print(token)
    print(f"created {args.role} token {name!r}; it is shown only now, store it safely",
          file=sys.stderr)
    return 0


async def _create_token(settings: ControlSettings, name: str, role: str) -> str:
    from node.control.auth import create_token
    from node.control.storage import make_storage

    try:
        storage = make_storage(settings.storage)
    except ValueError as e:
        raise PalisadeError(f"control storage: {e}") from None
    try:
        await storage.open()
    except (OSError, RuntimeError) as e:
        raise PalisadeError(f"control storage {storage.url_scheme}: cannot open: {e}") from None
    try:
        return await create_token(storage, name, role)
    except ValueError as e:
        raise PalisadeError(str(e)) from None
    finally:
        await storage.close()
