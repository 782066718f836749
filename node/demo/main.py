"""`palisade demo`: the shop API, the control plane, the node and simulated traffic, on loopback.

    palisade demo [--duration SECONDS] [--port 8000] [--speedup 20] [--state-dir DIR]

Two processes. This one runs the control plane (SQLite in the state directory) and the node
(`RunningNode`, every detector on) in front of the shop; `node.demo.traffic` runs the shop
and the traffic generator — humans and every bot family of the simulator, sent over real
HTTP through the node from their own addresses (X-Forwarded-For, trusted from loopback). The
node gets a core to itself that way, as it would in production.

Time: the simulator's schedule is compressed `--speedup` times, and the engine judges the
traffic on the wall clock, i.e. it sees every client `speedup` times faster than a person
would click; that the humans still pass is part of what the demo shows.

On exit (Ctrl-C, SIGTERM or --duration) the summary scores the node against the
simulator's ground truth: bot actors detected and blocked per type, humans blocked.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import ipaddress
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TextIO

import aiohttp

import node.engine  # noqa: F401  (first: config → detectors → engine is an import cycle)
from node.config.model import BOT_TYPES
from node.control.run import run_control
from node.control.settings import ControlSettings, TokenSpec
from node.demo.config import demo_engine_config
from node.errors import PalisadeError
from node.proxy.settings import NodeSettings

log = logging.getLogger("palisade.demo")

HOST = "127.0.0.1"
CONTROL_PORT = ControlSettings().listen_port    # used when free, else any free port
ADMIN_PORT = NodeSettings().admin_port
# Actors per family (x the simulator's scale-1 counts) in a round of SCALE_ROUND simulated
# seconds; shorter rounds get proportionally fewer, so the request rate stays ~150-250/s at
# speedup 20, which a 2-CPU machine sends, proxies and serves without falling behind.
SCALE = 0.5
SCALE_ROUND = 1800.0
ROUND = 3600.0         # simulated seconds per traffic round when running until Ctrl-C
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0


@dataclass
class DemoState:
    """What the status line and the summary are made of."""

    started: float = field(default_factory=time.monotonic)
    sent: Counter[str] = field(default_factory=Counter)       # by truth label
    blocked: Counter[str] = field(default_factory=Counter)    # 403s, by truth label
    errors: int = 0
    lag: float = 0.0
    decisions: list[Any] = field(default_factory=list)        # node.engine.Decision
    decided_at: list[float] = field(default_factory=list)     # wall clock of each
    final: dict[str, Any] | None = None
    control_note: str | None = None

    def on_decision(self, d: Any) -> None:
        self.decisions.append(d)
        self.decided_at.append(time.time())

    def update(self, msg: dict[str, Any]) -> None:
        self.sent = Counter(msg.get("sent", {}))
        self.blocked = Counter(msg.get("blocked", {}))
        self.errors = int(msg.get("errors", 0))
        self.lag = float(msg.get("lag", 0.0))
        if msg.get("event") == "final":
            self.final = msg

    ended: float | None = None

    @property
    def elapsed(self) -> float:
        return (self.ended or time.monotonic()) - self.started


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="palisade demo: %(levelname)s "
                        "%(name)s: %(message)s")
    logging.getLogger("mitmproxy").setLevel(logging.ERROR)  # per-connection chatter
    if args.speedup <= 0:
        raise PalisadeError("--speedup must be a positive number")
    if args.duration is not None and args.duration <= 0:
        raise PalisadeError("--duration must be a positive number of seconds")
    tmp = None
    if args.state_dir:
        state_dir = os.path.abspath(args.state_dir)
        os.makedirs(state_dir, mode=0o700, exist_ok=True)
    else:
        state_dir = tmp = tempfile.mkdtemp(prefix="palisade-demo-")
    try:
        import uvloop
        factory = uvloop.new_event_loop
    except ImportError:
        factory = None
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            state = runner.run(_demo(args, state_dir, sys.stdout))
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    if state is None:
        return 1
    print_summary(state, sys.stdout, args.speedup)
    return 0


def _port(preferred: int) -> int:
    """`preferred` when it is free on loopback, else 0 (any free port)."""
    with socket.socket() as s:
        try:
            s.bind((HOST, preferred))
        except OSError:
            return 0
    return preferred


class Traffic:
    """The child process (shop + traffic generator) and its JSON-lines protocol."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, speedup: float, sim_duration: float) -> Traffic:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "node.demo.traffic", "--speedup", str(speedup),
            "--sim-duration", str(sim_duration),
            "--scale", str(SCALE * min(1.0, sim_duration / SCALE_ROUND)),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            limit=64 * 1024 * 1024)   # the final message lists every actor on one line
        return cls(proc)

    async def read(self) -> dict[str, Any] | None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if isinstance(msg, dict):
                return msg
        return None

    def send(self, **cmd: Any) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(ConnectionError, RuntimeError):
            self.proc.stdin.write(json.dumps(cmd).encode() + b"\n")

    async def close(self) -> None:
        """Give the child a moment to exit on its own (it does after "stop"), then kill."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()    # end of file: the child stops too
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.proc.wait(), 5.0)
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()


async def _demo(args: argparse.Namespace, state_dir: str, out: TextIO) -> DemoState | None:
    from node.proxy.run import RunningNode

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # One round spans the whole run when its length is known, so every bot family shows up.
    sim_duration = ROUND if args.duration is None else max(60.0, args.duration * args.speedup)
    traffic = await Traffic.start(args.speedup, sim_duration)
    control_task: asyncio.Task[None] | None = None
    running: RunningNode | None = None
    state = DemoState()
    try:
        msg = await _wait_for(traffic.read(), stop, STARTUP_TIMEOUT)
        if not msg or msg.get("event") != "shop":
            raise PalisadeError("the demo shop did not start")
        shop_url = msg["url"]

        operator_token, node_token = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        control_url: asyncio.Future[str] = loop.create_future()
        control = ControlSettings(
            listen_host=HOST, listen_port=_port(CONTROL_PORT), state_dir=state_dir,
            tokens=(TokenSpec("demo-operator", "operator", operator_token),
                    TokenSpec("demo-node", "node", node_token)))
        control_task = loop.create_task(run_control(control, ready=control_url.set_result),
                                        name="control plane")
        await _wait_for(asyncio.wait({control_url, control_task},
                                     return_when=asyncio.FIRST_COMPLETED), stop,
                        STARTUP_TIMEOUT)
        if control_task.done():
            control_task.result()   # raises the control plane's startup error
        if not control_url.done():
            return None             # interrupted while starting
        curl = control_url.result()

        settings = _node_settings(args.port, shop_url, os.path.join(state_dir, "node"),
                                  curl, node_token)
        running = RunningNode(settings, demo_engine_config())
        running.node.decision_sinks.append(state.on_decision)
        # A failure to listen comes back as one PalisadeError line; mitmproxy's own log
        # lines about it would only repeat it.
        mitm_log = logging.getLogger("mitmproxy")
        mitm_log.propagate = False
        await running.start()
        mitm_log.propagate = True
        node_url = f"http://{HOST}:{running.proxy_addrs[0][1]}"
        admin = running.admin_addr
        synced = "control_url" in _fields(NodeSettings)
        await _print_banner(out, node_url=node_url, shop_url=shop_url, control_url=curl,
                            metrics=f"http://{HOST}:{admin[1]}/metrics" if admin else None,
                            token=operator_token, state_dir=state_dir, args=args,
                            synced=synced)

        state.started = time.monotonic()
        traffic.send(cmd="go", target=node_url)
        status = StatusLine(out)
        reader = loop.create_task(_follow(traffic, state, status))
        timer = loop.create_task(asyncio.sleep(args.duration if args.duration else 1e9))
        stopper = loop.create_task(stop.wait())
        try:
            await asyncio.wait({reader, timer, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            stopper.cancel()
            status.end()
        if reader.done() and state.final is None:
            reader.result()
            raise PalisadeError("the traffic generator stopped unexpectedly")
        state.ended = time.monotonic()
        traffic.send(cmd="stop")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(reader, STOP_TIMEOUT)
        if not reader.done():
            reader.cancel()
        if state.final is None:
            raise PalisadeError("the traffic generator did not report its results")
        await running.stop()    # also hands what is left to the sync client
        running = None
        if synced:
            state.control_note = await _control_note(curl, operator_token)
        return state
    finally:
        await traffic.close()
        if running is not None:
            await running.stop()
        if control_task is not None:
            control_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await control_task
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _wait_for(aw: Any, stop: asyncio.Event, timeout: float) -> Any:
    """Await `aw`, giving up (None) on Ctrl-C; a timeout is an error."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(aw)
    stopper = loop.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait({task, stopper}, timeout=timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if task in done:
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    if stopper in done or stop.is_set():
        return None
    raise PalisadeError(f"demo start-up took longer than {timeout:.0f} s")


def _fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def _node_settings(port: int, shop_url: str, state_dir: str, control_url: str,
                   node_token: str) -> NodeSettings:
    kw: dict[str, Any] = dict(
        listen_host=HOST, listen_port=port, upstream=shop_url, admin_host=HOST,
        admin_port=_port(ADMIN_PORT), state_dir=state_dir,
        trusted_proxies=("127.0.0.1/32", "::1/128"))   # the traffic generator's XFF
    fields = _fields(NodeSettings)
    if "control_url" in fields:   # node ↔ control sync, where this version has it
        kw.update(control_url=control_url, control_token=node_token)
        if "node_name" in fields:
            kw["node_name"] = "demo-node"
    return NodeSettings(**kw)


async def _print_banner(out: TextIO, *, node_url: str, shop_url: str, control_url: str,
                        metrics: str | None, token: str, state_dir: str,
                        args: argparse.Namespace, synced: bool) -> None:
    console = await _console_url(control_url)
    w = out.write
    w("Palisade demo — humans and bots shopping through the node, on loopback\n")
    w(f"  node (send requests here) {node_url}/api/products\n")
    w(f"  shop API (upstream)       {shop_url}\n")
    if console:
        w(f"  console                   {console}   (sign in with the operator token)\n")
    w(f"  control plane API         {control_url}/api/v1"
      f"{'   (the node syncs with it)' if synced else ''}\n")
    w(f"  operator token            {token}\n")
    w(f"    e.g. curl -H 'Authorization: Bearer {token}' {control_url}/api/v1/lists/deny\n")
    if metrics:
        w(f"  node metrics              {metrics}\n")
    w(f"  state directory           {state_dir}"
      f"{'' if args.state_dir else ' (removed on exit)'}\n")
    until = f"for {args.duration:g} s" if args.duration else "until Ctrl-C"
    w(f"Traffic at {args.speedup:g}x simulated speed, {until}.\n")
    out.flush()


async def _console_url(control_url: str) -> str | None:
    """The console's address if this control plane serves one (a page at `/`, perhaps
    behind its login page: then the page the login leads to)."""
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as s, \
                s.get(control_url + "/", allow_redirects=True) as r:
            if r.status != 200 or r.content_type != "text/html":
                return None
            after_login = r.url.query.get("next", "")
            if after_login.startswith("/"):
                return control_url + after_login
            return str(r.url)
    except (aiohttp.ClientError, TimeoutError):
        return None


async def _control_note(control_url: str, token: str) -> str | None:
    """What reached the control plane: attacks stored, nodes seen."""
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with aiohttp.ClientSession(headers=headers,
                                         timeout=aiohttp.ClientTimeout(total=5)) as s:
            async with s.get(f"{control_url}/api/v1/attacks", params={"limit": "500"}) as r:
                attacks = (await r.json())["items"] if r.status == 200 else None
            async with s.get(f"{control_url}/api/v1/nodes") as r:
                nodes = (await r.json())["items"] if r.status == 200 else None
    except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError):
        return None
    if attacks is None or nodes is None:
        return None
    n = f"{len(attacks)}{'+' if len(attacks) >= 500 else ''}"
    return f"{n} attacks stored, {len(nodes)} node(s) synced"


