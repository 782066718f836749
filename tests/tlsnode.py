"""A real `palisade node` with TLS on loopback, as a child process (its RSS is its own), and
a counting upstream, also a child process.

Used by the HTTP/2 rapid-reset integration test and `bench/h2_rapid_reset.py`: a self-signed
certificate made on the spot, a configuration file written here, `python -m node.cli node`
started exactly as an operator would, readiness read from the admin listener.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


UPSTREAM = r"""
import asyncio, collections, sys
from aiohttp import web
seen = collections.Counter()
async def handle(req):
    if req.path == "/__count":
        return web.json_response(seen)
    seen[req.path.split("/")[1]] += 1
    if req.path.startswith("/slow"):
        await asyncio.sleep(1.0)
    return web.json_response({"ok": True})
app = web.Application()
app.router.add_route("*", "/{tail:.*}", handle)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


class CountingUpstream:
    """An aiohttp upstream in its own process counting requests by first path segment
    (`/attack/...` → "attack"); `/slow...` answers after a second."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen([sys.executable, "-c", UPSTREAM, str(self.port)])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex((HOST, self.port)) == 0:
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("the upstream did not listen")

    def counts(self) -> dict[str, int]:
        with urllib.request.urlopen(f"http://{HOST}:{self.port}/__count", timeout=5) as r:
            return json.loads(r.read())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def self_signed(directory: Path) -> tuple[str, str]:
    """(certificate, key) PEM files for `localhost`, valid for a day."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
            .sign(key, hashes.SHA256()))
    c, k = directory / "cert.pem", directory / "key.pem"
    c.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    k.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    return str(c), str(k)


class TlsNode:
    """`palisade node` terminating TLS on an ephemeral port in front of `upstream_port`."""

    def __init__(self, workdir: Path, upstream_port: int, *, http2_yaml: str = "",
                 root: Path = ROOT) -> None:
        self.workdir = workdir
        self.root = root
        self.cert, self.key = self_signed(workdir)
        self.port, self.admin_port = free_port(), free_port()
        self.config = workdir / "node.yaml"
        # loopback is an exception: the probes and warm-up traffic must never be blocked
        self.config.write_text(f"""\
exceptions: [127.0.0.1/32]
node:
  listen: {HOST}:{self.port}
  upstream: http://{HOST}:{upstream_port}
  admin: {HOST}:{self.admin_port}
  tls: {{cert: {self.cert}, key: {self.key}}}
  state_dir: {workdir / "state"}
{http2_yaml}""")
        self.proc: subprocess.Popen | None = None
        self.log = workdir / "node.log"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.cert)

    def start(self, timeout: float = 60.0) -> None:
        env = {**os.environ, "PYTHONPATH": str(self.root), "PALISADE_DNS": "off"}
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "node.cli", "node", "--config", str(self.config)],
                cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"palisade node exited with {self.proc.returncode}:\n"
                                   + self.tail())
            try:
                with urllib.request.urlopen(
                        f"http://{HOST}:{self.admin_port}/readyz", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("palisade node did not become ready:\n" + self.tail())

    def rss_mib(self) -> float:
        assert self.proc is not None
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def metric(self, name: str) -> float:
        """A sample's value from /metrics (0 when absent); `name` may carry labels."""
        with urllib.request.urlopen(f"http://{HOST}:{self.admin_port}/metrics", timeout=5) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.rsplit(" ", 1)[1])
        return 0.0

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
