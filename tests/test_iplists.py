"""IP lists: matcher, store (history, persistence), in-memory verdicts, ip-list command."""

from __future__ import annotations

import argparse
import json
import sqlite3

import pytest

from node.iplists import (
    LISTS,
    IPLists,
    IPListStore,
    NetMatcher,
    SessionDenials,
    canonical_network,
    db_path,
    format_ip,
    parse_ip,
    parse_network,
)
from node.iplists.cli import add_iplist_parser, iplist_command, parse_duration_arg


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


# -- matcher ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("203.0.113.7", "203.0.113.7"),
    ("2001:db8::1", "2001:db8::1"),
    ("::ffff:203.0.113.7", "203.0.113.7"),      # dual-stack socket view of a v4 peer
    ("[2001:db8::1]", "2001:db8::1"),
    ("fe80::1%eth0", "fe80::1"),
    ("2001:DB8:0:0::1", "2001:db8::1"),
])
def test_parse_ip(text, expected):
    assert format_ip(parse_ip(text)) == expected


@pytest.mark.parametrize("text", ["", "unknown", "1.2.3", "1.2.3.4.5", "256.1.1.1", "::g",
                                  "1.2.3.4/24", " 1.2.3.4"])
def test_parse_ip_rejects(text):
    assert parse_ip(text) is None


@pytest.mark.parametrize("text,expected", [
    ("10.1.2.3/8", "10.0.0.0/8"),
    ("203.0.113.7/32", "203.0.113.7"),
    ("2001:db8::1/32", "2001:db8::/32"),
    ("::ffff:10.0.0.0/104", "10.0.0.0/8"),
    ("0.0.0.0/0", "0.0.0.0/0"),
])
def test_canonical_network(text, expected):
    assert canonical_network(text) == expected


@pytest.mark.parametrize("text", ["10.0.0.0/33", "nope", "2001:db8::/129", ""])
def test_parse_network_rejects(text):
    with pytest.raises(ValueError):
        parse_network(text)


def test_matcher_most_specific_and_all():
    m: NetMatcher[str] = NetMatcher()
    m.set(parse_network("10.0.0.0/8"), "a")
    m.set(parse_network("10.1.0.0/16"), "b")
    m.set(parse_network("10.1.2.3"), "c")
    m.set(parse_network("2001:db8::/32"), "v6")
    assert m.get(parse_ip("10.1.2.3")) == "c"
    assert m.all(parse_ip("10.1.2.3")) == ["c", "b", "a"]
    assert m.get(parse_ip("10.1.9.9")) == "b"
    assert m.get(parse_ip("10.9.9.9")) == "a"
    assert m.get(parse_ip("11.0.0.1")) is None
    assert m.get(parse_ip("2001:db8:1::5")) == "v6"
    assert m.get(parse_ip("2001:db9::5")) is None
    # a v4 value never collides with a v6 one of the same integer
    m.set(parse_network("::a01:203"), "v6-compat")
    assert m.get(parse_ip("10.1.2.3")) == "c"
    assert len(m) == 5
    assert m.discard(parse_network("10.1.0.0/16")) == "b"
    assert m.get(parse_ip("10.1.9.9")) == "a"
    assert m.discard(parse_network("10.1.0.0/16")) is None


# -- verdicts ----------------------------------------------------------------------------------

@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def lists(tmp_path, clock):
    store = IPListStore(db_path(str(tmp_path)), clock=clock)
    yield IPLists(store, clock=clock)
    store.close()


@pytest.mark.parametrize("entries,ip,expected", [
    ([("deny", "203.0.113.0/24")], "203.0.113.9", "deny"),
    ([("deny", "203.0.113.0/24")], "203.0.114.9", None),
    ([("deny", "203.0.113.0/24"), ("allow", "203.0.113.9")], "203.0.113.9", "allow"),
    ([("allow", "203.0.113.0/24"), ("deny", "203.0.113.9")], "203.0.113.9", "allow"),
    ([("gray", "203.0.113.9"), ("deny", "203.0.113.0/24")], "203.0.113.9", "deny"),
    ([("exception", "0.0.0.0/0"), ("deny", "203.0.113.9")], "203.0.113.9", "exception"),
    ([("gray", "2001:db8::/32")], "2001:db8:ffff::1", "gray"),
    ([("deny", "2001:db8::/64")], "2001:db8:0:1::1", None),
    ([("deny", "203.0.113.9")], "::ffff:203.0.113.9", "deny"),
    ([("deny", "203.0.113.9")], "garbage", None),
])
def test_verdict_precedence(lists, entries, ip, expected):
    for name, net in entries:
        lists.add(name, net)
    assert lists.verdict(ip).list == expected


