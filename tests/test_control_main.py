"""`palisade control` entry: settings from the file, create-token, one-line start-up errors,
and the real process serving until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from node.control.auth import Authenticator
from node.control.main import add_control_token_parser, control_settings, main
from node.control.settings import ControlSettings
from node.control.storage import open_storage
from node.errors import PalisadeError

ROOT = Path(__file__).resolve().parent.parent


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="palisade")
    sub = p.add_subparsers(dest="command")
    c = sub.add_parser("control")
    c.add_argument("--config", "-c")
    add_control_token_parser(c)
    return p


def test_settings_default_and_from_file(tmp_path):
    assert control_settings(None) == ControlSettings()
    cfg = tmp_path / "p.yaml"
    cfg.write_text(f"state_dir: {tmp_path}/st\ncontrol:\n  listen: 127.0.0.1:0\n")
    s = control_settings(str(cfg))
    assert (s.listen_port, s.state_dir) == (0, f"{tmp_path}/st")
    assert s.storage == f"sqlite:///{tmp_path}/st/control.db"
    cfg.write_text("state_dir: /elsewhere\ncontrol:\n  state_dir: /mine\n")
    assert control_settings(str(cfg)).state_dir == "/mine"


def test_create_token_stores_only_a_hash_that_authenticates(tmp_path, capsys):
    cfg = tmp_path / "p.yaml"
    cfg.write_text(f"control:\n  state_dir: {tmp_path}\n")
    args = parser().parse_args(["control", "create-token", "edge-1", "--role", "node",
                                "-c", str(cfg)])
    assert args.control_cmd == "create-token"
    assert main(args) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("pal_") and len(token) > 40

    async def check() -> tuple:
        storage = await open_storage(f"sqlite:///{tmp_path}/control.db")
        try:
            p = await Authenticator(storage, {}).authenticate(f"Bearer {token}")
            raw = (tmp_path / "control.db").read_bytes()
            return p.name, p.role, token.encode() in raw
        finally:
            await storage.close()
    assert asyncio.run(check()) == ("edge-1", "node", False)


def test_bad_role_and_name_are_refused(tmp_path):
    with pytest.raises(SystemExit):
        parser().parse_args(["control", "create-token", "x", "--role", "root"])
    args = parser().parse_args(["control", "create-token", "x" * 65, "--role", "viewer"])
    with pytest.raises(PalisadeError, match="1 to 64"):
        main(args)


def test_port_in_use_is_one_error(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cfg = tmp_path / "p.yaml"
        cfg.write_text(f"control:\n  listen: 127.0.0.1:{port}\n  state_dir: {tmp_path}\n")
        with pytest.raises(PalisadeError, match=f"cannot listen on 127.0.0.1:{port}"):
            main(parser().parse_args(["control", "-c", str(cfg)]))


@pytest.mark.integration
def test_serves_until_sigterm(tmp_path):
    cfg = tmp_path / "p.yaml"
    cfg.write_text(json.dumps({"control": {"listen": "127.0.0.1:0",
                                           "state_dir": str(tmp_path)}}))
    proc = subprocess.Popen([sys.executable, "-m", "node.cli", "control", "-c", str(cfg)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    try:
        line = proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in line, line
        url = line.split("listening on ", 1)[1].split()[0]
        with urllib.request.urlopen(f"{url}/healthz", timeout=5) as r:
            assert r.status == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()


NODE_TOKEN = "node-token-0123456789abcdef"


@pytest.mark.integration
def test_sigterm_answers_long_polls_and_exits_cleanly(tmp_path):
    """Regression: SIGTERM took 7-12 s, held by nodes' long polls (shutdown_timeout 5 s, then
    the connections were cut unanswered). Now the pulls in flight are answered and the
    process exits 0 without a traceback; open keep-alive connections do not hold it."""
    import http.client
    import threading
    import time

    cfg = tmp_path / "p.yaml"
    cfg.write_text(json.dumps({"control": {
        "listen": "127.0.0.1:0", "state_dir": str(tmp_path),
        "tokens": [{"name": "n", "role": "node", "token": NODE_TOKEN}]}}))
    proc = subprocess.Popen([sys.executable, "-m", "node.cli", "control", "-c", str(cfg)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    answers: list[int | str] = []
    try:
        url = proc.stdout.readline().split("listening on ", 1)[1].split()[0]
        host, port = url.removeprefix("http://").rsplit(":", 1)
        idle = []
        for _ in range(3):                       # keep-alive connections, idle after a request
            c = http.client.HTTPConnection(host, int(port), timeout=10)
            c.request("GET", "/healthz")
            c.getresponse().read()
            idle.append(c)

        def pull() -> None:
            c = http.client.HTTPConnection(host, int(port), timeout=30)
            try:
                c.request("GET", "/api/v1/sync/lists?since=0&wait=30",
                          headers={"Authorization": f"Bearer {NODE_TOKEN}"})
                r = c.getresponse()
                answers.append(r.status if json.loads(r.read())["changes"] == [] else "?")
            except (OSError, http.client.HTTPException) as e:
                answers.append(type(e).__name__)
            finally:
                c.close()
        pulls = [threading.Thread(target=pull) for _ in range(3)]
        for t in pulls:
            t.start()
        time.sleep(1.0)                          # the pulls are waiting on the server
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        print(f"control plane stopped {time.monotonic() - started:.2f} s after SIGTERM "
              "(3 long polls, 3 idle keep-alive connections)")
        for t in pulls:
            t.join(30)
        for c in idle:
            c.close()
        assert answers == [200, 200, 200]
        err = proc.stderr.read()
        assert "Traceback" not in err and " ERROR " not in err, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
