"""node.logs: line parsers (tables of line -> record fields, and error tables) and LogReader."""

from __future__ import annotations

import gzip
import json
import types
from pathlib import Path

import pytest

from node.errors import InputError
from node.logs import FORMATS, MALFORMED_REASONS, PARSERS, SKIP_REASONS, LogReader
from node.logs.nginx import compile_log_format, unquote_log_format
from node.logs.parsers import norm_host, split_request
from node.logs.reader import LINE_LIMIT
from node.logs.timestamps import clf_time, iso_time
from node.record import MAX_PATH, MAX_UA, RequestRecord

T = 1632988685.0  # 30/Sep/2021:09:58:05 +0200
UA = "Mozilla/5.0 (X11; Linux x86_64) Firefox/99.0"
CLF = f'1.2.3.4 - - [30/Sep/2021:09:58:05 +0200] "GET /a?b=1 HTTP/1.1" 200 512 "-" "{UA}"'


def parse(fmt: str, line: str) -> tuple[RequestRecord | str, dict[str, int]]:
    bad: dict[str, int] = {}
    return PARSERS[fmt](line, "f.log", 7, bad), bad


def check(rec: RequestRecord | str, want: dict) -> None:
    assert isinstance(rec, RequestRecord), rec
    got = {k: getattr(rec, k) for k in want}
    assert got == want


# --- timestamps ---------------------------------------------------------------------------

@pytest.mark.parametrize(("s", "want"), [
    ("30/Sep/2021:09:58:05 +0200", T),
    ("30/Sep/2021:07:58:05 +0000", T),
    ("30/Sep/2021:07:58:05", T),
    ("30/sep/2021:04:28:05 -0330", T),
    ("04/Apr/2024:14:30:18.885", 1712241018.885),
    ("1/Jan/1970:00:00:00 +0000", 0.0),
])
def test_clf_time(s, want):
    assert clf_time(s) == pytest.approx(want)
    assert clf_time(s) == pytest.approx(want)  # the cached path


@pytest.mark.parametrize("s", ["", "30/Foo/2021:09:58:05 +0200", "31/Feb/2021:09:58:05 +0000",
                               "30/Sep/2021:25:58:05 +0000", "2021-09-30T07:58:05Z", "-"])
def test_clf_time_errors(s):
    assert clf_time(s) is None


@pytest.mark.parametrize(("s", "want"), [
    ("2021-09-30T07:58:05Z", T),
    ("2021-09-30T09:58:05+02:00", T),
    ("2021-09-30T09:58:05+0200", T),
    ("2021-09-30 07:58:05", T),
    ("2021-09-30T07:58:05.5Z", T + 0.5),
    ("2021-12-08T14:02:43.464763557Z", 1638972163.464763557),
    ("2025-12-31T17:37:40.493035218+01:00", 1767199060.493035218),
])
def test_iso_time(s, want):
    assert iso_time(s) == pytest.approx(want, abs=1e-6)


@pytest.mark.parametrize("s", ["", "2021-13-30T07:58:05Z", "2021-09-30", "yesterday",
                               "30/Sep/2021:09:58:05 +0200"])
def test_iso_time_errors(s):
    assert iso_time(s) is None


# --- request line -------------------------------------------------------------------------

@pytest.mark.parametrize(("req", "want", "reason"), [
    ("GET /a?b=1&c=2 HTTP/1.1", ("GET", "/a", "b=1&c=2"), None),
    ("POST /login HTTP/2.0", ("POST", "/login", ""), None),
    ("GET /a?b?c HTTP/1.0", ("GET", "/a", "b?c"), None),
    ("PROPFIND /dav/ HTTP/1.1", ("PROPFIND", "/dav/", ""), None),
    ("CONNECT foo.com:25 HTTP/1.1", ("CONNECT", "foo.com:25", ""), None),
    ("GET http://x.com:80/ip4.php HTTP/1.0", ("GET", "http://x.com:80/ip4.php", ""), None),
    ("GET /a b?c=d e HTTP/1.1", ("GET", "/a b", "c=d e"), "raw-space-in-uri"),
    ("GET /x.php?cmd=ls -al&y=1", ("GET", "/x.php", "cmd=ls -al&y=1"), "no-http-version"),
    ("GET /", ("GET", "/", ""), "no-http-version"),
    ("\\x16\\x03\\x01\\x01 \\x02", ("INVALID", "\\x16\\x03\\x01\\x01 \\x02", ""),
     "malformed-request"),
    ("-", ("INVALID", "-", ""), "malformed-request"),
    ("", ("INVALID", "", ""), "malformed-request"),
    ("HELP", ("INVALID", "HELP", ""), "malformed-request"),
    ("batman", ("INVALID", "batman", ""), "malformed-request"),
    ("get / HTTP/1.1", ("INVALID", "get / HTTP/1.1", ""), "malformed-request"),
    ("GET  HTTP/1.1", ("INVALID", "GET  HTTP/1.1", ""), "malformed-request"),
    ("X" * 5000, ("INVALID", "X" * MAX_PATH, ""), "malformed-request"),
])
def test_split_request(req, want, reason):
    bad: dict[str, int] = {}
    assert split_request(req, bad) == want
    assert bad == ({reason: 1} if reason else {})


