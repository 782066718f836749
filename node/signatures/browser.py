"""Browser family and major version (ua-parser), and the outdated-browser check.

ua-parser runs a few hundred regexes per new UA (~0.5 ms for a browser UA, several ms for 512
bytes of junk), so: only UAs that ``classify_ua`` already calls a browser are parsed, the input
is cut to ``MAX_UA``, and results sit in a bounded LRU cache.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

import ua_parser

from .ua import MAX_UA, classify_ua

CACHE_SIZE = 8192

# Minimum major version per ua-parser family: roughly what was current three years before
# late 2026, i.e. releases of early 2023 (Chrome / Edge / Firefox 110 shipped Feb 2023, Opera 96
# is Chromium 110, Samsung Internet 20 and Safari 16 were current then). Evergreen browsers
# auto-update within weeks, so a major this old is rare for a person and common for a bot
# that froze its UA string years ago. IE is always outdated (minimum above its last release).
DEFAULT_MIN_VERSIONS: Mapping[str, int] = {
    "Chrome": 110,
    "Chrome Mobile": 110,
    "Chrome Mobile iOS": 110,
    "Chrome Mobile WebView": 110,
    "Chromium": 110,
    "Edge": 110,
    "Edge Mobile": 110,
    "Firefox": 110,
    "Firefox Mobile": 110,
    "Firefox iOS": 110,
    "Opera": 96,
    "Opera Mobile": 73,
    "Safari": 16,
    "Mobile Safari": 16,
    "Samsung Internet": 20,
    "Yandex Browser": 23,
    "IE": 12,
}

# Discontinued families and their last major release. A higher major was never shipped: the
# string is forged (random user-agent generators write `MSIE 66.0; Trident/49.0`), which
# tells as much as a years-old one, so it counts as outdated whatever the minimum.
LAST_MAJOR: Mapping[str, int] = {"IE": 11}

# Build ua-parser's global parser now (~0.3 s) rather than on the first request.
ua_parser.parser  # noqa: B018


def browser_version(ua: str | None) -> tuple[str, int] | None:
    """(ua-parser family, major version) of a browser UA; None for non-browsers and unknowns."""
    if not ua:
        return None
    if len(ua) > MAX_UA:
        ua = ua[:MAX_UA]
    return _browser_version(ua)


@lru_cache(maxsize=CACHE_SIZE)
def _browser_version(ua: str) -> tuple[str, int] | None:
    if classify_ua(ua).kind != "browser":
        return None  # bots, scanners and libraries may carry a Chrome token; not a browser
    parsed = ua_parser.parse_user_agent(ua)
    if parsed is None or not parsed.major or not parsed.major.isdigit():
        return None
    return parsed.family, int(parsed.major)


def is_outdated(
    ua: str | None, minimums: Mapping[str, int] = DEFAULT_MIN_VERSIONS
) -> tuple[str, int, int] | None:
    """(family, major, minimum) when the browser's major is below its family's minimum, or
    above the last release of a discontinued family (`forged_major`)."""
    version = browser_version(ua)
    if version is None:
        return None
    family, major = version
    minimum = minimums.get(family)
    if minimum is None or (major >= minimum and not forged_major(family, major)):
        return None
    return family, major, minimum


def forged_major(family: str, major: int) -> bool:
    """A major version its (discontinued) family never released."""
    last = LAST_MAJOR.get(family)
    return last is not None and major > last


def cache_clear() -> None:
    _browser_version.cache_clear()
