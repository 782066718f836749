"""Labels and formatting for the console's templates (jinja filters)."""

from __future__ import annotations

import datetime as _dt
import math
from typing import Any

BOT_LABELS = {
    "api_abuse": "API abuse",
    "account_takeover": "Account takeover",
    "scraping": "Scraping",
    "security_crawlers": "Security crawlers",
    "resource_consumption": "Resource consumption",
}
# One colour per bot type, used by badges (CSS classes) and charts alike.
BOT_COLORS = {
    "api_abuse": "#7c3aed",
    "account_takeover": "#dc2626",
    "scraping": "#2563eb",
    "security_crawlers": "#d97706",
    "resource_consumption": "#0d9488",
}
LIST_LABELS = {"deny": "Denylist", "gray": "Graylist", "allow": "Allowlist",
               "exception": "Exception list"}
LIST_HELP = {
    "deny": "every request is blocked",
    "gray": "requests carrying attack signs are blocked",
    "allow": "requests bypass every check",
    "exception": "never blocked by detection (good bots, partners)",
}
REACTION_LABELS = {"monitor": "Monitor", "graylist": "Graylist", "denylist": "Denylist",
                   "deny_session": "Deny session"}
DETECTOR_LABELS = {
    "bad_user_agent": "Bad user agent",
    "authentication_abuse": "Authentication abuse",
    "request_uniqueness": "Request uniqueness",
    "suspicious_behavior": "Suspicious behavior score",
    "business_logic": "Business logic score",
    "request_rate": "Request rate",
    "request_interval": "Request interval",
    "query_abuse": "Query abuse",
    "outdated_browser": "Outdated browser",
    "wide_scope": "Wide scope",
    "ip_rotation": "IP rotation",
    "session_rotation": "Session rotation",
    "persistent_ato": "Persistent ATO",
    "credential_stuffing": "Credential stuffing",
    "low_frequency_stuffing": "Low-frequency credential stuffing",
    "response_time_anomaly": "Response time anomaly",
    "excessive_request_consumption": "Excessive request consumption",
    "excessive_response_consumption": "Excessive response consumption",
    "forced_browsing": "Forced browsing",
    "brute_force": "Brute force",
    "human_actions": "Human actions",
}
# Durations offered when adding an entry by hand (SPEC §6: 5 min .. forever).
DURATIONS = (("300", "5 minutes"), ("3600", "1 hour"), ("86400", "1 day"),
             ("604800", "7 days"), ("2592000", "30 days"), ("", "Forever"))


def bot_label(t: str | None) -> str:
    return BOT_LABELS.get(t or "", t or "—")


def detector_label(name: str) -> str:
    return DETECTOR_LABELS.get(name, name.replace("_", " ").capitalize())


def utc(ts: float | None, seconds: bool = True) -> str:
    if ts is None:
        return "—"
    d = _dt.datetime.fromtimestamp(float(ts), _dt.UTC)
    return d.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def clock(ts: float | None) -> str:
    """Time of day with milliseconds (a session's requests, whose date is in the header)."""
    if ts is None:
        return "—"
    d = _dt.datetime.fromtimestamp(float(ts), _dt.UTC)
    return d.strftime("%H:%M:%S.") + f"{d.microsecond // 1000:03d}"


def plural(n: Any, word: str) -> str:
    return word if n == 1 else word + "s"


def form_time(ts: float | None) -> str:
    """The value an <input type=datetime-local> holds (UTC, minute precision)."""
    if ts is None:
        return ""
    return _dt.datetime.fromtimestamp(float(ts), _dt.UTC).strftime("%Y-%m-%dT%H:%M")


def span(seconds: float | None) -> str:
    """A duration for people: 45 s, 12 min, 3 h 5 min, 2 d 4 h."""
    if seconds is None:
        return "—"
    s = abs(float(seconds))
    if s < 60:
        return f"{s:.0f} s" if s >= 10 else f"{s:.1f} s"
    if s < 3600:
        return f"{s // 60:.0f} min"
    if s < 86400:
        h, m = divmod(int(s) // 60, 60)
        return f"{h} h {m} min" if m else f"{h} h"
    d, h = divmod(int(s) // 3600, 24)
    return f"{d} d {h} h" if h else f"{d} d"


def ago(ts: float | None, now: float) -> str:
    if ts is None:
        return "never"
    delta = now - float(ts)
    if abs(delta) < 5:
        return "just now"
    return f"{span(delta)} ago" if delta > 0 else f"in {span(delta)}"


def number(v: Any, digits: int = 0) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    if isinstance(v, str):
        return v
    if digits == 0 and float(v).is_integer():
        return f"{int(v):,}".replace(",", "\u202f")
    return f"{float(v):,.{digits}f}".replace(",", "\u202f")


def compact(v: Any) -> str:
    """1234 → 1.2k, 2500000 → 2.5M (counters)."""
    if v is None:
        return "—"
    x = float(v)
    for unit, div in (("M", 1e6), ("k", 1e3)):
        if abs(x) >= div:
            return f"{x / div:.1f}{unit}".replace(".0" + unit, unit)
    return f"{x:.0f}" if x.is_integer() else f"{x:.2f}"


def size(v: Any) -> str:
    if v is None:
        return "—"
    x = float(v)
    for unit, div in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if x >= div:
            return f"{x / div:.1f} {unit}"
    return f"{x:.0f} B"


def ms(v: Any) -> str:
    if v is None:
        return "—"
    x = float(v)
    if x >= 1000:
        return f"{x / 1000:.2f} s"
    return f"{x:.0f} ms" if x >= 10 else f"{x:.1f} ms"


def pct(v: Any, digits: int = 0) -> str:
    if v is None:
        return "—"
    return f"{float(v) * 100:.{digits}f}%"


def change(v: float | None) -> str:
    """A % change vs the previous period: +12.5% / −3% / new."""
    if v is None:
        return "new"
    sign = "+" if v > 0 else ("−" if v < 0 else "±")
    return f"{sign}{abs(v):g}%"


def detector_value(v: Any) -> str:
    if isinstance(v, float):
        if v.is_integer():
            return number(v)
        return f"{v:.3g}" if abs(v) < 100 else number(v)
    return "—" if v is None else str(v)


def ratio(value: float | None, usual: float | None) -> float | None:
    if value is None or not usual:
        return None
    return float(value) / float(usual)


FILTERS = {
    "bot_label": bot_label, "detector_label": detector_label, "utc": utc, "ago": ago,
    "span": span, "number": number, "compact": compact, "size": size, "ms": ms, "pct": pct,
    "change": change, "detector_value": detector_value, "form_time": form_time,
    "clock": clock, "plural": plural,
    "list_label": lambda k: LIST_LABELS.get(k, k),
    "reaction_label": lambda k: REACTION_LABELS.get(k, k or "—"),
}