@pytest.mark.parametrize(("h", "want"), [
    ("WWW.Example.com:443", "www.example.com"), ("example.com", "example.com"), ("-", ""),
    ("", ""), (None, ""), ("[::1]:8080", "[::1]"), ("::1", "::1"), ("_", "_"),
])
def test_norm_host(h, want):
    assert norm_host(h) == want


# --- combined family ----------------------------------------------------------------------

COMMON_WANT = {"ts": T, "ip": "1.2.3.4", "method": "GET", "host": "", "path": "/a",
               "query": "b=1", "status": 200, "resp_bytes": 512}


@pytest.mark.parametrize(("line", "want"), [
    (CLF, {**COMMON_WANT, "ua": UA, "referer": None, "duration_ms": None, "id": "f.log:7",
           "session": None, "user": None, "req_bytes": 0}),
    # common: no referer / UA field: the agent is unknown (None), not empty
    ('1.2.3.4 - frank [30/Sep/2021:09:58:05 +0200] "GET /a?b=1 HTTP/1.1" 200 512',
     {**COMMON_WANT, "ua": None, "referer": None}),
    ('nginx: 1.2.3.4 - - [30/Sep/2021:09:58:05 +0200] "GET /a?b=1 HTTP/1.1" 200 512',
     {**COMMON_WANT, "ua": None}),
    ('1.2.3.4 - - [30/Sep/2021:09:58:05 +0200] "GET /a?b=1 HTTP/1.1" 200 512 "-" ""',
     {**COMMON_WANT, "ua": ""}),
    ('1.2.3.4 - - [30/Sep/2021:09:58:05 +0200] "GET /a?b=1 HTTP/1.1" 200 -',
     {**COMMON_WANT, "resp_bytes": 0}),
    # trailing $request_time
    (CLF + " 0.250", {**COMMON_WANT, "duration_ms": 250.0}),
    # nginx main: "$http_x_forwarded_for" after the UA, with or without $request_time
    (CLF + ' "10.0.0.1, 10.0.0.2"', {**COMMON_WANT, "ua": UA, "duration_ms": None}),
    (CLF + ' "-" 1.5', {**COMMON_WANT, "duration_ms": 1500.0}),
    # Traefik CLF: count, router, URL, duration in ms; `-` status when nothing was sent
    (CLF + ' 500 "test@docker" "http://172.17.0.3:80" 42ms', {**COMMON_WANT, "duration_ms": 42.0}),
    ('1.2.3.4 - - [30/Sep/2021:09:58:05 +0200] "GET /a?b=1 HTTP/1.1" - - "-" "x" 456',
     {**COMMON_WANT, "status": 0, "resp_bytes": 0, "ua": "x", "duration_ms": None}),
    # integer tails (Apache %T / %D) are ambiguous: ignored
    (CLF + " 1234", {**COMMON_WANT, "duration_ms": None}),
    # referer and UA "-"
    ('1.2.3.4 - - [30/Sep/2021:09:58:05 +0200] "GET /a?b=1 HTTP/1.1" 200 512 "http://r/" "-"',
     {**COMMON_WANT, "referer": "http://r/", "ua": ""}),
    # virtual-host prefix, with and without port
    ("www.Example.com:443 " + CLF, {**COMMON_WANT, "host": "www.example.com"}),
    ("memze.ro " + CLF + ' "-"', {**COMMON_WANT, "host": "memze.ro"}),
    # BunkerWeb: vhost, then a request id before the user
    ('example.com 1.2.3.4 - abc123 - [30/Sep/2021:09:58:05 +0200] "GET /a?b=1 HTTP/1.1" 200 512'
     ' "-" "x"', {**COMMON_WANT, "host": "example.com", "ua": "x"}),
    # syslog wrappers: BSD with and without PRI, RFC 3339 time, RFC 5424 with and without SD
    ("Sep 15 16:13:46 ip-172-31-43-28 nginx[2869]: " + CLF, COMMON_WANT),
    ("<13>Sep  5 16:13:46 web nginx: " + CLF, COMMON_WANT),
    ("2021-09-15T16:13:46.1+00:00 web nginx[1]: " + CLF, COMMON_WANT),
    ("<165>1 2021-09-15T16:13:46Z web nginx 123 - - " + CLF, COMMON_WANT),
    ('<165>1 2021-09-15T16:13:46Z web nginx 123 ID47 [ex@1 a="b"] ' + CLF, COMMON_WANT),
    # a bare program tag (journald's MESSAGE), with and without a host before it
    ("nginx: " + CLF, COMMON_WANT),
    ("frontend.0 nginx[12]: " + CLF, COMMON_WANT),
    ("frontend.0 nginx: " + CLF.replace("1.2.3.4", "fe80::1"), {**COMMON_WANT, "ip": "fe80::1"}),
    # IPv6, user with a space, Apache's \" escape inside the UA, long UA bounded
    (CLF.replace("1.2.3.4", "2001:db8::1"), {**COMMON_WANT, "ip": "2001:db8::1"}),
    (CLF.replace("- -", "- john smith"), COMMON_WANT),
    (CLF.replace(UA, 'a \\"quoted\\" ua'), {**COMMON_WANT, "ua": 'a \\"quoted\\" ua'}),
    (CLF.replace(UA, "U" * 600), {**COMMON_WANT, "ua": "U" * MAX_UA}),
    (CLF.replace("/a?b=1", "/" + "p" * 3000), {**COMMON_WANT, "path": "/" + "p" * (MAX_PATH - 1),
                                              "query": ""}),
    # nginx escapes bytes as \xHH: kept as text
    (CLF.replace("/a?b=1", "/caf\\xC3\\xA9"), {**COMMON_WANT, "path": "/caf\\xC3\\xA9",
                                               "query": ""}),
    # junk request lines from scanners are kept, as method INVALID
    ('1.2.3.4 - - [30/Sep/2021:09:58:05 +0200] "\\x16\\x03\\x01" 400 226 "-" "-"',
     {"method": "INVALID", "path": "\\x16\\x03\\x01", "query": "", "status": 400, "ua": ""}),
    ('1.2.3.4 - - [30/Sep/2021:09:58:05 +0200] "-" 400 0 "-" "-"',
     {"method": "INVALID", "path": "-", "status": 400}),
    ('1.2.3.4 - - [30/Sep/2021:09:58:05 +0200] "" 400 0 "-" "-"',
     {"method": "INVALID", "path": "", "status": 400}),
    ('1.2.3.4 - - [30/Sep/2021:09:58:05 +0200] "GET /a b HTTP/1.1" 400 0 "-" "-"',
     {"method": "GET", "path": "/a b", "status": 400}),
])
def test_combined(line, want):
    rec, _ = parse("combined", line)
    check(rec, want)


