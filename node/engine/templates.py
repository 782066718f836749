"""Endpoint templates (`/api/products/{id}`) inferred from traffic; configured ones win.

Uniqueness, breadth and enumeration detectors need to know that `/api/products/41` and
`/api/products/42` are one endpoint. Identifier-like segments (numbers, UUIDs, hashes, long
tokens, e-mails) are replaced by placeholders at once; a path position whose literal children
keep multiplying (slugs) becomes a `{var}` after `VARIABLE_AFTER` distinct children.
Everything is bounded: the path cache is cleared when full, the children sets are capped.
"""

from __future__ import annotations

import re

_NUM = re.compile(r"^[+-]?\d+(?:\.\d+)?$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?"
                   r"[0-9a-fA-F]{12}$")
_HEX = re.compile(r"^[0-9a-fA-F]{16,}$")
_TOKEN = re.compile(r"^[A-Za-z0-9_\-=.~]{24,}$")
_MIXED = re.compile(r"^(?=[^/]*\d)(?=[^/]*[A-Za-z])[A-Za-z0-9]{12,}$")

VARIABLE_AFTER = 40     # distinct literal children before a position is a variable
MAX_SEGMENTS = 16       # deeper paths are cut: a template, not a copy of an attack string
MAX_SEGMENT = 64


def classify_segment(seg: str) -> str | None:
    """Placeholder for an identifier-like segment, or None for a literal."""
    if not seg:
        return None
    c = seg[0]
    if c.isdigit() or c in "+-":
        if _NUM.match(seg):
            return "{id}"
    if len(seg) >= 16:
        if _UUID.match(seg):
            return "{uuid}"
        if _HEX.match(seg):
            return "{hash}"
        if "." not in seg and _TOKEN.match(seg) and any(ch.isdigit() for ch in seg):
            return "{token}"
    if "@" in seg and "." in seg:
        return "{email}"
    if len(seg) >= 12 and _MIXED.match(seg):
        return "{id}"
    return None


class _Configured:
    """Configured templates compiled to per-segment matchers (placeholders match anything)."""

    def __init__(self, templates: tuple[str, ...]) -> None:
        self.items: list[tuple[str, tuple[str | None, ...]]] = []
        for t in templates:
            segs = tuple(None if (s.startswith("{") and s.endswith("}")) else s
                         for s in t.strip("/").split("/"))
            self.items.append((t, segs))
        # More literal segments first: `/api/users/me` beats `/api/users/{id}`.
        self.items.sort(key=lambda it: -sum(s is not None for s in it[1]))

    def match(self, segs: list[str]) -> str | None:
        for t, pat in self.items:
            if len(pat) == len(segs) and all(p is None or p == s for p, s in zip(pat, segs,
                                                                                 strict=True)):
                return t
        return None


class TemplateInferrer:
    """path → template, O(len(path)) on a miss and a dict lookup on a hit."""

    def __init__(self, configured: tuple[str, ...] = (), max_paths: int = 50_000,
                 max_parents: int = 5_000) -> None:
        self._configured = _Configured(configured) if configured else None
        self.cache: dict[str, str] = {}          # path → template (the engine reads it)
        self._max_paths = max_paths
        self._children: dict[str, set[str] | None] = {}   # parent template → literals (None=var)
        self._max_parents = max_parents

    def template(self, path: str) -> str:
        t = self.cache.get(path)
        if t is not None:
            return t
        t = self._infer(path)
        if len(self.cache) >= self._max_paths:
            self.cache.clear()          # cheap bounded cache: refills with the hot paths
        self.cache[path] = t
        return t

    def _infer(self, path: str) -> str:
        raw = path.split("/")[1:MAX_SEGMENTS + 1] if path.startswith("/") else [path]
        if self._configured:
            hit = self._configured.match(raw)
            if hit:
                return hit
        out: list[str] = []
        prefix = ""
        for depth, seg in enumerate(raw):
            ph = classify_segment(seg)
            if ph is None:
                seg = seg[:MAX_SEGMENT]
                # The first segment and file names stay literal: probes for /.env, /wp-login.php
                # are distinct endpoints, and that breadth is what betrays a scanner.
                if depth > 0 and "." not in seg and seg:
                    ph = self._learn(prefix, seg)
            part = ph or seg
            out.append(part)
            prefix = prefix + "/" + part
        return "/" + "/".join(out) if out else "/"

    def _learn(self, parent: str, seg: str) -> str | None:
        kids = self._children.get(parent, ())
        if kids is None:
            return "{var}"
        if kids == ():
            if len(self._children) >= self._max_parents:
                return None
            kids = self._children[parent] = set()
        if seg in kids:
            return None
        kids.add(seg)
        if len(kids) > VARIABLE_AFTER:
            self._children[parent] = None
            self.cache.clear()          # earlier literal templates under it are now stale
            return "{var}"
        return None