async def _follow(traffic: Traffic, state: DemoState, status: StatusLine) -> None:
    while (msg := await traffic.read()) is not None:
        if msg.get("event") in ("tick", "final"):
            state.update(msg)
            status.show(state)
            if state.final is not None:
                return


class StatusLine:
    """One line rewritten about once a second on a terminal; a plain line every 10 s
    elsewhere (logs, CI)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self._last = 0.0
        self._shown = False

    def show(self, state: DemoState) -> None:
        now = time.monotonic()
        if now - self._last < (1.0 if self.tty else 10.0) or state.final is not None:
            return
        self._last = now
        line = status_text(state)
        if self.tty:
            width = shutil.get_terminal_size().columns - 1   # a wrapped line cannot be redrawn
            self.out.write("\r\x1b[K" + line[:width])
            self._shown = True
        else:
            self.out.write(line + "\n")
        self.out.flush()

    def end(self) -> None:
        if self._shown:
            self.out.write("\n")
            self.out.flush()


def status_text(state: DemoState) -> str:
    t = state.elapsed
    sent = sum(state.sent.values())
    blocked = sum(state.blocked.values())
    by_type = Counter(d.bot_type for d in state.decisions)
    det = ", ".join(f"{k} {v}" for k, v in sorted(by_type.items())) or "none yet"
    line = (f"[{t:4.0f}s] requests {sent:,} ({sent / max(t, 1e-9):,.0f}/s), "
            f"blocked {blocked:,}, humans blocked {state.blocked.get('human', 0)} | "
            f"detections: {det}")
    if state.lag > 5:
        line += f" | traffic {state.lag:.0f} s behind schedule"
    return line


# -- summary -----------------------------------------------------------------------------------

@dataclass
class TypeRow:
    actors: int = 0
    detected: int = 0
    blocked: int = 0
    requests: int = 0
    requests_blocked: int = 0
    ttd: list[float] = field(default_factory=list)   # seconds from first request to detection

    def add(self, other: TypeRow) -> None:
        for k in ("actors", "detected", "blocked", "requests", "requests_blocked"):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        self.ttd += other.ttd


def summarize(state: DemoState) -> dict[str, TypeRow]:
    """Rows per truth label: actors seen, detected (a detection names one of their
    addresses), blocked (got a 403), their requests, and time to detection."""
    assert state.final is not None
    first: dict[str, float] = {}      # address → wall clock of its first detection
    nets: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, float]] = []
    for d, at in zip(state.decisions, state.decided_at, strict=True):
        for target in (*d.ips, d.ip):
            if "/" in target:
                with contextlib.suppress(ValueError):
                    nets.append((ipaddress.ip_network(target, strict=False), at))
            elif target not in first:
                first[target] = at

    def detected_at(ips: list[str]) -> float | None:
        times = [first[ip] for ip in ips if ip in first]
        for ip in ips if nets else ():
            with contextlib.suppress(ValueError):
                a = ipaddress.ip_address(ip)
                times += [at for n, at in nets if a in n]
        return min(times, default=None)

    rows: dict[str, TypeRow] = {}
    for _key, label, _family, ips, sent, blocked, started, *_ in state.final["actors"]:
        r = rows.setdefault(label, TypeRow())
        r.actors += 1
        r.requests += sent
        r.requests_blocked += blocked
        r.blocked += blocked > 0
        at = detected_at(ips)
        if at is not None:
            r.detected += 1
            r.ttd.append(max(0.0, at - started))
    return rows


def _ttd(r: TypeRow) -> str:
    return f"{statistics.median(r.ttd):.1f} s" if r.ttd else "-"


def print_summary(state: DemoState, out: TextIO, speedup: float) -> None:
    rows = summarize(state)
    sent = sum(r.requests for r in rows.values())
    blocked = sum(r.requests_blocked for r in rows.values())
    w = out.write
    w(f"\nSummary: {state.elapsed:.0f} s at {speedup:g}x "
      f"(~{state.elapsed * speedup / 60:.0f} simulated minutes)\n")
    w(f"  requests sent {sent:,}, blocked by the node {blocked:,} "
      f"({100 * blocked / max(sent, 1):.1f} %), transport errors {state.errors}\n")
    head = ("actors", "detected", "blocked", "requests", "blocked", "detected in")
    w(f"  {'(ground truth)':<22}" + "".join(f"{h:>{len(h) + 2}}" for h in head[:-1])
      + f"{head[-1]:>13}\n")

    def row(name: str, r: TypeRow) -> None:
        w(f"  {name:<22}{r.actors:>8}{r.detected:>10}{r.blocked:>9}{r.requests:>10,}"
          f"{r.requests_blocked:>9,}{_ttd(r):>13}\n")

    bots = TypeRow()
    for label in BOT_TYPES:
        if label in rows:
            row(label, rows[label])
            bots.add(rows[label])
    row("all bots", bots)
    h = rows.get("human", TypeRow())
    row("humans", h)
    by_type = Counter(d.bot_type for d in state.decisions)
    reactions = Counter(d.reaction for d in state.decisions)
    if state.decisions:
        w(f"  engine detections: {len(state.decisions)} ("
          + ", ".join(f"{k} {v}" for k, v in sorted(by_type.items())) + "; reactions: "
          + ", ".join(f"{k} {v}" for k, v in sorted(reactions.items())) + ")\n")
    else:
        w("  engine detections: none\n")
    if state.control_note:
        w(f"  control plane: {state.control_note}\n")
    w(f"  bots detected: {bots.detected} of {bots.actors}, blocked: {bots.blocked}; "
      f"humans blocked: {h.blocked} of {h.actors}"
      + (" (legitimate traffic untouched)\n" if h.blocked == 0 else " (FALSE POSITIVES)\n"))
    if state.lag > 5:
        w(f"  note: the traffic generator fell up to {state.lag:.0f} s behind schedule "
          "(machine too busy), so clients ran slower than simulated\n")
    out.flush()
