"""`palisade ip-list`: add, remove, list and show the history of IP-list entries.

The command writes to the node's SQLite file in the state directory (`-c CONFIG` reads it
from the node's configuration); a running node picks the change up within a second (it polls
SQLite's change counter), and a stopped node loads it at start. No network API is involved,
so nothing new listens or needs a token. A directory without a node's lists database is
refused unless `--create` says to make one: a change written where no node looks would be
reported as done and never applied.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sqlite3
import sys
import time
from typing import Any

from node.errors import PalisadeError
from node.iplists import LISTS, IPListStore, db_path
from node.term import escape

DEFAULT_STATE_DIR = os.environ.get("PALISADE_STATE_DIR", "state")
_FOREVER = ("forever", "never", "permanent", "0")


def add_iplist_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `ip-list` on an argparse sub-parsers object; returns its parser."""
    p = subparsers.add_parser("ip-list", help="add, remove, list IP-list entries and history",
                              description=__doc__.strip().splitlines()[0])
    where = p.add_mutually_exclusive_group()
    where.add_argument("--config", "-c", metavar="CONFIG",
                       help="the node's configuration: its state_dir holds the lists")
    where.add_argument("--state-dir", default=None,
                       help="node state directory (default: $PALISADE_STATE_DIR or ./state)")
    p.add_argument("--create", action="store_true",
                   help="make the lists database if the state directory has none")
    sub = p.add_subparsers(dest="iplist_cmd", required=True, metavar="ACTION")

    a = sub.add_parser("add", help="add or replace an entry")
    a.add_argument("list", choices=LISTS)
    a.add_argument("network", help="IP address or CIDR (v4 or v6)")
    a.add_argument("--reason", default="")
    a.add_argument("--duration", default="forever",
                   help="how long: 30m, 1h, 7d, or forever (default)")
    a.add_argument("--who", default=None, help="who made the change (default: login name)")

    r = sub.add_parser("remove", help="remove an entry")
    r.add_argument("list", choices=LISTS)
    r.add_argument("network")
    r.add_argument("--who", default=None)

    s = sub.add_parser("list", help="show entries in force")
    s.add_argument("list", nargs="?", choices=LISTS)
    s.add_argument("--all", action="store_true", help="include expired, not yet swept entries")
    s.add_argument("--json", action="store_true", help="one JSON object per line")

    h = sub.add_parser("history", help="show changes, newest first")
    h.add_argument("--list", dest="hlist", choices=LISTS)
    h.add_argument("--ip", dest="network", help="only this address or CIDR")
    h.add_argument("--limit", type=int, default=50)
    h.add_argument("--json", action="store_true")
    p.set_defaults(func=iplist_command)
    return p


def parse_duration_arg(text: str) -> float | None:
    """`30m`, `1h`, `7d`, seconds, or `forever` → seconds / None. Raises ValueError."""
    if text.strip().lower() in _FOREVER:
        return None
    from node.config.section import parse_duration

    secs = parse_duration(text)
    if secs <= 0:
        raise ValueError("duration must be positive")
    return secs


def _who(arg: str | None) -> str:
    if arg:
        return arg
    try:
        return "cli:" + getpass.getuser()
    except Exception:  # no login name (containers)
        return "cli"


def _when(ts: float | None) -> str:
    if ts is None:
        return "forever"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def config_state_dir(path: str) -> str:
    """The state directory a node started with `-c path` uses: `node.state_dir`, else the
    top-level `state_dir`, else ./state (as `palisade node` resolves it). Only these keys are
    read, so a token variable the node's environment sets need not be set here."""
    from node.config.section import Section
    from node.config.yamlloc import load_yaml_file
    from node.proxy.settings import NodeSettings

    root = Section(load_yaml_file(path), path)
    node = root.sub("node")
    default = NodeSettings().state_dir
    chosen = node.str("state_dir") if node.has("state_dir") else None
    if chosen in (None, default):
        chosen = root.str("state_dir") or chosen or default
    return os.path.expanduser(chosen)


def _state_dir(args: argparse.Namespace) -> str:
    """The state directory to edit; raises ValueError when no node uses it (no lists
    database there) and `--create` was not given."""
    if args.config:
        state_dir = config_state_dir(args.config)
    else:
        state_dir = args.state_dir or DEFAULT_STATE_DIR
    if not os.path.exists(db_path(state_dir)) and not args.create:
        raise ValueError(f"{db_path(state_dir)} does not exist: no node uses {state_dir} "
                         "(give the node's -c CONFIG or --state-dir, or --create to make it)")
    return state_dir


def iplist_command(args: argparse.Namespace) -> int:
    """Run one `ip-list` action; prints results, errors as one line on stderr. Exit code."""
    out = sys.stdout
    state_dir = args.state_dir or DEFAULT_STATE_DIR
    try:
        state_dir = _state_dir(args)
        if args.create:
            os.makedirs(state_dir, mode=0o700, exist_ok=True)
        with IPListStore(db_path(state_dir)) as store:
            match args.iplist_cmd:
                case "add":
                    e = store.add(args.list, args.network, reason=args.reason,
                                  duration=parse_duration_arg(args.duration), who=_who(args.who))
                    print(f"added {e.network} to {e.list} until {_when(e.expires)}", file=out)
                case "remove":
                    e = store.remove(args.list, args.network, who=_who(args.who))
                    if e is None:
                        print(f"error: {args.network} is not in {args.list}", file=sys.stderr)
                        return 1
                    print(f"removed {e.network} from {e.list}", file=out)
                case "list":
                    rows = store.list_entries(args.list, include_expired=args.all)
                    if args.json:
                        for e in rows:
                            print(json.dumps(e.to_dict()), file=out)
                    else:
                        _table(out, ("LIST", "NETWORK", "EXPIRES", "SOURCE", "REASON"),
                               [(e.list, e.network, _when(e.expires), e.source, e.reason)
                                for e in rows])
                case "history":
                    rows = store.history(args.hlist, args.network, limit=args.limit)
                    if args.json:
                        for h in rows:
                            print(json.dumps(h.to_dict()), file=out)
                    else:
                        _table(out, ("WHEN", "ACTION", "LIST", "NETWORK", "WHO", "UNTIL",
                                     "REASON"),
                               [(_when(h.ts), h.action, h.list, h.network, h.who,
                                 _when(h.expires), h.reason) for h in rows])
    except PalisadeError as e:      # the configuration file: names file, line and key
        print(f"error: {escape(str(e), 2000)}", file=sys.stderr)
        return 2
    except ValueError as e:
        print(f"error: {escape(str(e), 2000)}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: {escape(state_dir)}: {e.strerror or e}", file=sys.stderr)
        return 2
    except sqlite3.Error as e:  # locked, corrupt, not a database: one line, no traceback
        print(f"error: {escape(db_path(state_dir))}: {e}", file=sys.stderr)
        return 2
    return 0


def _table(out: Any, head: tuple[str, ...], rows: list[tuple]) -> None:
    cells = [head] + [tuple(str(c) for c in r) for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(head))]
    for r in cells:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip(), file=out)
