"""`palisade`: one command with sub-commands. Errors are one line, exit code 2."""

from __future__ import annotations

import argparse
import os
import sys

from node import __version__
from node.errors import PalisadeError
from node.term import escape


def _replay_parser(sub) -> None:
    p = sub.add_parser("replay", help="offline detection over access logs or request records",
                       description="Run the detection engine over logs on their own timestamps.")
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="access logs (nginx/Apache combined or common, JSON lines; gzip ok)")
    p.add_argument("--config", "-c", help="configuration YAML (default: built-in defaults)")
    p.add_argument("--json", action="store_true", help="detections as JSON, one per line")
    p.add_argument("--format", help="log format instead of detecting it "
                   "(jsonl, combined, common, ...)")
    p.add_argument("--log-format", help="an nginx log_format string describing the lines")
    p.add_argument("--model", help="learned-profile file: loaded if present, saved after")
    p.add_argument("--truth", help="ground-truth labels JSON: print recall / precision")
    p.add_argument("--dns", metavar="system|HOST[:PORT]",
                   help="verify good-bot claims by forward-confirmed reverse DNS through this "
                   "resolver (default: published vendor ranges only)")
    p.add_argument("--top", type=int, default=10, help="addresses to list (default 10)")
    p.add_argument("--no-progress", action="store_true", help="no progress line")


def _check_parser(sub) -> None:
    p = sub.add_parser("check", help="validate a configuration file without starting anything")
    p.add_argument("config", metavar="CONFIG")


def _node_parser(sub) -> None:
    p = sub.add_parser("node", help="run the inline proxy node (mitmproxy reverse mode)")
    p.add_argument("--config", "-c", required=True)


def _control_parser(sub) -> None:
    p = sub.add_parser("control", help="run the control plane and web console")
    p.add_argument("--config", "-c", help="configuration YAML (default: built-in defaults)")
    from node.control.main import add_control_token_parser

    add_control_token_parser(p)


def _demo_parser(sub) -> None:
    p = sub.add_parser("demo", help="demo upstream + control plane + node + traffic, on loopback")
    p.add_argument("--duration", type=float, default=None,
                   help="stop after SECONDS and print the summary (default: until Ctrl-C)")
    p.add_argument("--state-dir", help="where the demo keeps its state (default: a temp dir)")
    p.add_argument("--port", type=int, default=8000, help="node listen port (default 8000)")
    p.add_argument("--speedup", type=float, default=20.0,
                   help="simulated seconds per real second (default 20)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="palisade", description="Palisade: API abuse prevention node.")
    parser.add_argument("--version", action="version", version=f"palisade {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_replay_parser, _check_parser, _node_parser, _control_parser, _demo_parser):
        add(sub)
    try:
        from node.iplists.cli import add_iplist_parser
    except ImportError:
        pass
    else:
        add_iplist_parser(sub)
    from node.signatures.ranges_cli import add_ranges_parser

    add_ranges_parser(sub)
    return parser


def _check(args) -> int:
    from node.config import load_config

    cfg = load_config(args.config)
    e = cfg.engine
    print(f"{args.config}: OK — {len(e.applications)} application(s), "
          f"{len(e.profiles)} profile(s), {len(e.exceptions)} exception(s)"
          + (", node section" if cfg.node else "") + (", control section" if cfg.control else ""))
    return 0


def _dispatch(args) -> int:
    cmd = args.command
    if cmd == "replay":
        from node.replay import run

        return run(args)
    if cmd == "check":
        return _check(args)
    if cmd == "node":
        from node.proxy.main import main as node_main

        return node_main(args)
    if cmd == "control":
        from node.control.main import main as control_main

        return control_main(args)
    if cmd == "demo":
        from node.demo.main import main as demo_main

        return demo_main(args)
    if cmd == "ip-list":
        from node.iplists.cli import iplist_command

        return iplist_command(args)
    if cmd == "ranges":
        from node.signatures.ranges_cli import ranges_command

        return ranges_command(args)
    raise PalisadeError(f"unknown command {cmd!r}")


def _reproducible(args) -> None:
    """`palisade replay` re-executes itself once with a fixed hash seed: the sketches read
    `hash()`, which Python salts per process, so the same logs would otherwise give a few
    different detections run after run. (The live node keeps the random salt: its keys are
    attacker-chosen, and the salt is what stops hash flooding.)"""
    if args.command == "replay" and "PYTHONHASHSEED" not in os.environ:
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        try:
            os.execve(sys.executable, [sys.executable, "-m", "node.cli", *sys.argv[1:]], env)
        except OSError:
            pass                         # could not re-execute: run as we are


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if argv is None:
        _reproducible(args)
    try:
        return _dispatch(args)
    except PalisadeError as e:
        # The message may quote a log line or a file name: no control characters reach the
        # terminal.
        print(f"palisade {args.command}: error: {escape(str(e), 2000)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `palisade replay --json ... | head`: the reader left; not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
