"""Real processes on loopback for the sync tests: `palisade control`, `palisade node`s, a fast
aiohttp upstream, and a peek into the control plane's storage.

Every process is started with `python -m node.cli ...` from a configuration file written
here, exactly as an operator would run it, so SIGKILL / SIGSTOP hit the real thing.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
NODE_TOKEN = "node-token-" + "n" * 24
OPERATOR_TOKEN = "operator-token-" + "o" * 24
PG_URL = os.environ.get("PALISADE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
SCANNER_UA = "sqlmap/1.7.2#stable (https://sqlmap.org)"
BROWSER_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/131.0.0.0 Safari/537.36")
PROBES = ("/.env", "/.git/config", "/wp-login.php", "/phpmyadmin/", "/.aws/credentials",
          "/server-status", "/backup.sql", "/config.php.bak", "/.DS_Store", "/admin/.htpasswd",
          "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php", "/cgi-bin/test.cgi")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def outage_seconds() -> float:
    """How long the control plane stays down in the fault tests: PALISADE_OUTAGE_SECONDS,
    else 60 under CI (the acceptance figure) and 15 elsewhere (a quicker local run)."""
    v = os.environ.get("PALISADE_OUTAGE_SECONDS")
    if v:
        return float(v)
    return 60.0 if os.environ.get("CI") == "true" else 15.0


async def until(what: str, predicate: Callable[[], Awaitable[bool]], timeout: float,
                step: float = 0.05) -> float:
    """Wait for `predicate`; returns the seconds it took, or fails naming `what`."""
    t0 = time.monotonic()
    while True:
        if await predicate():
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"{what}: not reached within {timeout:.0f} s")
        await asyncio.sleep(step)


# -- upstream -------------------------------------------------------------------------------------
class Upstream:
    """Answers everything at once: the latency measured is the node's own."""

    def __init__(self) -> None:
        self.runner: web.AppRunner | None = None
        self.port = 0
        self.hits = 0

    async def handle(self, req: web.Request) -> web.Response:
        self.hits += 1
        await req.read()
        if req.path in PROBES:
            return web.Response(status=404, text="not found")
        return web.json_response({"ok": True, "path": req.path})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


# -- processes ------------------------------------------------------------------------------------
class Proc:
    """One `palisade ...` child; its output goes to a log file kept for failures."""

    def __init__(self, name: str, workdir: Path, argv: list[str]) -> None:
        self.name = name
        self.workdir = workdir
        self.argv = argv
        self.log = workdir / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def spawn(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "node.cli", *self.argv],
                                         cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                         env=env)

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL and reap: no chance to flush or close anything."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a stopped process must die too
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(10)

    def terminate(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGCONT)
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text("utf-8", "replace").splitlines()[-n:])
        except FileNotFoundError:
            return ""

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n"
                                 f"{self.tail()}")


class ControlPlane(Proc):
    def __init__(self, workdir: Path, backend: str = "sqlite") -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.backend = backend
        self.schema = None
        if backend == "sqlite":
            self.db = workdir / "control.db"
            storage = f"sqlite:///{self.db}"
        else:
            self.schema = f"palisade_sync_{os.getpid()}_{uuid.uuid4().hex[:8]}"
            storage = f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema={self.schema}"
        cfg = {"control": {"listen": f"127.0.0.1:{self.port}", "storage": storage,
                           "tokens": [{"name": "nodes", "role": "node", "token": NODE_TOKEN},
                                      {"name": "ops", "role": "operator",
                                       "token": OPERATOR_TOKEN}]}}
        path = workdir / "control.yaml"
        path.write_text(json.dumps(cfg), "utf-8")   # JSON is YAML
        super().__init__("control", workdir, ["control", "-c", str(path)])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.spawn()

        async def up() -> bool:
            self.check_alive()
            try:
                async with aiohttp.ClientSession() as s, s.get(
                        f"{self.url}/healthz",
                        timeout=aiohttp.ClientTimeout(total=2)) as r:
                    return r.status == 200
            except (aiohttp.ClientError, TimeoutError):
                return False
        await until("control plane up", up, 30, 0.1)

    async def api(self, method: str, path: str, body: dict | None = None) -> dict:
        async with aiohttp.ClientSession() as s, s.request(
                method, f"{self.url}/api/v1{path}", json=body,
                headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"},
                timeout=aiohttp.ClientTimeout(total=10)) as r:
            assert r.status < 300, (r.status, await r.text())
            return await r.json()

    async def query(self, sql: str) -> list[tuple]:
        """Read the control plane's storage directly (works while it is stopped)."""
        if self.backend == "sqlite":
            def run() -> list[tuple]:
                con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
                try:
                    return con.execute(sql).fetchall()
                finally:
                    con.close()
            return await asyncio.to_thread(run)
        import asyncpg

        con = await asyncpg.connect(PG_URL, timeout=5)
        try:
            await con.execute(f'SET search_path TO "{self.schema}"')
            return [tuple(r) for r in await con.fetch(sql)]
        finally:
            await con.close()

    async def request_counts(self) -> Counter:
        """How many times each request id is stored."""
        rows = await self.query("SELECT request_id, COUNT(*) FROM requests GROUP BY request_id")
        return Counter({r[0]: int(r[1]) for r in rows})

    async def drop(self) -> None:
        if self.schema is None:
            return
        import asyncpg

        con = await asyncpg.connect(PG_URL, timeout=5)
        try:
            await con.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
        finally:
            await con.close()