@pytest.mark.parametrize(("line", "reason"), [
    ("hello world", "unparsable"),
    ("{}", "unparsable"),
    ('1.2.3.4 - - [30/Sep/2021:09:58:05 +0200] "GET / HTTP/1.1" 200', "missing-field"),
    ('192.168.1.1 - [08/Jun/2020:08:04:43 +0000] "GET /api/test HTTP/1.1" 200 100 "-" "c"',
     "missing-field"),
    ('1.2.3.4 - - [30/Sep/2021:09:58:05 +0200] "GET / HTTP/1.1" 2000 1', "missing-field"),
    (CLF.replace("30/Sep", "31/Feb"), "bad-timestamp"),
    (CLF.replace("30/Sep/2021:09:58:05 +0200", "yesterday"), "bad-timestamp"),
    ('2021/09/30 09:23:53 [error] 1925800#1925800: *17 user "foo" was not found in "/x"',
     "error-log"),
    ("[Fri Oct 08 17:08:41.203277 2021] [core:error] [pid 7005] [client 1.2.3.4:14] AH00126",
     "error-log"),
    ("2022-06-08 22:49:20.774649 [NOTICE] [1226033] [42.42.42.42:45164] Failed Login",
     "error-log"),
])
def test_combined_errors(line, reason):
    rec, bad = parse("combined", line)
    assert rec == reason
    assert reason in SKIP_REASONS
    assert bad == {}


@pytest.mark.parametrize(("req", "reason"), [
    ("\\x16\\x03\\x01", "malformed-request"), ("-", "malformed-request"),
    ("HELP", "malformed-request"), ("GET /a b HTTP/1.1", "raw-space-in-uri"),
    ("GET /a?x=a b", "no-http-version"),
])
def test_combined_counts_malformed(req, reason):
    _, bad = parse("combined", f'1.2.3.4 - - [30/Sep/2021:09:58:05 +0200] "{req}" 400 0 "-" "-"')
    assert bad == {reason: 1}
    assert reason in MALFORMED_REASONS


# --- JSON formats -------------------------------------------------------------------------

REC = {"ts": 1763900000.123, "ip": "203.0.113.7", "method": "GET", "host": "shop.example",
       "path": "/api/products/42", "query": "page=2", "status": 200, "req_bytes": 0,
       "resp_bytes": 2048, "duration_ms": 12.5, "ua": "Mozilla/5.0", "session": "s-9f2c",
       "user": "alice@example.com"}
