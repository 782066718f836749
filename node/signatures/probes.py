"""Forced browsing: what a request path (and query) is probing for, as one closed-set kind.

Lists live in ``node/data/probe_*.txt`` (syntax in their headers). Every check is O(length):
path and query are cut to MAX_SCAN, percent-decoded at most twice, lower-cased, and the path
split into segments once; then dict lookups (segment names and name prefixes, root prefixes
up to the deepest listed one, last-segment suffixes by length) and, for the few substrings
and the SQLi / XSS fragments, regexes of escaped literals only (tries, no quantifiers that
could backtrack) or C-level ``in`` tests on long texts. Results are cached (bounded LRU) per
path, per query string and per segment: API paths carry ids, so whole paths repeat less than
their segments do.

False positives block customers, so the lists avoid anything an ordinary API or web app
serves (/admin below /api, /login, /export, /static, /.well-known, /actuator/health, ...).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal

import libinjection

from .ua import read_list, trie_regex

ProbeKind = Literal[
    "cve",
    "backdoor",
    "path_traversal",
    "sensitive_file",
    "admin_interface",
    "technology",
    "sqli",
    "xss",
]
# Priority order: when a request matches several kinds, the most specific one is reported.
PROBE_KINDS: tuple[ProbeKind, ...] = (
    "cve",
    "backdoor",
    "path_traversal",
    "sensitive_file",
    "admin_interface",
    "technology",
    "sqli",
    "xss",
)
_RANK = {k: i for i, k in enumerate(PROBE_KINDS)}
_NONE = len(PROBE_KINDS)

_LIST_FILES: dict[ProbeKind, str] = {
    "cve": "probe_cve.txt",
    "backdoor": "probe_backdoors.txt",
    "path_traversal": "probe_path_traversal.txt",
    "sensitive_file": "probe_sensitive_files.txt",
    "admin_interface": "probe_admin_interfaces.txt",
    "technology": "probe_technology.txt",
}
_QUERY_KINDS = frozenset(("cve", "path_traversal"))  # their "~" entries apply to the query too

# Probes are short (the longest listed CVE URI is ~100 characters); what lies past the first
# KiB of a path or query is not looked at, which keeps a hostile 2 KiB request under ~1 ms.
MAX_SCAN = 1024
MAX_VALUE = 4096  # characters of one value handed to libinjection
MAX_PARAMS = 64  # query parameters looked at
MAX_DEEP = 8  # values per query string handed to libinjection
MAX_CALLS = 256  # "word(" occurrences examined per value for SQL / JS function calls
MAX_SEGMENTS = 64  # path segments looked at (the first ones and the last)
CACHE_SIZE = 16384

# Overlong UTF-8 and %u dots / slashes (old IIS, Tomcat) are not percent-decodable, and a
# "%2e%2e" left after two decodings was encoded three times: looked for literally.
_ENCODED_DOTS = ("%c0%ae", "%c0%af", "%c1%9c", "%e0%80%ae", "%u002e", "%uff0e", "%u2215", "%2e%2e")


class _Table:
    """All path lists merged: entry -> best rank (priority), one structure per entry syntax."""

    def __init__(self, lists: dict[ProbeKind, list[str]]) -> None:
        self.names: dict[str, int] = {}
        self.prefixes: dict[str, int] = {}
        self.seg_prefixes: dict[str, int] = {}
        self.suffixes: dict[str, int] = {}
        self.root_suffixes: dict[str, int] = {}
        subs: dict[str, int] = {}
        for kind, entries in lists.items():
            for entry in entries:
                e = entry.lower()
                if e.startswith("~"):
                    table, key = subs, e[1:]
                elif e.startswith("/*"):
                    table, key = self.root_suffixes, e[2:]
                elif e.startswith("/"):
                    table, key = self.prefixes, e.rstrip("/")
                elif e.startswith("*"):
                    table, key = self.suffixes, e[1:]
                elif e.endswith("*"):
                    table, key = self.seg_prefixes, e[:-1]
                else:
                    table, key = self.names, e
                if key:
                    table[key] = min(table.get(key, _NONE), _RANK[kind])
        self.prefix_depth = max((k.count("/") for k in self.prefixes), default=0)
        self.seg_prefix_lens = sorted({len(k) for k in self.seg_prefixes})
        self.suffix_lens = sorted({len(k) for k in self.suffixes})
        self.root_suffix_lens = sorted({len(k) for k in self.root_suffixes})
        # Those with a character a plain path never has (or "..") only run on unusual paths.
        plain = {k: r for k, r in subs.items() if _is_plain(k) and ".." not in k}
        self.plain_subs = _Substrings(plain)
        self.all_subs = _Substrings(subs)
        self.query_subs = _Substrings(
            {k: r for k, r in subs.items() if PROBE_KINDS[r] in _QUERY_KINDS}
        )
        self.traversal_subs = _Substrings(
            {k: r for k, r in subs.items() if PROBE_KINDS[r] == "path_traversal"}
        )


class _Substrings:
    """Literal substrings with a rank each: the best rank among those present in a text.

    Short texts: one regex of all literals in a trie (~1 us), wrapped in a look-ahead so that
    overlapping occurrences are all seen. Long texts: C-level ``in`` per literal, which scans a
    KiB in ~0.3 us where the regex spends ~40 us trying every position.
    """

    SHORT = 256

    def __init__(self, ranked: dict[str, int]) -> None:
        self.ranked = tuple(sorted(ranked.items(), key=lambda kv: kv[1]))
        self.rank = dict(ranked)
        self.regex = re.compile(f"(?=({trie_regex(ranked)}))") if ranked else None

    def best(self, text: str, best: int = _NONE) -> int:
        if self.regex is None:
            return best
        if len(text) <= self.SHORT:
            for m in self.regex.finditer(text):
                r = self.rank[m.group(1)]
                if r < best:
                    best = r
            return best
        for lit, r in self.ranked:
            if r >= best:
                break
            if lit in text:
                return r
        return best


_PLAIN_PATH_RE = re.compile(r"[a-z0-9/_.~-]*")


def _is_plain(s: str) -> bool:
    return _PLAIN_PATH_RE.fullmatch(s) is not None


_TABLE = _Table({kind: read_list(name) for kind, name in _LIST_FILES.items()})


class _Fragments:
    """probe_sqli.txt / probe_xss.txt: substrings, ``<tag`` openings and ``name(`` calls.

    Short values: one regex (a trie of escaped literals, no quantifiers) beats a loop of ``in``
    tests. Long values: ``in`` tests (C, ~0.3 us per KiB) beat the regex (~40 us per KiB, it
    tries every position). Calls are words right before a "(", tags start at a "<".
    """

    SHORT = 128

    def __init__(self, filename: str) -> None:
        funcs, tags, subs = [], [], []
        for entry in read_list(filename):
            e = entry.lower()
            if e.endswith("(") and e[:-1].replace("_", "").replace(".", "").isalnum():
                funcs.append(e[:-1])
            elif e.startswith("<") and e[1:].isalpha():
                tags.append(e[1:])
            else:
                subs.append(e)
        self.subs = tuple(subs)
        self.funcs = frozenset(funcs)
        self.main_re = re.compile(trie_regex(subs))
        # Starts with a literal "<": re jumps from one "<" to the next.
        self.tag_re = re.compile(rf"<{trie_regex(tags)}(?![a-z])") if tags else None

    def search(self, low: str, functions: bool = True) -> bool:
        if len(low) <= self.SHORT:
            if self.main_re.search(low):
                return True
        elif any(s in low for s in self.subs):
            return True
        if self.tag_re is not None and "<" in low and self.tag_re.search(low):
            return True
        return functions and bool(self.funcs) and "(" in low and self._call(low)

    def _call(self, low: str) -> bool:
        """A listed name right before a "(": "sleep(", "x.alert (" but not "toupper("."""
        for n, m in enumerate(_CALL_RE.finditer(low)):
            if n >= MAX_CALLS:
                break
            if m.group() in self.funcs:
                return True
        return False


# A whole word (possessive: never re-scanned) followed by up to four spaces and "(".
_CALL_RE = re.compile(r"(?<![a-z0-9_])[a-z0-9_]++(?= {0,4}\()")


_SQLI = _Fragments("probe_sqli.txt")
_XSS = _Fragments("probe_xss.txt")

# Values made only of these characters cannot carry SQLi / XSS: skip libinjection (~5 us).
_PLAIN_VALUE_RE = re.compile(r"[\w.,:@+/-]*")
# Probe_kind runs on every request, so it calls libinjection only when one of these is present.
_SUSPICIOUS = frozenset("'\"`;()#<>*\\")


# A run of escapes; the repeated group is a fixed 3-character unit, so matching is linear.
_ESCAPES_RE = re.compile(r"(?:%[0-9a-fA-F]{2})+")


def _unescape(m: re.Match[str]) -> str:
    return bytes.fromhex(m.group().replace("%", "")).decode("utf-8", "replace")


def _decode(s: str, plus: bool = False) -> str:
    """Percent-decode at most twice (double encoding is the usual filter evasion).

    Like urllib's unquote(), but one C-level hex decode per run of escapes instead of Python
    work per "%" (unquote() takes ~2 ms on 2 KiB of "%%%...%41").
    """
    if plus and "+" in s:
        s = s.replace("+", " ")
    for _ in range(2):
        if "%" not in s:
            break
        s = _ESCAPES_RE.sub(_unescape, s)
    return s


def _libinjection_safe(value: str) -> str:
    # The wrapper encodes to UTF-8 strictly: lone surrogates (from surrogateescape) would raise.
    v = value[:MAX_VALUE]
    return v if v.isascii() else v.encode("utf-8", "replace").decode("utf-8")


def _squash(low: str) -> str:
    """Whitespace runs and /**/ comments -> one space, so "union/**/select" is "union select"."""
    if "/**/" in low:
        low = low.replace("/**/", " ")
    if "  " in low or "\t" in low or "\n" in low or "\r" in low or "\x0b" in low or "\x0c" in low:
        low = " ".join(low.split())
    return low


def looks_like_sqli(value: str, *, functions: bool = True, deep: bool = True) -> bool:
    """A decoded value carries SQL injection: a probe fragment, or libinjection if ``deep``.

    ``functions=False`` skips the bare function-call fragments (for OData ``$filter``).
    """
    low = _squash(value[:MAX_VALUE].lower())
    if _SQLI.search(low, functions):
        return True
    if not deep or low.isalnum() or (_PLAIN_VALUE_RE.fullmatch(low) and "--" not in low):
        return False
    return bool(libinjection.is_sql_injection(_libinjection_safe(value))["is_sqli"])


def looks_like_xss(value: str, *, deep: bool = True) -> bool:
    """A decoded value carries cross-site scripting: a probe fragment, or libinjection."""
    low = value[:MAX_VALUE].lower()
    if _XSS.search(low):
        return True
    if not deep or low.isalnum() or _PLAIN_VALUE_RE.fullmatch(low):
        return False
    return bool(libinjection.is_xss(_libinjection_safe(value))["is_xss"])


_CLIMBS = ("../..", "..\\..", "/../", "\\..\\", "/..\\", "\\../")


def has_traversal(value: str) -> bool:
    """A decoded value climbs directories ("../..", "/../") or names a traversal target.

    A single leading "../" is not enough: relative links in values are ordinary.
    """
    value = value[:MAX_VALUE]
    if ".." in value and any(t in value for t in _CLIMBS):
        return True
    return _TABLE.traversal_subs.best(value.lower()) < _NONE


def probe_kind(path: str, query: str = "") -> ProbeKind | None:
    """The kind of probe a request is, or None for an ordinary request. Never raises."""
    if len(path) > MAX_SCAN:
        path = path[:MAX_SCAN]
    rank = _path_rank(path) if path else _NONE
    if query and rank > 0:
        if len(query) > MAX_SCAN:
            query = query[:MAX_SCAN]
        rank = min(rank, _query_rank(query))
    return PROBE_KINDS[rank] if rank < _NONE else None


def with_query(kind: ProbeKind | None, query: str) -> ProbeKind | None:
    """`probe_kind(path, query)` from the path's own verdict (`probe_kind(path)`, which a
    caller may keep per endpoint): the query only matters if it is the more specific one."""
    rank = _RANK[kind] if kind is not None else _NONE
    if rank > 0:
        rank = min(rank, _query_rank(query[:MAX_SCAN]))   # cached (lru)
    return PROBE_KINDS[rank] if rank < _NONE else None


percent_decode = _decode      # public name for callers outside the signatures


def payload_kind(text: str) -> ProbeKind | None:
    """An exploit payload in a free-text field (a Referer): only the listed "~" fragments
    (a JNDI lookup, OGNL, a traversal climb), none of the looser SQL / HTML checks, since a
    referring page's own URL may legitimately read like SQL."""
    low = _decode(text[:MAX_SCAN].lower()).lower()
    rank = _TABLE.query_subs.best(low)
    return PROBE_KINDS[rank] if rank < _NONE else None


