"""Attack signs of one request, for the graylist: it blocks only requests that carry one.

Inputs are bounded before any work: MAX_VALUE characters per value, MAX_VALUES values,
MAX_BODY bytes of body (JSON and form bodies are parsed into values, other bodies are scanned
as text). SQLi / XSS come from libinjection plus our probe fragments (node.signatures.probes),
command injection from a linear scan for a shell separator followed by a known command.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache

from node.record import MAX_PATH, MAX_QUERY

from .probes import (
    MAX_VALUE,
    _decode,
    has_traversal,
    looks_like_sqli,
    looks_like_xss,
    probe_kind,
)
from .ua import classify_ua

ATTACK_SIGNS: frozenset[str] = frozenset(
    ("sqli", "xss", "path_traversal", "cmd_injection", "scanner_probe")
)

MAX_BODY = 65536  # bytes of body looked at
MAX_VALUES = 256  # values (query, path, headers, body) looked at per request
MAX_HEADERS = 64
MAX_UA = 512
MAX_SEPARATORS = 64  # shell separators examined per value
MAX_CACHED = 512  # values up to this length are cached (bounded memory: CACHE_SIZE of them)
CACHE_SIZE = 8192

# Headers whose values are checked for SQLi / XSS / command injection. Every header is also
# checked for a JNDI lookup (Log4Shell is sent in any header an app might log).
_CHECKED_HEADERS = frozenset(("user-agent", "referer", "cookie", "x-forwarded-for"))
# Lower-cased JNDI lookup openings, as in probe_cve.txt.
_JNDI = ("${jndi:", "${${", "${lower:", "${upper:", "${::-", "${env:", "${sys:", "${date:")

# Command injection: a shell separator, optional blanks, then a command from this set, then
# the end, another separator or an argument that looks like one (a path, option, variable,
# quote, number or URL) -- so "Tom & Jerry" or "; cat lovers" are not commands.
_COMMANDS = frozenset(
    """cat id whoami uname wget curl nc ncat netcat bash sh zsh ksh dash ping nslookup dig
    sleep echo ls rm chmod chown python python3 perl php ruby node powershell pwsh cmd
    busybox tftp ftp telnet ifconfig ipconfig pwd env printenv touch mkfifo sudo kill ps
    base64 crontab systemctl useradd head tail uptime hostname netstat ver dir type""".split()
)
_SEPARATOR_RE = re.compile(r"[;|&`\n]|\$\(")
_ARG_START = frozenset("/-$.~'\"0123456789\\")
_ARG_END = frozenset(";|&`)\n")
_SHELL_PATHS = ("/bin/", "/usr/bin/", "/usr/local/bin/", "/sbin/", "/usr/sbin/", "/tmp/")
_SHELL_LITERALS = ("${ifs}", "$ifs$", "/dev/tcp/", "cmd.exe", "powershell.exe", "/bin/sh")


def has_cmd_injection(value: str) -> bool:
    """A decoded value chains a shell command (``;cat /etc/passwd``, ``$(id)``, ``|wget http``)."""
    low = value[:MAX_VALUE].lower()
    if any(s in low for s in _SHELL_LITERALS):
        return True
    n = len(low)
    for k, m in enumerate(_SEPARATOR_RE.finditer(low)):
        if k >= MAX_SEPARATORS:
            break
        i = m.end()
        while i < n and i - m.end() < 8 and low[i] in " \t":
            i += 1
        if low.startswith(_SHELL_PATHS, i):
            return True
        j = i
        while j < n and j - i < 16 and (low[j].isalnum() or low[j] in "._-"):
            j += 1
        if low[i:j] not in _COMMANDS:
            continue
        if j == n or low[j] in _ARG_END:
            return True
        if low[j] in " \t":
            k2 = j
            while k2 < n and k2 - j < 8 and low[k2] in " \t":
                k2 += 1
            if k2 == n or low[k2] in _ARG_START or low.startswith(("http", "ftp"), k2):
                return True
    return False


def attack_signs(
    path: str,
    query: str,
    headers: Iterable[tuple[str, str]] | Mapping[str, str] = (),
    body: bytes | str = b"",
) -> frozenset[str]:
    """The attack signs a request carries, a subset of ATTACK_SIGNS. Never raises."""
    path = path[:MAX_PATH] if path else ""
    query = query[:MAX_QUERY] if query else ""
    signs: set[str] = set()
    if path and probe_kind(path) is not None:
        signs.add("scanner_probe")
    header_pairs = list(_header_pairs(headers))
    content_type = next((v for k, v in header_pairs if k == "content-type"), "")
    # an attack tool's own agent (sqlmap, nikto, nuclei, ...): every request it sends is one
    if any(k == "user-agent" and classify_ua(v).kind == "scanner" for k, v in header_pairs):
        signs.add("scanner_probe")
    values = _values(path, query, header_pairs, body, content_type)
    for n, (value, kind) in enumerate(values):
        if n >= MAX_VALUES or len(signs) == len(ATTACK_SIGNS):
            break
        if not value or value.isalnum():
            continue
        if len(value) <= MAX_CACHED:
            signs.update(_value_signs_cached(value, kind))
        else:
            signs.update(_value_signs(value, kind))
    return frozenset(signs)


def _value_signs(value: str, kind: str) -> frozenset[str]:
    """kind: 'path' (whole decoded path), 'value' (query / form / JSON / cookie value),
    'odata' (value of a $-parameter), 'header' (User-Agent, X-Forwarded-For), 'text' (body),
    'referer' (the whole decoded Referer; its query values also come one by one as 'value')."""
    signs: set[str] = set()
    low = value[:MAX_VALUE].lower()
    # Log4Shell: a JNDI lookup gets code run wherever the value is logged.
    if "${" in low and any(j in low for j in _JNDI):
        signs.add("cmd_injection")
    if kind == "referer":
        # markup anywhere in it (path, fragment) is reflected by pages that echo the
        # Referer; SQL and shell checks stay on its query values (`&` separates them)
        if looks_like_xss(value, deep=True):
            signs.add("xss")
        return frozenset(signs)
    if kind == "header" and low.lstrip().startswith("() {"):
        signs.add("cmd_injection")  # Shellshock, CVE-2014-6271: a function definition header
    if kind == "path":
        if _has_dotdot_segment(value) or has_traversal(value):
            signs.add("path_traversal")
        # Segments one by one: SQL in "/users/1' or '1'='1" but not "/wiki/Foo_(bar)" joined.
        for seg in value.split("/"):
            if seg and not seg.isalnum():
                _check_injection(seg, signs, deep=True)
    else:
        if kind != "header" and has_traversal(value):
            signs.add("path_traversal")
        # Free text (bodies that are neither JSON nor form): fragments only, no libinjection,
        # whose tokenizer reads prose with apostrophes and dashes as SQL. OData expressions:
        # only unambiguous fragments, no function calls either.
        _check_injection(
            value, signs, deep=kind not in ("text", "odata"), functions=kind != "odata"
        )
    if "cmd_injection" not in signs and has_cmd_injection(value):
        signs.add("cmd_injection")
    return frozenset(signs)


# Header values, cookies and parameters repeat from request to request of one client.
_value_signs_cached = lru_cache(maxsize=CACHE_SIZE)(_value_signs)


def _check_injection(value: str, signs: set[str], deep: bool, functions: bool = True) -> None:
    if "sqli" not in signs and looks_like_sqli(value, deep=deep, functions=functions):
        signs.add("sqli")
    if "xss" not in signs and looks_like_xss(value, deep=deep):
        signs.add("xss")


def _has_dotdot_segment(path: str) -> bool:
    if ".." not in path:
        return False
    for seg in path.replace("\\", "/").split("/"):
        if ";" in seg:
            seg = seg.split(";", 1)[0]
        if seg.strip(" \t\x00") == "..":
            return True
    return False


def _header_pairs(
    headers: Iterable[tuple[str, str]] | Mapping[str, str],
) -> Iterator[tuple[str, str]]:
    try:
        if isinstance(headers, Mapping):
            try:
                items = headers.items(multi=True)  # type: ignore[call-arg]  # mitmproxy Headers
            except TypeError:
                items = headers.items()
        else:
            items = headers
        for n, (name, value) in enumerate(items):
            if n >= MAX_HEADERS:
                return
            if isinstance(name, bytes):
                name = name.decode("latin-1")
            if isinstance(value, bytes):
                value = value.decode("latin-1")
            yield str(name).lower(), str(value)[:MAX_VALUE]
    except (TypeError, ValueError):
        return  # not pairs: nothing to check rather than an exception in the proxy


def _values(
    path: str,
    query: str,
    headers: list[tuple[str, str]],
    body: bytes | str,
    content_type: str,
) -> Iterator[tuple[str, str]]:
    if path:
        yield _decode(path), "path"
    yield from _query_values(query)
    for name, value in headers:
        if name not in _CHECKED_HEADERS:
            # Any header may carry a JNDI lookup; nothing else is looked for in the others.
            if "${" in value or "%24%7b" in value.lower():
                dec = _decode(value).lower()
                if any(j in dec for j in _JNDI):
                    yield "${jndi:", "header"
            continue
        if name == "cookie":
            for part in value.split(";"):
                yield _decode(part.partition("=")[2].strip()), "value"
        elif name == "referer":
            yield _decode(value), "referer"
            yield from _query_values(value.partition("?")[2])
        elif name == "user-agent":
            yield value[:MAX_UA], "header"
        else:
            yield value, "header"
    if body:
        yield from _body_values(body, content_type)


def _query_values(query: str) -> Iterator[tuple[str, str]]:
    if not query:
        return
    for part in query.split("&", MAX_VALUES)[:MAX_VALUES]:
        name, _, value = part.partition("=")
        if name and not name.isalnum():
            name = _decode(name, plus=True)
            yield name, "value"
        if value:
            # OData system options ($filter=substring(Name,1,2) eq 'ab') are SQL-like.
            yield _decode(value, plus=True), "odata" if name.startswith("$") else "value"


def _body_values(body: bytes | str, content_type: str) -> Iterator[tuple[str, str]]:
    raw = body[:MAX_BODY]
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes | bytearray) else str(raw)
    ct = content_type.lower()
    head = text.lstrip()[:1]
    if "json" in ct or (not ct and head in ("{", "[")):
        strings = _json_strings(text)
        if strings is not None:
            yield from ((s, "value") for s in strings)
            return
    if "x-www-form-urlencoded" in ct or (not ct and _FORM_RE.match(text)):
        yield from _query_values(text)
        return
    for start in range(0, len(text), MAX_VALUE):
        yield text[start : start + MAX_VALUE], "text"


# Sniffing a body sent without Content-Type: "name=" at the very start looks like a form.
_FORM_RE = re.compile(r"[\w.%\[\]-]{1,64}=")


def _json_strings(text: str) -> list[str] | None:
    """Keys and string values of a JSON document (bounded count), or None if not JSON."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        return None
    out: list[str] = []
    stack = [doc]
    while stack and len(out) < MAX_VALUES:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item[:MAX_VALUE])
        elif isinstance(item, dict):
            for k, v in item.items():
                out.append(k[:MAX_VALUE])
                stack.append(v)
        elif isinstance(item, list):
            stack.extend(item[: MAX_VALUES * 4])
    return out


def cache_clear() -> None:
    _value_signs_cached.cache_clear()
