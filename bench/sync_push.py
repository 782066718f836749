"""The cost of pushing request records: node throughput with `push_records` on vs off.

    python bench/sync_push.py [--rounds 3] [--seconds 10] [--connections 32]
                              [--profile on.svg]

Two nodes (every detector on, `PYTHONOPTIMIZE=1`) sync with one `palisade control`
(SQLite), in front of one nginx: one node pushes every request record (the default), the
other `push_records: false` (detections, list changes and session summaries only). `wrk`
loads them alternately, interleaved over the rounds (who goes first alternates), each request
from a new client address (trusted X-Forwarded-For) as in `bench/proxy.py`. Both nodes are
pinned to one CPU; nginx, wrk and the control plane to the other, so the control plane's
ingest is not charged to the node (`--shared-cpu` puts the control plane on the nodes' CPU:
one small host running both, where its ingest competes with the proxy). Prints requests/s,
p99 and CPU per request of each, the ratio on / off (target >= 0.80), the control plane's CPU
per request, and how many records the control plane stored and the node shed.

Then the timing figures the sync tests used to assert: enqueue cost on the request path
while the control plane hangs, and request p99 through a node before / while the control
plane is SIGSTOPed (`--outage` seconds).

Needs `nginx` and `wrk` (`apt-get install nginx-light wrk`); `--profile` needs py-spy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from proxy import (  # noqa: E402
    BODY,
    HOST,
    NGINX_CONF,
    ROOT,
    WRK_LUA,
    Target,
    _children,
    _metric,
    _py_spy,
    _ready,
    _stop,
    free_port,
    node_yaml,
    pin,
    wait_listening,
    wrk,
)

NODE_TOKEN = "bench-node-token-" + "n" * 20


def control_yaml(port: int, db: str) -> str:
    return json.dumps({"control": {"listen": f"{HOST}:{port}", "storage": f"sqlite:///{db}",
                                   "tokens": [{"name": "nodes", "role": "node",
                                               "token": NODE_TOKEN}]}})


def sync_node_yaml(port: int, admin: int, upstream: int, state: str, control: int,
                   push_records: bool, name: str) -> str:
    return node_yaml(port, admin, upstream, state) + f"""  control_url: http://{HOST}:{control}
  control_token: {NODE_TOKEN}
  node_name: {name}
  push_records: {'true' if push_records else 'false'}
