"""The request record (docs/records.md): what the node records and `replay` reads."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

# Bounds on attacker-controlled strings kept in a record: a record is stored and shown,
# so nothing in it may be larger than these.
MAX_PATH = 2048
MAX_QUERY = 2048
MAX_UA = 512
MAX_FIELD = 256


@dataclass(slots=True)
class RequestRecord:
    ts: float
    ip: str
    method: str
    host: str
    path: str
    query: str = ""
    status: int = 0
    req_bytes: int = 0
    resp_bytes: int = 0
    duration_ms: float | None = None
    ua: str | None = ""          # "" the client sent none; None the log does not record it
    session: str | None = None
    user: str | None = None
    id: str | int | None = None
    ja3: str | None = None
    referer: str | None = None
    content_type: str | None = None
    blocked: bool = False

    def to_json(self) -> str:
        d = {k: getattr(self, k) for k in _FIELDS}
        for k in _OPTIONAL:
            if d[k] is None or (k == "blocked" and not d[k]):
                del d[k]
        return json.dumps(d, separators=(",", ":"), ensure_ascii=False)


_FIELDS = RequestRecord.__slots__
_OPTIONAL = ("id", "ja3", "referer", "content_type", "blocked")


class RecordError(ValueError):
    """A JSON line that is not a valid record; `reason` is a short closed-set label."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        super().__init__(f"{reason}: {detail}" if detail else reason)


def _str(d: dict[str, Any], key: str, limit: int, default: str | None = "") -> str | None:
    v = d.get(key, default)
    if v is None:
        return default
    if not isinstance(v, str):
        raise RecordError("bad-field", key)
    return v[:limit]


def _num(d: dict[str, Any], key: str, default: float | None = 0) -> float | None:
    v = d.get(key, default)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise RecordError("bad-field", key)
    return v


_FAST_TYPES = (("ts", float), ("ip", str), ("method", str), ("host", str), ("path", str),
               ("query", str), ("status", int), ("req_bytes", int), ("resp_bytes", int),
               ("ua", str))


def record_from_dict(d: dict[str, Any]) -> RequestRecord:
    """Validate one decoded JSON object into a record. Unknown keys are ignored."""
    if not isinstance(d, dict):
        raise RecordError("not-object")
    # Fast path for what the node itself writes: every field present with its exact type.
    g = d.get
    ts, ip, method, path, ua = g("ts"), g("ip"), g("method"), g("path"), g("ua", "")
    if (type(ts) is float and type(ip) is str and type(method) is str and type(path) is str
            and type(ua) is str and type(g("status")) is int and type(g("query", "")) is str
            and type(g("resp_bytes", 0)) is int and type(g("req_bytes", 0)) is int
            and type(g("host", "")) is str and 0 < len(ip) <= 64 and len(path) <= MAX_PATH
            and len(ua) <= MAX_UA and len(method) <= 16 and math.isfinite(ts)
            and not ("ja3" in d or "referer" in d or "content_type" in d or "blocked" in d)):
        dur, sess, user, rid = g("duration_ms"), g("session"), g("user"), g("id")
        if ((dur is None or type(dur) in (float, int)) and (sess is None or type(sess) is str)
                and (user is None or type(user) is str)
                and (rid is None or type(rid) in (str, int))):
            q = g("query", "")
            return RequestRecord(
                ts, ip, method.upper(), g("host", "").lower(), path or "/", q[:MAX_QUERY],
                d["status"], max(0, g("req_bytes", 0)), max(0, g("resp_bytes", 0)),
                float(dur) if dur is not None else None, ua,
                sess[:MAX_FIELD] if sess is not None else None,
                user[:MAX_FIELD] if user is not None else None, rid)
    for k in ("ts", "ip", "method", "path"):
        if k not in d:
            raise RecordError("missing-field", k)
    ts = _num(d, "ts")
    ip = _str(d, "ip", 64)
    if not ip:
        raise RecordError("bad-field", "ip")
    dur = _num(d, "duration_ms", None)
    rid = d.get("id")
    if rid is not None and not isinstance(rid, str | int):
        rid = str(rid)
    return RequestRecord(
        ts=float(ts),
        ip=ip,
        method=(_str(d, "method", 16) or "-").upper(),
        host=(_str(d, "host", MAX_FIELD) or "").lower(),
        path=_str(d, "path", MAX_PATH) or "/",
        query=_str(d, "query", MAX_QUERY) or "",
        status=int(_num(d, "status")),
        req_bytes=max(0, int(_num(d, "req_bytes"))),
        resp_bytes=max(0, int(_num(d, "resp_bytes"))),
        duration_ms=float(dur) if dur is not None else None,
        # `"ua": null` is a log that did not record the agent (unknown); absent, it is empty.
        ua=None if "ua" in d and d["ua"] is None else (_str(d, "ua", MAX_UA) or ""),
        session=_str(d, "session", MAX_FIELD, None),
        user=_str(d, "user", MAX_FIELD, None),
        id=rid,
        ja3=_str(d, "ja3", 64, None),
        referer=_str(d, "referer", MAX_FIELD, None),
        content_type=_str(d, "content_type", 128, None),
        blocked=bool(d.get("blocked", False)),
    )


def record_from_json(line: str | bytes) -> RequestRecord:
    try:
        d = json.loads(line)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:   # deep nesting: no crash
        raise RecordError("bad-json", str(e)[:80]) from None
    return record_from_dict(d)
