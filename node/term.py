"""Terminal helpers: a progress line for long work, and escaping of attacker strings."""

from __future__ import annotations

import time
from typing import TextIO

_CTRL = {i: f"\\x{i:02x}" for i in range(32)} | {127: "\\x7f"}


def escape(text: str, limit: int = 200) -> str:
    """Attacker-controlled text made safe for a terminal: no control characters (no escape
    sequences that could rewrite the screen), bounded length."""
    s = text.translate(_CTRL)
    return s if len(s) <= limit else s[: limit - 1] + "…"


class Progress:
    """A single updating line on a terminal (stderr), at most ~5 updates a second."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.started = time.perf_counter()
        self._last = 0.0

    def update(self, done: int, total: int | None, records: int) -> None:
        now = time.perf_counter()
        if now - self._last < 0.2:
            return
        self._last = now
        rate = records / max(now - self.started, 1e-9)
        pct = f"{100 * done / total:5.1f}% " if total else ""
        self.out.write(f"\r{pct}{records:,} records, {rate:,.0f}/s   ")
        self.out.flush()

    def done(self) -> None:
        self.out.write("\r" + " " * 60 + "\r")
        self.out.flush()
