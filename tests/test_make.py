"""`make test` sets the machine up itself: the Debian packages the tests run (chromium for
the browser tests, systemd-analyze for the units) are installed when missing, as root after
`apt-get update`; without root it says which are missing."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAKE = shutil.which("make")
needs_make = pytest.mark.skipif(MAKE is None, reason="make is not installed")


def system_deps() -> dict[str, str]:
    """TEST_SYSTEM_DEPS of the Makefile: program → Debian package."""
    m = re.search(r"^TEST_SYSTEM_DEPS := (.*)$", (ROOT / "Makefile").read_text(), re.M)
    assert m
    return dict(pair.split(":", 1) for pair in m.group(1).split())


def test_every_program_the_tests_look_for_is_installed_by_make():
    """Regression: only .ci/run installed chromium, so `make test` under CI=true on a fresh
    machine failed all browser tests."""
    wanted = set()
    for path in (ROOT / "tests").glob("*.py"):
        wanted |= set(re.findall(r"shutil\.which\(\"([\w.-]+)\"\)", path.read_text()))
    covered = system_deps()
    assert {"chromium", "systemd-analyze"} <= wanted
    # chromium-browser: the browser test's other name for chromium; make: what runs this
    assert wanted - set(covered) <= {"chromium-browser", "make"}, wanted
    assert covered["chromium"] == "chromium"


@needs_make
def test_make_test_runs_the_set_up():
    p = subprocess.run([MAKE, "-n", "test"], cwd=ROOT, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.index("apt-get update") < p.stdout.index("pytest")
    assert "pg_ctlcluster" in p.stdout
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci and "apt-get" not in ci   # one place does the set-up


@needs_make
def test_test_deps_installs_only_what_is_missing(tmp_path):
    calls = tmp_path / "calls"
    fake = tmp_path / "apt-get"
    fake.write_text(f"#!/bin/sh\necho \"$*\" >> {calls}\n")
    fake.chmod(0o755)
    p = subprocess.run([MAKE, "-s", "test-deps", f"APT_GET={fake}",
                        "TEST_SYSTEM_DEPS=no-such-program-zz:pkg-zz sh:dash"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    if os.geteuid() == 0:
        assert calls.read_text().splitlines() == ["update -qq", "install -y -qq pkg-zz"]
    else:
        assert not calls.exists() and "pkg-zz" in p.stderr and "dash" not in p.stderr