@lru_cache(maxsize=CACHE_SIZE)
def _path_rank(path: str) -> int:
    low = path.lower()
    t = _TABLE
    best = _NONE
    dec = low
    if "%" in low:
        dec = _decode(low).lower()
        if any(x in low or x in dec for x in _ENCODED_DOTS):
            best = _RANK["path_traversal"]
    plain = _is_plain(dec)
    best = (t.plain_subs if plain and ".." not in dec else t.all_subs).best(dec, best)
    parts = (dec if plain else dec.replace("\\", "/")).split("/")
    if len(parts) > MAX_SEGMENTS:
        parts = parts[: MAX_SEGMENTS - 1] + parts[-1:]  # a probe's target is its last segment
    clean: list[str] = []
    for seg in parts:
        if not plain and ";" in seg:
            seg = seg.split(";", 1)[0]  # Tomcat path parameters: /..;/ and /x;jsessionid=
        if not seg or seg == ".":
            continue
        if "." in seg and (seg == ".." or seg.strip(" \t\x00") == ".."):
            best = min(best, _RANK["path_traversal"])
            continue
        clean.append(seg)
    if clean:
        # Numeric ids match no entry: skip them rather than fill the segment cache with them.
        segment_rank = _segment_rank
        for seg in clean[:-1]:
            if not seg.isdigit() and (r := segment_rank(seg)[0]) < best:
                best = r
        last = clean[-1]
        if not last.isdigit() and (r := segment_rank(last)[1]) < best:
            best = r
        if len(clean) == 1:
            for n in t.root_suffix_lens:
                if n < len(last) and (r := t.root_suffixes.get(last[-n:], _NONE)) < best:
                    best = r
        prefixes, prefix = t.prefixes, ""
        for seg in clean[: t.prefix_depth]:
            prefix = f"{prefix}/{seg}"
            r = prefixes.get(prefix, _NONE)
            if r < best:
                best = r
    if best > _RANK["sqli"] and (not plain or "--" in dec):
        if looks_like_sqli(dec.replace("/", " ")):
            best = _RANK["sqli"]
        elif looks_like_xss(dec):
            best = _RANK["xss"]
    return best


