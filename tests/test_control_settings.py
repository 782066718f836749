"""`control:` settings (errors name file, line, key) and `run_control` end to end."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
import pytest

from node.control.auth import hash_token
from node.control.run import run_control
from node.control.settings import ControlSettings, TokenSpec, compile_control_settings
from node.control.storage import make_storage, migrations
from node.control.storage.base import DAY
from node.errors import ConfigError, PalisadeError

GOOD = "a-long-random-token-value"


def test_defaults():
    s = compile_control_settings({}, "palisade.yaml")
    assert (s.listen_host, s.listen_port) == ("127.0.0.1", 8790)
    assert s.storage.startswith("sqlite:///") and s.storage.endswith("state/control.db")
    assert s.retention.requests == 7 * DAY and s.retention.detail == 31 * DAY


def test_full_section():
    s = compile_control_settings({
        "listen": "[::1]:9000", "storage": "postgresql://postgres@127.0.0.1/test",
        "tokens": [{"name": "n1", "role": "node", "token_env": "NODE_TOKEN"},
                   {"name": "alice", "role": "operator", "sha256": "A" * 64},
                   {"name": "wall", "role": "viewer", "token": GOOD}],
        "retention": {"requests": "3d", "detail": "14d", "aggregates": "365d"},
        "retention_interval": "5m", "min_requests": 10},
        "palisade.yaml", env={"NODE_TOKEN": "node-token-from-the-environment"})
    assert (s.listen_host, s.listen_port) == ("::1", 9000)
    assert s.tokens[0] == TokenSpec("n1", "node", "node-token-from-the-environment")
    assert s.tokens[1].secret == "sha256:" + "a" * 64
    assert s.retention.requests == 3 * DAY and s.retention_interval == 300
    assert "token" not in repr(s.tokens[2]).replace("TokenSpec", "")  # secrets stay out of logs
    with pytest.raises(AttributeError):
        s.listen_port = 1  # frozen


@pytest.mark.parametrize(("raw", "key", "message"), [
    ({"listen": "host:99999"}, "control.listen", "out of range"),
    ({"storage": "mysql://x"}, "control.storage", "sqlite:///PATH"),
    ({"storage": "sqlite://"}, "control.storage", "file path"),
    ({"tokenz": []}, "control.tokenz", "did you mean 'tokens'"),
    ({"tokens": [{"name": "x", "role": "admin", "token": GOOD}]}, "control.tokens[0].role",
     "must be one of"),
    ({"tokens": [{"name": "x", "role": "node", "token": "short"}]},
     "control.tokens[0].token", "at least 16"),
    ({"tokens": [{"name": "x", "role": "node"}]}, "control.tokens[0]", "exactly one"),
    ({"tokens": [{"name": "x", "role": "node", "token_env": "UNSET_VAR"}]},
     "control.tokens[0].token_env", "not set"),
    ({"tokens": [{"name": "x", "role": "node", "sha256": "abc"}]},
     "control.tokens[0].sha256", "64 hex"),
    ({"tokens": [{"name": "x", "role": "node", "token": GOOD},
                 {"name": "x", "role": "viewer", "token": GOOD + "2"}]},
     "control.tokens", "used twice"),
    ({"retention": {"requests": "10s"}}, "control.retention.requests", "at least"),
    ({"retention_interval": "soon"}, "control.retention_interval", "not a duration"),
])
def test_errors_name_the_key(raw, key, message):
    with pytest.raises(ConfigError) as e:
        compile_control_settings(raw, "palisade.yaml", env={})
    assert e.value.key == key and e.value.file == "palisade.yaml"
    assert message in str(e.value)


def test_errors_carry_the_line_from_yaml(tmp_path):
    from node.config.section import Section
    from node.config.yamlloc import load_yaml_text

    text = "control:\n  listen: 127.0.0.1:8790\n  storage: nope://x\n"
    data = load_yaml_text(text, "p.yaml")
    root = Section(data, "p.yaml")
    with pytest.raises(ConfigError) as e:
        compile_control_settings(data["control"], root.sub("control"))
    assert e.value.line == 3 and e.value.key == "control.storage"


async def test_run_control_serves_until_cancelled(tmp_path):
    settings = ControlSettings(
        listen_port=0, storage_url=f"sqlite:///{tmp_path / 'c.db'}",
        tokens=(TokenSpec("wall", "viewer", GOOD),
                TokenSpec("ops", "operator", "sha256:" + hash_token("ops-token-0123456789"))))
    urls: list[str] = []
    ready = asyncio.Event()

    def on_ready(url: str) -> None:
        urls.append(url)
        ready.set()

    task = asyncio.ensure_future(run_control(settings, ready=on_ready))
    try:
        await asyncio.wait_for(ready.wait(), 10)
        async with aiohttp.ClientSession() as http:
            async with http.get(urls[0] + "/healthz") as r:
                assert r.status == 200
                assert (await r.json())["schema_version"] == len(migrations.SQLITE)
            async with http.get(urls[0] + "/api/v1/nodes",
                                headers={"Authorization": f"Bearer {GOOD}"}) as r:
                assert r.status == 200
            async with http.post(urls[0] + "/api/v1/lists/deny", json={"cidr": "192.0.2.1"},
                                 headers={"Authorization": "Bearer ops-token-0123456789"}) as r:
                assert r.status == 201
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    storage = make_storage(settings.storage)
    await storage.open()  # closed cleanly by run_control, data kept
    assert await storage.list_version() == 1
    await storage.close()


async def test_sighup_reloads_tokens_and_keeps_them_when_the_file_is_bad(tmp_path):
    import os
    import signal

    from node.control.storage.base import Retention

    old_token, new_token = "old-token-0123456789", "new-token-0123456789"
    settings = ControlSettings(listen_port=0, storage_url=f"sqlite:///{tmp_path / 'c.db'}",
                               tokens=(TokenSpec("ops", "operator", old_token),))
    files = [ControlSettings(listen_port=0, storage_url=settings.storage_url,
                             tokens=(TokenSpec("ops2", "operator", new_token),),
                             retention=Retention(requests=86400.0), min_requests=10),
             PalisadeError("palisade.yaml:3: control.tokens[0].role: must be one of ...")]
    reloads: list[int] = []

    def reload():
        reloads.append(1)
        nxt = files.pop(0)
        if isinstance(nxt, Exception):
            raise nxt
        return nxt, None

    urls: list[str] = []
    ready = asyncio.Event()

    def on_ready(url: str) -> None:
        urls.append(url)
        ready.set()

    async def status(token: str) -> int:
        async with aiohttp.ClientSession() as http, http.get(
                urls[0] + "/api/v1/nodes", headers={"Authorization": f"Bearer {token}"}) as r:
            return r.status

    async def hup(n: int) -> None:
        os.kill(os.getpid(), signal.SIGHUP)
        for _ in range(200):
            if len(reloads) >= n:
                return
            await asyncio.sleep(0.01)

    task = asyncio.ensure_future(run_control(settings, ready=on_ready, reload=reload))
    try:
        await asyncio.wait_for(ready.wait(), 10)
        assert await status(old_token) == 200
        await hup(1)
        assert await status(old_token) == 401 and await status(new_token) == 200
        await hup(2)                         # a bad file: the running tokens stay
        assert await status(new_token) == 200
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_apply_reload_swaps_options_and_profiles(tmp_path, caplog):
    from node.config.model import EngineConfig
    from node.console import setup_console
    from node.console.app import CONSOLE
    from node.control.api import OPTIONS, create_app
    from node.control.run import apply_reload
    from node.control.storage.base import Retention

    storage = make_storage(f"sqlite:///{tmp_path / 'c.db'}")
    await storage.open()
    app = create_app(storage)
    setup_console(app)
    old = ControlSettings(storage_url=storage.url if hasattr(storage, "url") else None)
    new = ControlSettings(listen_port=9999, retention=Retention(requests=3600.0),
                          min_requests=5, tokens=(TokenSpec("v", "viewer", GOOD),))
    apply_reload(app, old, new, EngineConfig(warmup_requests=50))
    assert app[OPTIONS].retention.requests == 3600.0 and app[OPTIONS].min_requests == 5
    assert app[CONSOLE].warmup_requests == 50 and app[CONSOLE].profiles is not None
    assert "listen address changed" in caplog.text     # said, not applied
    await storage.close()


def test_console_sessions_of_a_removed_token_end():
    from node.console.auth import ConsoleAuth
    from node.control.auth import Authenticator, Principal

    auth = Authenticator.from_tokens(None, [("a" * 20, "alice", "operator"),
                                            ("b" * 20, "bob", "viewer")])
    console = ConsoleAuth()
    console.open(Principal("alice", "operator"))
    console.open(Principal("bob", "viewer"))
    gone = auth.replace_configured([("b" * 20, "bob", "viewer")])
    assert gone == {Principal("alice", "operator")}
    assert console.end_for(gone) == 1 and len(console._sessions) == 1


async def test_run_control_reports_a_busy_port(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        settings = ControlSettings(listen_port=port,
                                   storage_url=f"sqlite:///{tmp_path / 'c.db'}")
        with pytest.raises(PalisadeError, match="cannot listen"):
            await run_control(settings)


def test_storage_urls():
    assert make_storage("sqlite:///tmp/x.db").path.as_posix() == "/tmp/x.db"
    assert make_storage("sqlite:rel/x.db").path.as_posix() == "rel/x.db"
    pg = make_storage("postgresql://u@h:5432/db?schema=abc&sslmode=disable")
    assert pg.schema == "abc" and "schema" not in pg.dsn and "sslmode=disable" in pg.dsn
    for bad in ("mysql://x", "sqlite:", "postgresql://u@h/db?schema=Bad-Name"):
        with pytest.raises(ValueError):
            make_storage(bad)