def test_verdict_skips_expired_most_specific(lists, clock):
    lists.add("deny", "203.0.113.0/24", duration=3600)
    lists.add("deny", "203.0.113.9", duration=60, reason="short")
    assert lists.verdict("203.0.113.9").entry.reason == "short"
    clock.t += 61
    v = lists.verdict("203.0.113.9")
    assert v.list == "deny" and v.entry.network == "203.0.113.0/24"
    clock.t += 3600
    assert lists.verdict("203.0.113.9").list is None


def test_config_entries_are_separate_and_replaced(lists):
    lists.set_config_entries("exception", ["198.51.100.0/24"])
    lists.add("deny", "198.51.100.7")
    assert lists.verdict("198.51.100.7").list == "exception"
    lists.set_config_entries("exception", [])
    assert lists.verdict("198.51.100.7").list == "deny"
    assert lists.store.list_entries("exception") == []   # never written to the store


def test_counts(lists):
    lists.add("deny", "10.0.0.0/8")
    lists.add("deny", "10.0.0.1")
    lists.add("gray", "10.0.0.1")
    lists.remove("deny", "10.0.0.1")
    assert lists.counts() == {"allow": 0, "exception": 0, "deny": 1, "gray": 1}


def test_add_validates(lists):
    with pytest.raises(ValueError):
        lists.add("black", "10.0.0.1")
    with pytest.raises(ValueError):
        lists.add("deny", "10.0.0.999")
    with pytest.raises(ValueError):
        lists.add("deny", "10.0.0.1", duration=0)


# -- history, expiry, persistence ---------------------------------------------------------------

def test_history_records_every_change(lists, clock):
    lists.add("deny", "203.0.113.9", reason="stuffing", duration=600, who="alice")
    clock.t += 10
    lists.remove("deny", "203.0.113.9", who="bob")
    lists.add("gray", "2001:db8::/48", duration=5, who="profile:default",
              source="profile:default", detectors=["request_rate"])
    clock.t += 6
    assert lists.sweep() == 1
    h = lists.store.history()
    assert [(e.action, e.list, e.network, e.who) for e in h] == [
        ("expire", "gray", "2001:db8::/48", "system"),
        ("add", "gray", "2001:db8::/48", "profile:default"),
        ("remove", "deny", "203.0.113.9", "bob"),
        ("add", "deny", "203.0.113.9", "alice"),
    ]
    assert h[3].duration == 600 and h[3].expires == h[3].ts + 600 and h[3].reason == "stuffing"
    assert lists.store.history(network="203.0.113.9/32")[0].action == "remove"
    assert lists.verdict("2001:db8::1").list is None


def _changes(lists, clock, n, step=1.0):
    with lists.store.batch():
        for i in range(n):
            lists.add("deny", f"198.51.100.{i % 250}", duration=60)
            clock.t += step


def test_history_is_pruned_by_age_oldest_first(lists, clock):
    _changes(lists, clock, 10, step=86400)           # one change a day for ten days
    ids = [e.id for e in lists.store.history(limit=100)]
    assert lists.store.prune_history(keep=5 * 86400) == (5, 0)
    left = lists.store.history(limit=100)
    assert [e.id for e in left] == ids[:5]            # the five newest, untouched
    assert min(e.ts for e in left) >= clock.t - 5 * 86400
    assert lists.store.prune_history(keep=5 * 86400) == (0, 0)


def test_history_pruning_keeps_rows_not_yet_forwarded(lists, clock):
    _changes(lists, clock, 10, step=86400)
    ids = sorted(e.id for e in lists.store.history(limit=100))
    lists.history_hold = ids[2]                       # the sync has spooled three rows
    clock.t += 100 * 86400                            # everything is past retention
    assert lists.prune_history() == (3, 0)
    assert sorted(e.id for e in lists.store.history(limit=100)) == ids[3:]


def test_history_row_cap_bounds_the_disk_in_batches(lists, clock):
    _changes(lists, clock, 500, step=0.01)            # a flood: all young
    assert lists.store.prune_history(max_rows=100, batch=150) == (0, 150)
    assert lists.store.prune_history(max_rows=100, batch=1000) == (0, 250)
    left = lists.store.history(limit=1000)
    assert len(left) == 100 and left[0].id == lists.store.last_history_id()
    lists.add("deny", "203.0.113.9")                  # ids go on after pruning
    assert lists.store.history(limit=1)[0].id == left[0].id + 1


def test_persistence_across_reopen_without_resurrection(tmp_path, clock):
    path = db_path(str(tmp_path))
    with IPListStore(path, clock=clock) as store:
        lists = IPLists(store, clock=clock)
        lists.add("deny", "203.0.113.9")
        lists.add("deny", "198.51.100.0/24", duration=60)
        lists.add("allow", "2001:db8::1")
        lists.deny_session("s-abc", 60)
    clock.t += 120                         # the timed entry expires while the node is down
    with IPListStore(path, clock=clock) as store:
        lists = IPLists(store, clock=clock)
        assert lists.verdict("203.0.113.9").list == "deny"
        assert lists.verdict("2001:db8::1").list == "allow"
        assert lists.verdict("198.51.100.7").list is None
        assert lists.counts()["deny"] == 1
        lists.sweep()
    with IPListStore(path, clock=clock) as store:
        assert [e.network for e in store.list_entries("deny", include_expired=True)] == [
            "203.0.113.9"]
        assert store.history(limit=1)[0].action == "expire"


