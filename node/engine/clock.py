"""Clock values in a query string: `since=1763900000`, jQuery's cache buster
`_=1763900000123`, `updated_after=2025-11-23T12:13:21Z`.

A single-page app that polls one resource sends a new query every time, because one value is
the current time: every poll looks unique, and one parameter varies in a loop, which is what
scraping and query abuse look like. A value within a day of the request's own time asks for
nothing new, so the uniqueness sketch and query abuse see it as one placeholder. Enumerated
ids and pages, and random cache busters (a DoS tool's `/?136570968920`), are not near the
clock: they still count.
"""

from __future__ import annotations

import re
import time

WINDOW = 86400.0           # s: how near the request's time a value must be
MAX_QUERY = 1024           # longer queries are left as they are (probes judge those)

# Unix seconds (10 digits, from 2001 to 2286) or milliseconds (13), optionally fractional;
# ISO 8601 date-times, their colons possibly percent-encoded.
_CLOCK = re.compile(
    r"(?<![0-9])(1[0-9]{9}(?:[0-9]{3})?)(?:\.[0-9]{1,6})?(?![0-9])"
    r"|(?<![0-9])(2[0-9]{3}-[01][0-9]-[0-3][0-9])[T ]?[0-2][0-9](?::|%3[Aa])[0-5][0-9]"
    r"(?:(?::|%3[Aa])[0-5][0-9](?:\.[0-9]{1,9})?)?(?:Z|[+-][0-9]{2}(?::|%3[Aa])?[0-9]{2}"
    r"|%2[Bb][0-9]{2}(?:%3[Aa])?[0-9]{2})?")
_HINT = re.compile(r"1[0-9]{9}|2[0-9]{3}-[01]")   # a cheap first look: most queries have neither
PLACEHOLDER = "{clock}"


def without_clock(query: str, ts: float) -> str:
    """`query` with every value near `ts` replaced by PLACEHOLDER (itself when none is)."""
    if len(query) > MAX_QUERY or _HINT.search(query) is None:
        return query
    days = {time.strftime("%Y-%m-%d", time.gmtime(ts + d)) for d in (-WINDOW, 0.0, WINDOW)}

    def sub(m: re.Match[str]) -> str:
        epoch, day = m.group(1), m.group(2)
        if epoch is not None:
            v = int(epoch) / (1000.0 if len(epoch) == 13 else 1.0)
            return PLACEHOLDER if abs(v - ts) <= WINDOW else m.group()
        return PLACEHOLDER if day in days else m.group()

    return _CLOCK.sub(sub, query)
