"""Schema migrations: ordered steps per backend, recorded in `schema_version`.

A step is a list of statements applied in one transaction. Never edit a released step: append
a new one. Version 1 is written once as a template because both dialects share it; later steps
may differ per backend.
"""

from __future__ import annotations

_V1 = """
CREATE TABLE nodes (
    name TEXT PRIMARY KEY, version TEXT, addr TEXT, first_seen {F} NOT NULL,
    last_seen {F} NOT NULL, last_push {F}, lag_seconds {F}, list_version {I},
    spooled {I}, dropped {I});

CREATE TABLE api_tokens (
    token_hash TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL,
    created {F} NOT NULL, revoked {I} NOT NULL DEFAULT 0);

CREATE TABLE ip_list_entries (
    list TEXT NOT NULL, cidr TEXT NOT NULL, reason TEXT NOT NULL, source TEXT NOT NULL,
    created {F} NOT NULL, expires {F}, who TEXT NOT NULL, attack_id {I}, version {I} NOT NULL,
    PRIMARY KEY (list, cidr));
CREATE INDEX ip_list_entries_expires ON ip_list_entries (expires);
CREATE INDEX ip_list_entries_attack ON ip_list_entries (attack_id);

CREATE TABLE ip_list_history (
    version {ID}, event_id TEXT UNIQUE, op TEXT NOT NULL, list TEXT NOT NULL,
    cidr TEXT NOT NULL, reason TEXT NOT NULL, source TEXT NOT NULL, created {F} NOT NULL,
    expires {F}, who TEXT NOT NULL, ts {F} NOT NULL, origin TEXT, attack_id {I});
CREATE INDEX ip_list_history_entry ON ip_list_history (list, cidr);
CREATE INDEX ip_list_history_ts ON ip_list_history (ts);

CREATE TABLE attacks (
    id {ID}, event_id TEXT UNIQUE, node TEXT, ts {F} NOT NULL, ip TEXT NOT NULL,
    ips TEXT NOT NULL, session TEXT, app TEXT NOT NULL, bot_type TEXT NOT NULL,
    confidence {F} NOT NULL, profile TEXT, reaction TEXT NOT NULL, duration {F},
    ttd_requests {I}, ttd_seconds {F}, detectors TEXT NOT NULL, detail TEXT,
    false_positive {I} NOT NULL DEFAULT 0, fp_ts {F}, fp_who TEXT);
CREATE INDEX attacks_ts ON attacks (ts);
CREATE INDEX attacks_type_ts ON attacks (bot_type, ts);
CREATE INDEX attacks_ip_ts ON attacks (ip, ts);
CREATE INDEX attacks_app_ts ON attacks (app, ts);
CREATE INDEX attacks_session ON attacks (app, session);

CREATE TABLE requests (
    id {ID}, node TEXT, request_id TEXT, ts {F} NOT NULL, ip TEXT NOT NULL, app TEXT NOT NULL,
    session TEXT, method TEXT NOT NULL, host TEXT NOT NULL, path TEXT NOT NULL,
    query TEXT NOT NULL, status {I} NOT NULL, req_bytes {I} NOT NULL, resp_bytes {I} NOT NULL,
    duration_ms {F}, ua TEXT NOT NULL, username TEXT, blocked {I} NOT NULL, attack TEXT);
CREATE INDEX requests_ts ON requests (ts);
CREATE INDEX requests_ip_ts ON requests (ip, ts);
CREATE INDEX requests_session_ts ON requests (app, session, ts);
CREATE INDEX requests_request_id ON requests (request_id);
CREATE INDEX requests_endpoint ON requests (app, path);

CREATE TABLE sessions (
    id {ID}, app TEXT NOT NULL, session_id TEXT NOT NULL, ip TEXT NOT NULL, node TEXT,
    first_ts {F} NOT NULL, last_ts {F} NOT NULL, requests {I} NOT NULL,
    statuses TEXT NOT NULL, req_bytes {I} NOT NULL, resp_bytes {I} NOT NULL, attack_type TEXT,
    UNIQUE (app, session_id));
CREATE INDEX sessions_last_ts ON sessions (last_ts);
CREATE INDEX sessions_ip ON sessions (ip, last_ts);
CREATE INDEX sessions_attack ON sessions (attack_type, last_ts);

CREATE TABLE daily_attacks (
    day {I} NOT NULL, app TEXT NOT NULL, bot_type TEXT NOT NULL, detections {I} NOT NULL,
    PRIMARY KEY (day, app, bot_type));
CREATE TABLE daily_traffic (
    day {I} NOT NULL, app TEXT NOT NULL, requests {I} NOT NULL, blocked {I} NOT NULL,
    PRIMARY KEY (day, app));
CREATE TABLE daily_lists (
    day {I} NOT NULL, list TEXT NOT NULL, added {I} NOT NULL, PRIMARY KEY (day, list));
CREATE TABLE daily_detectors (
    day {I} NOT NULL, detector TEXT NOT NULL, other TEXT NOT NULL, fired {I} NOT NULL,
    PRIMARY KEY (day, detector, other));
CREATE TABLE daily_targets (
    day {I} NOT NULL, app TEXT NOT NULL, endpoint TEXT NOT NULL, hits {I} NOT NULL,
    PRIMARY KEY (day, app, endpoint));

CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE received_batches (
    batch_id TEXT PRIMARY KEY, node TEXT NOT NULL, ts {F} NOT NULL, items {I} NOT NULL);
CREATE INDEX received_batches_ts ON received_batches (ts);
"""


