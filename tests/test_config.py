"""Configuration: valid files compile to immutable objects; every mistake is one line that
names file, line and key."""

import re
from pathlib import Path

import pytest

from node.cli import main
from node.config import load_config, parse_config_text
from node.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "palisade.example.yaml"


@pytest.fixture(autouse=True)
def _no_tokens(monkeypatch):
    # the example checks clean as shipped: none of its token variables is set
    monkeypatch.delenv("PALISADE_CONTROL_TOKEN", raising=False)
    monkeypatch.delenv("PALISADE_OPERATOR_TOKEN", raising=False)


def test_example_config_compiles():
    cfg = load_config(str(EXAMPLE))
    e = cfg.engine
    assert [a.name for a in e.applications] == ["shop"]
    shop = e.applications[0]
    assert shop.session.cookie == "sid" and shop.auth[0].username_field == "username"
    prof = e.profiles[0]
    assert prof.threshold == 0.5
    assert prof.reactions["scraping"].action == "graylist"
    assert prof.reactions["account_takeover"].duration is None          # forever
    assert prof.reactions["api_abuse"].duration == 3600                 # from `default`
    assert e.detectors["request_rate"]["max_rps"] == 3
    assert e.detectors["outdated_browser"]["min_versions"]["Chrome"] == 110
    assert cfg.node.upstream.startswith("http://127.0.0.1:8080")
    assert cfg.node.control_url is None          # standalone until the sync lines are on
    assert cfg.control.listen_port == 8790 and cfg.control.tokens == ()
    assert dict(prof.crawlers) == {"ai_crawler": "block", "ai_assistant": "allow",
                                   "search_engine": "allow"}
    assert e.cloud_ranges is None                                       # packaged ranges


def test_example_commented_sync_and_tokens_work_when_uncommented(tmp_path, monkeypatch):
    """The example's commented control_url / tokens lines are valid once uncommented and
    their variables set, as its comments say."""
    monkeypatch.setenv("PALISADE_CONTROL_TOKEN", "node-token-0123456789abcdef")
    monkeypatch.setenv("PALISADE_OPERATOR_TOKEN", "operator-token-0123456789abcdef")
    text = re.sub(r"^(\s*)# (control_url:|control_token_env:|tokens:|  - \{name:)", r"\1\2",
                  EXAMPLE.read_text(), flags=re.MULTILINE)
    (tmp_path / "p.yaml").write_text(text)
    cfg = load_config(str(tmp_path / "p.yaml"))
    assert cfg.node.control_url == "http://127.0.0.1:8790"
    assert cfg.node.control_token == "node-token-0123456789abcdef"
    assert [t.role for t in cfg.control.tokens] == ["node", "operator"]


def test_defaults_without_config():
    cfg = load_config(None)
    assert cfg.engine.profiles[0].bot_types and cfg.engine.applications[0].hosts == ("*",)
    assert set(cfg.engine.profiles[0].crawlers.values()) == {"monitor"}
    partial = parse_config_text("profiles:\n  - name: p\n    crawlers: {ai_crawler: block}\n")
    assert dict(partial.engine.profiles[0].crawlers) == {
        "ai_crawler": "block", "ai_assistant": "monitor", "search_engine": "monitor"}


def test_compiled_config_is_immutable():
    cfg = load_config(str(EXAMPLE))
    with pytest.raises(AttributeError):
        cfg.engine.min_votes = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        cfg.engine.profiles[0].reactions["scraping"] = None  # type: ignore[index]


