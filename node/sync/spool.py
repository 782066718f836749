"""A disk spool of batches waiting for the control plane: append-only, bounded, crash-safe.

Layout of the spool directory:
  seg-000000001.log  one batch per line (JSON), appended (and fsync'ed per batch if durable)
  acks.log           ids of batches the control plane acknowledged, one per line
  cursor             the IP-list version this node has applied (see client.py)

A batch is written before it is first sent, so a SIGKILL loses nothing that was spooled (the
page cache survives the process); a durable spool also fsyncs each batch, so a power loss
loses nothing either. A spool that is not durable leaves syncing to its owner
(`unsynced_fds`, fsync'ed on another thread now and then): a power loss may lose its last
seconds, never what came before. A torn last line (killed mid-write) is ignored on the next
start. Acks are not fsync'ed: an ack lost in a crash only means the batch is sent again, and
the control plane drops a batch id it has already stored, so every event is still stored
exactly once.

When the spool outgrows `max_bytes` its oldest segment goes, whatever it holds: the client
keeps one spool per priority class (node/sync/client.py), so only a class's own backlog is
ever shed to make room for it. Shed request records and other lost events are counted apart.

Not thread-safe: each spool is used from one thread at a time.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("palisade.sync")

_SEG = "seg-{:09d}.log"


@dataclass(slots=True)
class _Entry:
    seg: int
    offset: int
    length: int
    batch_id: str
    events: int
    records: int    # of which request records (shed by design, counted apart)


def _records(items: list[Any]) -> int:
    return sum(1 for i in items if isinstance(i, dict) and i.get("kind") == "record")


class Spool:
    def __init__(self, directory: str | Path, *, max_bytes: int = 128 * 1024 * 1024,
                 segment_bytes: int = 4 * 1024 * 1024, durable: bool = True) -> None:
        self.dir = Path(directory)
        self.max_bytes = max_bytes
        self.durable = durable
        # At least four segments fit, so dropping the oldest frees a fraction, not all.
        self.segment_bytes = max(4096, min(segment_bytes, max_bytes // 4))
        self._pending: deque[_Entry] = deque()
        self._acked_in_seg: dict[int, int] = {}   # segment → acked batches in it
        self._batches_in_seg: dict[int, int] = {}
        self._seg_sizes: dict[int, int] = {}
        self._current = 0
        self._fh: Any = None
        self.dropped_events = 0    # events lost that are not request records
        self.shed_records = 0      # request records lost to make room
        self._unsynced: list[int] = []   # not durable: dup'ed fds of rotated segments
        self._dirty = False              # not durable: the current segment has unsynced data

    # -- state ----------------------------------------------------------------------------------
    @property
    def pending_batches(self) -> int:
        return len(self._pending)

    @property
    def pending_events(self) -> int:
        return sum(e.events for e in self._pending)

    @property
    def size_bytes(self) -> int:
        return sum(self._seg_sizes.values())

    def _path(self, seg: int) -> Path:
        return self.dir / _SEG.format(seg)

    # -- open: recover after a restart or a crash -----------------------------------------------
    def open(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        acked: set[str] = set()
        acks = self.dir / "acks.log"
        if acks.exists():
            acked = {line.strip() for line in acks.read_text("utf-8", "replace").splitlines()}
        segs = sorted(int(p.name[4:13]) for p in self.dir.glob("seg-*.log")
                      if p.name[4:13].isdigit())
        keep_acks: list[str] = []
        for seg in segs:
            entries = self._scan(seg)
            done = [e.batch_id for e in entries if e.batch_id in acked]
            if len(done) == len(entries):
                self._remove_segment(seg)
                continue
            self._seg_sizes[seg] = self._path(seg).stat().st_size
            self._batches_in_seg[seg] = len(entries)
            self._acked_in_seg[seg] = len(done)
            self._pending.extend(e for e in entries if e.batch_id not in acked)
            keep_acks += done
        # Keep only the acks that still matter, then append to a fresh segment (never after a
        # possibly torn tail).
        tmp = self.dir / "acks.log.tmp"
        tmp.write_text("".join(f"{b}\n" for b in keep_acks), "utf-8")
        os.replace(tmp, acks)
        self._current = (segs[-1] if segs else 0) + 1
        self._open_current()
        if self._pending:
            log.info("sync spool: %d batches (%d events) from a previous run to deliver",
                     len(self._pending), self.pending_events)

    def _scan(self, seg: int) -> list[_Entry]:
        out = []
        with open(self._path(seg), "rb") as f:
            offset = 0
            for line in f:
                if not line.endswith(b"\n"):
                    log.warning("sync spool: ignoring a torn last batch in %s", f.name)
                    break
                try:
                    head = json.loads(line)
                    out.append(_Entry(seg, offset, len(line), str(head["batch_id"]),
                                      len(head["items"]), _records(head["items"])))
                except (ValueError, KeyError, TypeError):
                    log.warning("sync spool: skipping an unreadable batch in %s", f.name)
                offset += len(line)
        return out

    def _open_current(self) -> None:
        self._fh = open(self._path(self._current), "ab")  # kept open: appended per batch
        self._seg_sizes[self._current] = self._fh.tell()
        self._batches_in_seg.setdefault(self._current, 0)
        self._acked_in_seg.setdefault(self._current, 0)

    def close(self) -> None:
        for fd in self.unsynced_fds():
            with contextlib.suppress(OSError):
                os.fsync(fd)
            os.close(fd)
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def unsynced_fds(self) -> list[int]:
        """Not durable: descriptors (dup'ed, the caller closes them) of the segments written
        since the last call, to fsync off this thread; a segment deleted meanwhile is fine."""
        fds, self._unsynced = self._unsynced, []
        if self._dirty and self._fh is not None:
            fds.append(os.dup(self._fh.fileno()))
            self._dirty = False
        return fds

    # -- write ----------------------------------------------------------------------------------
    def append(self, batch: dict[str, Any], line: bytes | None = None) -> None:
        """Write one batch (and fsync it if durable) and queue it for sending."""
        if line is None:
            line = json.dumps(batch, separators=(",", ":")).encode()
        line += b"\n"
        if self._seg_sizes[self._current] and \
                self._seg_sizes[self._current] + len(line) > self.segment_bytes:
            self._rotate()
        offset = self._seg_sizes[self._current]
        self._fh.write(line)
        self._fh.flush()
        if self.durable:
            os.fsync(self._fh.fileno())
        else:
            self._dirty = True
        self._seg_sizes[self._current] += len(line)
        self._batches_in_seg[self._current] += 1
        self._pending.append(_Entry(self._current, offset, len(line), batch["batch_id"],
                                    len(batch["items"]), _records(batch["items"])))
        self._enforce_bound()

    def _rotate(self) -> None:
        if self._dirty and self._fh is not None:
            self._unsynced.append(os.dup(self._fh.fileno()))
            self._dirty = False
        self._fh.close()
        old = self._current
        self._current += 1
        self._open_current()
        if self._acked_in_seg.get(old) == self._batches_in_seg.get(old):
            self._remove_segment(old)

    def _enforce_bound(self) -> None:
        while self.size_bytes > self.max_bytes:
            oldest = min(self._seg_sizes)
            if oldest == self._current:
                self._rotate()
                continue
            lost = [e for e in self._pending if e.seg == oldest]
            if lost:
                self._lose(lost)
                self._pending = deque(e for e in self._pending if e.seg != oldest)
                log.warning("sync spool %s full (%d bytes): dropped %d oldest events",
                            self.dir.name, self.max_bytes, sum(e.events for e in lost))
            self._remove_segment(oldest)

    def _lose(self, lost: list[_Entry]) -> None:
        for e in lost:
            self.shed_records += e.records
            self.dropped_events += e.events - e.records

    def _remove_segment(self, seg: int) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(seg).unlink()
        for d in (self._seg_sizes, self._batches_in_seg, self._acked_in_seg):
            d.pop(seg, None)

    # -- read and acknowledge -------------------------------------------------------------------
    def peek(self) -> tuple[str, bytes, int] | None:
        """The oldest unacknowledged batch: (batch id, its JSON line, event count)."""
        while self._pending:
            e = self._pending[0]
            try:
                with open(self._path(e.seg), "rb") as f:
                    f.seek(e.offset)
                    line = f.read(e.length)
            except FileNotFoundError:
                line = b""
            if len(line) == e.length:
                return e.batch_id, line.rstrip(b"\n"), e.events
            log.warning("sync spool: batch %s vanished from disk; skipping it", e.batch_id)
            self._lose([e])
            self._pending.popleft()
        return None

    def ack(self, batch_id: str) -> None:
        for e in self._pending:  # almost always the first
            if e.batch_id == batch_id:
                break
        else:
            return  # dropped meanwhile (spool full)
        self._pending.remove(e)
        with open(self.dir / "acks.log", "a", encoding="utf-8") as f:
            f.write(batch_id + "\n")
        if e.seg in self._acked_in_seg:
            self._acked_in_seg[e.seg] += 1
            if e.seg != self._current and \
                    self._acked_in_seg[e.seg] == self._batches_in_seg[e.seg]:
                self._remove_segment(e.seg)
        if not self._pending and self._seg_sizes.get(self._current, 0) > self.segment_bytes // 2:
            # Everything delivered: start the next segment so the acks file can be emptied.
            self._rotate()
            (self.dir / "acks.log").write_text("", "utf-8")

    # -- the pull cursor ------------------------------------------------------------------------
    def load_cursor(self) -> int:
        try:
            return max(0, int((self.dir / "cursor").read_text("utf-8").strip() or 0))
        except (FileNotFoundError, ValueError):
            return 0

    def save_cursor(self, version: int) -> None:
        tmp = self.dir / "cursor.tmp"
        tmp.write_text(str(version), "utf-8")
        os.replace(tmp, self.dir / "cursor")
