"""The demo's second process: the shop (upstream API) and the traffic generator.

    python -m node.demo.traffic --speedup 20 [--sim-duration 1800] [--scale 0.5]

`palisade demo` runs the node in its own process and this one beside it, so the proxy, which
is the thing on show, gets a core of its own instead of sharing one event loop with the shop
and the HTTP clients. They talk in JSON lines:

    stdout: {"event": "shop", "url": ...}           once the shop listens
    stdin:  {"cmd": "go", "target": NODE_URL}       start sending through the node
    stdout: {"event": "tick", ...}                  counters, about once a second
    stdin:  {"cmd": "stop"} (or end of file)        stop sending
    stdout: {"event": "final", ..., "actors": [...]}   per-actor results, then exit 0

Traffic is the simulator's (humans and every bot family), in rounds of `--sim-duration`
simulated seconds, each round with the next seed, until told to stop. Every request goes out
from the actor's own address via X-Forwarded-For, which the demo node trusts from loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from node.demo.shop import start_shop
from node.sim import HUMAN, Intent, Scenario, simulate
from node.sim.http_driver import drive

BLOCKED = 403  # the node's problem+json answer; the shop itself never answers 403


@dataclass(slots=True)
class ActorResult:
    label: str
    family: str
    ips: dict[str, None] = field(default_factory=dict)   # ordered set
    sent: int = 0
    blocked: int = 0
    first: float = 0.0                                    # wall clock of the first request
    first_blocked: float | None = None


class Tally:
    """What the driver saw, per truth label and per actor."""

    def __init__(self, speedup: float = 1.0) -> None:
        self.speedup = speedup
        self._origin: tuple[float, float] | None = None   # (simulated, monotonic) at round start
        self.sent: Counter[str] = Counter()
        self.blocked: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.errors = 0
        self.lag = 0.0
        self.actors: dict[str, ActorResult] = {}
        self.round = 0

    def new_round(self) -> None:
        self.round += 1
        self._origin = None

    def on_result(self, it: Intent, status: int) -> None:
        # How far behind the schedule the answers come: a machine too busy to keep up.
        # Judged on humans only: a fast bot's requests go one after the other, so at a high
        # speedup its schedule outruns any round trip even on an idle machine.
        mono = time.monotonic()
        if self._origin is None:
            self._origin = (it.ts, mono)
        elif it.label == HUMAN:
            due = self._origin[1] + (it.ts - self._origin[0]) / self.speedup
            self.lag = max(self.lag, mono - due)
        key = f"{self.round}/{it.actor}"
        a = self.actors.get(key)
        now = time.time()
        if a is None:
            a = self.actors[key] = ActorResult(it.label, it.family, first=now)
        a.ips[it.ip] = None
        a.sent += 1
        self.sent[it.label] += 1
        self.statuses[status] += 1
        if status == 0:
            self.errors += 1
        elif status == BLOCKED:
            a.blocked += 1
            self.blocked[it.label] += 1
            if a.first_blocked is None:
                a.first_blocked = now

    def tick(self) -> dict[str, Any]:
        return {"event": "tick", "sent": dict(self.sent), "blocked": dict(self.blocked),
                "errors": self.errors, "lag": round(self.lag, 1), "round": self.round}

    def final(self) -> dict[str, Any]:
        d = self.tick()
        d["event"] = "final"
        d["statuses"] = {str(k): v for k, v in self.statuses.items()}
        d["actors"] = [[k, a.label, a.family, list(a.ips), a.sent, a.blocked,
                        round(a.first, 3),
                        None if a.first_blocked is None else round(a.first_blocked, 3)]
                       for k, a in self.actors.items()]
        return d


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


async def send_rounds(target: str, tally: Tally, *, speedup: float, sim_duration: float,
                      scale: float, seed: int, concurrency: int) -> None:
    """Scenario rounds, one after the other, each with the next seed (new people, new bots)."""
    while True:
        sc = Scenario.default(scale=scale, seed=seed + tally.round, duration=sim_duration)
        await drive(simulate(sc), target, speedup=speedup, concurrency=concurrency,
                    on_result=tally.on_result)
        tally.new_round()


async def read_commands(queue: asyncio.Queue[dict[str, Any]]) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        while line := await reader.readline():
            with contextlib.suppress(ValueError):
                await queue.put(json.loads(line))
        await queue.put({"cmd": "stop"})  # the parent went away: stop too
    finally:
        transport.close()


async def run(args: argparse.Namespace) -> int:
    shop = await start_shop("127.0.0.1", 0, seed=args.seed)
    host, port = shop.addresses[0][:2]
    emit({"event": "shop", "url": f"http://{host}:{port}"})
    commands: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    tally = Tally(args.speedup)
    async with asyncio.TaskGroup() as tg:
        reader = tg.create_task(read_commands(commands))
        sender: asyncio.Task[None] | None = None
        ticker: asyncio.Task[None] | None = None
        while True:
            cmd = await commands.get()
            if cmd.get("cmd") == "go" and sender is None:
                sender = tg.create_task(send_rounds(
                    cmd["target"], tally, speedup=args.speedup, sim_duration=args.sim_duration,
                    scale=args.scale, seed=args.seed, concurrency=args.concurrency))
                ticker = tg.create_task(_ticks(tally))
            elif cmd.get("cmd") == "stop":
                break
        for t in (sender, ticker, reader):
            if t is not None:
                t.cancel()
    await shop.cleanup()
    emit(tally.final())
    return 0


async def _ticks(tally: Tally) -> None:
    while True:
        await asyncio.sleep(1.0)
        emit(tally.tick())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m node.demo.traffic",
                                description="demo shop + simulated traffic (driven by "
                                            "`palisade demo`)")
    p.add_argument("--speedup", type=float, default=20.0)
    p.add_argument("--sim-duration", type=float, default=3600.0,
                   help="simulated seconds per scenario round")
    p.add_argument("--scale", type=float, default=0.5, help="actor count multiplier")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--concurrency", type=int, default=64)
    args = p.parse_args(argv)
    # Ctrl-C reaches the whole process group: the parent decides when traffic stops, so that
    # it can collect this process's final counts first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import uvloop
        factory = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
