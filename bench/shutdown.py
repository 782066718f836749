"""Stop time on SIGTERM: `palisade control` with nodes' long polls in flight and idle
keep-alive connections, and `palisade node` with idle keep-alive connections and one request
still at the upstream. Prints SIGTERM-to-exit seconds (median of `--rounds`); target < 2 s.

    python bench/shutdown.py [--rounds 3] [--connections 8]
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import json
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NODE_TOKEN = "bench-node-token-0123456789"


class Slow(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path == "/slow":
            time.sleep(5)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


class QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        pass    # the proxy cut the slow request at its stop: expected, not worth a trace


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int) -> None:
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port}")


def stop(proc: subprocess.Popen) -> float:
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    if proc.wait(60) != 0:
        raise SystemExit(f"exit code {proc.returncode}")
    return time.monotonic() - started


def control_round(tmp: Path, connections: int) -> float:
    cfg = tmp / "control.yaml"
    cfg.write_text(json.dumps({"control": {
        "listen": "127.0.0.1:0", "state_dir": str(tmp / "control"),
        "tokens": [{"name": "n", "role": "node", "token": NODE_TOKEN}]}}))
    proc = subprocess.Popen([sys.executable, "-m", "node.cli", "control", "-c", str(cfg)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    url = proc.stdout.readline().split("listening on ", 1)[1].split()[0]
    host, port = url.removeprefix("http://").rsplit(":", 1)
    conns = []
    for i in range(connections):
        c = http.client.HTTPConnection(host, int(port), timeout=60)
        if i % 2:
            c.request("GET", "/healthz")                     # then idle, kept alive
            c.getresponse().read()
        else:
            c.request("GET", "/api/v1/sync/lists?since=0&wait=30",   # a node's long poll
                      headers={"Authorization": f"Bearer {NODE_TOKEN}"})
        conns.append(c)
    time.sleep(1.0)
    took = stop(proc)
    for c in conns:
        c.close()
    proc.stdout.close()
    return took


def node_round(tmp: Path, connections: int, upstream_port: int) -> float:
    port = free_port()
    cfg = tmp / "node.yaml"
    cfg.write_text(json.dumps({"state_dir": str(tmp / "node"), "node": {
        "listen": f"127.0.0.1:{port}", "admin": "off",
        "upstream": f"http://127.0.0.1:{upstream_port}"}}))
    proc = subprocess.Popen([sys.executable, "-m", "node.cli", "node", "-c", str(cfg)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    conns = []
    for i in range(connections):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        c.request("GET", f"/item/{i}")
        c.getresponse().read()
        conns.append(c)
    busy = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    busy.request("GET", "/slow")
    conns.append(busy)
    time.sleep(0.5)
    took = stop(proc)
    for c in conns:
        c.close()
    return took


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--connections", type=int, default=8)
    args = p.parse_args()
    upstream = QuietServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    control, node = [], []
    with tempfile.TemporaryDirectory(prefix="palisade-bench-") as tmp:
        for _ in range(args.rounds):
            control.append(control_round(Path(tmp), args.connections))
            node.append(node_round(Path(tmp), args.connections, upstream.server_address[1]))
    upstream.shutdown()
    n = args.connections
    print(f"SIGTERM to exit, median of {args.rounds} (max):")
    print(f"  palisade control, {n // 2 + n % 2} long polls + {n // 2} idle keep-alive: "
          f"{statistics.median(control):.2f} s ({max(control):.2f} s)")
    print(f"  palisade node, {n} idle keep-alive + 1 request at the upstream:   "
          f"{statistics.median(node):.2f} s ({max(node):.2f} s)")


if __name__ == "__main__":
    main()
