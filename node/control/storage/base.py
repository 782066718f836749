"""The storage interface every backend implements, and the shapes it stores.

The API and the sync routes only talk to `Storage`; SQLite (embedded default) and PostgreSQL
(several nodes, replicas) implement it over the same SQL (`node.control.storage.sql`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

BOT_TYPES = ("api_abuse", "account_takeover", "scraping", "security_crawlers",
             "resource_consumption")
LISTS = ("deny", "gray", "allow", "exception")
REACTIONS = ("monitor", "graylist", "denylist", "deny_session")
ROLES = ("node", "operator", "viewer")
# The list an automatic reaction puts its IP on.
REACTION_LIST = {"denylist": "deny", "graylist": "gray"}

# Heatmap features a detection carries, grouped into the console's three heatmaps.
HEATMAPS: dict[str, tuple[str, ...]] = {
    "performance": ("rps", "request_interval_cv", "distinct_endpoints"),
    "behavior": ("non_uniqueness", "scheduled", "suspicious_behavior", "critical_sensitive_use",
                 "detectors_count"),
    "http_errors": ("error_responses", "unsafe_requests"),
}
FEATURES = tuple(f for group in HEATMAPS.values() for f in group)

DAY = 86400.0


def day_of(ts: float) -> int:
    """UTC day number: aggregates are keyed by it so no backend needs date functions."""
    return int(ts // DAY)


@dataclass(frozen=True, slots=True)
class Retention:
    """How long each kind of data is kept, in seconds (SPEC §4, §8)."""

    requests: float = 7 * DAY          # request records and session summaries
    detail: float = 31 * DAY           # detector values, evidence, heatmap features
    aggregates: float = 400 * DAY      # daily aggregates, attack rows, list history
    batches: float = 7 * DAY           # received batch ids (idempotency window)


@dataclass(slots=True)
class Page:
    items: list[dict[str, Any]]
    next_offset: int | None = None


@dataclass(slots=True)
class IngestResult:
    duplicate: bool
    stored: dict[str, int] = field(default_factory=dict)


@runtime_checkable
class Storage(Protocol):
    """One async interface over the control plane's data. All times are unix seconds."""

    url_scheme: str

    async def open(self) -> None:
        """Connect and apply pending schema migrations."""

    async def close(self) -> None: ...

    async def schema_version(self) -> int: ...

    # -- tokens and nodes ---------------------------------------------------------------------
    async def put_token(self, token_hash: str, name: str, role: str, now: float) -> None: ...

    async def find_token(self, token_hash: str) -> dict[str, Any] | None: ...

    async def touch_node(self, name: str, now: float, **fields: Any) -> None: ...

    async def list_nodes(self) -> list[dict[str, Any]]: ...

    # -- sync ---------------------------------------------------------------------------------
    async def ingest_batch(self, node: str, batch_id: str, items: list[dict[str, Any]],
                           now: float) -> IngestResult:
        """Store one pushed batch atomically; a batch id seen before stores nothing."""

    async def list_version(self) -> int: ...

    async def list_changes(self, since: int, limit: int) -> tuple[list[dict[str, Any]], int,
                                                                   bool]:
        """Changes after version `since` → (changes, version to resume from, snapshot?).
        A snapshot (first op "clear", then every entry) is returned to a new node (since 0),
        when `since` is older than the retained history, or newer than the store (a control
        plane reset from a backup)."""

    # -- IP lists -----------------------------------------------------------------------------
    async def add_list_entry(self, entry: dict[str, Any], now: float) -> dict[str, Any]: ...

    async def remove_list_entry(self, list_name: str, cidr: str, who: str, reason: str,
                                now: float) -> dict[str, Any] | None: ...

    async def list_entries(self, list_name: str, *, q: str | None, limit: int,
                           offset: int, now: float) -> Page: ...

    async def list_history(self, *, list_name: str | None, cidr: str | None,
                           since: float | None, until: float | None, limit: int,
                           offset: int) -> Page: ...

    # -- attacks ------------------------------------------------------------------------------
    async def query_attacks(self, *, bot_type: str | None, ip: str | None, app: str | None,
                            since: float | None, until: float | None, limit: int,
                            offset: int, detector: str | None = None) -> Page: ...

    async def get_attack(self, attack_id: int) -> dict[str, Any] | None: ...

    async def heatmap_peers(self, app: str | None, since: float, exclude_id: int,
                            limit: int) -> list[dict[str, Any]]: ...

    async def mark_false_positive(self, attack_id: int, *, who: str, add_exception: bool,
                                  reason: str, now: float) -> dict[str, Any] | None: ...

    # -- sessions -----------------------------------------------------------------------------
    async def query_sessions(self, *, since: float | None, until: float | None,
                             ip: str | None, app: str | None, request_id: str | None,
                             method: str | None, status: int | None, bot_type: str | None,
                             limit: int, offset: int) -> Page: ...

    async def get_session(self, sid: int) -> dict[str, Any] | None: ...

    async def session_requests(self, sid: int, *, limit: int, offset: int) -> Page: ...

    async def endpoint_usual(self, app: str, paths: list[str], since: float
                             ) -> dict[str, dict[str, float]]: ...

    # -- statistics ---------------------------------------------------------------------------
    async def statistics(self, *, now: float, days: int, app: str | None,
                         min_requests: int = 1000) -> dict[str, Any]: ...

    async def app_traffic(self, *, now: float, days: int) -> dict[str, dict[str, int]]:
        """Requests per application today, in the last 7 days and the last `days` days."""

    # -- retention ----------------------------------------------------------------------------
    async def apply_retention(self, now: float, retention: Retention) -> dict[str, int]: ...
