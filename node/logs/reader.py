"""`LogReader`: stream request records out of access-log files, whatever their format."""

from __future__ import annotations

import gzip
import os
import sys
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from node.errors import InputError
from node.logs.nginx import compile_log_format
from node.logs.parsers import PARSERS, Parser
from node.record import RequestRecord

LINE_LIMIT = 64 * 1024  # longer lines are skipped ("line-too-long") without being read whole
SAMPLE_LINES = 50       # non-empty lines per file used to detect its format
GZIP_MAGIC = b"\x1f\x8b"

FORMATS: tuple[str, ...] = (*PARSERS, "log_format")
ALIASES = {
    "common": "combined", "clf": "combined", "main": "combined", "vhost_combined": "combined",
    "nginx": "combined", "apache": "combined", "syslog": "combined",
    "jsonl": "json", "ndjson": "json", "aws-alb": "alb", "traefik-json": "traefik",
    "docker": "wrapped", "journald": "wrapped",
}


class LogReader:
    """Iterate to get `RequestRecord`s from `paths` (plain or gzip, `-` for stdin), in order.

    `fmt` forces a format for every file (a name of `FORMATS` or `ALIASES`); by default each
    file's format is detected from its first `SAMPLE_LINES` non-empty lines: the format that
    parses most of them wins. `log_format` adds an nginx `log_format` (and is preferred on a
    tie). Counters are readable while iterating; iterate once.
    """

    FORMATS = FORMATS

    def __init__(self, paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
                 fmt: str | None = None, log_format: str | None = None, *,
                 skip_unknown: bool = False) -> None:
        if isinstance(paths, str | os.PathLike):
            paths = [paths]
        self.paths: list[str | Path] = [p if p == "-" else Path(p) for p in paths]
        self._custom: Parser | None = compile_log_format(log_format) if log_format else None
        self._forced: tuple[str, Parser] | None = None
        if fmt is not None:
            name = ALIASES.get(fmt, fmt)
            if name == "log_format":
                if self._custom is None:
                    raise InputError("format log_format needs a log_format string")
                self._forced = (name, self._custom)
            elif name in PARSERS:
                self._forced = (name, PARSERS[name])
            else:
                raise InputError(f"unknown log format {fmt!r}; known: {', '.join(FORMATS)}")
        self.lines_read = 0
        self.records = 0
        self.skipped: dict[str, int] = {}    # reason -> lines that yielded no record
        self.malformed: dict[str, int] = {}  # reason -> records yielded despite a defect
        self.format_name: str | None = None  # of the file being read
        self.formats: list[str] = []         # every format met so far, in order
        self.path: str | Path | None = None  # the file being read
        # With several files, one in no known format is skipped (and named in
        # `unknown_files`) instead of ending the whole run.
        self.skip_unknown = skip_unknown
        self.unknown_files: list[str] = []
        self._sizes = [self._size(p) for p in self.paths]
        self.total_bytes = sum(self._sizes)
        self._done_bytes = 0
        self._tell = None

    @staticmethod
    def _size(p: str | Path) -> int:
        if p == "-":
            return 0
        try:
            st = os.stat(p)
        except OSError as e:
            raise InputError(f"{p}: cannot read: {e.strerror or e}") from None
        if not os.path.isfile(p):
            raise InputError(f"{p}: not a regular file")
        return st.st_size

    @property
    def bytes_read(self) -> int:
        """Bytes consumed so far (compressed bytes for gzip), for a progress bar."""
        tell = self._tell
        try:
            cur = tell() if tell else 0
        except (OSError, ValueError):  # closed between the check and the call
            cur = 0
        return self._done_bytes + cur

    def __iter__(self) -> Iterator[RequestRecord]:
        for p, size in zip(self.paths, self._sizes, strict=True):
            try:
                yield from self._read_file(p, size)
            except InputError as e:
                if not self.skip_unknown or "unknown log format" not in str(e):
                    raise
                self.unknown_files.append(str(e))
                self.skipped["unknown-format-file"] = self.skipped.get("unknown-format-file",
                                                                       0) + 1

    def _read_file(self, p: str | Path, size: int) -> Iterator[RequestRecord]:
        if p == "-":
            raw: BinaryIO = sys.stdin.buffer
        else:
            try:
                raw = open(p, "rb")  # closed in the finally below, across yields
            except OSError as e:
                raise InputError(f"{p}: cannot read: {e.strerror or e}") from None
        self.path = p
        self.format_name = None
        base = self.lines_read
        lineno = 0
        try:
            f: BinaryIO = raw
            if raw.peek(2)[:2] == GZIP_MAGIC:  # by content: rotated logs are not always *.gz
                f = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment]
            self._tell = raw.tell
            src = "stdin" if p == "-" else p.name  # type: ignore[union-attr]
            bad, skipped = self.malformed, self.skipped
            readline = f.readline
            limit = LINE_LIMIT + 1
            parse: Parser | None = None
            sample: list[tuple[int, str]] = []  # lines read before the format is known
            # One flat loop (no generator per line): it is the hot path of `replay`.
            try:
                while data := readline(limit):
                    lineno += 1
                    if len(data) == limit and data[-1] != 10:
                        while (chunk := readline(limit)) and chunk[-1] != 10:
                            pass  # drain the rest of the long line, a bounded chunk at a time
                        skipped["line-too-long"] = skipped.get("line-too-long", 0) + 1
                        continue
                    try:
                        line = data.decode().rstrip()
                    except UnicodeDecodeError:
                        line = data.decode("utf-8", "backslashreplace").rstrip()
                        bad["bad-utf8"] = bad.get("bad-utf8", 0) + 1
                    if not line:
                        skipped["empty"] = skipped.get("empty", 0) + 1
                        continue
                    if parse is None:
                        sample.append((lineno, line))
                        if len(sample) < SAMPLE_LINES:
                            continue
                        parse = self._start(p, sample)
                        self.lines_read = base + lineno
                        yield from self._emit(parse, src, sample)
                        continue
                    r = parse(line, src, lineno, bad)
                    if r.__class__ is str:
                        skipped[r] = skipped.get(r, 0) + 1  # type: ignore[index]
                    else:
                        self.lines_read = base + lineno  # exact whenever the caller can look
                        self.records += 1
                        yield r  # type: ignore[misc]
            except (EOFError, zlib.error, gzip.BadGzipFile):  # truncated or corrupt .gz
                skipped["bad-gzip"] = skipped.get("bad-gzip", 0) + 1
            if parse is None and sample:  # fewer than SAMPLE_LINES lines in the file
                parse = self._start(p, sample)
                self.lines_read = base + lineno
                yield from self._emit(parse, src, sample)
        finally:
            self.lines_read = base + lineno
            self._tell = None
            if p != "-":
                self._done_bytes += size
                raw.close()

    def _start(self, p: str | Path, sample: list[tuple[int, str]]) -> Parser:
        name, parse = self._choose(p, sample)
        self.format_name = name
        if name not in self.formats:
            self.formats.append(name)
        return parse

    def _emit(self, parse: Parser, src: str,
              lines: list[tuple[int, str]]) -> Iterator[RequestRecord]:
        bad, skipped = self.malformed, self.skipped
        for lineno, line in lines:
            r = parse(line, src, lineno, bad)
            if r.__class__ is str:
                skipped[r] = skipped.get(r, 0) + 1  # type: ignore[index]
            else:
                self.records += 1
                yield r  # type: ignore[misc]

    def _choose(self, p: str | Path, sample: list[tuple[int, str]]) -> tuple[str, Parser]:
        """The candidate parsing most of `sample` (non-empty), earliest on a tie."""
        if self._forced:
            cands = dict([self._forced])
        else:
            cands = ({"log_format": self._custom} if self._custom else {}) | PARSERS
        scratch: dict[str, int] = {}  # detection must not count malformed requests twice
        best: tuple[str, Parser] | None = None
        best_n = 0
        for name, parse in cands.items():
            n = sum(parse(line, "", 0, scratch).__class__ is not str for _, line in sample)
            if n > best_n:
                best, best_n = (name, parse), n
                if n == len(sample):
                    break
        if best is not None:
            return best
        first = sample[0][1]
        why = next(iter(cands.values()))(first, "", 0, scratch)
        if self._forced:
            raise InputError(f"{p}: none of the first {len(sample)} lines is in format "
                             f"{self._forced[0]} (line {sample[0][0]}: {why}: {first[:60]!r})")
        raise InputError(f"{p}: unknown log format: none of the first {len(sample)} lines parses "
                         f"as {', '.join(cands)} (line {sample[0][0]}: {first[:60]!r})")