CADDY = {"level": "info", "ts": 1693840791.5, "logger": "http.log.access",
         "msg": "handled request", "request": {
             "remote_ip": "172.17.0.1", "remote_port": "44790", "client_ip": "127.0.0.1",
             "proto": "HTTP/1.1", "method": "GET", "host": "Example.com:8080", "uri": "/x?y=1",
             "headers": {"User-Agent": ["curl/7.74.0"], "Referer": ["http://r/"]}},
         "bytes_read": 3, "duration": 0.002, "size": 10, "status": 404}
TRAEFIK = {"ClientAddr": "172.17.0.1:39490", "ClientHost": "172.17.0.1",
           "DownstreamContentSize": 356, "DownstreamStatus": 404, "Duration": 2_500_000,
           "RequestContentSize": 0, "RequestHost": "test.localhost", "RequestMethod": "GET",
           "RequestPath": "/a.dtd?x=1", "StartUTC": "2021-12-08T14:02:43.5Z",
           "request_User-Agent": "Nikto"}
ENVOY = {"start_time": "2025-12-31T16:37:40.479Z", "method": "GET",
         "x-envoy-origin-path": "/admin", "response_code": 404, "user-agent": "zgrab/0.x",
         "downstream_remote_address": "10.0.0.12:59292", ":authority": "app.internal",
         "duration": 3, "bytes_sent": 9}


def js(d: dict, **kw) -> str:
    return json.dumps({**d, **kw})


@pytest.mark.parametrize(("line", "want"), [
    (js({"log": CLF + "\n", "stream": "stdout", "time": "2021-09-30T07:58:05.1Z"}), COMMON_WANT),
    ("2025-12-31T17:37:40.49+01:00 stdout F " + js({"log": CLF}), COMMON_WANT),
    (js({"MESSAGE": CLF, "_SYSTEMD_UNIT": "nginx.service"}), COMMON_WANT),
    (js({"timestamp": 1, "message": "frontend.0 nginx: " + CLF}), COMMON_WANT),
])
def test_wrapped_lines(line, want):
    rec, _ = parse("wrapped", line)
    check(rec, want)


@pytest.mark.parametrize(("line", "reason"), [
    (js({"msg": "handled request"}), "unparsable"),
    (js({"stream": "stdout"}), "missing-field"),
    ('{"a": 1} x', "bad-json"),
    ("{oops", "bad-json"),
    ('{"log": ' + "[" * 30_000 + "]" * 30_000 + "}", "bad-json"),   # nesting: no RecursionError
])
def test_wrapped_errors(line, reason):
    assert parse("wrapped", line)[0] == reason


@pytest.mark.parametrize(("fmt", "line", "want"), [
    ("json", js(REC), {**REC}),
    ("json", js(REC, id="r-1"), {"id": "r-1"}),
    ("json", js(REC), {"id": "f.log:7"}),
    ("json", json.dumps({"ts": 1, "ip": "1.2.3.4", "method": "get", "path": "/"}),
     {"method": "GET", "host": "", "query": "", "status": 0}),
    ("json", "2025-12-31T17:37:40.49+01:00 stdout F " + js(REC), {"ip": "203.0.113.7"}),
    ("json", json.dumps({"ts": 1.5, "ip": "1.2.3.4", "method": "GET", "path": "/", "ua": None}),
     {"ua": None}),                                   # null: not recorded, unknown
    ("json", json.dumps({"ts": 1.5, "ip": "1.2.3.4", "method": "GET", "path": "/"}),
     {"ua": ""}),
    ("caddy", js(CADDY), {"ts": 1693840791.5, "ip": "127.0.0.1", "method": "GET",
                          "host": "example.com", "path": "/x", "query": "y=1", "status": 404,
                          "req_bytes": 3, "resp_bytes": 10, "duration_ms": 2.0,
                          "ua": "curl/7.74.0", "referer": "http://r/", "id": "f.log:7"}),
    ("caddy", js(CADDY, ts="2023-09-04T15:19:51.5Z"), {"ts": 1693840791.5}),
    ("caddy", js(CADDY, request={**CADDY["request"], "client_ip": "", "headers": {}}),
     {"ip": "172.17.0.1", "ua": "", "referer": None}),
    ("traefik", js(TRAEFIK), {"ts": 1638972163.5, "ip": "172.17.0.1", "method": "GET",
                              "host": "test.localhost", "path": "/a.dtd", "query": "x=1",
                              "status": 404, "resp_bytes": 356, "duration_ms": 2.5,
                              "ua": "Nikto"}),
    ("traefik", js(TRAEFIK, ClientHost="192.168.1.100,10.0.0.50"), {"ip": "192.168.1.100"}),
    ("envoy", "2025-12-31T17:37:40.493035218+01:00 stdout F " + js(ENVOY),
     {"ts": 1767199060.479, "ip": "10.0.0.12", "method": "GET", "host": "app.internal",
      "path": "/admin", "status": 404, "ua": "zgrab/0.x", "duration_ms": 3, "resp_bytes": 9}),
    ("envoy", js(ENVOY, downstream_remote_address="[2001:db8::1]:443"), {"ip": "2001:db8::1"}),
])
def test_json_formats(fmt, line, want):
    rec, _ = parse(fmt, line)
    check(rec, want)


