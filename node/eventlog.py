"""Operator log lines: one per decision (who, what, why) and per upstream failure, as text
(`key=value`) or JSON lines (`log_format: json` in the node or control section).

    2026-12-02 07:01:02,345 INFO palisade.events: decision ip=203.0.113.7 ips=1 \
session=s-4f2a actor=session app=shop bot_type=scraping confidence=0.72 reaction=denylist \
duration=3600 profile=shop-default ttd_requests=32 ttd_seconds=20.1 \
why="query_abuse 68 (normal < 30 varied queries); request_rate 4.1 (normal < 2/s)"

Attacker-controlled strings (session ids, paths, upstream error text) are bounded and never
carry a control character into the log: text quotes and escapes them, JSON escapes them.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Mapping
from typing import Any

EVENTS = logging.getLogger("palisade.events")
LOG_FORMATS = ("text", "json")
MAX_VALUE = 200          # characters of one string value
MAX_IPS = 16             # addresses listed in one line (the count is always given)
MAX_DETECTORS = 32
UPSTREAM_EVERY = 1.0     # seconds: at most one upstream-failure line per kind in that time

# C0, DEL, C1, line/paragraph separators and bidi overrides: nothing that moves a cursor,
# ends a line or reorders what a terminal shows.
_UNSAFE = ({i: f"\\x{i:02x}" for i in (*range(32), *range(127, 160))}
           | {c: f"\\u{c:04x}" for c in (0x2028, 0x2029, *range(0x202A, 0x202F),
                                          *range(0x2066, 0x206A))})
_BARE = re.compile(r"[\w.:/@+*%,<>()\[\]-]+")
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def bound(value: str, limit: int = MAX_VALUE) -> str:
    """At most `limit` characters (and an ellipsis when cut)."""
    return value if len(value) <= limit else value[:limit] + "…"


def clean(value: str, limit: int = MAX_VALUE) -> str:
    """Bounded, with every unsafe character written as an escape (text lines)."""
    s = value[:limit].translate(_UNSAFE)
    return s if len(s) <= limit and len(value) <= limit else s[:limit] + "…"


def _text_value(v: Any, limit: int = MAX_VALUE) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    if isinstance(v, int):
        return str(v)
    s = str(v)
    if _BARE.fullmatch(s):
        return s
    # backslash and quote first, so a value cannot close its quotes or fake an escape
    return '"' + clean(s.replace("\\", "\\\\").replace('"', '\\"'), limit) + '"'


def _why(detectors: list[dict[str, Any]]) -> str:
    return "; ".join(f"{d['name']} {_text_value(d['value'])} (normal {d['normal']})"
                     for d in detectors)


def render_text(event: str, fields: Mapping[str, Any]) -> str:
    parts = [event]
    for k, v in fields.items():
        if k == "detectors":
            k, v = "why", _why(v)
        elif isinstance(v, list):
            v = ",".join(map(str, v))
        parts.append(f"{k}={_text_value(v, 1000 if k == 'why' else MAX_VALUE)}")
    return " ".join(parts)


def emit(event: str, fields: dict[str, Any], level: int = logging.INFO) -> None:
    """Log one event line on `palisade.events` (text now, JSON by the formatter)."""
    if EVENTS.isEnabledFor(level):
        EVENTS.log(level, "%s", _Lazy(event, fields), extra={"palisade_event": (event, fields)})


class _Lazy:
    """The text rendering, made only when a text handler formats the record."""

    __slots__ = ("event", "fields")

    def __init__(self, event: str, fields: Mapping[str, Any]) -> None:
        self.event, self.fields = event, fields

    def __str__(self) -> str:
        return render_text(self.event, self.fields)


# -- decisions ----------------------------------------------------------------------------------

def _duration(seconds: float | None) -> str | int:
    return "forever" if seconds is None else round(seconds)


def decision_fields(d: Any, listed: int | None = None, skipped: str | None = None
                    ) -> dict[str, Any]:
    """Who (ip, how many addresses, session), what (bot type, confidence, reaction,
    duration) and why (each detector's value vs normal, the profile) of a Decision."""
    ips = tuple(d.ips) or (d.ip,)
    fields: dict[str, Any] = {
        "ip": bound(str(d.ip), 64), "ips": len(ips),
        "session": bound(d.session, 128) if d.session else None,
        "actor": d.actor, "app": bound(d.app, 64), "bot_type": d.bot_type,
        "confidence": round(d.confidence, 3), "reaction": d.reaction,
        "duration": _duration(d.duration), "profile": bound(d.profile, 64),
        "ttd_requests": d.ttd_requests, "ttd_seconds": round(d.ttd_seconds, 1),
    }
    if len(ips) > 1 or ips[0] != d.ip:
        fields["addresses"] = [bound(str(ip), 64) for ip in ips[:MAX_IPS]]
    if listed is not None:
        fields["listed"] = listed
    if skipped:
        fields["skipped"] = skipped
    fields["detectors"] = [{"name": n, "value": v, "normal": bound(str(m), 80)}
                           for n, v, m in d.detectors[:MAX_DETECTORS]]
    return fields


def log_decision(d: Any, listed: int | None = None, skipped: str | None = None) -> None:
    if EVENTS.isEnabledFor(logging.INFO):
        emit("decision", decision_fields(d, listed, skipped))


# -- upstream failures --------------------------------------------------------------------------

_KINDS = (("refused", "refused"), ("timed out", "timeout"), ("timeout", "timeout"),
          ("reset", "reset"), ("name or service", "dns"), ("getaddrinfo", "dns"),
          ("nodename", "dns"), ("certificate", "tls"), ("tls", "tls"), ("ssl", "tls"),
          ("closed", "closed"), ("unreachable", "unreachable"))


def error_kind(message: str) -> str:
    """refused | timeout | reset | dns | tls | closed | unreachable | other."""
    m = message.lower()
    return next((kind for needle, kind in _KINDS if needle in m), "other")


class UpstreamFailures:
    """Logs upstream failures, at most one line per kind every UPSTREAM_EVERY seconds: a
    dead upstream under load fails every request, and one line per request would bury
    everything else; the next line says how many it stood for."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self.clock = clock
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def failed(self, upstream: str, message: str, status: int, *, ip: str | None,
               method: str, path: str) -> bool:
        """Note one failure; True when it was logged."""
        kind = error_kind(message)
        now = self.clock()
        last = self._last.get(kind)
        if last is not None and now - last < UPSTREAM_EVERY:
            self._held[kind] = self._held.get(kind, 0) + 1
            return False
        self._last[kind] = now
        fields: dict[str, Any] = {
            "upstream": bound(upstream, 200), "error": kind, "status": status,
            "detail": bound(message, 160), "ip": bound(ip or "-", 64),
            "method": bound(method, 16), "path": bound(path, 160),
        }
        held = self._held.pop(kind, 0)
        if held:
            fields["repeated"] = held
        emit("upstream_error", fields, logging.WARNING)
        return True


# -- formatters ---------------------------------------------------------------------------------

class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, then the event's fields or `msg`."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname, "logger": record.name,
        }
        ev = getattr(record, "palisade_event", None)
        if ev is not None:
            out["event"] = ev[0]
            out.update(ev[1])
        else:
            out["msg"] = bound(record.getMessage(), 4000)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=True, separators=(",", ":"), default=str)


def configure_logging(log_format: str = "text", level: int = logging.INFO) -> None:
    """The root logger writes to stderr in `log_format` (replacing earlier handlers)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json"
                         else logging.Formatter(_TEXT_FORMAT))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)
