"""`palisade replay`: works with no flags, reads gzip, and turns bad input into one line and
exit code 2 (never a traceback)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys

import pytest

from node.cli import main
from node.sim import Scenario, simulate, to_records

LINE = ('203.0.113.{n} - - [23/Nov/2026:10:00:{s:02d} +0000] "GET {p} HTTP/1.1" 404 162 "-" '
        '"Mozilla/5.0 (X11; Linux x86_64) Chrome/142.0 Safari/537.36"\n')
PROBES = ["/.env", "/.git/config", "/wp-config.php.bak", "/phpmyadmin/", "/.aws/credentials"]


def _scan_log(n: int = 7) -> str:
    return "".join(LINE.format(n=n, s=i, p=p) for i, p in enumerate(PROBES))


def test_replay_plain_and_gzip_without_flags(tmp_path, capsys):
    plain = tmp_path / "access.log"
    plain.write_text(_scan_log())
    gz = tmp_path / "rotated.log.1"             # gzip recognised by content, not by name
    gz.write_bytes(gzip.compress(_scan_log(8).encode()))
    assert main(["replay", str(plain), str(gz)]) == 0
    out = capsys.readouterr().out
    assert "security_crawlers" in out and "203.0.113.7" in out and "203.0.113.8" in out
    assert "records/s" in out


def test_replay_json_records_from_the_simulator(tmp_path, capsys):
    path = tmp_path / "records.jsonl"
    sc = Scenario.only("scanner", scale=1.0, humans=0.05, seed=4, duration=900.0)
    path.write_text("".join(r.to_json() + "\n" for r in to_records(simulate(sc), seed=4)))
    assert main(["replay", "--json", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out, "no detection"
    d = json.loads(out[0])
    assert d["bot_type"] and 0 < d["confidence"] <= 1 and d["evidence"]
    assert d["ttd_requests"] >= 1 and d["ttd_seconds"] >= 0


@pytest.mark.parametrize(("yaml_text", "needle"), [
    ("profiles:\n  - name: p\n    tolerence: low\n", "profiles[0].tolerence: unknown key"),
    ("engine:\n  session_timeout: -30m\n", "must not be negative"),
    ("detectors:\n  request_frequency: {}\n", "detectors.request_frequency: unknown detector"),
])
def test_replay_bad_config_one_line_exit_2(tmp_path, capsys, yaml_text, needle):
    cfg = tmp_path / "palisade.yaml"
    cfg.write_text(yaml_text)
    log = tmp_path / "a.log"
    log.write_text(_scan_log())
    assert main(["replay", "--config", str(cfg), str(log)]) == 2
    err = capsys.readouterr().err
    assert needle in err and f"{cfg}:" in err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("make", [
    lambda p: None,                                        # missing
    lambda p: p.mkdir(),                                   # a directory
    lambda p: p.write_bytes(b"\x00\x01binary junk\n" * 10),  # no known format
])
def test_replay_unreadable_input_one_line_exit_2(tmp_path, capsys, make):
    target = tmp_path / "input.log"
    make(target)
    assert main(["replay", str(target)]) == 2
    err = capsys.readouterr().err
    assert "input.log" in err and err.count("\n") == 1 and "Traceback" not in err


def test_replay_control_characters_are_escaped_in_the_table(tmp_path, capsys):
    evil_ua = "sqlmap/1.7 \x1b[2J\x1b]0;pwned\x07"
    line = ('198.51.100.4 - - [23/Nov/2026:10:00:0{i} +0000] "GET /.env HTTP/1.1" 404 1 "-" '
            f'"{evil_ua}"\n')
    log = tmp_path / "evil.log"
    log.write_text("".join(line.format(i=i) for i in range(3)))
    assert main(["replay", str(log)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out


def test_replay_error_lines_carry_no_control_characters(tmp_path, capsys):
    target = tmp_path / "evil\x1b[2J.log"                 # missing, with an escape in its name
    assert main(["replay", str(target)]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "evil" in err and err.count("\n") == 1


def test_replay_gives_the_same_detections_every_run(tmp_path):
    """The command fixes the hash seed itself (sketch positions come from `hash()`), so a
    replay is reproducible without the caller setting PYTHONHASHSEED."""
    path = tmp_path / "records.jsonl"
    sc = Scenario.default(scale=0.3, seed=9, duration=1800.0)
    path.write_text("".join(r.to_json() + "\n" for r in to_records(simulate(sc), seed=9)))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
    runs = [subprocess.run([sys.executable, "-c", "import sys; from node.cli import main; "
                            "sys.argv[0] = 'palisade'; sys.exit(main())",
                            "replay", "--json", "--no-progress", str(path)],
                           env=env, capture_output=True, text=True, timeout=120)
            for _ in range(2)]
    assert runs[0].returncode == 0, runs[0].stderr
    assert runs[0].stdout and runs[0].stdout == runs[1].stdout
