"""The README's first commands, run as printed on a machine with nothing set: the first
configuration check (README and the example's own header) must pass as shipped."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def printed_commands() -> list[str]:
    """`palisade check ...` lines of the README's sh blocks and the example's header."""
    readme = ROOT / "README.md"
    blocks = re.findall(r"```sh\n(.*?)```", readme.read_text(), flags=re.DOTALL)
    cmds = [line.split("#")[0].strip() for b in blocks for line in b.splitlines()]
    header = (ROOT / "config" / "palisade.example.yaml").read_text().splitlines()[0]
    cmds.append(header.split("Validate with:", 1)[1].strip())
    return [c for c in cmds if c.startswith("palisade check ")]


def test_readme_prints_the_check():
    assert "palisade check config/palisade.example.yaml" in printed_commands()


@pytest.mark.parametrize("command", sorted(set(printed_commands())))
def test_first_check_passes_as_printed(command):
    """Regression: it exited 2 until PALISADE_CONTROL_TOKEN was set to >= 16 characters."""
    argv = shlex.split(command)
    exe = Path(sys.executable).with_name("palisade")
    argv[:1] = [str(exe)] if exe.exists() else [sys.executable, "-m", "node.cli"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PALISADE_")}
    p = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "OK" in p.stdout, p.stdout + p.stderr
    assert not p.stderr
