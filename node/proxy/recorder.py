"""Request records written as JSON lines (what `palisade replay` reads), size-rotated."""

from __future__ import annotations

import logging
import os

from node.record import RequestRecord

logger = logging.getLogger(__name__)


class RecordWriter:
    """Buffered append-only writer; `flush()` runs every second from the node's housekeeping.

    Rotation keeps disk use bounded: past `max_bytes` the file becomes `<name>.1`
    (replacing the previous one) and a fresh file starts.
    """

    def __init__(self, path: str, *, max_bytes: int = 256 * 1024 * 1024) -> None:
        self.path = path
        self.max_bytes = max_bytes
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._f = open(path, "a", encoding="utf-8", buffering=64 * 1024)  # noqa: SIM115
        self._size = self._f.tell()
        self.errors = 0

    def write(self, rec: RequestRecord) -> None:
        line = rec.to_json() + "\n"
        try:
            self._f.write(line)
        except OSError:
            self.errors += 1  # a full disk must not take the proxy down
            return
        self._size += len(line)
        if self._size > self.max_bytes:
            self._rotate()

    def flush(self) -> None:
        try:
            self._f.flush()
        except OSError as e:
            self.errors += 1
            logger.warning("cannot write request records to %s: %s", self.path, e)

    def _rotate(self) -> None:
        try:
            self._f.close()
            os.replace(self.path, self.path + ".1")
        except OSError as e:
            logger.warning("cannot rotate %s: %s", self.path, e)
        self._f = open(self.path, "a", encoding="utf-8", buffering=64 * 1024)  # noqa: SIM115
        self._size = 0

    def close(self) -> None:
        try:
            self._f.close()
        except OSError:
            pass
