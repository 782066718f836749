"""Proxy throughput: the node (every detector on) vs stock `mitmdump` in reverse mode.

    python bench/proxy.py [--rounds 3] [--seconds 15] [--connections 32] [--ips 1000000]

(`--ips 1000000` takes about an hour on a 2-CPU machine: the node's own rate; `--ips 100000`
shows the same plateau, the engine's tables being capped at 100,000 keys by default.)

Both proxies run at once in front of the same nginx (Debian's), with the same mitmproxy
options (`node.proxy.master.mitmproxy_options`: lazy connections, body and header limits,
timeouts, keep_host_header, ...); `wrk` (Debian's, a separate process, keep-alive
connections) loads one target at a time, alternating node / mitmdump / nginx alone over
several rounds so that whatever else the machine does hits all of them alike. The proxies
are pinned to one CPU, nginx and wrk to another (when there are two), so each proxy has a
core to itself and the upstream is never the bottleneck (its own figure shows that).

Every request comes from a new client address (trusted X-Forwarded-For from loopback,
written by wrk's Lua hook from a counter) for a shop-like path with a browser user agent: the
node does all its per-request work (client IP, lists, record, engine, all detectors) and no
address ever sends enough to be detected, so nothing is blocked and both proxies forward every
request (the script checks). After the rounds it keeps feeding the node new addresses the
same way until `--ips` distinct ones have gone through it, and prints its RSS against the
RSS it had when it started.

Needs `nginx` and `wrk` on PATH (`apt-get install nginx-light wrk`). Targets (issue 3): node
>= 1.5x the requests/s of stock mitmdump at a lower p99; RSS <= 256 MiB over baseline after
1,000,000 client addresses.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from node.proxy.master import mitmproxy_options  # noqa: E402
from node.proxy.settings import NodeSettings  # noqa: E402

MiB = 1024 * 1024
HOST = "127.0.0.1"
BODY = json.dumps({"id": 42, "name": "compact oak lamp", "category": "home", "price": 39.9,
                   "rating": 4.4, "stock": 17, "description": "quality design everyday " * 20})

NGINX_CONF = """
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/nginx-body;
    proxy_temp_path {dir}/nginx-proxy;
    fastcgi_temp_path {dir}/nginx-fastcgi;
    uwsgi_temp_path {dir}/nginx-uwsgi;
    scgi_temp_path {dir}/nginx-scgi;
    keepalive_requests 1000000;
    server {{
        listen {host}:{port} reuseport backlog=4096;
        location / {{
            default_type application/json;
            return 200 '{body}';
        }}
    }}
}}
"""

# wrk's Lua hooks: each request from the next address of a counter (10.0.0.0/8), for a
# product page, with a browser UA; `done` prints the figures as one JSON line.
WRK_LUA = r"""
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
function init(args)
  base = tonumber(args[1]) or 0
  nthreads = tonumber(args[2]) or 1
  counter = tid
end
local ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) " ..
           "Chrome/131.0.0.0 Safari/537.36"
function request()
  local n = base + counter
  counter = counter + nthreads
  local ip = string.format("10.%d.%d.%d", math.floor(n / 65536) % 256,
                           math.floor(n / 256) % 256, n % 256)
  return wrk.format("GET", "/api/products/" .. (n % 5000 + 1), {
    ["X-Forwarded-For"] = ip, ["User-Agent"] = ua, ["Accept"] = "application/json"})
end
function done(summary, latency, requests)
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"non2xx":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


@dataclass
class Run:
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    requests: int
    errors: int
    cpu_ms: float = 0.0      # the target's CPU time per request (robust to a busy machine)


@dataclass
class Target:
    name: str
    port: int
    proc: subprocess.Popen | None = None
    runs: list[Run] = field(default_factory=list)

    def best(self) -> Run:
        return max(self.runs, key=lambda r: r.rps)

    def median(self, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in self.runs)

    def cpu_seconds(self) -> float:
        """CPU time of the target's process and its children (nginx's workers)."""
        if self.proc is None:
            return 0.0
        return sum(_cpu(pid) for pid in [self.proc.pid, *_children(self.proc.pid)])


def _cpu(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")   # utime + stime


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen | None, what: str,
                   timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode} before listening")
        with socket.socket() as s:
            if s.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"{what} did not listen on {port} within {timeout:.0f} s")