@pytest.mark.parametrize(("fmt", "line", "reason"), [
    ("json", "not json", "bad-json"),
    ("json", "{not json", "bad-json"),
    ("json", '{"ts": ' + "[" * 30_000 + "]" * 30_000 + "}", "bad-json"),
    ("caddy", '{"ts": ' + "[" * 30_000 + "]" * 30_000 + "}", "bad-json"),
    ("json", CLF, "bad-json"),
    ("json", "[1, 2]", "bad-json"),
    ("json", json.dumps({"ts": 1, "ip": "1.2.3.4", "method": "GET"}), "missing-field"),
    ("json", js(REC, ts="yesterday"), "bad-field"),
    ("json", js(CADDY), "missing-field"),
    ("caddy", js(REC), "missing-field"),
    ("caddy", js({"level": "debug", "ts": 1.0, "logger": "http.handlers.reverse_proxy"}),
     "missing-field"),
    ("caddy", js(CADDY, ts=None), "missing-field"),
    ("caddy", js(CADDY, ts="yesterday"), "bad-timestamp"),
    ("caddy", js(CADDY, status="x"), "bad-field"),
    ("caddy", js(CADDY, request={**CADDY["request"], "method": 5}), "bad-field"),
    ("caddy", "DEBUG: plugin says hi", "bad-json"),
    ("traefik", js(CADDY), "missing-field"),
    ("traefik", js(TRAEFIK, StartUTC="soon"), "bad-timestamp"),
    ("traefik", js(TRAEFIK, RequestPath=None), "missing-field"),
    ("envoy", js(ENVOY, response_code=None), "missing-field"),
    ("envoy", js(ENVOY, start_time=None), "missing-field"),
    ("envoy", "[]", "bad-json"),
])
def test_json_format_errors(fmt, line, reason):
    rec, _ = parse(fmt, line)
    assert rec == reason
    assert reason in SKIP_REASONS


# --- AWS ALB, HAProxy, Zoraxy -------------------------------------------------------------

ALB = ('https 2023-04-26T12:23:00.186641Z app/my-lb/490d 192.168.1.100:44740 10.0.0.1:80 '
       '0.086 0.048 0.037 200 200 34 57 "GET https://www.example.com:443/robots.txt?a=1 '
       'HTTP/1.1" "curl/7.46.0" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:x "Root=1-5" '
       '"www.example.com" "arn:aws:acm" 1 2018-07-02T22:22:48.364000Z "forward" "-" "-"')
HAPROXY = ('Apr  4 14:30:19 hap-1 haproxy[3946303]: 192.168.1.1:55032 [04/Apr/2024:14:30:18.885]'
           ' front_https~ back_nc/web 0/0/0/169/169 404 1541 - - ---- 5715/616/96/15/0 0/0 '
           '"PROPFIND /remote.php/webdav/a%20b HTTP/1.1"')
ZORAXY = ('2025/05/01 14:14:02 [2025-05-01 14:14:02.417736] [router:root-no_resp] '
          '[origin:10.10.10.10] [client: 192.168.1.1] [useragent: Mozilla/5.0 zgrab/0.x] '
          'GET /ecp/Current/exporttool?x=1 444')


@pytest.mark.parametrize(("fmt", "line", "want"), [
    ("alb", ALB, {"ts": 1682511780.186641, "ip": "192.168.1.100", "method": "GET",
                  "host": "www.example.com", "path": "/robots.txt", "query": "a=1",
                  "status": 200, "req_bytes": 34, "resp_bytes": 57, "ua": "curl/7.46.0",
                  "duration_ms": pytest.approx(171.0)}),
    ("alb", ALB.replace("0.086 0.048 0.037", "-1 -1 -1"), {"duration_ms": None}),
    ("alb", ALB.replace('"curl/7.46.0"', '"-"'), {"ua": ""}),
    ("haproxy", HAPROXY, {"ts": 1712241018.885, "ip": "192.168.1.1", "method": "PROPFIND",
                          "path": "/remote.php/webdav/a%20b", "status": 404,
                          "resp_bytes": 1541, "duration_ms": 169.0}),
    ("haproxy", HAPROXY.replace("0/0/0/169/169", "0/-1/-1/-1/5"), {"duration_ms": 5.0}),
    ("haproxy", HAPROXY.replace("0/0/0/169/169 404", "0/0/0/-1/-1 -1"),
     {"duration_ms": None, "status": 0}),
    ("zoraxy", ZORAXY, {"ts": 1746108842.417736, "ip": "192.168.1.1", "method": "GET",
                        "path": "/ecp/Current/exporttool", "query": "x=1", "status": 444,
                        "ua": "Mozilla/5.0 zgrab/0.x"}),
])
def test_text_formats(fmt, line, want):
    rec, _ = parse(fmt, line)
    check(rec, want)