@lru_cache(maxsize=CACHE_SIZE)
def _segment_rank(seg: str) -> tuple[int, int]:
    """(rank as an inner segment, rank as the last one): suffixes only apply to the last."""
    t = _TABLE
    best = t.names.get(seg, _NONE)
    for n in t.seg_prefix_lens:
        if n <= len(seg):
            best = min(best, t.seg_prefixes.get(seg[:n], _NONE))
    last = best
    for n in t.suffix_lens:
        if n < len(seg):
            last = min(last, t.suffixes.get(seg[-n:], _NONE))
    return best, last


@lru_cache(maxsize=CACHE_SIZE)
def _query_rank(query: str) -> int:
    low = query.lower()
    best = _NONE
    if low.startswith("%ad") or "&%ad" in low:
        best = _RANK["cve"]  # PHP-CGI soft-hyphen argument injection, CVE-2024-4577
    # The decoded query as one text: one pass of each check instead of one per parameter.
    dq = _decode(low, plus=True).lower()
    best = _TABLE.query_subs.best(dq, best)
    if best > _RANK["path_traversal"] and ".." in dq and any(t in dq for t in _CLIMBS):
        best = _RANK["path_traversal"]
    if best <= _RANK["sqli"]:
        return best
    # OData system options ($filter=substring(Name,1,2) eq 'ab') are SQL-like by design: their
    # values only count for unambiguous fragments, not function calls nor libinjection.
    odata = "$" in dq
    if _SQLI.search(_squash(dq), functions=not odata):
        return _RANK["sqli"]
    xss = _XSS.search(dq)
    # libinjection (~5 us) per value, only for values with SQL / HTML syntax in them.
    if odata or (_SUSPICIOUS.intersection(dq) or "--" in dq):
        deep_left = MAX_DEEP
        for part in low.split("&", MAX_PARAMS)[:MAX_PARAMS]:
            name, _, value = part.partition("=")
            value = _decode(value, plus=True)
            if _decode(name).startswith("$"):
                if _SQLI.search(_squash(value.lower()), functions=False):
                    return _RANK["sqli"]
                continue
            if odata and _SQLI.search(_squash(value.lower())):
                return _RANK["sqli"]
            if deep_left and (_SUSPICIOUS.intersection(value) or "--" in value):
                deep_left -= 1
                if looks_like_sqli(value):
                    return _RANK["sqli"]
                if not xss and looks_like_xss(value):
                    xss = True
    return _RANK["xss"] if xss else best


def cache_clear() -> None:
    _path_rank.cache_clear()
    _query_rank.cache_clear()
    _segment_rank.cache_clear()
