"""Log timestamps to unix seconds, fast.

`strptime` costs ~10 µs a call; a log has one distinct `$time_local` per second at most, so the
CLF form is parsed once per distinct string and cached. ISO forms (JSON logs, ALB) carry
sub-second fractions that defeat a cache, so they go through one regex and `datetime` (~1 µs).
A timestamp without a zone is taken as UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}

# `30/Sep/2021:09:58:05 +0200`; HAProxy writes `04/Apr/2024:14:30:18.885` with no zone.
_CLF_RE = re.compile(
    r"(\d{1,2})/([A-Za-z]{3})/(\d{4}):(\d\d):(\d\d):(\d\d)(\.\d{1,9})?(?: ?([+-])(\d\d):?(\d\d))?")
_ISO_RE = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9}))?"
    r" ?(?:([Zz])|([+-])(\d\d):?(\d\d))?")

_CACHE_MAX = 4096
CLF_CACHE: dict[str, float] = {}


def _epoch(y: int, mo: int, d: int, h: int, mi: int, s: int) -> float | None:
    try:
        return datetime(y, mo, d, h, mi, s, tzinfo=UTC).timestamp()
    except ValueError:  # 31/Feb, hour 25...
        return None


def _parse_clf(s: str) -> float | None:
    m = _CLF_RE.fullmatch(s)
    if m is None:
        return None
    mon = _MONTHS.get(m[2].lower())
    if mon is None:
        return None
    t = _epoch(int(m[3]), mon, int(m[1]), int(m[4]), int(m[5]), int(m[6]))
    if t is None:
        return None
    if m[7]:
        t += float(m[7])
    if m[8]:
        off = int(m[9]) * 3600 + int(m[10]) * 60
        t -= off if m[8] == "+" else -off
    return t


def clf_time(s: str) -> float | None:
    """`dd/Mon/yyyy:HH:MM:SS[.frac] [+-]zzzz` to unix seconds; None when it is not one."""
    t = CLF_CACHE.get(s)
    if t is None:
        t = _parse_clf(s)
        if t is None:
            return None
        if len(CLF_CACHE) >= _CACHE_MAX:  # bounded: logs move forward, old keys are dead
            CLF_CACHE.clear()
        CLF_CACHE[s] = t
    return t


def iso_time(s: str) -> float | None:
    """ISO 8601 (`2021-12-08T14:02:43.464763557Z`, `+01:00`, nanoseconds ok) to unix seconds."""
    m = _ISO_RE.fullmatch(s)
    if m is None:
        return None
    t = _epoch(int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), int(m[6]))
    if t is None:
        return None
    if m[7]:
        t += int(m[7]) / 10 ** len(m[7])
    if m[9]:
        off = int(m[10]) * 3600 + int(m[11]) * 60
        t -= off if m[9] == "+" else -off
    return t