def test_refresh_sees_other_connection(tmp_path, clock):
    path = db_path(str(tmp_path))
    with IPListStore(path, clock=clock) as node_store, IPListStore(path, clock=clock) as cli:
        lists = IPLists(node_store, clock=clock)
        assert lists.refresh() == 0
        cli.add("deny", "203.0.113.0/24", who="cli")
        assert lists.verdict("203.0.113.5").list is None
        assert lists.refresh() == 1
        assert lists.verdict("203.0.113.5").list == "deny"
        assert lists.refresh() == 0            # nothing new: one PRAGMA, no reads
        cli.remove("deny", "203.0.113.0/24")
        lists.refresh()
        assert lists.verdict("203.0.113.5").list is None


def test_batch_commits_once_and_rolls_back_whole(tmp_path, clock):
    path = db_path(str(tmp_path))
    with IPListStore(path, clock=clock) as store, IPListStore(path, clock=clock) as other:
        with store.batch():
            store.add("deny", "203.0.113.1")
            with store.batch():            # nested: part of the same transaction
                store.add("deny", "203.0.113.2")
            store.remove("deny", "203.0.113.1")
            assert other.list_entries() == []          # nothing visible before the commit
        assert [e.network for e in other.list_entries()] == ["203.0.113.2"]
        assert [h.id for h in store.history_after(0)] == [1, 2, 3]
        assert [h.action for h in store.history_after(1, limit=1)] == ["add"]
        with pytest.raises(RuntimeError), store.batch():
            store.add("deny", "203.0.113.3")
            raise RuntimeError
        assert store.get("deny", "203.0.113.3") is None and store.last_history_id() == 3


def test_store_is_wal(tmp_path):
    with IPListStore(db_path(str(tmp_path))) as store:
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 1   # NORMAL


def test_memory_only_lists(clock):
    lists = IPLists(None, clock=clock)
    lists.add("deny", "10.0.0.0/8", duration=10)
    assert lists.verdict("10.2.3.4").list == "deny"
    clock.t += 11
    assert lists.sweep() == 1
    assert lists.counts()["deny"] == 0


# -- session denials ------------------------------------------------------------------------------

def test_session_denials_expire_and_are_bounded(clock):
    lists = IPLists(None, clock=clock, session_cap=3)
    lists.deny_session("s-1", 10)
    lists.deny_session("s-2", None)
    assert lists.session_denied("s-1") and lists.session_denied("s-2")
    assert not lists.session_denied(None) and not lists.session_denied("s-x")
    clock.t += 11
    assert not lists.session_denied("s-1")
    for i in range(3, 8):
        lists.deny_session(f"s-{i}", None)
    assert len(lists.sessions) == 3 and lists.sessions.evictions >= 2
    assert not lists.session_denied("s-2")     # oldest evicted first


def test_session_denials_sweep():
    d = SessionDenials(cap=10)
    d.deny("a", 5.0)
    d.deny("b", None)
    assert d.sweep(6.0) == 1 and len(d) == 1
    assert d.lift("b") and not d.lift("b")


# -- ip-list command ------------------------------------------------------------------------------

def run_cli(tmp_path, *argv: str, capsys=None, where: tuple[str, ...] | None = None,
            node: bool = True) -> tuple[int, str, str]:
    """`palisade ip-list --state-dir tmp_path ARGV`; `node`: a node's lists database is there
    (as a node makes at start)."""
    if node and not (tmp_path / "iplists.sqlite3").exists():
        IPListStore(db_path(str(tmp_path))).close()
    p = argparse.ArgumentParser(prog="palisade")
    add_iplist_parser(p.add_subparsers(dest="cmd"))
    args = p.parse_args(["ip-list", *(where or ("--state-dir", str(tmp_path))), *argv])
    assert args.func is iplist_command
    code = iplist_command(args)
    out, err = capsys.readouterr() if capsys else ("", "")
    return code, out, err