@pytest.mark.parametrize(("fmt", "line", "reason"), [
    ("alb", CLF, "unparsable"),
    ("alb", ALB.replace("2023-04-26T12:23:00.186641Z", "2023-04-26"), "bad-timestamp"),
    ("haproxy", CLF, "unparsable"),
    ("haproxy", HAPROXY.replace("04/Apr/2024", "04/Foo/2024"), "bad-timestamp"),
    ("zoraxy", CLF, "unparsable"),
    ("zoraxy", ZORAXY.replace("2025-05-01 14:14:02.417736", "2025-05-01 99:14:02.4"),
     "bad-timestamp"),
])
def test_text_format_errors(fmt, line, reason):
    rec, _ = parse(fmt, line)
    assert rec == reason


def test_zoraxy_junk_method_is_invalid():
    rec, bad = parse("zoraxy", ZORAXY.replace("GET /ecp", "\\x16\\x03 /ecp"))
    check(rec, {"method": "INVALID"})
    assert bad == {"malformed-request": 1}


# --- nginx log_format ---------------------------------------------------------------------

NPM = ('[$time_local] $host $remote_addr $request_time "$request" $status $body_bytes_sent '
       '$request_length $http_referer $http_user_agent')
MAIN_RT = ('$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
           '"$http_referer" "$http_user_agent" $request_time')


@pytest.mark.parametrize(("fmt", "line", "want"), [
    (MAIN_RT, CLF + " 0.004", {**COMMON_WANT, "ua": UA, "duration_ms": 4.0, "id": "f.log:7"}),
    (f"'{MAIN_RT}'", CLF + " 0.004", {"duration_ms": 4.0}),
    (NPM, '[10/Feb/2024:21:23:32 +0100] mx.Example.org 192.168.1.100 0.227 "REPORT /SOGo/dav/ '
          'HTTP/2.0" 207 125 440 - Mozilla/5.0 (Windows NT 10.0) Thunderbird/123.0',
     {"ts": 1707596612.0, "ip": "192.168.1.100", "host": "mx.example.org", "method": "REPORT",
      "path": "/SOGo/dav/", "status": 207, "resp_bytes": 125, "req_bytes": 440,
      "duration_ms": 227.0, "referer": None,
      "ua": "Mozilla/5.0 (Windows NT 10.0) Thunderbird/123.0"}),
    (NPM, '[21/May/2025:19:28:54 +0800] _ 192.168.1.1 0.811 "\\x16\\x03\\x02" 400 122 282 - -',
     {"method": "INVALID", "path": "\\x16\\x03\\x02", "status": 400, "ua": ""}),
    ('$time_iso8601 $remote_addr $request_method $uri $args $status ${request_time}s',
     "2021-09-30T09:58:05+02:00 1.2.3.4 POST /login a=1 302 0.100s",
     {"ts": T, "ip": "1.2.3.4", "method": "POST", "path": "/login", "query": "a=1",
      "status": 302, "duration_ms": 100.0, "ua": None}),     # no $http_user_agent: unknown
    ('$msec $remote_addr "$request_method $request_uri" $status $remote_addr',
     '1632988685.250 1.2.3.4 "GET /x?q=1" 200 9.9.9.9',
     {"ts": T + 0.25, "ip": "1.2.3.4", "path": "/x", "query": "q=1", "status": 200}),
    ('$remote_addr [$time_local] "$request" $status $upstream_response_time',
     '1.2.3.4 [30/Sep/2021:09:58:05 +0200] "GET / HTTP/1.1" 502 0.001, 0.002',
     {"status": 502, "duration_ms": None}),
])
def test_log_format(fmt, line, want):
    rec = compile_log_format(fmt)(line, "f.log", 7, {})
    check(rec, want)


@pytest.mark.parametrize(("fmt", "line", "reason"), [
    (MAIN_RT, CLF, "unparsable"),
    (MAIN_RT, "hello", "unparsable"),
    (MAIN_RT, CLF.replace("30/Sep", "31/Feb") + " 0.1", "bad-timestamp"),
    ('$msec $remote_addr "$request"', 'soon 1.2.3.4 "GET / HTTP/1.1"', "unparsable"),
])
def test_log_format_errors(fmt, line, reason):
    assert compile_log_format(fmt)(line, "f.log", 7, {}) == reason


@pytest.mark.parametrize("fmt", [
    "", "no variables", "$remote_addr $status", '$remote_addr "$request"',
    '[$time_local] "$request"', "$time_local $remote_addr $request_method",
])
def test_log_format_compile_errors(fmt):
    with pytest.raises(InputError) as e:
        compile_log_format(fmt)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(("text", "want"), [
    ("$a $b", "$a $b"),
    ("'$a $b'", "$a $b"),
    ("log_format main '$a - [$b] ' '\"$c\" $d';", '$a - [$b] "$c" $d'),
    ("log_format x escape=json '$a';", "$a"),
    ('"$a" ', "$a"),
])
def test_unquote_log_format(text, want):
    assert unquote_log_format(text) == want