def rss_mib(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) of a process, MiB."""
    vals = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                vals[k] = int(v.split()[0]) / 1024
    return vals["VmRSS"], vals["VmHWM"]


def pin(pid: int, cpus: set[int]) -> None:
    try:
        os.sched_setaffinity(pid, cpus)
    except (OSError, AttributeError):
        pass


def wrk(port: int, seconds: float, connections: int, script: str, base: int,
        cpus: set[int] | None) -> Run:
    threads = 1
    secs = max(1, math.ceil(seconds))          # wrk takes whole seconds only
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{secs}s",
           "--timeout", "10s", "-s", script, f"http://{HOST}:{port}/", "--",
           str(base), str(threads)]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if cpus:
        pin(p.pid, cpus)
    out, err = p.communicate()
    line = next((ln for ln in out.splitlines() if ln.startswith("BENCH ")), None)
    if p.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed ({p.returncode}): {err.strip() or out.strip()}")
    d = json.loads(line[6:])
    errors = d["non2xx"] + d["connect"] + d["read"] + d["write"] + d["timeout"]
    return Run(rps=d["requests"] / (d["duration_us"] / 1e6), p50_ms=d["p50_us"] / 1000,
               p90_ms=d["p90_us"] / 1000, p99_ms=d["p99_us"] / 1000,
               requests=d["requests"], errors=errors)


def node_yaml(port: int, admin: int, upstream: int, state: str) -> str:
    from node.demo.config import DEMO_YAML

    return DEMO_YAML + f"""
node:
  listen: {HOST}:{port}
  upstream: http://{HOST}:{upstream}
  admin: {HOST}:{admin}
  trusted_proxies: [127.0.0.1/32]
  state_dir: {state}
