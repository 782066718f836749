"""Deployment files: systemd units (hardening, `systemd-analyze verify`) and the Dockerfile."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from node.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
UNITS = ("palisade-node.service", "palisade-control.service")
INSTALLED = "/opt/palisade/bin/palisade"   # where both the units and the image put the venv


def unit(name: str) -> dict[str, list[str]]:
    """A unit's [Service] settings, each key with all its values (keys repeat in units)."""
    values: dict[str, list[str]] = {}
    section = None
    for raw in (ROOT / "systemd" / name).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        values.setdefault(f"{section}.{key}", []).append(value)
    return values


HARDENING = {
    "DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
    "ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes", "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes", "RestrictNamespaces": "yes", "RestrictRealtime": "yes",
    "RestrictSUIDSGID": "yes", "LockPersonality": "yes", "MemoryDenyWriteExecute": "yes",
    "SystemCallArchitectures": "native", "StateDirectory": "palisade",
}


@pytest.mark.parametrize("name", UNITS)
def test_unit_is_hardened(name):
    u = unit(name)
    for key, want in HARDENING.items():
        assert u.get(f"Service.{key}") == [want], f"{name}: {key}"
    assert "@system-service" in u["Service.SystemCallFilter"]
    families = set(u["Service.RestrictAddressFamilies"][0].split())
    assert families <= {"AF_UNIX", "AF_NETLINK", "AF_INET", "AF_INET6"}
    # capabilities: the node may bind 80/443, the control plane gets none
    caps = u["Service.CapabilityBoundingSet"][0].split()
    assert caps == (["CAP_NET_BIND_SERVICE"] if "node" in name else [])
    # the state directory is the one writable path, and the configuration's state_dir
    assert u["Service.WorkingDirectory"] == ["/var/lib/palisade"]


@pytest.mark.parametrize("name", UNITS)
def test_unit_command_is_a_palisade_command(name):
    """ExecStart is what the CLI accepts (a renamed flag would break the unit silently)."""
    (cmd,) = unit(name)["Service.ExecStart"]
    argv = shlex.split(cmd)
    assert argv[0] == INSTALLED
    args = build_parser().parse_args(argv[1:])
    assert args.command == ("node" if "node" in name else "control")
    assert args.config == "/etc/palisade/palisade.yaml"


def test_both_reload_on_sighup():
    """Node and control plane re-read their configuration on SIGHUP (a bad file keeps the
    running one), so both units offer `systemctl reload`."""
    for name in ("palisade-node.service", "palisade-control.service"):
        assert unit(name)["Service.ExecReload"] == ["/bin/kill -HUP $MAINPID"]