# --- LogReader ----------------------------------------------------------------------------

def write(tmp_path: Path, name: str, lines: list[str], *, gz: bool = False) -> Path:
    p = tmp_path / name
    data = ("\n".join(lines) + "\n").encode()
    p.write_bytes(gzip.compress(data) if gz else data)
    return p


@pytest.mark.parametrize(("lines", "fmt"), [
    ([CLF] * 3, "combined"),
    ([CLF.split(' "-"')[0]] * 3, "combined"),
    ([js(REC)] * 3, "json"),
    ([js(CADDY)] * 3, "caddy"),
    ([js(TRAEFIK)] * 3, "traefik"),
    ([js(ENVOY)] * 3, "envoy"),
    ([ALB] * 3, "alb"),
    ([HAPROXY] * 3, "haproxy"),
    ([ZORAXY] * 3, "zoraxy"),
    ([js({"log": CLF + "\n", "stream": "stdout"})] * 3, "wrapped"),
    # most lines win: 2 error-log lines, 1 access line
    (["2021/09/30 09:23:53 [error] 1#1: *17 oops"] * 2 + [CLF], "combined"),
    ([js(CADDY), js(CADDY), js(REC)], "caddy"),
])
def test_detection(tmp_path, lines, fmt):
    r = LogReader(write(tmp_path, "a.log", lines))
    recs = list(r)
    assert r.format_name == fmt
    assert r.formats == [fmt]
    assert len(recs) == max(sum(parse(fmt, x)[0].__class__ is RequestRecord for x in lines), 1)


def test_detection_prefers_log_format_on_tie(tmp_path):
    p = write(tmp_path, "a.log", [CLF + " 0.004"] * 3)
    r = LogReader(p, log_format=MAIN_RT)
    assert [x.duration_ms for x in r] == [4.0] * 3
    assert r.format_name == "log_format"


def test_unknown_format_raises_one_line(tmp_path):
    p = write(tmp_path, "weird.log", ["hello world", "", "nothing here"])
    with pytest.raises(InputError) as e:
        list(LogReader(p))
    msg = str(e.value)
    assert "weird.log" in msg and "unknown log format" in msg and "\n" not in msg


def test_forced_format_that_never_parses_raises(tmp_path):
    p = write(tmp_path, "a.log", [CLF])
    with pytest.raises(InputError, match="format json"):
        list(LogReader(p, fmt="json"))


@pytest.mark.parametrize(("fmt", "name"), [
    ("combined", "combined"), ("common", "combined"), ("main", "combined"),
    ("vhost_combined", "combined"), ("jsonl", "json"), ("json", "json"),
])
def test_forced_format_and_aliases(tmp_path, fmt, name):
    lines = [js(REC)] if name == "json" else [CLF]
    r = LogReader(write(tmp_path, "a.log", lines + ["junk"]), fmt=fmt)
    assert len(list(r)) == 1
    assert r.format_name == name
    assert r.skipped == {"unparsable" if name == "combined" else "bad-json": 1}


@pytest.mark.parametrize(("kw", "match"), [
    ({"fmt": "w3c"}, "unknown log format 'w3c'"),
    ({"fmt": "log_format"}, "needs a log_format"),
    ({"log_format": "$status"}, "needs \\$remote_addr"),
])
def test_bad_arguments(tmp_path, kw, match):
    with pytest.raises(InputError, match=match):
        LogReader(write(tmp_path, "a.log", [CLF]), **kw)


def test_missing_file_names_it(tmp_path):
    with pytest.raises(InputError, match="nope.log"):
        LogReader(tmp_path / "nope.log")
    with pytest.raises(InputError, match="not a regular file"):
        LogReader(tmp_path)


def test_unreadable_file_names_it(tmp_path, monkeypatch):
    p = write(tmp_path, "a.log", [CLF])
    r = LogReader(p)
    p.unlink()
    with pytest.raises(InputError, match="a.log"):
        list(r)


def test_gzip_by_magic_bytes_not_name(tmp_path):
    p = write(tmp_path, "access.log.1", [CLF] * 5, gz=True)
    r = LogReader(p)
    assert r.total_bytes == p.stat().st_size
    assert len(list(r)) == 5
    assert r.bytes_read == r.total_bytes
    assert r.format_name == "combined"