def test_cli_add_list_remove_history(tmp_path, capsys):
    code, out, _ = run_cli(tmp_path, "add", "deny", "203.0.113.9/32", "--reason", "manual ban",
                           "--duration", "1h", "--who", "ops", capsys=capsys)
    assert code == 0 and "added 203.0.113.9 to deny until" in out
    code, out, _ = run_cli(tmp_path, "list", "--json", capsys=capsys)
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows[0]["network"] == "203.0.113.9" and rows[0]["who"] == "ops"
    assert rows[0]["expires"] - rows[0]["created"] == pytest.approx(3600)
    code, out, _ = run_cli(tmp_path, "list", capsys=capsys)
    assert "manual ban" in out and out.startswith("LIST")
    assert run_cli(tmp_path, "remove", "deny", "203.0.113.9", capsys=capsys)[0] == 0
    code, out, err = run_cli(tmp_path, "remove", "deny", "203.0.113.9", capsys=capsys)
    assert code == 1 and "not in deny" in err
    code, out, _ = run_cli(tmp_path, "history", "--json", capsys=capsys)
    assert [json.loads(line)["action"] for line in out.splitlines()] == ["remove", "add"]


@pytest.mark.parametrize("argv,message", [
    (("add", "deny", "10.0.0.300"), "does not appear to be an IPv4 or IPv6"),
    (("add", "deny", "10.0.0.1", "--duration", "soon"), "is not a duration"),
    (("add", "deny", "10.0.0.1", "--duration=-5m"), "must not be negative"),
])
def test_cli_errors_are_one_line(tmp_path, capsys, argv, message):
    code, _, err = run_cli(tmp_path, *argv, capsys=capsys)
    assert code == 2 and message in err and err.count("\n") == 1 and err.startswith("error: ")


def test_cli_unreadable_database(tmp_path, capsys):
    (tmp_path / "iplists.sqlite3").write_bytes(b"not a database" * 100)
    code, _, err = run_cli(tmp_path, "list", capsys=capsys)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1


@pytest.mark.parametrize("action", [("add", "deny", "203.0.113.9"), ("list",), ("history",)])
def test_cli_refuses_a_state_dir_no_node_uses(tmp_path, capsys, monkeypatch, action):
    """Regression: without --state-dir the command made ./state/iplists.sqlite3 wherever it
    ran, said "added" and exited 0, and no node ever read the entry."""
    monkeypatch.chdir(tmp_path)
    p = argparse.ArgumentParser(prog="palisade")
    add_iplist_parser(p.add_subparsers(dest="cmd"))
    code = iplist_command(p.parse_args(["ip-list", *action]))
    _, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1 and "no node uses state" in err
    assert not (tmp_path / "state").exists()
    code, _, err = run_cli(tmp_path / "elsewhere", *action, capsys=capsys, node=False)
    assert code == 2 and "--create" in err and not (tmp_path / "elsewhere").exists()


def test_cli_create_makes_the_database(tmp_path, capsys):
    state = tmp_path / "new"
    code, out, _ = run_cli(state, "add", "deny", "203.0.113.9", capsys=capsys, node=False,
                           where=("--create", "--state-dir", str(state)))
    assert code == 0 and "added 203.0.113.9" in out
    with IPListStore(db_path(str(state))) as store:
        assert [e.network for e in store.list_entries("deny")] == ["203.0.113.9"]


@pytest.mark.parametrize("yaml_text,subdir", [
    ("state_dir: {d}\n", ""),
    ("state_dir: /nowhere\nnode: {{state_dir: {d}, control_token_env: UNSET_VAR_X}}\n", ""),
    ("node: {{listen: 127.0.0.1:0}}\n", "state"),
])
def test_cli_reads_state_dir_from_the_config(tmp_path, capsys, monkeypatch, yaml_text, subdir):
    """-c CONFIG edits the lists of the node started with that file (its node.state_dir, else
    the top-level state_dir, else ./state); a token variable the node needs is not read."""
    monkeypatch.chdir(tmp_path)
    state = tmp_path / (subdir or "node-state")
    cfg = tmp_path / "palisade.yaml"
    cfg.write_text(yaml_text.format(d=state))
    state.mkdir()
    code, out, err = run_cli(state, "add", "gray", "198.51.100.7", "--duration", "1h",
                             capsys=capsys, where=("-c", str(cfg)))
    assert code == 0, err
    with IPListStore(db_path(str(state))) as store:
        assert [e.network for e in store.list_entries("gray")] == ["198.51.100.7"]


def test_cli_bad_config_is_one_line(tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("node: {state_dir: 5}\n")
    code, _, err = run_cli(tmp_path, "list", capsys=capsys, where=("-c", str(cfg)))
    assert code == 2 and err.count("\n") == 1 and "bad.yaml:1: node.state_dir" in err


@pytest.mark.parametrize("text,secs", [("forever", None), ("30m", 1800.0), ("7d", 604800.0),
                                       ("90", 90.0)])
def test_parse_duration_arg(text, secs):
    assert parse_duration_arg(text) == secs


def test_lists_constant():
    assert set(LISTS) == {"allow", "exception", "deny", "gray"}
    assert isinstance(sqlite3.sqlite_version, str)