@pytest.mark.parametrize("name", UNITS)
def test_systemd_analyze_verify(name, tmp_path):
    exe = shutil.which("systemd-analyze")
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail("systemd-analyze is not installed (apt-get install systemd)")
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    # verify checks that ExecStart's program exists: point it at this checkout's palisade
    palisade = Path(sys.executable).with_name("palisade")
    if not palisade.exists():
        pytest.skip(f"{palisade} not installed (pip install -e .)")
    text = (ROOT / "systemd" / name).read_text().replace(INSTALLED, str(palisade))
    path = tmp_path / name
    path.write_text(text)
    p = subprocess.run([exe, "verify", "--man=no", str(path)], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0 and not p.stderr.strip(), p.stdout + p.stderr


# -- Dockerfile ---------------------------------------------------------------------------------

def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuations joined and comments dropped."""
    out: list[tuple[str, str]] = []
    buf = ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not buf):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        word, _, rest = buf.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    assert not buf, "Dockerfile ends inside a continuation"
    return out


def stages() -> list[list[tuple[str, str]]]:
    out: list[list[tuple[str, str]]] = []
    for ins in dockerfile():
        if ins[0] == "FROM":
            out.append([])
        if out:
            out[-1].append(ins)
    return out


def test_dockerfile_is_multi_stage_with_a_slim_final_stage():
    ins = dockerfile()
    args = {a.split("=", 1)[0]: a.split("=", 1)[1] for k, a in ins if k == "ARG" and "=" in a}
    builder, final = stages()
    assert builder[0][1].endswith("AS builder")
    image = final[0][1].replace("${PYTHON_IMAGE}", args.get("PYTHON_IMAGE", ""))
    assert re.fullmatch(r"python:3\.1[2-9][\w.-]*-slim[\w.-]*", image), image
    assert any(k == "COPY" and a.startswith("--from=builder /opt/palisade") for k, a in final)
    # no compiler and no source tree in the final stage
    assert not any("build-essential" in a for _, a in final)
    assert not any(k == "COPY" and not a.startswith("--from=") for k, a in final)
    assert any(k == "RUN" and "pip install ." in a for k, a in builder)


def test_dockerfile_runs_as_numeric_non_root_with_state_volume_and_healthcheck():
    final = stages()[-1]
    (user,) = [a for k, a in final if k == "USER"]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) > 0 and (not gid or gid.isdigit())
    # USER comes after the RUN that creates the state directory for that uid
    kinds = [k for k, _ in final]
    assert kinds.index("USER") > max(i for i, k in enumerate(kinds) if k == "RUN")
    assert any(k == "RUN" and f"-o {uid}" in a and "/var/lib/palisade" in a for k, a in final)
    (volume,) = [a for k, a in final if k == "VOLUME"]
    assert "/var/lib/palisade" in volume
    (expose,) = [a for k, a in final if k == "EXPOSE"]
    assert {"8000", "9090"} <= set(expose.split())
    (health,) = [a for k, a in final if k == "HEALTHCHECK"]
    assert "/healthz" in health and "CMD" in health
    # the exec-form command is valid JSON and its Python snippet compiles
    cmd = json.loads(health[health.index("CMD") + 3:].strip())
    assert cmd[:2] == ["python", "-c"]
    compile(cmd[2], "<healthcheck>", "exec")
    (entry,) = [a for k, a in final if k == "ENTRYPOINT"]
    (default,) = [a for k, a in final if k == "CMD"]
    argv = json.loads(entry) + json.loads(default)
    assert argv[0] == "palisade"
    assert build_parser().parse_args(argv[1:]).command == "node"


def test_dockerignore_keeps_what_the_build_copies():
    ignored = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()
               if ln.strip() and not ln.startswith("#")]
    copied = []
    for k, a in dockerfile():
        if k == "COPY" and not a.startswith("--from="):
            copied += a.split()[:-1]
    assert copied, "the builder copies the sources"
    for src in copied:
        assert (ROOT / src).exists(), src
        assert not any(fnmatch.fnmatch(src, pat) for pat in ignored), f"{src} is ignored"
    # pyproject's readme must reach the build context, or `pip install .` fails
    readme = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["readme"]
    assert readme in copied


def _package_files() -> list[str]:
    out = []
    for pkg in ("node", "addons"):
        for path in (ROOT / pkg).rglob("*"):
            if (path.is_file() and "__pycache__" not in path.parts
                    and path.suffix not in (".py", ".pyc")):
                out.append(str(path.relative_to(ROOT / pkg)).replace(os.sep, "/"))
    return out


def test_package_data_covers_every_non_python_file():
    """The image installs the package (not editable): data files outside package-data are
    silently left out of it."""
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = cfg["tool"]["setuptools"].get("package-data", {}).get("node", [])
    missing = [f for f in _package_files()
               if not any(fnmatch.fnmatch(f, g) for g in globs)]
    assert not missing, f"add to [tool.setuptools.package-data] node: {missing}"


@pytest.mark.parametrize("name", UNITS)
def test_unit_comments_agree_with_its_reload(name):
    """Regression: the control unit's comment said it had no reload, beside its ExecReload."""
    text = (ROOT / "systemd" / name).read_text().lower()
    assert unit(name)["Service.ExecReload"]
    assert "no reload" not in text and "systemctl reload" in text


def docker_runs() -> list[tuple[str, list[str]]]:
    """Every `docker run` example of the README and the Dockerfile's header, as argv."""
    readme = "\n".join(re.findall(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(),
                                  flags=re.DOTALL))
    header = "\n".join(line[1:].strip() for line in (ROOT / "Dockerfile").read_text()
                       .splitlines() if line.startswith("#"))
    out = []
    for where, text in (("README.md", readme), ("Dockerfile", header)):
        joined = re.sub(r"\\\n\s*", " ", text)
        out += [(where, shlex.split(line.strip().split(" # ")[0]))
                for line in joined.splitlines() if line.strip().startswith("docker run ")]
    return out


def test_docker_run_examples_mount_the_configuration_and_parse():
    """Regression: the control plane's example had no configuration mount (it ran on
    defaults: 127.0.0.1, unreachable through -p)."""
    runs = docker_runs()
    assert {w for w, _ in runs} == {"README.md", "Dockerfile"}
    roles = set()
    for where, argv in runs:
        mounts = [argv[i + 1] for i, a in enumerate(argv) if a == "-v"]
        assert any(m.split(":")[1] == "/etc/palisade/palisade.yaml" for m in mounts), where
        assert any(m.split(":")[1] == "/var/lib/palisade" for m in mounts), argv
        image = next(i for i, a in enumerate(argv[2:], 2)
                     if a == "palisade" and argv[i - 1] not in ("-v", "-p", "-e"))
        command = argv[image + 1:] or ["node", "--config", "/etc/palisade/palisade.yaml"]
        args = build_parser().parse_args(command)
        assert args.config == "/etc/palisade/palisade.yaml", argv
        roles.add(args.command)
        if args.command == "control":
            published = [argv[i + 1] for i, a in enumerate(argv) if a == "-p"]
            assert published == ["8790:8790"], argv
    assert roles == {"node", "control"}
    readme = (ROOT / "README.md").read_text()
    assert "must be 0.0.0.0:8790 in the container" in readme
