"""One parser per log format: `parse(line, src, lineno, bad) -> RequestRecord | str`.

A parser returns a record, or a short reason (closed set, see `SKIP_REASONS`) when the line
yields none. It never raises on input. `bad` counts records yielded despite a defect
(`MALFORMED_REASONS`). Each text format is one compiled regex matched once per line; the
request line is split with `str.split`, the timestamp comes from a cache (`timestamps`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from node.logs.timestamps import CLF_CACHE, clf_time, iso_time
from node.record import (
    MAX_FIELD,
    MAX_PATH,
    MAX_QUERY,
    MAX_UA,
    RecordError,
    RequestRecord,
    record_from_json,
)

Parser = Callable[[str, str, int, dict[str, int]], "RequestRecord | str"]

SKIP_REASONS = (
    "empty",            # blank line
    "line-too-long",    # over 64 KiB, dropped unread
    "unparsable",       # not this file's format
    "error-log",        # an nginx / Apache / LiteSpeed error-log line among access lines
    "missing-field",    # the format's shape, but a field is missing (truncated line, JSON key)
    "bad-field",        # a field of the wrong type or value (JSON)
    "bad-json",         # not JSON
    "not-object",       # JSON, but not an object
    "bad-timestamp",    # the timestamp does not parse
    "bad-gzip",         # a truncated / corrupt gzip stream: the rest of that file is lost
)
MALFORMED_REASONS = (
    "malformed-request",  # junk request line (TLS bytes, "-", "", "HELP"): method INVALID
    "no-http-version",    # "GET /a b" without protocol: kept, path holds the rest
    "raw-space-in-uri",   # "GET /a b HTTP/1.1": kept, path "/a b"
    "bad-http-version",   # "GET / HTTP/1.2": method INVALID, the raw line as path
    "bad-utf8",           # invalid UTF-8, decoded with \\xHH escapes as nginx writes them
)

INVALID = "INVALID"
MAX_IP = 64
MAX_METHOD = 16

_KNOWN_METHODS = frozenset(
    "GET POST HEAD PUT DELETE OPTIONS PATCH CONNECT TRACE PROPFIND PROPPATCH MKCOL COPY MOVE "
    "LOCK UNLOCK REPORT MKCALENDAR SEARCH PRI".split())
_METHOD_TOKEN = re.compile(r"[A-Z][A-Z0-9_-]{0,15}")


def count_bad(bad: dict[str, int], reason: str) -> None:
    bad[reason] = bad.get(reason, 0) + 1


def is_method(m: str) -> bool:
    return m in _KNOWN_METHODS or _METHOD_TOKEN.fullmatch(m) is not None


_VERSIONS = frozenset({"HTTP/0.9", "HTTP/1.0", "HTTP/1.1", "HTTP/2", "HTTP/2.0", "HTTP/3",
                       "HTTP/3.0"})


def split_request(req: str, bad: dict[str, int]) -> tuple[str, str, str]:
    """`"GET /p?q HTTP/1.1"` to (method, path, query).

    A line that is no HTTP request (TLS handshake bytes, `-`, empty, `HELP`) still comes from a
    client, usually a scanner, so it becomes method INVALID with the raw line as path rather
    than being dropped: the engine sees who sends junk.
    """
    parts = req.split(" ")
    if len(parts) == 3:
        method, target, proto = parts
        if proto.startswith("HTTP/") and proto not in _VERSIONS:
            # HTTP/1.2, HTTP/2.1: no client speaks these; DoS tools and fuzzers do.
            count_bad(bad, "bad-http-version")
            return INVALID, req[:MAX_PATH], ""
        if target and proto.startswith("HTTP/") and is_method(method):
            path, _, query = target.partition("?")
            return method, path[:MAX_PATH], query[:MAX_QUERY]
    method = parts[0]
    if len(parts) >= 2 and parts[1] and is_method(method):
        if len(parts) > 3 and parts[-1].startswith("HTTP/"):
            count_bad(bad, "raw-space-in-uri")
            target = " ".join(parts[1:-1])
        else:
            count_bad(bad, "no-http-version")
            target = " ".join(parts[1:])
        path, _, query = target.partition("?")
        return method, path[:MAX_PATH], query[:MAX_QUERY]
    count_bad(bad, "malformed-request")
    return INVALID, req[:MAX_PATH], ""


def split_target(target: str) -> tuple[str, str]:
    path, _, query = target.partition("?")
    return path[:MAX_PATH], query[:MAX_QUERY]


def norm_host(h: str | None) -> str:
    """Lower-case, without `:port` (the vhost prefix is often `%v:%p`)."""
    if not h or h == "-":
        return ""
    host, sep, port = h.rpartition(":")
    if sep and port.isdigit() and (":" not in host or host.endswith("]")):
        h = host
    return h[:MAX_FIELD].lower()


_host_cache: dict[str, str] = {}


def _host_cached(h: str) -> str:
    """norm_host for vhost prefixes: a log has few, so remember them (bounded)."""
    r = _host_cache.get(h)
    if r is None:
        if len(_host_cache) >= 4096:
            _host_cache.clear()
        r = _host_cache[h] = norm_host(h)
    return r


def ip_of(addr: str) -> str:
    """`ip:port`, `[v6]:port` to the address (formats that always log a port)."""
    if addr.startswith("["):
        return addr[1:addr.find("]")][:MAX_IP]
    ip, sep, port = addr.rpartition(":")
    return (ip if sep and port.isdigit() else addr)[:MAX_IP]


def ua_of(v: str | None) -> str:
    return "" if not v or v == "-" else v[:MAX_UA]


def referer_of(v: str | None) -> str | None:
    return None if not v or v == "-" else v[:MAX_FIELD]


def _int(v: str | None) -> int:
    return int(v) if v and v.isdigit() else 0


# --- nginx / Apache combined family -------------------------------------------------------

_QUOTED = r'[^"\\]*(?:\\.[^"\\]*)*'  # unrolled: Apache escapes `"` as `\"`, nginx as `\x22`
_SYSLOG = (
    r"(?:<\d{1,3}>)?(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\S+)"
    r" \S+ [^\s:\[]+(?:\[\d+\])?: "                                 # BSD: host prog[pid]:
    r"|<\d{1,3}>\d{1,2} \S+ \S+ \S+ \S+ \S+ (?:-|(?:\[[^\]]*\])+) "  # RFC 5424
)
_CLF_RE = re.compile(
    rf"(?:{_SYSLOG})?"
    r"(?:(\S+) )?"                         # virtual host (vhost_combined, nginx $host)
    r"([0-9A-Za-z:][\w.:%-]*) \S+ "        # address (never `-`: keeps the vhost unambiguous), ident
    r"(?:\S+(?: \S+)??) "                   # user; BunkerWeb puts a request id before it
    r"\[([^\]]+)\] "
    rf'"({_QUOTED})" '
    r"(\d{3}|-) (\d+|-)"                     # `-`: no response was sent (Traefik)
    rf'(?: "({_QUOTED})" "({_QUOTED})")?'
    r"(.*)"
)
# After the UA: nginx `main` adds `"$http_x_forwarded_for"`; a `$request_time` is a float
# (nginx writes 3 decimals); Traefik's CLF ends with `<n>ms`. Apache's integer %T / %D are
# ambiguous with other integers and left alone.
_TAIL_SECONDS = re.compile(r'(?: "[^"]*")* (\d+\.\d+)(?: |$)')
_TAIL_MS = re.compile(r" (\d+(?:\.\d+)?)ms$")
_CLF_HEAD = re.compile(r'\S+ .*\[[^\]]+\] "')

_ERROR_LOG = re.compile(
    r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[[a-z]+\]"              # nginx
    r"|\[[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d [\d:.]+ \d{4}\] \["  # Apache
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \[[A-Z]+\]"         # LiteSpeed
)


def _clf_failure(line: str) -> str:
    if _ERROR_LOG.match(line):
        return "error-log"
    if _CLF_HEAD.match(line):
        return "missing-field"
    return "unparsable"


def tail_duration_ms(rest: str) -> float | None:
    t = rest[1:]
    if rest[0] == " " and t[:1].isdigit() and "." in t:  # just `$request_time`: skip the regex
        try:
            return float(t) * 1000.0
        except ValueError:
            pass
    m = _TAIL_SECONDS.match(rest)
    if m:
        return float(m[1]) * 1000.0
    m = _TAIL_MS.search(rest)
    return float(m[1]) if m else None


# The common case, fast: no vhost or syslog prefix, `METHOD target HTTP/x` as request line,
# optionally nginx main's `"$http_x_forwarded_for"` and a `$request_time`; fields within the
# record's bounds. Single-character negated classes (`[^"]*`) are what `re` scans fastest. Any
# other line, or one with a backslash (Apache's `\"` escape, `\x16` junk), takes `_CLF_RE`.
_FAST_RE = re.compile(
    rf'([^ ]{{1,{MAX_IP}}}) [^ ]+ [^ ]+ \[([^\]]+)\] '
    rf'"([A-Z]{{1,{MAX_METHOD}}}) ([^ ]{{1,{MAX_PATH}}}) '
    rf'HTTP/(?:1\.[01]|2(?:\.0)?|3(?:\.0)?|0\.9)" (\d{{3}}) (\d+|-)'
    rf'(?: "([^"]*)" "([^"]{{0,{MAX_UA}}})")?(?: "[^"]*")?(?: (\d+\.\d+))?$')
_STATUS = {str(i): i for i in range(100, 1000)}


def _no_ua(ua: str | None) -> str | None:
    """`-` or `""`: the client sent no User-Agent (""); no field at all (`common`, or a
    `log_format` without one): the log does not say (None), which is no evidence."""
    return None if ua is None else ""


def parse_combined(line: str, src: str, lineno: int, bad: dict[str, int]) -> RequestRecord | str:
    """combined / common, + `$request_time`, nginx main, vhost prefix, syslog wrapper."""
    if "\\" in line or (m := _FAST_RE.match(line)) is None:
        return _parse_combined_slow(line, src, lineno, bad)
    ip, tstr, method, target, status, size, ref, ua, rt = m.groups()
    ts = CLF_CACHE.get(tstr)
    if ts is None:
        ts = clf_time(tstr)
        if ts is None:
            return "bad-timestamp"
    path, _, query = target.partition("?")  # both within MAX_PATH as the target is
    return RequestRecord(
        ts, ip, method, "", path, query, _STATUS[status], 0, 0 if size == "-" else int(size),
        float(rt) * 1000.0 if rt else None, ua if ua and ua != "-" else _no_ua(ua), None, None,
        f"{src}:{lineno}", None, None if not ref or ref == "-" else ref[:MAX_FIELD])


_PREFIX_RE = re.compile(f"(?:{_SYSLOG})?")


def _parse_prefixed(line: str, src: str, lineno: int) -> RequestRecord | str | None:
    """A syslog and / or vhost prefix before an otherwise fast line: `_FAST_RE` after it."""
    # matches "" at worst; a syslog header never starts lower-case, a host name usually does
    pos = 0 if line[0].islower() else _PREFIX_RE.match(line).end()  # type: ignore[union-attr]
    sp = line.find(" ", pos)
    vhost = line[pos:sp]
    m = _FAST_RE.match(line, sp + 1) if sp > pos else None
    if m is None or not (m[1][0].isalnum() or m[1][0] == ":"):  # `-` there: no vhost after all
        if not pos:
            return None
        m, vhost = _FAST_RE.match(line, pos), ""
        if m is None:
            return None
    ip, tstr, method, target, status, size, ref, ua, rt = m.groups()
    ts = clf_time(tstr)
    if ts is None:
        return "bad-timestamp"
    path, _, query = target.partition("?")
    return RequestRecord(
        ts, ip, method, _host_cached(vhost), path, query, _STATUS[status], 0,
        0 if size == "-" else int(size), float(rt) * 1000.0 if rt else None,
        ua if ua and ua != "-" else _no_ua(ua), None, None, f"{src}:{lineno}", None,
        None if not ref or ref == "-" else ref[:MAX_FIELD])


# A bare program tag before the line (`nginx: `, `frontend.0 nginx[12]: `): journald and
# platform log shippers keep syslog's tag but drop its timestamp. No client address is a
# word ending in ": ", so the tag cannot be mistaken for one (`fe80::1` has no space after).
_TAG_RE = re.compile(r"(?:[\w.-]+ )?[A-Za-z][\w.-]*(?:\[\d+\])?: (?=\S)")


def _parse_combined_slow(line: str, src: str, lineno: int,
                         bad: dict[str, int], tag: bool = True) -> RequestRecord | str:
    if tag and line[:1].isalpha() and (t := _TAG_RE.match(line)) is not None:
        return _parse_combined_slow(line[t.end():], src, lineno, bad, tag=False)
    if "\\" not in line:
        r = _parse_prefixed(line, src, lineno)
        if r is not None:
            return r
    m = _CLF_RE.match(line)
    if m is None:
        return _clf_failure(line)
    vhost, ip, tstr, req, status, size, ref, ua, rest = m.groups()
    ts = clf_time(tstr)
    if ts is None:
        return "bad-timestamp"
    method, path, query = split_request(req, bad)
    return RequestRecord(
        ts, ip[:MAX_IP], method, norm_host(vhost) if vhost else "", path, query,
        0 if status == "-" else int(status), 0, 0 if size == "-" else int(size),
        tail_duration_ms(rest) if rest else None,
        ua[:MAX_UA] if ua and ua != "-" else _no_ua(ua), None, None, f"{src}:{lineno}", None,
        None if not ref or ref == "-" else ref[:MAX_FIELD])


# --- JSON: Palisade records, Caddy, Traefik, Envoy ----------------------------------------

# Kubernetes / containerd (CRI) prefix: `2025-12-31T17:37:40.49+01:00 stdout F {...}`.
_CRI_RE = re.compile(r"\S+ (?:stdout|stderr) [FP] ")


def _unwrap(line: str) -> str:
    if line[0] != "{":
        m = _CRI_RE.match(line)
        if m:
            return line[m.end():]
    return line


def parse_json(line: str, src: str, lineno: int, bad: dict[str, int]) -> RequestRecord | str:
    """Palisade request records (docs/records.md), one JSON object a line."""
    line = _unwrap(line)
    if line[0] != "{":
        return "bad-json"
    try:
        rec = record_from_json(line)
    except RecordError as e:
        return e.reason
    if rec.id is None:
        rec.id = f"{src}:{lineno}"
    return rec


def _load(line: str) -> dict[str, Any] | str:
    line = _unwrap(line)
    if line[0] != "{":
        return "bad-json"
    try:
        d = json.loads(line)
    except (ValueError, RecursionError):     # `[[[[...` 64 KiB deep is malformed, not a crash
        return "bad-json"
    return d if isinstance(d, dict) else "not-object"


def _first(v: Any) -> str | None:
    """Caddy logs each header as a list of values."""
    if isinstance(v, list):
        v = v[0] if v else None
    return v if isinstance(v, str) else None


def _ts_any(v: Any) -> float | None:
    if isinstance(v, int | float) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, str):
        return iso_time(v)
    return None


def _json_record(src: str, lineno: int, ts: Any, ip: Any, method: Any, target: Any,
                 **kw: Any) -> RequestRecord | str:
    """Shared checks for the JSON formats: required fields present and of the right type."""
    if ts is None or not ip or not method or target is None:
        return "missing-field"
    t = _ts_any(ts)
    if t is None:
        return "bad-timestamp"
    if not (isinstance(ip, str) and isinstance(method, str) and isinstance(target, str)):
        return "bad-field"
    path, query = split_target(target)
    return RequestRecord(ts=t, ip=ip[:MAX_IP], method=method[:MAX_METHOD].upper(), path=path,
                         query=query, id=f"{src}:{lineno}", **kw)


def _num(v: Any, scale: float = 1.0) -> float | None:
    if isinstance(v, int | float) and not isinstance(v, bool):
        return v * scale
    return None


def parse_caddy(line: str, src: str, lineno: int, bad: dict[str, int]) -> RequestRecord | str:
    """Caddy `http.log.access` JSON (`ts` unix float, `duration` seconds)."""
    d = _load(line)
    if isinstance(d, str):
        return d
    req = d.get("request")
    if not isinstance(req, dict) or "status" not in d:
        return "missing-field"
    h = req.get("headers")
    h = h if isinstance(h, dict) else {}
    dur = _num(d.get("duration"), 1000.0)
    try:
        return _json_record(
            src, lineno, d.get("ts"), req.get("client_ip") or req.get("remote_ip"),
            req.get("method"), req.get("uri"), host=norm_host(req.get("host")),
            status=int(d["status"]), req_bytes=int(d.get("bytes_read") or 0),
            resp_bytes=int(d.get("size") or 0), duration_ms=dur,
            ua=ua_of(_first(h.get("User-Agent"))), referer=referer_of(_first(h.get("Referer"))))
    except (TypeError, ValueError, AttributeError):
        return "bad-field"


def parse_traefik(line: str, src: str, lineno: int, bad: dict[str, int]) -> RequestRecord | str:
    """Traefik JSON access log (`Duration` in ns; headers as `request_User-Agent` if kept)."""
    d = _load(line)
    if isinstance(d, str):
        return d
    status = d.get("DownstreamStatus", d.get("OriginStatus"))
    ip = d.get("ClientHost")
    if status is None or not isinstance(ip, str):
        return "missing-field"
    ip = ip.split(",", 1)[0].strip()  # with trusted forwarded headers: the X-Forwarded-For list
    try:
        return _json_record(
            src, lineno, d.get("StartUTC") or d.get("time"), ip,
            d.get("RequestMethod"), d.get("RequestPath"), host=norm_host(d.get("RequestHost")),
            status=int(status), req_bytes=int(d.get("RequestContentSize") or 0),
            resp_bytes=int(d.get("DownstreamContentSize") or 0),
            duration_ms=_num(d.get("Duration"), 1e-6),
            ua=ua_of(d.get("request_User-Agent")), referer=referer_of(d.get("request_Referer")))
    except (TypeError, ValueError, AttributeError):
        return "bad-field"


def parse_envoy(line: str, src: str, lineno: int, bad: dict[str, int]) -> RequestRecord | str:
    """Envoy JSON access log, keys named after its command operators (often under CRI)."""
    d = _load(line)
    if isinstance(d, str):
        return d
    addr = d.get("downstream_remote_address")
    status = d.get("response_code")
    if not isinstance(addr, str) or status is None:
        return "missing-field"
    host = d.get(":authority") or d.get("authority")
    try:
        return _json_record(
            src, lineno, d.get("start_time"), ip_of(addr), d.get("method"),
            d.get("x-envoy-origin-path") or d.get("path"),
            host=norm_host(host if isinstance(host, str) else None), status=int(status),
            req_bytes=int(d.get("bytes_received") or 0), resp_bytes=int(d.get("bytes_sent") or 0),
            duration_ms=_num(d.get("duration")), ua=ua_of(d.get("user-agent")),
            referer=referer_of(d.get("referer")))
    except (TypeError, ValueError, AttributeError):
        return "bad-field"


# --- AWS ALB, HAProxy, Zoraxy -------------------------------------------------------------

_ALB_RE = re.compile(
    r"(?:https?|h2|grpcs?|wss?) (\S+) \S+ (\S+) \S+ (\S+) (\S+) (\S+) (\S+) \S+ (\d+) (\d+) "
    r'"([^"]*)" "([^"]*)"')
_URL_RE = re.compile(r"[a-z][a-z0-9+.-]*://([^/?]*)(.*)")


def parse_alb(line: str, src: str, lineno: int, bad: dict[str, int]) -> RequestRecord | str:
    """AWS Application Load Balancer access log (the request line carries an absolute URL)."""
    m = _ALB_RE.match(line)
    if m is None:
        return "unparsable"
    tstr, client, t1, t2, t3, status, recv, sent, req, ua = m.groups()
    ts = iso_time(tstr)
    if ts is None:
        return "bad-timestamp"
    method, target, query = split_request(req, bad)
    host = ""
    u = _URL_RE.match(target)
    if u:  # ALB always logs `scheme://host:port/path`: keep the path, the host apart
        host, target = norm_host(u[1]), u[2] or "/"
    times = [float(t) for t in (t1, t2, t3) if t != "-1"]  # -1: the stage did not happen
    return RequestRecord(
        ts=ts, ip=ip_of(client), method=method, host=host, path=target, query=query,
        status=_int(status), req_bytes=int(recv), resp_bytes=int(sent),
        duration_ms=sum(times) * 1000.0 if times else None, ua=ua_of(ua), id=f"{src}:{lineno}")


# `%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/... %sq/%bq {hdrs} "%r"`
_HAPROXY_RE = re.compile(
    rf"(?:{_SYSLOG})?"
    r"(\S+) \[([^\]]+)\] \S+ \S+ (?:[+-]?\d+/){2,4}\+?(-?\d+) (-?\d+) \+?(\d+) "
    r'\S+ \S+ \S+ \S+ \S+(?: \{([^}]*)\})?(?: \{[^}]*\})? "([^"]*)"')


def parse_haproxy(line: str, src: str, lineno: int, bad: dict[str, int]) -> RequestRecord | str:
    """HAProxy HTTP log (`option httplog`); `%tr` has no zone: taken as UTC."""
    m = _HAPROXY_RE.match(line)
    if m is None:
        return "error-log" if _ERROR_LOG.match(line) else "unparsable"
    client, tstr, total, status, size, _hdrs, req = m.groups()
    ts = clf_time(tstr)
    if ts is None:
        return "bad-timestamp"
    method, path, query = split_request(req, bad)
    dur = float(total)
    return RequestRecord(
        ts=ts, ip=ip_of(client), method=method, host="", path=path, query=query,
        status=max(0, int(status)), resp_bytes=int(size), duration_ms=dur if dur >= 0 else None,
        id=f"{src}:{lineno}")


_ZORAXY_RE = re.compile(
    r"\S+ \S+ \[([\d-]+ [\d:.]+)\] \[router:[^\]]*\] \[origin:[^\]]*\] \[client: ([^\]]+)\] "
    r"\[useragent: ([^\]]*)\] (\S+) (.*) (\d{3})")


def parse_zoraxy(line: str, src: str, lineno: int, bad: dict[str, int]) -> RequestRecord | str:
    """Zoraxy reverse-proxy log; its timestamp has no zone: taken as UTC."""
    m = _ZORAXY_RE.fullmatch(line)
    if m is None:
        return "unparsable"
    tstr, client, ua, method, target, status = m.groups()
    ts = iso_time(tstr)
    if ts is None:
        return "bad-timestamp"
    if not is_method(method):
        count_bad(bad, "malformed-request")
        method = INVALID
    path, query = split_target(target)
    return RequestRecord(ts=ts, ip=ip_of(client) if client.count(":") == 1 else client[:MAX_IP],
                         method=method, host="", path=path, query=query, status=int(status),
                         ua=ua_of(ua), id=f"{src}:{lineno}")


# Envelope fields that carry a whole access-log line: Docker's json-file driver (`log`),
# journald exports and platform shippers (`message`, `MESSAGE`), structured loggers (`msg`).
_WRAP_KEYS = ("log", "message", "MESSAGE", "msg")


def parse_wrapped(line: str, src: str, lineno: int, bad: dict[str, int]) -> RequestRecord | str:
    """An nginx / Apache line inside a JSON envelope (a CRI prefix before it is fine)."""
    d = _load(line)
    if d.__class__ is str:
        return d  # type: ignore[return-value]
    for k in _WRAP_KEYS:
        v = d.get(k)  # type: ignore[union-attr]
        if isinstance(v, str) and v.strip():
            return parse_combined(v.strip(), src, lineno, bad)  # bounded: the line is
    return "missing-field"


# Detection order: on a tie the earlier format wins.
PARSERS: dict[str, Parser] = {
    "json": parse_json,
    "combined": parse_combined,
    "caddy": parse_caddy,
    "traefik": parse_traefik,
    "envoy": parse_envoy,
    "alb": parse_alb,
    "haproxy": parse_haproxy,
    "zoraxy": parse_zoraxy,
    "wrapped": parse_wrapped,
}