@pytest.mark.parametrize(("text", "line", "needle"), [
    ("engine:\n  sesion_timeout: 5m\n", 2, "engine.sesion_timeout: unknown key (did you mean"),
    ("engine:\n  session_timeout: -5m\n", 2, "must not be negative"),
    ("engine:\n  session_timeout: soon\n", 2, "is not a duration"),
    ("detectors:\n  request_rat: {max_rps: 3}\n", 2, "detectors.request_rat: unknown detector"),
    ("detectors:\n  request_rate: {max_rps: -1}\n", 2, "detectors.request_rate.max_rps"),
    ("profiles:\n  - name: p\n    tolerance: medium\n", 3, "must be one of low, normal, high"),
    ("profiles:\n  - name: p\n    reactions:\n      scraping: {action: ban}\n", 4, "action"),
    ("profiles:\n  - name: p\n    reactions:\n      scraping: {duration: 1m}\n", 4,
     "must be at least 5m"),
    ("profiles:\n  - name: p\n    bot_types: [scrapers]\n", 3, "unknown bot type 'scrapers'"),
    ("profiles:\n  - name: p\n    applications: [nope]\n", 3, "unknown application 'nope'"),
    ("profiles:\n  - name: p\n    crawlers:\n      ai_crawler: deny\n", 4,
     "profiles[0].crawlers.ai_crawler: must be one of allow, monitor, block"),
    ("profiles:\n  - name: p\n    crawlers:\n      ai_bots: block\n", 4,
     "profiles[0].crawlers.ai_bots: unknown key"),
    ("profiles:\n  - name: p\n    crawlers: block\n", 3, "expected a mapping"),
    ("engine:\n  cloud_ranges: 7\n", 2, "engine.cloud_ranges: expected a string"),
    ("exceptions: [10.0.0.0/8, not-an-ip]\n", 1, "'not-an-ip' is not an IP address"),
    ("applications:\n  - name: a\n    auth_endpoints:\n      - path: login\n", 4, "path"),
    ("applications:\n  - hosts: [x]\n", 2, "needs a name"),
    ("engine: [1, 2]\n", 1, "expected a mapping"),
    ("engine:\n  max_sessions: 10\n", 2, "must be >= 100"),
    ("a: 1\na: 2\n", 2, "duplicate key"),
    ("engine:\n  x: [\n", 3, "YAML syntax error"),
    ("engine: " + "[" * 20_000 + "]" * 20_000 + "\n", 1, "nested too deeply"),
])
def test_config_errors_name_file_line_key(text, line, needle):
    with pytest.raises(ConfigError) as exc:
        parse_config_text(text, "p.yaml")
    msg = str(exc.value)
    assert msg.startswith(f"p.yaml:{line}: "), msg
    assert needle in msg
    assert "\n" not in msg


def test_check_command_ok(capsys):
    assert main(["check", str(EXAMPLE)]) == 0
    assert "OK" in capsys.readouterr().out


@pytest.mark.parametrize("text", [
    "engine:\n  session_timeout: -1h\n",
    "detectors:\n  nope: {}\n",
    "engine:\n  bogus: 1\n",
])
def test_check_command_bad_file_exit_2_one_line(tmp_path, capsys, text):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    assert main(["check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "bad.yaml:" in err


def test_check_command_unreadable_file(tmp_path, capsys):
    assert main(["check", str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err
    assert "missing.yaml" in err and "cannot read" in err and err.count("\n") == 1


@pytest.mark.parametrize("reactions", [
    "security_crawlers: graylist",                  # the shorthand
    "security_crawlers: {action: graylist}",
    "default: {action: denylist}",
])
def test_reaction_without_duration_lasts_an_hour(tmp_path, capsys, reactions):
    """Issue 12: such a reaction passed `palisade check`, then the first decision raised
    TypeError (its duration was the slots dataclass's member descriptor): nothing of that
    bot type was ever blocked. SPEC §6: the default is one hour."""
    import warnings

    from prometheus_client import CollectorRegistry

    from node.engine import Engine
    from node.iplists import IPLists
    from node.metrics import NodeMetrics
    from node.proxy.context import NodeContext
    from node.proxy.settings import NodeSettings
    from tests.detector_kit import rec
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)   # mitmproxy 12.2 vs pyparsing
        from addons.detect import apply_decision

    path = tmp_path / "p.yaml"
    path.write_text(f"profiles:\n  - name: p\n    reactions:\n      {reactions}\n")
    assert main(["check", str(path)]) == 0 and "OK" in capsys.readouterr().out
    cfg = load_config(str(path))
    assert cfg.engine.profiles[0].reactions["security_crawlers"].duration == 3600
    eng = Engine(cfg.engine)
    probes = ("/.env", "/.git/config", "/wp-login.php", "/phpmyadmin/", "/.aws/credentials")
    decisions = [d for i, p in enumerate(probes)
                 for d in eng.process(rec(i, p, ua="sqlmap/1.7", status=404))]
    assert decisions and decisions[0].bot_type == "security_crawlers"
    assert decisions[0].duration == 3600
    now = 1_000_000.0
    node = NodeContext(NodeSettings(state_dir=str(tmp_path)), cfg.engine,
                       IPLists(None, clock=lambda: now), NodeMetrics(CollectorRegistry()))
    assert apply_decision(node, decisions[0]) == [decisions[0].ip]
    lst = "gray" if "graylist" in reactions else "deny"
    assert node.iplists.entry(lst, decisions[0].ip).expires == now + 3600