# Version 2: indexes the planners can use without statistics (SQLite has none unless
# ANALYZE runs): evidence marking on ingest looks requests up by (app, request_id) and a
# session's detections by (app, session, ts) — with `app` alone as the leading column, SQLite
# scanned every request of the application per pushed detection. An endpoint's usual time
# and size are read from a covering index, without touching the table.
_V2 = """
CREATE INDEX requests_app_request ON requests (app, request_id);
CREATE INDEX attacks_session_ts ON attacks (app, session, ts);
DROP INDEX attacks_session;
CREATE INDEX requests_endpoint_usual ON requests (app, path, blocked, ts, duration_ms,
    resp_bytes, req_bytes);
DROP INDEX requests_endpoint;
"""

# Version 3: sessions filtered by a request's status or method probe each session on
# (app, session, status, method) instead of reading its requests.
_V3 = """
CREATE INDEX requests_session_status ON requests (app, session, status, method);
"""


# Version 4: nodes push detections and list changes ahead of request records (sync priority
# classes), so a detection's evidence may name requests not stored yet: they wait in
# pending_evidence and are marked when they arrive. Nodes report the records they shed.
_V4 = """
CREATE TABLE pending_evidence (
    app TEXT NOT NULL, request_id TEXT NOT NULL, bot_type TEXT NOT NULL, day {I} NOT NULL,
    ts {F} NOT NULL);
CREATE INDEX pending_evidence_request ON pending_evidence (app, request_id);
CREATE INDEX pending_evidence_ts ON pending_evidence (ts);
ALTER TABLE nodes ADD COLUMN records_shed {I};
"""


def _render(template: str, **types: str) -> list[str]:
    return [s.strip() for s in template.format(**types).split(";") if s.strip()]


SQLITE: list[list[str]] = [
    _render(_V1, ID="INTEGER PRIMARY KEY AUTOINCREMENT", F="REAL", I="INTEGER"),
    _render(_V2),
    _render(_V3),
    _render(_V4, F="REAL", I="INTEGER"),
]

POSTGRES: list[list[str]] = [
    _render(_V1, ID="BIGSERIAL PRIMARY KEY", F="DOUBLE PRECISION", I="BIGINT"),
    _render(_V2),
    _render(_V3),
    _render(_V4, F="DOUBLE PRECISION", I="BIGINT"),
]