"""


def stored_records(db: str, node: str) -> int:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return int(con.execute("SELECT COUNT(*) FROM requests WHERE node = ?",
                               (node,)).fetchone()[0])
    finally:
        con.close()


def enqueue_cost(n: int = 20_000) -> tuple[float, float]:
    """µs per enqueue (mean, p99) of a client whose control plane accepts and never answers."""
    from node.sync.client import SyncClient

    async def run() -> tuple[float, float]:
        held: list[asyncio.StreamWriter] = []

        async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            held.append(writer)

        server = await asyncio.start_server(hang, HOST, 0)
        port = server.sockets[0].getsockname()[1]
        with tempfile.TemporaryDirectory() as d:
            client = SyncClient(f"http://{HOST}:{port}", NODE_TOKEN, d,
                                on_list_change=lambda changes: None, push_timeout=0.5,
                                pull_wait=0.2, flush_interval=0.05)
            await client.start()
            took = []
            for i in range(n):
                rec = {"id": f"r{i}", "ts": 1.7e9 + i, "ip": "203.0.113.7", "method": "GET",
                       "host": "shop.example", "path": f"/api/products/{i}", "status": 200,
                       "app": "shop"}
                t = time.perf_counter()
                client.enqueue("record", rec)
                took.append(time.perf_counter() - t)
                if i % 500 == 0:
                    await asyncio.sleep(0)
            await client.stop(drain_timeout=0.2)
        for w in held:
            w.close()
        server.close()
        took.sort()
        return statistics.fmean(took) * 1e6, took[int(len(took) * 0.99)] * 1e6

    return asyncio.run(run())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10.0, help="per node per round")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--outage", type=float, default=10.0,
                    help="seconds the control plane is SIGSTOPed for the p99 figure (0: skip)")
    ap.add_argument("--shared-cpu", action="store_true",
                    help="pin the control plane to the nodes' CPU (a one-host deployment)")
    ap.add_argument("--profile", metavar="FILE",
                    help="record each node with py-spy during its first round (FILE and "
                         "FILE-off; .svg flame graph, .json speedscope, .txt collapsed stacks)")
    args = ap.parse_args()
    for tool in ("nginx", "wrk"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: apt-get install nginx-light wrk")

    ncpu = len(os.sched_getaffinity(0))
    proxy_cpus, load_cpus = ({0}, set(range(1, ncpu))) if ncpu >= 2 else (None, None)
    tmp = tempfile.mkdtemp(prefix="palisade-bench-sync-")
    procs: list[subprocess.Popen] = []
    try:
        script = os.path.join(tmp, "bench.lua")
        Path(script).write_text(WRK_LUA)
        up_port = free_port()
        conf = os.path.join(tmp, "nginx.conf")
        Path(conf).write_text(NGINX_CONF.format(dir=tmp, host=HOST, port=up_port, body=BODY))
        nginx = subprocess.Popen(["nginx", "-c", conf, "-e", os.path.join(tmp, "nginx-err.log")],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 start_new_session=True)
        procs.append(nginx)
        wait_listening(up_port, nginx, "nginx")

        ctl_port = free_port()
        db = os.path.join(tmp, "control.db")
        Path(tmp, "control.yaml").write_text(control_yaml(ctl_port, db))
        control = subprocess.Popen([sys.executable, "-m", "node.cli", "control", "-c",
                                    os.path.join(tmp, "control.yaml")], cwd=ROOT,
                                   stdout=open(os.path.join(tmp, "control.log"), "w"),
                                   stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(control)
        wait_listening(ctl_port, control, "palisade control")
        if load_cpus:
            for pid in [nginx.pid, *_children(nginx.pid)]:
                pin(pid, load_cpus)
            # --shared-cpu: the control plane competes with the nodes (one small host)
            pin(control.pid, proxy_cpus if args.shared_cpu else load_cpus)
        ctl = Target("control plane", ctl_port, control)
        ctl_cpu = {"records on": 0.0, "records off": 0.0}

        env = {**os.environ, "PYTHONOPTIMIZE": "1"}
        targets: list[Target] = []
        admins: dict[str, int] = {}
        for name, push in (("records on", True), ("records off", False)):
            port, admin = free_port(), free_port()
            cfg = os.path.join(tmp, f"node-{push}.yaml")
            Path(cfg).write_text(sync_node_yaml(port, admin, up_port,
                                                os.path.join(tmp, f"node-{push}"), ctl_port,
                                                push, name.replace(" ", "-")))
            p = subprocess.Popen([sys.executable, "-m", "node.cli", "node", "--config", cfg],
                                 cwd=ROOT, stdout=open(os.path.join(tmp, f"node-{push}.log"),
                                                       "w"),
                                 stderr=subprocess.STDOUT, start_new_session=True, env=env)
            procs.append(p)
            wait_listening(port, p, f"node ({name})")
            if proxy_cpus:
                pin(p.pid, proxy_cpus)
            _ready(admin)
            targets.append(Target(name, port, p))
            admins[name] = admin

        base = 0
        for t in targets:   # warm-up, not measured
            r = wrk(t.port, 3, args.connections, script, base, load_cpus)
            base += r.requests + 1000
        print(f"nodes on CPU {sorted(proxy_cpus or [])}, nginx + wrk + control plane on "
              f"{sorted(load_cpus or [])}; {args.connections} keep-alive connections, "
              f"{args.seconds:g} s per run, {args.rounds} rounds", flush=True)
        for rnd in range(args.rounds):
            for t in targets[rnd % 2:] + targets[:rnd % 2]:
                prof = None
                if args.profile and rnd == 0:
                    out = Path(args.profile)
                    if t is targets[1]:
                        out = out.with_stem(out.stem + "-off")
                    prof = _py_spy(t.proc.pid, args.seconds, str(out))
                cpu0, ctl0 = t.cpu_seconds(), ctl.cpu_seconds()
                r = wrk(t.port, args.seconds, args.connections, script, base, load_cpus)
                r.cpu_ms = (t.cpu_seconds() - cpu0) * 1000 / max(r.requests, 1)
                ctl_cpu[t.name] += ctl.cpu_seconds() - ctl0
                if prof is not None:
                    prof.wait()
                base += r.requests + 1000
                t.runs.append(r)
                print(f"  round {rnd + 1}: {t.name:<12} {r.rps:>7,.0f} req/s  p99 "
                      f"{r.p99_ms:6.2f} ms  CPU {r.cpu_ms:.2f} ms/req  errors {r.errors}",
                      flush=True)
        on, off = targets
        ratio = on.median("rps") / off.median("rps")
        cratio = off.median("cpu_ms") / on.median("cpu_ms")
        print(f"\nmedians: records on {on.median('rps'):,.0f} req/s "
              f"({on.median('cpu_ms'):.2f} ms CPU/req), records off {off.median('rps'):,.0f} "
              f"req/s ({off.median('cpu_ms'):.2f} ms CPU/req)")
        print(f"  ratio on / off: {ratio:.2f} requests/s, {cratio:.2f} CPU per request; "
              f"target >= 0.80: {'met' if ratio >= 0.80 else 'NOT met'}")
        on_n, off_n = (sum(r.requests for r in t.runs) for t in targets)
        print(f"  control plane CPU while loaded: {ctl_cpu['records on'] * 1e3 / on_n:.2f} ms "
              f"per request with records pushed, {ctl_cpu['records off'] * 1e3 / off_n:.2f} ms "
              f"without")
        time.sleep(3)   # the last batches reach the control plane
        sent = on_n
        shed = _metric(admins["records on"], "palisade_sync_records_shed_total")
        print(f"  records stored by the control plane from the pushing node: "
              f"{stored_records(db, 'records-on'):,} (of {sent:,} measured requests plus "
              f"warm-up), shed {shed:,.0f}")

        if args.outage > 0:
            lat: dict[str, list[float]] = {}
            for phase in ("before", "control plane SIGSTOPed"):
                if phase != "before":
                    control.send_signal(signal.SIGSTOP)
                runs = []
                deadline = time.monotonic() + args.outage
                while time.monotonic() < deadline:
                    r = wrk(on.port, min(5.0, args.outage), 4, script, base, load_cpus)
                    base += r.requests + 1000
                    runs.append(r.p99_ms)
                lat[phase] = runs
            control.send_signal(signal.SIGCONT)
            b, d = statistics.median(lat["before"]), \
                statistics.median(lat["control plane SIGSTOPed"])
            print(f"\nrequest p99 through the pushing node (4 connections): {b:.1f} ms before, "
                  f"{d:.1f} ms while the control plane is SIGSTOPed ({d / max(b, 1e-9):.2f}x)")
    finally:
        for p in reversed(procs):
            with_cont = p.poll() is None
            if with_cont:
                try:
                    os.killpg(p.pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
            _stop(p)
        shutil.rmtree(tmp, ignore_errors=True)

    mean, p99 = enqueue_cost()
    print(f"\nenqueue while the control plane hangs: {mean:.1f} µs mean, {p99:.1f} µs p99 "
          "(the request path's whole share of sync)")


if __name__ == "__main__":
    main()