class Node(Proc):
    def __init__(self, name: str, workdir: Path, upstream: Upstream,
                 control: ControlPlane | None, **extra: object) -> None:
        self.state = workdir / name
        self.state.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.admin_port = free_port()
        node = {"listen": f"127.0.0.1:{self.port}", "upstream": f"http://127.0.0.1:{upstream.port}",
                "admin": f"127.0.0.1:{self.admin_port}", "trusted_proxies": ["127.0.0.1/32"],
                "node_name": name, **extra}
        if control is not None:    # None: a standalone node
            node.update(control_url=control.url, control_token=NODE_TOKEN)
        path = self.state / "palisade.yaml"
        path.write_text(json.dumps({"state_dir": str(self.state), "node": node}), "utf-8")
        super().__init__(name, workdir, ["node", "-c", str(path)])

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def start(self) -> None:
        self.spawn()

        async def ready() -> bool:
            self.check_alive()
            try:
                async with aiohttp.ClientSession() as s, s.get(
                        f"http://127.0.0.1:{self.admin_port}/readyz",
                        timeout=aiohttp.ClientTimeout(total=2)) as r:
                    return r.status == 200
            except (aiohttp.ClientError, TimeoutError):
                return False
        await until(f"{self.name} ready", ready, 60, 0.1)

    async def metric(self, name: str, labels: str = "") -> float:
        async with aiohttp.ClientSession() as s, s.get(
                f"http://127.0.0.1:{self.admin_port}/metrics") as r:
            text = await r.text()
        want = name + (f"{{{labels}}}" if labels else "")
        for line in text.splitlines():
            if line.startswith(want + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def entry(self, list_name: str, network: str) -> dict | None:
        """The node's own stored entry (its SQLite file), or None."""
        con = sqlite3.connect(f"file:{self.state / 'iplists.sqlite3'}?mode=ro", uri=True,
                              timeout=10)
        try:
            row = con.execute("SELECT source, who, expires FROM entries WHERE list = ? AND "
                              "network = ?", (list_name, network)).fetchone()
        finally:
            con.close()
        return None if row is None else {"source": row[0], "who": row[1], "expires": row[2]}

    def spooled_record_ids(self) -> set[str]:
        """Request ids of records in the spools not yet acknowledged (read after a kill)."""
        out: set[str] = set()
        root = self.state / "spool"
        for spool in (root, *(d for d in root.iterdir() if d.is_dir())):
            acks = set()
            if (spool / "acks.log").exists():
                acks = set((spool / "acks.log").read_text("utf-8").split())
            for seg in sorted(spool.glob("seg-*.log")):
                for line in seg.read_bytes().splitlines(keepends=True):
                    if not line.endswith(b"\n"):
                        break   # torn tail
                    batch = json.loads(line)
                    if batch["batch_id"] in acks:
                        continue
                    out.update(i["data"]["id"] for i in batch["items"]
                               if i["kind"] == "record")
        return out


async def fetch(session: aiohttp.ClientSession, url: str, ip: str, ua: str = BROWSER_UA,
                timeout: float = 10.0) -> tuple[int, str, float]:
    """GET through a node as `ip` (X-Forwarded-For from a trusted loopback peer):
    (status, request id, seconds)."""
    t = time.perf_counter()
    async with session.get(url, headers={"X-Forwarded-For": ip, "User-Agent": ua},
                           timeout=aiohttp.ClientTimeout(total=timeout)) as r:
        await r.read()
        return r.status, r.headers.get("X-Request-Id", ""), time.perf_counter() - t


def p99(values: list[float]) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * 0.99))] if s else 0.0


def write_artifact(name: str, data: dict) -> Path:
    """Measured figures for the record: artifacts/<name>.json (and printed with -s)."""
    out = ROOT / "artifacts"
    out.mkdir(exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n", "utf-8")
    print(f"\n{name}: {json.dumps(data)}")
    return path
