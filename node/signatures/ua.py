"""User-agent classification: one closed-set kind per User-Agent string.

Linear time on hostile input: the UA is truncated to MAX_UA and lower-cased, then searched with
compiled alternations of escaped literals (no quantifiers, so no backtracking blow-up) and
``str.startswith`` / ``str.endswith`` tuples. Results are kept in a bounded LRU cache because a
handful of user agents make up most traffic.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources
from typing import Literal, NamedTuple

from crawleruseragents import CRAWLER_USER_AGENTS_DATA

MAX_UA = 512  # same bound as node.record.MAX_UA: nothing past it is looked at
CACHE_SIZE = 8192

UAKind = Literal["empty", "scanner", "spam_bot", "library", "crawler", "good_bot", "browser",
                 "app", "other"]
KINDS: frozenset[str] = frozenset(
    ("empty", "scanner", "spam_bot", "library", "crawler", "good_bot", "browser", "app", "other")
)
# What a declared crawler does with a site (node/data/ua_ai_agents.txt); profiles allow or
# block each one (config `crawlers:`).
CATEGORIES: tuple[str, ...] = ("ai_crawler", "ai_assistant", "search_engine")
# The HTTP stacks of native mobile apps: apps keep their default agent (`okhttp/4.12.0`,
# `ShopApp/3.1 (...; iOS 17.1) Alamofire/5.8.0`, Flutter's `Dart/3.2 (dart:io)`), so these
# are the customers of a mobile app as much as a browser's agent is a person's: kind "app".
APP_STACKS: frozenset[str] = frozenset(("okhttp", "alamofire", "dart"))


class UAClass(NamedTuple):
    kind: UAKind
    name: str  # the matched tool / bot / browser family; "" for empty and other
    category: str = ""  # one of CATEGORIES for a declared AI agent or search crawler
    agent: str = ""     # that agent's own name ("GPTBot", "ClaudeBot"); good_bot's name
                        # stays the vendor key the verifier looks up


def read_list(filename: str) -> list[str]:
    """Non-comment, non-blank lines of a list shipped in ``node/data``."""
    text = resources.files("node").joinpath("data", filename).read_text(encoding="utf-8")
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _named_literals(filename: str) -> dict[str, str]:
    """``literal = name`` lines -> {lower-cased literal: name}."""
    out: dict[str, str] = {}
    for line in read_list(filename):
        literal, sep, name = line.partition(" = ")
        literal = literal.strip()
        out[literal.lower()] = name.strip() if sep else literal
    return out


def trie_regex(literals: Iterable[str]) -> str:
    """Regex source matching any of the literals: a trie of escaped characters.

    A flat ``a|b|c`` alternation of ~1500 literals makes ``re`` try every branch at every
    position (~0.5 ms per UA); the trie tries ~30 first characters and descends only on a match.
    A literal that is a prefix of another ends its branch (any match will do), so the regex has
    no quantifiers at all: it cannot backtrack beyond the length of one literal.
    """
    trie: dict[str, dict] = {}
    for lit in literals:
        node = trie
        for ch in lit:
            node = node.setdefault(ch, {})
        node[""] = {}  # end marker
    return _trie_body(trie) if trie else "(?!)"


def _trie_body(node: dict[str, dict]) -> str:
    if "" in node:
        return ""
    alts = [re.escape(ch) + _trie_body(child) for ch, child in sorted(node.items())]
    return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"


def _categorised(filename: str) -> dict[str, tuple[str, str]]:
    """``[category]`` sections of ``literal = Name`` lines -> {literal: (Name, category)}."""
    out: dict[str, tuple[str, str]] = {}
    category = ""
    for line in read_list(filename):
        if line.startswith("["):
            category = line.strip("[]").strip()
            if category not in CATEGORIES:
                raise ValueError(f"{filename}: unknown category {category!r}")
            continue
        literal, sep, name = line.partition(" = ")
        literal = literal.strip()
        out.setdefault(literal.lower(), (name.strip() if sep else literal, category))
    return out


def _alternation(literals: Iterable[str], *, word_start: bool) -> re.Pattern[str]:
    # The look-behind also makes the scan faster: mid-word positions fail on one test.
    body = trie_regex(literals)
    return re.compile(f"(?<![a-z0-9]){body}" if word_start else body)


# --- crawler-user-agents: its patterns are Go/JS-compatible regexes, almost all literals ---

_ESCAPABLE = set("/.()!+-:_ \\$[]|?*{}^")
_MIN_LITERAL = 4  # shorter literals (e.g. "BW/") hit unrelated UAs once matched as substrings


def _crawler_literals(pattern: str) -> list[tuple[str, str]]:
    """Turn one crawler-user-agents regex into (mode, literal) pairs, mode in {'in','^','$'}.

    Literal runs are kept; what is not a literal (``[^-]``, ``\\d``, ``[\\s\\S]*``, ``(^| )``)
    cuts the pattern, and the longest literal piece stands for it. That can only widen a match
    a little (e.g. ``AdsBot-Google([^-]|$)`` -> ``adsbot-google``), never need backtracking.
    """
    out: list[tuple[str, str]] = []
    for alt in _split_top(pattern, "|"):
        pieces = _literal_pieces(alt)
        if not pieces:
            continue
        best = max(pieces, key=lambda p: min(len(s) for s in p[0]))
        strings, anchored_start, anchored_end = best
        mode = "^" if anchored_start else "$" if anchored_end else "in"
        for s in strings:
            if mode == "in":
                # Matched at a word start: leading punctuation / spaces would never match there.
                s = s.lstrip(" ;:,-_/.!").rstrip()
            if len(s) >= (3 if mode != "in" else _MIN_LITERAL):
                out.append((mode, s))
    return out


def _split_top(p: str, sep: str) -> list[str]:
    parts, depth, cur, i = [], 0, [], 0
    while i < len(p):
        c = p[i]
        if c == "\\" and i + 1 < len(p):
            cur.append(p[i : i + 2])
            i += 2
            continue
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        if c == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    return parts


def _literal_pieces(p: str) -> list[tuple[set[str], bool, bool]]:
    """Split a pattern at its non-literal parts: [(expansions, anchored_start, anchored_end)]."""
    pieces: list[tuple[set[str], bool, bool]] = []
    cur: set[str] = {""}
    start_anchor = p.startswith("^")
    at_start = True
    i = 1 if start_anchor else 0

    def cut(anchored_end: bool = False) -> None:
        nonlocal cur, at_start
        if cur != {""}:
            pieces.append((cur, start_anchor and at_start, anchored_end))
        cur, at_start = {""}, False

    while i < len(p):
        c = p[i]
        alts: set[str] | None = None
        if c == "\\" and i + 1 < len(p):
            nxt = p[i + 1]
            alts = {nxt.lower()} if nxt in _ESCAPABLE else None
            i += 2
        elif c == "[":
            end = p.find("]", i)
            body = p[i + 1 : end] if end > 0 else ""
            if (
                end > 0
                and body
                and "\\" not in body
                and not body.startswith("^")
                and "-" not in body
            ):
                alts = {ch.lower() for ch in body}
            i = end + 1 if end > 0 else len(p)
        elif c == "(":
            end = p.find(")", i)
            inner = p[i + 1 : end] if end > 0 else ""
            opts = _split_top(inner, "|")
            if end > 0 and all(o and not set(o) & set("^$[]()\\.*+?{}") for o in opts):
                alts = {o.lower() for o in opts}
            i = end + 1 if end > 0 else len(p)
        elif c == "$" and i == len(p) - 1:
            cut(anchored_end=True)
            i += 1
            continue
        elif c in ".^$":
            i += 1
        elif c in "*?":
            # The previous atom was optional: what came before it is still a literal piece.
            cut()
            i += 1
            continue
        elif c in "+{":
            i = p.find("}", i) + 1 if c == "{" else i + 1
            cut()
            continue
        else:
            alts = {c.lower()}
            i += 1
        if alts is None or len(cur) * len(alts) > 16:
            cut()
            continue
        if i < len(p) and p[i] in "*?{":
            cut()  # this atom is optional or repeated: stop the literal before it
            continue
        cur = {a + b for a in cur for b in alts}
    cut()
    return pieces


def _crawler_tables() -> tuple[re.Pattern[str], tuple[str, ...], tuple[str, ...]]:
    inner: set[str] = set()
    starts: set[str] = set()
    ends: set[str] = set()
    excluded = {line.lower() for line in read_list("ua_crawler_exclude.txt")}
    for entry in CRAWLER_USER_AGENTS_DATA:
        for mode, lit in _crawler_literals(entry["pattern"]):
            if lit not in excluded:
                {"in": inner, "^": starts, "$": ends}[mode].add(lit)
    return _alternation(inner, word_start=True), tuple(starts), tuple(ends)


_SCANNERS = _named_literals("ua_scanners.txt")
_SPAM_BOTS = _named_literals("ua_spam_bots.txt")
_AGENTS = _categorised("ua_ai_agents.txt")
_SPAM_RE = _alternation(_SPAM_BOTS, word_start=True)
_AGENT_RE = _alternation(_AGENTS, word_start=True)
_AGENT_LONGER = {a: tuple(sorted((b for b in _AGENTS if b != a and b.startswith(a)), key=len,
                                 reverse=True))
                 for a in _AGENTS if any(b != a and b.startswith(a) for b in _AGENTS)}
_GOOD_BOTS = _named_literals("ua_good_bots.txt")
_LIBRARIES = _named_literals("ua_libraries.txt")
_SCANNER_RE = _alternation(_SCANNERS, word_start=True)
_GOOD_BOT_RE = _alternation(_GOOD_BOTS, word_start=True)
_LIBRARY_RE = _alternation(_LIBRARIES, word_start=True)
_CRAWLER_RE, _CRAWLER_STARTS, _CRAWLER_ENDS = _crawler_tables()

# A UA announcing itself as a bot that no list names is still a crawler: a versioned token
# ("FooBot/1.2") or the bare word. Not any word ending in "bot": phones such as "CUBOT X30".
_BOT_WORDS = ("bot", "crawler", "spider", "scraper")
_BOT_TOKEN_RE = re.compile(
    r"(?:bot|crawler|spider|scraper)/|(?<![a-z])(?:ro)?(?:bot|crawler|spider|scraper)(?![a-z])"
)

_ENGINE_TOKENS = ("applewebkit/", "gecko/", "trident/", "presto/", "khtml")
# First token that names the family wins, so order matters (Edge and Opera also say Chrome).
_FAMILY_TOKENS = (
    ("edg/", "Edge"),
    ("edga/", "Edge"),
    ("edgios/", "Edge"),
    ("edge/", "Edge"),
    ("opr/", "Opera"),
    ("opera", "Opera"),
    ("samsungbrowser/", "Samsung Internet"),
    ("yabrowser/", "Yandex Browser"),
    ("ucbrowser/", "UC Browser"),
    ("firefox/", "Firefox"),
    ("fxios/", "Firefox"),
    ("crios/", "Chrome"),
    ("chrome/", "Chrome"),
    ("chromium/", "Chrome"),
    ("trident/", "IE"),
    ("msie ", "IE"),
    ("safari/", "Safari"),
)


def classify_ua(ua: str | None) -> UAClass:
    """Classify a User-Agent header value; never raises, linear in min(len(ua), MAX_UA)."""
    if not ua:
        return _EMPTY
    if len(ua) > MAX_UA:
        ua = ua[:MAX_UA]
    return _classify(ua)


_EMPTY = UAClass("empty", "")


@lru_cache(maxsize=CACHE_SIZE)
def _classify(ua: str) -> UAClass:
    low = ua.strip().lower()
    if not low or low in ("-", '"-"', "null", "none", "undefined"):
        return _EMPTY
    # Scanners first: they often append their token to a browser or bot UA.
    if m := _SCANNER_RE.search(low):
        return UAClass("scanner", _SCANNERS[m.group()])
    # Spam bots next: some carry a library's token ("WebVulnCrawl.unknown ... libwww-perl").
    if m := _SPAM_RE.search(low):
        return UAClass("spam_bot", _SPAM_BOTS[m.group()])
    # Headless / automation before good bots: "HeadlessChrome ... Googlebot" is not Google.
    if m := _LIBRARY_RE.search(low):
        name = _LIBRARIES[m.group()]
        return UAClass("app" if name in APP_STACKS else "library", name)
    agent, category = _agent(low)
    if m := _GOOD_BOT_RE.search(low):
        return UAClass("good_bot", _GOOD_BOTS[m.group()], category, agent)
    if agent:     # a declared AI agent, even inside a browser-looking agent string
        return UAClass("crawler", agent, category, agent)
    if m := _CRAWLER_RE.search(low):
        return UAClass("crawler", m.group().rstrip("/"))
    if _CRAWLER_STARTS and low.startswith(_CRAWLER_STARTS):
        return UAClass(
            "crawler", next(x for x in _CRAWLER_STARTS if low.startswith(x)).rstrip("/ ")
        )
    if _CRAWLER_ENDS and low.endswith(_CRAWLER_ENDS):
        return UAClass("crawler", next(x for x in _CRAWLER_ENDS if low.endswith(x)))
    # Plain substring tests first: the regex with look-arounds costs ~10 us on a browser UA.
    if any(w in low for w in _BOT_WORDS) and (m := _BOT_TOKEN_RE.search(low)):
        end = m.end() - 1 if m.group().endswith("/") else m.end()
        return UAClass("crawler", _token_before(low, end))
    if (low.startswith("mozilla/5.0 (") or low.startswith("opera/")) and any(
        t in low for t in _ENGINE_TOKENS
    ):
        for token, family in _FAMILY_TOKENS:
            if token in low:
                return UAClass("browser", family)
        return UAClass("browser", "browser")
    return UAClass("other", "")


def _agent(low: str) -> tuple[str, str]:
    """(Name, category) of the declared agent in the UA, or ("", "")."""
    m = _AGENT_RE.search(low)
    if m is None:
        return "", ""
    lit = m.group()
    # The trie stops at the shortest literal: "AI2Bot-DeepResearchEval" is not "AI2Bot".
    for longer in _AGENT_LONGER.get(lit, ()):
        if low.startswith(longer, m.start()):
            return _AGENTS[longer]
    return _AGENTS[lit]


def _token_before(low: str, end: int) -> str:
    start = end
    while start > 0 and end - start < 40 and (low[start - 1].isalnum() or low[start - 1] in "-_."):
        start -= 1
    return low[start:end]


def cache_clear() -> None:
    _classify.cache_clear()
