"""`palisade node` stops cleanly on SIGTERM with client connections open: exit code 0, no
traceback, no unclosed transport. (Before, each open keep-alive connection logged an ERROR
traceback from the event loop's final cancellation.)"""

from __future__ import annotations

import asyncio
import http.client
import http.server
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest

with warnings.catch_warnings():
    # mitmproxy 12.2 calls pyparsing names that pyparsing 3.3 deprecates, at import time
    warnings.simplefilter("ignore", DeprecationWarning)
    import mitmproxy.master  # noqa: F401

    from node.demo.config import demo_engine_config
    from node.demo.shop import start_shop
    from node.proxy.run import RunningNode
    from node.proxy.settings import NodeSettings

ROOT = Path(__file__).resolve().parents[1]


class Upstream(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path == "/slow":
            time.sleep(3)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args) -> None:
        pass


class QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        pass    # the proxy cut the slow request at its stop: expected, not worth a trace


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.integration
def test_sigterm_with_open_keep_alive_connections(tmp_path):
    upstream = QuietServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    port = free_port()
    cfg = tmp_path / "node.yaml"
    cfg.write_text(json.dumps({"state_dir": str(tmp_path / "state"), "node": {
        "listen": f"127.0.0.1:{port}", "admin": "off",
        "upstream": f"http://127.0.0.1:{upstream.server_address[1]}"}}))
    proc = subprocess.Popen([sys.executable, "-W", "default", "-m", "node.cli", "node",
                             "-c", str(cfg)], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    conns: list[http.client.HTTPConnection] = []
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        for i in range(4):                      # keep-alive connections, idle after a request
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", f"/item/{i}")
            assert c.getresponse().read() == b"ok"
            conns.append(c)
        busy = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        busy.request("GET", "/slow")            # one request still at the upstream
        conns.append(busy)
        time.sleep(0.5)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        print(f"node stopped {time.monotonic() - started:.2f} s after SIGTERM "
              "(4 idle keep-alive connections, 1 request in flight)")
        err = proc.stderr.read()
        assert "Traceback" not in err and " ERROR " not in err, err[-3000:]
        assert "ResourceWarning" not in err, err[-3000:]
        assert "node stopped" in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
        for c in conns:
            c.close()
        upstream.shutdown()
        upstream.server_close()


@pytest.mark.integration
async def test_stop_closes_open_client_connections(tmp_path):
    """Regression (a ResourceWarning for an unclosed transport at the demo's exit): stop()
    left keep-alive connections to the event loop's final cancellation; now it ends them, so
    each client reads end of file and no transport outlives the loop."""
    shop = await start_shop("127.0.0.1", 0)
    node = RunningNode(NodeSettings(
        listen_host="127.0.0.1", listen_port=0, admin_host=None, state_dir=str(tmp_path),
        upstream=f"http://127.0.0.1:{shop.addresses[0][1]}"), demo_engine_config())
    await node.start()
    streams = []
    try:
        for i in range(3):
            reader, writer = await asyncio.open_connection(*node.proxy_addrs[0][:2])
            writer.write(f"GET /api/products/{i + 1} HTTP/1.1\r\nHost: shop\r\n\r\n".encode())
            assert (await reader.readline()).startswith(b"HTTP/1.1 200")
            streams.append((reader, writer))
        await node.stop()
        node = None
        for reader, _ in streams:          # the rest of the response, then end of file
            async with asyncio.timeout(5):
                while await reader.read(65536):
                    pass
    finally:
        for _, writer in streams:
            writer.close()
        if node is not None:
            await node.stop()
        await shop.cleanup()
