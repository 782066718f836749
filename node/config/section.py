"""Typed access to one YAML mapping with errors that name file, line and dotted key."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping
from typing import Any

from node.errors import ConfigError

_DURATION = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}
FOREVER = None


def parse_duration(text: Any) -> float:
    """`"90s"`, `"5m"`, `"1h"`, `"7d"`, a bare number of seconds → seconds. Raises ValueError."""
    if isinstance(text, bool):
        raise ValueError("expected a duration like 30s, 5m, 1h, 7d")
    if isinstance(text, int | float):
        value = float(text)
    else:
        m = _DURATION.match(str(text))
        if not m:
            raise ValueError(f"{text!r} is not a duration (use e.g. 30s, 5m, 1h, 7d)")
        value = float(m.group(1)) * _UNITS[m.group(2)]
    if value < 0:
        raise ValueError(f"duration must not be negative (got {text!r})")
    return value


class Section:
    """A view of one mapping: `where` is its dotted path from the file's root."""

    def __init__(self, data: Any, file: str, where: str = "", line: int | None = None) -> None:
        self.file = file
        self.where = where
        self.line = getattr(data, "line", line)
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ConfigError("expected a mapping", file=file, line=self.line, key=where or None)
        self.data = data

    # -- locating ---------------------------------------------------------------------------
    def key_path(self, key: str | int) -> str:
        if isinstance(key, int):
            return f"{self.where}[{key}]"
        return f"{self.where}.{key}" if self.where else key

    def line_of(self, key: str) -> int | None:
        lines = getattr(self.data, "lines", None)
        return lines.get(key, self.line) if lines else self.line

    def error(self, key: str | None, message: str, line: int | None = None) -> ConfigError:
        return ConfigError(message, file=self.file,
                           line=line or (self.line_of(key) if key else self.line),
                           key=self.key_path(key) if key else (self.where or None))

    # -- checks -----------------------------------------------------------------------------
    def only(self, *allowed: str) -> None:
        """Unknown keys are mistakes (a typo must not silently fall back to a default)."""
        for key in self.data:
            if key not in allowed:
                hint = _closest(key, allowed)
                raise self.error(key, "unknown key" + (f" (did you mean {hint!r}?)" if hint
                                                       else f"; allowed: {', '.join(allowed)}"))

    def has(self, key: str) -> bool:
        return key in self.data and self.data[key] is not None

    def raw(self, key: str, default: Any = None) -> Any:
        v = self.data.get(key)
        return default if v is None else v

    def sub(self, key: str) -> Section:
        return Section(self.data.get(key), self.file, self.key_path(key), self.line_of(key))

    def str(self, key: str, default: str | None = None, *, choices: tuple[str, ...] = ()
            ) -> str | None:
        v = self.data.get(key)
        if v is None:
            return default
        if not isinstance(v, str):
            raise self.error(key, f"expected a string, got {type(v).__name__}")
        if choices and v not in choices:
            raise self.error(key, f"must be one of {', '.join(choices)} (got {v!r})")
        return v

    def bool(self, key: str, default: bool) -> bool:
        v = self.data.get(key)
        if v is None:
            return default
        if not isinstance(v, bool):
            raise self.error(key, "expected true or false")
        return v

    def number(self, key: str, default: float, *, minimum: float | None = None,
               maximum: float | None = None, integer: bool = False) -> float:
        v = self.data.get(key)
        if v is None:
            return default
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise self.error(key, f"expected a number, got {v!r}")
        if integer and not isinstance(v, int):
            raise self.error(key, f"expected a whole number, got {v!r}")
        if minimum is not None and v < minimum:
            raise self.error(key, f"must be >= {minimum} (got {v})")
        if maximum is not None and v > maximum:
            raise self.error(key, f"must be <= {maximum} (got {v})")
        return v

    def int(self, key: str, default: int, *, minimum: int | None = None,
            maximum: int | None = None) -> int:
        return int(self.number(key, default, minimum=minimum, maximum=maximum, integer=True))

    def duration(self, key: str, default: float | None, *, minimum: float = 0.0,
                 maximum: float | None = None, allow_forever: bool = False) -> float | None:
        v = self.data.get(key)
        if v is None:
            return default
        if allow_forever and v in ("forever", "never", "permanent"):
            return FOREVER
        try:
            secs = parse_duration(v)
        except ValueError as e:
            raise self.error(key, str(e)) from None
        if secs < minimum:
            raise self.error(key, f"must be at least {_fmt(minimum)} (got {v!r})")
        if maximum is not None and secs > maximum:
            raise self.error(key, f"must be at most {_fmt(maximum)} (got {v!r})")
        return secs

    def list(self, key: str, default: list | None = None) -> list:
        v = self.data.get(key)
        if v is None:
            return list(default or [])
        if isinstance(v, str):
            return [v]
        if not isinstance(v, list):
            raise self.error(key, "expected a list")
        return v

    def str_list(self, key: str, default: list | None = None) -> list[str]:
        items = self.list(key, default)
        for i, item in enumerate(items):
            if not isinstance(item, str):
                raise self.error(key, f"item {i + 1} must be a string (got {item!r})",
                                 line=_item_line(self.data.get(key), i))
        return items

    def networks(self, key: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        out = []
        raw = self.data.get(key)
        for i, item in enumerate(self.str_list(key)):
            try:
                out.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError:
                raise self.error(key, f"{item!r} is not an IP address or CIDR",
                                 line=_item_line(raw, i)) from None
        return out

    def item_line(self, key: str, i: int) -> int | None:
        """The line of item `i` of the list under `key`."""
        return _item_line(self.data.get(key), i)

    def items(self) -> Iterator[tuple[str, Any]]:
        return iter(self.data.items())

    def sections(self, key: str) -> Iterator[tuple[int, Section]]:
        """Each mapping in the list under `key`, as a Section."""
        raw = self.data.get(key)
        for i, item in enumerate(self.list(key)):
            yield i, Section(item, self.file, f"{self.key_path(key)}[{i}]", _item_line(raw, i))


def _item_line(seq: Any, i: int) -> int | None:
    lines = getattr(seq, "lines", None)
    if lines and i < len(lines):
        return lines[i]
    return getattr(seq, "line", None)


def _fmt(secs: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size and secs % size == 0:
            return f"{int(secs // size)}{unit}"
    return f"{secs:g}s"


def _closest(word: str, options: tuple[str, ...]) -> str | None:
    import difflib

    m = difflib.get_close_matches(word, options, n=1, cutoff=0.75)
    return m[0] if m else None