def test_truncated_gzip_is_counted_not_fatal(tmp_path):
    data = gzip.compress(("\n".join([CLF] * 2000) + "\n").encode())
    p = tmp_path / "cut.gz"
    p.write_bytes(data[: len(data) // 2])
    r = LogReader(p)
    n = len(list(r))
    assert 0 < n < 2000
    assert r.skipped.get("bad-gzip") == 1


def test_counters_and_reasons(tmp_path):
    lines = [CLF, "", "   ", "x" * (LINE_LIMIT + 10), CLF, "garbage",
             '1.2.3.4 - - [30/Sep/2021:09:58:05 +0200] "\\x16\\x03\\x01" 400 226 "-" "-"',
             '2021/09/30 09:23:53 [error] 1#1: *17 oops', CLF.replace("30/Sep", "31/Feb")]
    p = tmp_path / "a.log"
    last = CLF.replace(UA, "Mozilla\udcff").encode("utf-8", "surrogateescape")  # no final \n
    p.write_bytes("\n".join(lines).encode() + b"\n" + last)
    r = LogReader(p)
    recs = list(r)
    assert r.lines_read == len(lines) + 1
    assert r.records == len(recs) == 4
    assert r.skipped == {"empty": 2, "line-too-long": 1, "unparsable": 1, "error-log": 1,
                         "bad-timestamp": 1}
    assert r.malformed == {"malformed-request": 1, "bad-utf8": 1}
    assert [x.id for x in recs] == ["a.log:1", "a.log:5", "a.log:7", "a.log:10"]
    assert recs[2].method == "INVALID"
    assert recs[3].ua == "Mozilla\\xff"  # escaped as nginx would, and kept
    assert set(r.skipped) <= set(SKIP_REASONS) and set(r.malformed) <= set(MALFORMED_REASONS)


def test_line_limit_edges(tmp_path):
    long_ok = CLF.replace(UA, "u" * (LINE_LIMIT - len(CLF) + len(UA)))
    assert len(long_ok) == LINE_LIMIT
    p = tmp_path / "a.log"
    p.write_bytes(f"{long_ok}\n{long_ok}x\n{CLF}".encode())
    r = LogReader(p)
    recs = list(r)
    assert [x.id for x in recs] == ["a.log:1", "a.log:3"]
    assert r.skipped == {"line-too-long": 1}


def test_crlf_lines(tmp_path):
    p = tmp_path / "a.log"
    p.write_bytes(f"{CLF}\r\n{CLF}\r\n".encode())
    assert [x.ua for x in LogReader(p)] == [UA, UA]


def test_empty_file_yields_nothing(tmp_path):
    p = tmp_path / "empty.log"
    p.write_bytes(b"")
    r = LogReader(p)
    assert list(r) == [] and r.lines_read == 0 and r.skipped == {}
    assert r.format_name is None and r.formats == []


def test_blank_file_counts_empty_lines(tmp_path):
    r = LogReader(write(tmp_path, "blank.log", ["", "  ", ""]))
    assert list(r) == [] and r.lines_read == 3 and r.skipped == {"empty": 3}
    assert r.format_name is None


def test_several_files_each_detected(tmp_path):
    a = write(tmp_path, "a.log", [CLF] * 2)
    b = write(tmp_path, "b.json", [js(REC)] * 3, gz=True)
    r = LogReader([a, str(b)])
    seen = []
    for rec in r:
        seen.append((r.format_name, rec.id))
    assert seen == [("combined", "a.log:1"), ("combined", "a.log:2"), ("json", "b.json:1"),
                    ("json", "b.json:2"), ("json", "b.json:3")]
    assert r.formats == ["combined", "json"]
    assert r.bytes_read == r.total_bytes == a.stat().st_size + b.stat().st_size


def test_stdin(monkeypatch, tmp_path):
    import io
    import sys

    data = ("\n".join([CLF] * 3) + "\n").encode()
    fake = types.SimpleNamespace(buffer=io.BufferedReader(io.BytesIO(gzip.compress(data))))
    monkeypatch.setattr(sys, "stdin", fake)
    r = LogReader("-")
    assert [x.id for x in r] == ["stdin:1", "stdin:2", "stdin:3"]
    assert r.total_bytes == 0


def test_streams_lazily(tmp_path):
    p = write(tmp_path, "big.log", [CLF] * 20000)
    r = LogReader(p)
    it = iter(r)
    assert isinstance(it, types.GeneratorType)
    first = next(it)
    assert first.id == "big.log:1"
    assert 0 < r.bytes_read < r.total_bytes / 2   # read a buffer, not the file
    assert r.lines_read <= 60                     # the detection sample, not the file
    it.close()


def test_memory_does_not_grow_with_file_size(tmp_path):
    import tracemalloc

    p = write(tmp_path, "big.log", [CLF] * 6000)  # ~700 kB
    tracemalloc.start()
    try:
        n = sum(1 for _ in LogReader(p))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == 6000
    assert peak < p.stat().st_size / 5


def test_formats_table_is_consistent():
    assert set(FORMATS) == set(PARSERS) | {"log_format"}
    assert LogReader.FORMATS == FORMATS
