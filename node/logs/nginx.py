"""Compile an nginx `log_format` string into a line parser (one regex, compiled once).

Each `$variable` becomes a group that stops at the first character of the literal text after
it (`"$request"` -> `[^"]*`: nginx escapes `"` inside values as `\\x22`), so no variable list
is needed for the layout; a few variables get an exact pattern (times, `$status`). Variables
that feed the record are mapped below; the others are matched and ignored.
"""

from __future__ import annotations

import re

from node.errors import InputError
from node.logs.parsers import (
    INVALID,
    MAX_IP,
    count_bad,
    is_method,
    norm_host,
    referer_of,
    split_request,
    split_target,
    ua_of,
)
from node.logs.timestamps import clf_time, iso_time
from node.record import RequestRecord

_VAR_RE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")

_EXACT = {
    "time_local": r"\d{1,2}/[A-Za-z]{3}/\d{4}:\d\d:\d\d:\d\d(?: [+-]\d{4})?",
    "time_iso8601": r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?",
    "msec": r"\d+(?:\.\d+)?",
    "status": r"\d{3}",
}

# record field -> variables that can fill it, best first
_FIELDS: dict[str, tuple[str, ...]] = {
    "ip": ("remote_addr", "realip_remote_addr"),
    "time": ("time_local", "time_iso8601", "msec"),
    "request": ("request",),
    "method": ("request_method",),
    "uri": ("request_uri", "uri", "document_uri"),
    "args": ("args", "query_string"),
    "host": ("host", "http_host", "server_name"),
    "status": ("status",),
    "resp_bytes": ("body_bytes_sent", "bytes_sent"),
    "req_bytes": ("request_length",),
    "request_time": ("request_time",),
    "ua": ("http_user_agent",),
    "referer": ("http_referer",),
}


def _num(v: str | None) -> int:
    return int(v) if v and v.isdigit() else 0


class LogFormatParser:
    """A parser for one nginx `log_format` (same call signature as `parsers.PARSERS`)."""

    def __init__(self, log_format: str) -> None:
        self.log_format = log_format
        pieces: list[str] = []
        names: list[str] = []
        tokens: list[tuple[bool, str]] = []  # (is_var, text)
        pos = 0
        for m in _VAR_RE.finditer(log_format):
            if m.start() > pos:
                tokens.append((False, log_format[pos:m.start()]))
            tokens.append((True, m[1] or m[2]))
            pos = m.end()
        if pos < len(log_format):
            tokens.append((False, log_format[pos:]))
        for i, (is_var, text) in enumerate(tokens):
            if not is_var:
                pieces.append(re.escape(text))
                continue
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            if text in _EXACT:
                pat = _EXACT[text]
            elif nxt is None:
                pat = ".*"
            elif nxt[0]:
                pat = ".*?"
            else:
                pat = f"[^{re.escape(nxt[1][0])}]*"
            if text in names:  # a variable logged twice: match it, capture the first
                pieces.append(f"(?:{pat})")
            else:
                names.append(text)
                pieces.append(f"(?P<{text}>{pat})")
        self._re = re.compile("".join(pieces))
        self._idx = {f: next((v for v in vs if v in names), None) for f, vs in _FIELDS.items()}
        ix = self._idx
        if not ix["ip"] or not ix["time"] or not (ix["request"] or (ix["method"] and ix["uri"])):
            raise InputError(
                f"log_format {log_format!r}: needs $remote_addr, a time ($time_local, "
                "$time_iso8601 or $msec) and $request (or $request_method and $request_uri)")
        self._time = {"time_local": clf_time, "time_iso8601": iso_time,
                      "msec": _msec}[ix["time"]]
        self.fields = {f: v for f, v in ix.items() if v}

    def __call__(self, line: str, src: str, lineno: int,
                 bad: dict[str, int]) -> RequestRecord | str:
        m = self._re.fullmatch(line)
        if m is None:
            return "unparsable"
        g = m.groupdict()
        ix = self._idx
        ts = self._time(g[ix["time"]])
        if ts is None:
            return "bad-timestamp"
        if ix["request"]:
            method, path, query = split_request(g[ix["request"]], bad)
        else:
            method = g[ix["method"]]
            if not is_method(method):
                count_bad(bad, "malformed-request")
                method = INVALID
            path, query = split_target(g[ix["uri"]])
            if ix["args"] and not query:
                a = g[ix["args"]]
                query = "" if a == "-" else a
        rt = g[ix["request_time"]] if ix["request_time"] else None
        try:
            dur = float(rt) * 1000.0 if rt and rt != "-" else None
        except ValueError:
            dur = None
        return RequestRecord(
            ts=ts, ip=g[ix["ip"]][:MAX_IP], method=method,
            host=norm_host(g[ix["host"]]) if ix["host"] else "", path=path, query=query,
            status=_num(g[ix["status"]]) if ix["status"] else 0,
            req_bytes=_num(g[ix["req_bytes"]]) if ix["req_bytes"] else 0,
            resp_bytes=_num(g[ix["resp_bytes"]]) if ix["resp_bytes"] else 0,
            duration_ms=dur, ua=ua_of(g[ix["ua"]]) if ix["ua"] else None,   # None: not logged
            referer=referer_of(g[ix["referer"]]) if ix["referer"] else None, id=f"{src}:{lineno}")


def _msec(s: str) -> float | None:
    try:
        return float(s)
    except ValueError:
        return None


_QUOTED_PIECE = re.compile(r"'([^']*)'|\"([^\"]*)\"")


def unquote_log_format(text: str) -> str:
    """Accept the format as pasted from nginx.conf: `log_format main '...' '...';` or `'...'`."""
    s = text.strip().rstrip(";").strip()
    if s.startswith("log_format "):
        words = s.split(None, 2)
        s = words[2] if len(words) > 2 else ""
        while s.startswith("escape=") or s.startswith("if="):
            s = s.split(None, 1)[1] if " " in s else ""
    if s[:1] in ("'", '"'):
        s = "".join(a or b for a, b in _QUOTED_PIECE.findall(s))
    return s


def compile_log_format(log_format: str) -> LogFormatParser:
    """Raises InputError (one line) when the format cannot yield a record."""
    fmt = unquote_log_format(log_format) if isinstance(log_format, str) else ""
    if "$" not in fmt:
        raise InputError(f"log_format {log_format!r}: no $variable in it")
    return LogFormatParser(fmt)
