"""Request records as an nginx access log line: `combined` plus `$request_time`, the format
most deployments log (no cookies, no usernames, no host: what a log-only replay gets)."""

from __future__ import annotations

import time

from node.record import RequestRecord


def combined_line(r: RequestRecord) -> str:
    """`log_format main '$remote_addr - $remote_user [$time_local] "$request" $status
    $body_bytes_sent "$http_referer" "$http_user_agent" $request_time';`"""
    t = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(r.ts))
    target = r.path + ("?" + r.query if r.query else "")
    rt = (r.duration_ms or 0.0) / 1000.0
    return (f'{r.ip} - - [{t}] "{r.method} {target} HTTP/1.1" {r.status} {r.resp_bytes} '
            f'"{r.referer or "-"}" "{r.ua or "-"}" {rt:.3f}\n')
