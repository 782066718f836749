"""docs/records.md matches the code: every record key, every input format and skip reason,
every detection key and every log event key is documented; the README links it and cites no
specification users do not have."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from node.engine import Decision
from node.eventlog import decision_fields
from node.logs import ALIASES, FORMATS, MALFORMED_REASONS, SKIP_REASONS
from node.record import _OPTIONAL, RequestRecord, record_from_json

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "records.md").read_text()


def section(title: str) -> str:
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", DOC, re.M | re.S)
    assert m, title
    return m.group(1)


def table_keys(text: str) -> set[str]:
    """The backticked names in the first column of a table's rows."""
    keys: set[str] = set()
    for line in text.splitlines():
        if line.startswith("| `"):
            keys |= set(re.findall(r"`([\w-]+)`", line.split("|")[1]))
    return keys


def test_every_record_key_is_documented_and_the_example_parses():
    part = section("Request records (JSON lines)")
    assert table_keys(part) == set(RequestRecord.__slots__)
    for key in _OPTIONAL:
        assert re.search(rf"\| `{key}` \| [^|]+ \| optional", part), key
    example = re.search(r"```json\n(.*?)\n```", part, re.S).group(1)
    rec = record_from_json(example)
    assert set(json.loads(example)) <= set(RequestRecord.__slots__)
    assert json.loads(rec.to_json()) == json.loads(example)


def test_every_format_alias_and_reason_is_documented():
    part = section("Access logs `palisade replay` reads")
    assert table_keys(part) == set(FORMATS)
    for alias, fmt in ALIASES.items():
        row = next(line for line in part.splitlines() if line.startswith(f"| `{fmt}` |"))
        assert f"`{alias}`" in row, alias
    for reason in (*SKIP_REASONS, *MALFORMED_REASONS):
        assert f"`{reason}`" in part, reason


def test_every_detection_key_is_documented():
    d = Decision(ts=1.0, ip="192.0.2.1", ips=("192.0.2.0/24",), session=None, app="a",
                 bot_type="scraping", confidence=0.5, profile="p", reaction="denylist",
                 duration=None, detectors=(), evidence=(), ttd_requests=1, ttd_seconds=0.0)
    documented = table_keys(section("Detections (`palisade replay --json`)"))
    assert set(d.to_dict()) == documented


def test_every_log_event_key_is_documented():
    part = section("Logs")
    d = Decision(ts=1.0, ip="192.0.2.1", ips=("192.0.2.1", "192.0.2.2"), session="s", app="a",
                 bot_type="scraping", confidence=0.5, profile="p", reaction="denylist",
                 duration=None, detectors=(("x", 1.0, "< 2"),), evidence=(), ttd_requests=1,
                 ttd_seconds=0.0)
    keys = set(decision_fields(d, listed=1, skipped="exception list"))
    assert keys <= table_keys(part)
    for key in ("upstream", "error", "status", "detail", "ip", "method", "path", "repeated"):
        assert f"| `{key}`" in part or f"`{key}`" in part, key


def test_readme_links_the_doc_and_cites_no_spec():
    readme = (ROOT / "README.md").read_text()
    assert "(docs/records.md)" in readme
    assert "SPEC" not in readme


@pytest.mark.parametrize("path", ["node/cli.py", "node/record.py", "addons/record.py",
                                  "node/logs/__init__.py", "node/logs/parsers.py"])
def test_user_facing_modules_cite_the_doc_not_the_spec(path):
    assert "SPEC §" not in (ROOT / path).read_text()