"""


def mitmdump_args(settings: NodeSettings) -> list[str]:
    """The node's own mitmproxy options as `mitmdump --set` flags."""
    args = ["--mode", settings.mode, "--quiet", "--set", "block_global=false"]
    for k, v in mitmproxy_options(settings).items():
        if k == "mode" or v is None:
            continue
        value = ("true" if v else "false") if isinstance(v, bool) else str(v)
        args += ["--set", f"{k}={value}"]
    return args


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=15.0, help="per target per round")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--ips", type=int, default=1_000_000,
                    help="distinct client addresses fed to the node before reading its RSS")
    ap.add_argument("--no-optimize", dest="optimize", action="store_false",
                    help="run the node without PYTHONOPTIMIZE=1 (the deployment files set it: "
                         "it drops mitmproxy's per-message type checks, ~8%% of the node's CPU)")
    ap.add_argument("--profile", metavar="SVG",
                    help="record the node with py-spy during the first node round")
    args = ap.parse_args()
    for tool in ("nginx", "wrk"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: apt-get install nginx-light wrk")
    mitmdump = Path(sys.executable).with_name("mitmdump")
    if not mitmdump.exists():
        raise SystemExit(f"{mitmdump} not found (pip install mitmproxy)")

    ncpu = len(os.sched_getaffinity(0))
    proxy_cpus, load_cpus = ({0}, set(range(1, ncpu))) if ncpu >= 2 else (None, None)
    tmp = tempfile.mkdtemp(prefix="palisade-bench-proxy-")
    procs: list[subprocess.Popen] = []
    try:
        script = os.path.join(tmp, "bench.lua")
        Path(script).write_text(WRK_LUA)
        # the upstream
        up_port = free_port()
        conf = os.path.join(tmp, "nginx.conf")
        Path(conf).write_text(NGINX_CONF.format(dir=tmp, host=HOST, port=up_port, body=BODY))
        nginx = subprocess.Popen(["nginx", "-c", conf, "-e", os.path.join(tmp, "nginx-err.log")],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 start_new_session=True)
        procs.append(nginx)
        wait_listening(up_port, nginx, "nginx")
        if load_cpus:
            for pid in _children(nginx.pid) + [nginx.pid]:
                pin(pid, load_cpus)
        # the node, every detector on
        node_port, admin_port = free_port(), free_port()
        cfg = os.path.join(tmp, "node.yaml")
        Path(cfg).write_text(node_yaml(node_port, admin_port, up_port, os.path.join(tmp, "node")))
        node_log = open(os.path.join(tmp, "node.log"), "w")
        env = dict(os.environ)
        if args.optimize:
            env["PYTHONOPTIMIZE"] = "1"
        node = subprocess.Popen([sys.executable, "-m", "node.cli", "node", "--config", cfg],
                                cwd=ROOT, stdout=node_log, stderr=subprocess.STDOUT,
                                start_new_session=True, env=env)
        procs.append(node)
        # stock mitmdump, same options
        mitm_port = free_port()
        settings = NodeSettings(listen_host=HOST, listen_port=mitm_port,
                                upstream=f"http://{HOST}:{up_port}",
                                state_dir=os.path.join(tmp, "mitmdump"))
        os.makedirs(settings.state_dir)
        mitm_log = open(os.path.join(tmp, "mitmdump.log"), "w")
        mitm = subprocess.Popen([str(mitmdump), *mitmdump_args(settings)], stdout=mitm_log,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                env={k: v for k, v in os.environ.items()
                                     if k != "PYTHONOPTIMIZE"})   # stock: as installed
        procs.append(mitm)
        wait_listening(node_port, node, "palisade node")
        wait_listening(mitm_port, mitm, "mitmdump")
        for p in (node, mitm):
            if proxy_cpus:
                pin(p.pid, proxy_cpus)
        _ready(admin_port)
        baseline, _ = rss_mib(node.pid)

        targets = [Target("palisade node", node_port, node), Target("stock mitmdump", mitm_port,
                                                                    mitm),
                   Target("nginx alone", up_port, nginx)]
        # Addresses for the node come from one counter, so each is new to it; the others
        # do not care which addresses they see.
        base = node_fed = 0
        # warm-up: connections, imports, the engine's first tables (not measured)
        for t in targets:
            r = wrk(t.port, 3, args.connections, script, base if t.proc is node else 0,
                    load_cpus)
            if t.proc is node:
                base += r.requests + 1000   # + what the threads may have drawn past the count
                node_fed += r.requests
        print(f"node run with PYTHONOPTIMIZE={'1' if args.optimize else 'unset'}; "
              f"upstream nginx {HOST}:{up_port}; proxies on CPU {sorted(proxy_cpus or [])}, "
              f"nginx + wrk on {sorted(load_cpus or [])}; {args.connections} keep-alive "
              f"connections, {args.seconds:g} s per run, {args.rounds} rounds", flush=True)
        for rnd in range(args.rounds):
            order = targets[rnd % 2:2] + targets[:rnd % 2] + targets[2:]  # alternate who's first
            for t in order:
                prof = None
                if args.profile and rnd == 0 and t.proc is node:
                    prof = _py_spy(node.pid, args.seconds, args.profile)
                cpu0 = t.cpu_seconds()
                r = wrk(t.port, args.seconds, args.connections, script,
                        base if t.proc is node else 0, load_cpus)
                r.cpu_ms = (t.cpu_seconds() - cpu0) * 1000 / max(r.requests, 1)
                if prof is not None:
                    prof.wait()
                if t.proc is node:
                    base += r.requests + 1000
                    node_fed += r.requests
                t.runs.append(r)
                print(f"  round {rnd + 1}: {t.name:<15} {r.rps:>9,.0f} req/s  p50 "
                      f"{r.p50_ms:6.2f} ms  p99 {r.p99_ms:6.2f} ms  CPU {r.cpu_ms:.2f} ms/req  "
                      f"errors/non-2xx {r.errors}", flush=True)
        _report(targets)
        # Latency without queueing: one connection, one request at a time. Under saturation
        # (above) p50 is mostly the queue (connections / rate); this is the proxy's own delay,
        # and where a collector's pause shows (wrk's percentiles weigh a pause by its
        # length: 300 ms every 2 s reads as p99 ~270 ms), so every run's p99 is printed.
        lat: dict[str, list[Run]] = {t.name: [] for t in targets[:2]}
        one_rounds = max(2, args.rounds)
        for rnd in range(one_rounds):
            for t in (targets[:2] if rnd % 2 == 0 else targets[1::-1]):
                r = wrk(t.port, min(args.seconds, 15.0), 1, script,
                        base if t.proc is node else 0, load_cpus)
                if t.proc is node:
                    base += r.requests + 1000
                    node_fed += r.requests
                lat[t.name].append(r)
        print(f"one connection (no queueing), median of {one_rounds} runs:")
        for name, runs in lat.items():
            print(f"  {name:<15} p50 {statistics.median(r.p50_ms for r in runs):.2f} ms  "
                  f"p90 {statistics.median(r.p90_ms for r in runs):.2f} ms  "
                  f"p99 {statistics.median(r.p99_ms for r in runs):.2f} ms  (each run's "
                  f"p99: {', '.join(f'{r.p99_ms:.1f}' for r in runs)} ms)")
        blocked = _metric(admin_port, 'palisade_requests_total{verdict="blocked"}')
        print(f"  node: {blocked:.0f} requests blocked during the runs (must be 0 for a fair "
              "comparison)")

        # memory: keep feeding new addresses until --ips have gone through the node
        node_rps = targets[0].best().rps
        while node_fed < args.ips:
            left = args.ips - node_fed
            secs = min(120.0, max(5.0, left / max(node_rps, 1.0) * 1.05))
            r = wrk(node_port, secs, args.connections, script, base, load_cpus)
            base += r.requests + 1000
            node_fed += r.requests
            rss, peak = rss_mib(node.pid)
            print(f"  feeding addresses: {node_fed:,} / {args.ips:,}  (RSS {rss:.0f} MiB)",
                  flush=True)
        rss, peak = rss_mib(node.pid)
        tracked = _metric(admin_port, "palisade_sessions_tracked")
        evicted = _metric(admin_port, "palisade_evictions_total")
        print(f"\nnode RSS: {baseline:.0f} MiB at start, {rss:.0f} MiB after {node_fed:,} "
              f"distinct "
              f"client addresses (peak {peak:.0f} MiB): +{rss - baseline:.0f} MiB over "
              f"baseline, +{peak - baseline:.0f} MiB at peak; target <= 256 MiB: "
              f"{'met' if peak - baseline <= 256 else 'NOT met'}; sessions tracked {tracked:.0f}, "
              f"evictions {evicted:.0f}"
              "\n  (fed over HTTP: each request from the next address of 10.0.0.0/8 in "
              "X-Forwarded-For, trusted from loopback)")
    finally:
        for p in reversed(procs):
            _stop(p)
        shutil.rmtree(tmp, ignore_errors=True)


def _report(targets: list[Target]) -> None:
    node, mitm, up = targets
    print("\nbest round of each (median in brackets):")
    for t in targets:
        b = t.best()
        print(f"  {t.name:<15} {b.rps:>9,.0f} req/s ({t.median('rps'):,.0f})  "
              f"p50 {b.p50_ms:.2f} ms ({t.median('p50_ms'):.2f})  "
              f"p99 {b.p99_ms:.2f} ms ({t.median('p99_ms'):.2f})  "
              f"CPU {b.cpu_ms:.2f} ms/req ({t.median('cpu_ms'):.2f})")
    ratio = node.best().rps / mitm.best().rps
    mratio = node.median("rps") / mitm.median("rps")
    lower = node.median("p99_ms") < mitm.median("p99_ms")
    print(f"  node / mitmdump: {ratio:.2f}x requests/s (medians {mratio:.2f}x), p99 "
          f"{'lower' if lower else 'NOT lower'}; target >= 1.5x at a lower p99: "
          f"{'met' if mratio >= 1.5 and lower else 'NOT met'}")
    cratio = mitm.median("cpu_ms") / node.median("cpu_ms")
    print(f"  CPU per request: mitmdump / node = {cratio:.2f}x (medians)")
    print(f"  upstream headroom: nginx alone serves {up.best().rps / node.best().rps:.0f}x "
          "the node's rate")


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def _ready(admin_port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{admin_port}/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("the node did not become ready")


def _metric(admin_port: int, name: str) -> float:
    """A sample's value; a bare metric name sums all its labelled samples."""
    total = 0.0
    with urllib.request.urlopen(f"http://{HOST}:{admin_port}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith((name + " ", name + "{") if "{" not in name else name + " "):
                total += float(line.rsplit(" ", 1)[1])
    return total


def _py_spy(pid: int, seconds: float, out: str) -> subprocess.Popen:
    exe = shutil.which("py-spy")
    if exe is None:
        raise SystemExit("--profile needs py-spy (pip install py-spy)")
    fmt = {".json": "speedscope", ".txt": "raw"}.get(Path(out).suffix, "flamegraph")
    return subprocess.Popen([exe, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "200",
                             "-f", fmt, "-o", out, "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _stop(p: subprocess.Popen) -> None:
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)   # nginx's workers too
        except ProcessLookupError:
            return
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


if __name__ == "__main__":
    main()
