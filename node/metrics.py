"""The node's Prometheus metrics (prefix `palisade_`), on an injected CollectorRegistry.

Label values come only from closed sets: verdicts, block reasons and list names are fixed
here; bot types, profiles, detectors and tables come from the configuration and the engine,
and anything outside the sets given (or past a cap) is counted as "other". Never an IP,
path, session or user agent.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

VERDICTS = ("pass", "allow", "exception", "blocked", "rejected", "error")
BLOCK_REASONS = ("denylist", "deny_session", "sqli", "xss", "path_traversal", "cmd_injection",
                 "scanner_probe", "attack", "malformed", "headers_too_large", "header_timeout",
                 "too_large", "h2_rapid_reset")
# protocol-level refusals (the request was unusable; h2_rapid_reset: an HTTP/2 connection
# cut off for resetting streams), as opposed to blocks by the lists
REJECT_REASONS = frozenset({"malformed", "headers_too_large", "header_timeout", "too_large",
                            "h2_rapid_reset"})
BLOCK_LISTS = ("deny", "gray", "session", "none")
LIST_NAMES = ("allow", "exception", "deny", "gray")
OTHER = "other"
_OPEN_CAP = 64  # most distinct values an open-ended (config-defined) label may take


class _Labels:
    """Closed set of label values: known ones pass, others become "other"."""

    __slots__ = ("known", "open", "cap")

    def __init__(self, known: Iterable[str] = (), *, open_: bool = False) -> None:
        self.known = set(known)
        self.open = open_
        self.cap = _OPEN_CAP

    def __call__(self, value: str) -> str:
        if value in self.known:
            return value
        if self.open and len(self.known) < self.cap and value:
            self.known.add(value)
            return value
        return OTHER


class NodeMetrics:
    def __init__(self, registry: CollectorRegistry, *, bot_types: Iterable[str] = (),
                 profiles: Iterable[str] = (), detectors: Iterable[str] = ()) -> None:
        self.registry = registry
        r = registry
        self.requests = Counter("palisade_requests", "Requests seen, by outcome",
                                ["verdict"], registry=r)
        self.blocked = Counter("palisade_blocked", "Requests blocked or rejected by the node",
                               ["reason", "list"], registry=r)
        self.detections = Counter("palisade_detections", "Bot detections made by the engine",
                                  ["bot_type", "profile"], registry=r)
        self.detector_firings = Counter("palisade_detector_firings",
                                        "Detectors that voted in a detection", ["detector"],
                                        registry=r)
        self.evictions = Counter("palisade_evictions",
                                 "Entries evicted from bounded in-memory tables", ["table"],
                                 registry=r)
        self.list_changes = Counter("palisade_list_changes",
                                    "IP-list entries added by detection", ["list"], registry=r)
        self.sessions_tracked = Gauge("palisade_sessions_tracked",
                                      "Sessions the engine is tracking", registry=r)
        self.list_entries = Gauge("palisade_list_entries", "Entries per IP list", ["list"],
                                  registry=r)
        self.engine_seconds = Histogram(
            "palisade_engine_seconds", "Engine time per request",
            buckets=(5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 5e-3, 0.025), registry=r)
        self.time_to_detection = Histogram(
            "palisade_time_to_detection_seconds",
            "Time from an actor's first request to its detection",
            buckets=(1, 5, 15, 30, 60, 120, 300, 900, 1800, 3600, 4 * 3600, 86400), registry=r)
        self._reason = _Labels(BLOCK_REASONS)
        self._list = _Labels(BLOCK_LISTS)
        self._bot_type = _Labels(bot_types, open_=True)
        self._profile = _Labels(profiles, open_=True)
        self._detector = _Labels(detectors, open_=True)
        self._table = _Labels((), open_=True)
        # children resolved once: the per-request path does one dict lookup, not label parsing
        self._req = {v: self.requests.labels(v) for v in VERDICTS}
        for name in LIST_NAMES:
            self.list_entries.labels(name).set(0)
        self._evicted: dict[str, float] = {}

    # -- per request ------------------------------------------------------------------------
    def request(self, verdict: str) -> None:
        c = self._req.get(verdict)
        if c is None:
            c = self.requests.labels(OTHER)
        c.inc()

    def block(self, reason: str, list_name: str = "none") -> None:
        self.blocked.labels(self._reason(reason), self._list(list_name)).inc()

    def engine_time(self, seconds: float) -> None:
        self.engine_seconds.observe(seconds)

    # -- per detection ----------------------------------------------------------------------
    def detection(self, bot_type: str, profile: str, detectors: Iterable[str],
                  ttd_seconds: float | None) -> None:
        self.detections.labels(self._bot_type(bot_type), self._profile(profile)).inc()
        for d in detectors:
            self.detector_firings.labels(self._detector(d)).inc()
        if ttd_seconds is not None and ttd_seconds >= 0:
            self.time_to_detection.observe(ttd_seconds)

    def list_added(self, list_name: str) -> None:
        self.list_changes.labels(list_name if list_name in LIST_NAMES else OTHER).inc()

    # -- periodic ---------------------------------------------------------------------------
    def set_list_counts(self, counts: dict[str, int]) -> None:
        for name in LIST_NAMES:
            self.list_entries.labels(name).set(counts.get(name, 0))

    def engine_stats(self, stats: dict) -> None:
        """Mirror `engine.stats()`: sessions gauge, and eviction totals as counter deltas."""
        sessions = stats.get("sessions")
        if isinstance(sessions, int | float):
            self.sessions_tracked.set(sessions)
        evictions = stats.get("evictions")
        if isinstance(evictions, dict):
            for table, total in evictions.items():
                self.evicted(str(table), total)

    def evicted(self, table: str, total: float) -> None:
        """Record a table's cumulative eviction count (only the growth is added)."""
        prev = self._evicted.get(table, 0)
        if total > prev:
            self.evictions.labels(self._table(table)).inc(total - prev)
        self._evicted[table] = total
