"""Problem responses (RFC 9457): what a blocked or rejected client gets. Small, never HTML.

Pure functions: the mitmproxy glue turns these bytes and headers into a response, and the
protocol guard writes `http1_problem()` straight to the socket.
"""

from __future__ import annotations

import json
import os
from typing import NamedTuple

CONTENT_TYPE = "application/problem+json"
REQUEST_ID_HEADER = "X-Request-Id"
_TYPE = "urn:palisade:problem:"


class Problem(NamedTuple):
    status: int
    title: str
    detail: str


# kind → problem. Details name the cause without echoing attacker input.
PROBLEMS: dict[str, Problem] = {
    "denylisted": Problem(403, "Forbidden", "Requests from this address are blocked."),
    "attack": Problem(403, "Forbidden", "The request was blocked: it carries signs of an attack."),
    "session_denied": Problem(403, "Forbidden", "Requests in this session are blocked."),
    "bad_request": Problem(400, "Bad Request", "The request is malformed or ambiguous."),
    "header_timeout": Problem(408, "Request Timeout",
                              "The request headers did not arrive in time."),
    "too_large": Problem(413, "Content Too Large", "The request body is too large."),
    "headers_too_large": Problem(431, "Request Header Fields Too Large",
                                 "The request headers are too large."),
    "bad_gateway": Problem(502, "Bad Gateway", "The upstream service did not answer properly."),
}
STATUS_KIND: dict[int, str] = {400: "bad_request", 408: "header_timeout", 413: "too_large",
                               431: "headers_too_large", 502: "bad_gateway"}
_REASONS = {p.status: p.title for p in PROBLEMS.values()} | {403: "Forbidden"}


def new_request_id() -> str:
    return os.urandom(8).hex()


def problem_body(kind: str, request_id: str, *, detail: str | None = None) -> bytes:
    p = PROBLEMS[kind]
    return json.dumps({"type": _TYPE + kind, "title": p.title, "status": p.status,
                       "detail": detail or p.detail, "request_id": request_id},
                      separators=(",", ":")).encode()


def problem_headers(request_id: str) -> dict[str, str]:
    return {"Content-Type": CONTENT_TYPE, REQUEST_ID_HEADER: request_id,
            "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def problem_for_status(status: int) -> str:
    """The problem kind for an HTTP error status mitmproxy would answer with."""
    if status in STATUS_KIND:
        return STATUS_KIND[status]
    return "bad_request" if 400 <= status < 500 else "bad_gateway"


def http1_problem(kind: str, request_id: str | None = None) -> bytes:
    """A complete HTTP/1.1 response that closes the connection (for pre-flow rejections)."""
    rid = request_id or new_request_id()
    body = problem_body(kind, rid)
    status = PROBLEMS[kind].status
    head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}"]
    head += [f"{k}: {v}" for k, v in problem_headers(rid).items()]
    head += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
    return "\r\n".join(head).encode() + body
