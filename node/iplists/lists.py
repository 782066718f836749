"""The node's in-memory view of the IP lists: verdicts on the hot path, store behind it."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import NamedTuple

from node.iplists.matcher import (
    IPKey,
    NetKey,
    NetMatcher,
    format_network,
    parse_ip,
    parse_network,
)
from node.iplists.store import LISTS, Entry, IPListStore, check_list

logger = logging.getLogger(__name__)

# verdict precedence: an allowlisted address is never blocked, an exception is never blocked
# by detection, deny beats gray.
PRECEDENCE: tuple[str, ...] = ("allow", "exception", "deny", "gray")
assert set(PRECEDENCE) == set(LISTS)


class ListVerdict(NamedTuple):
    list: str | None          # allow | exception | deny | gray | None (not listed)
    entry: Entry | None = None

    @property
    def listed(self) -> bool:
        return self.list is not None


NOT_LISTED = ListVerdict(None, None)


class SessionDenials:
    """Denied session keys with an expiry each; bounded (oldest insert evicted first)."""

    __slots__ = ("_d", "cap", "evictions")

    def __init__(self, cap: int = 100_000) -> None:
        self._d: OrderedDict[str, float | None] = OrderedDict()
        self.cap = cap
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._d)

    def deny(self, session: str, expires: float | None) -> None:
        self._d.pop(session, None)
        self._d[session] = expires
        while len(self._d) > self.cap:
            self._d.popitem(last=False)
            self.evictions += 1

    def lift(self, session: str) -> bool:
        return self._d.pop(session, 0) != 0

    def denied(self, session: str, now: float) -> bool:
        exp = self._d.get(session, 0)
        if exp == 0:
            return False
        if exp is not None and exp <= now:
            del self._d[session]
            return False
        return True

    def sweep(self, now: float) -> int:
        dead = [s for s, exp in self._d.items() if exp is not None and exp <= now]
        for s in dead:
            del self._d[s]
        return len(dead)


_RANK = {name: i for i, name in enumerate(PRECEDENCE)}
_SLOTS = 2 * len(PRECEDENCE)  # per network: (stored, configured) entry for each list


class IPLists:
    """All lists in one network index, kept in step with the SQLite store.

    Each indexed network holds a slot per (list, origin): `slot[2*rank + configured]`, rank
    in PRECEDENCE order. `verdict()` is the hot path: one dict probe for the exact address
    plus one per prefix length present in any list — never a scan over entries. Expired
    entries are skipped at lookup (an entry stops acting the second it expires, whatever
    the sweep interval) and deleted from the store by `sweep()`.
    """

    def __init__(self, store: IPListStore | None = None, *, clock: Callable[[], float] = time.time,
                 session_cap: int = 100_000) -> None:
        self.store = store
        self.clock = clock
        # slots hold ready-made verdicts so a hit allocates nothing
        self._index: NetMatcher[list[ListVerdict | None]] = NetMatcher()
        self._counts = dict.fromkeys(LISTS, 0)
        self.sessions = SessionDenials(session_cap)
        self._data_version = -1
        self._history_id = 0
        # The last history row the control-plane sync has spooled: rows after it are kept
        # by age-based pruning (None: no sync, nothing to hold).
        self.history_hold: int | None = None
        self.on_change: list[Callable[[], None]] = []
        if store is not None:
            self.load()

    # -- hot path ---------------------------------------------------------------------------
    def verdict(self, ip: str | IPKey | None, now: float | None = None) -> ListVerdict:
        key = parse_ip(ip) if isinstance(ip, str) else ip
        if key is None or not self._index:
            return NOT_LISTED
        slots = self._index.all(key)
        if not slots:
            return NOT_LISTED
        now = self.clock() if now is None else now
        best: ListVerdict = NOT_LISTED
        best_i = _SLOTS
        for slot in slots:  # most specific network first
            for i in range(best_i):
                v = slot[i]
                if v is not None and (v.entry.expires is None or v.entry.expires > now):
                    best, best_i = v, i
                    break
            if best_i < 2:  # allow: nothing outranks it
                break
        return best

    def session_denied(self, session: str | None, now: float | None = None) -> bool:
        if not session or not self.sessions:
            return False
        return self.sessions.denied(session, self.clock() if now is None else now)

    # -- index ------------------------------------------------------------------------------
    def _put(self, list_name: str, key: NetKey, entry: Entry | None, configured: bool = False
             ) -> None:
        i = 2 * _RANK[list_name] + configured
        slot = self._index.peek(key)
        if slot is None:
            if entry is None:
                return
            slot = [None] * _SLOTS
            self._index.set(key, slot)
        if (slot[i] is None) != (entry is None):
            self._counts[list_name] += 1 if entry is not None else -1
        slot[i] = None if entry is None else ListVerdict(list_name, entry)
        if all(v is None for v in slot):
            self._index.discard(key)

    def _get(self, list_name: str, key: NetKey, configured: bool = False) -> Entry | None:
        slot = self._index.peek(key)
        v = None if slot is None else slot[2 * _RANK[list_name] + configured]
        return None if v is None else v.entry

    # -- changes ----------------------------------------------------------------------------
    def add(self, list_name: str, network: str, *, reason: str = "",
            duration: float | None = None, who: str = "", source: str = "manual",
            detectors: Iterable[str] = ()) -> Entry:
        """Add or replace an entry (store first, so the change is durable before it acts)."""
        if self.store is not None:
            entry = self.store.add(list_name, network, reason=reason, duration=duration,
                                   who=who, source=source, detectors=detectors, now=self.clock())
        else:
            check_list(list_name)
            if duration is not None and not duration > 0:
                raise ValueError("duration must be positive (or None for forever)")
            now = self.clock()
            entry = Entry(list_name, format_network(parse_network(network)), reason, source,
                          tuple(detectors), now, None if duration is None else now + duration,
                          who)
        self._put(list_name, entry.key, entry)
        self._changed()
        return entry

    def remove(self, list_name: str, network: str, *, who: str = "") -> Entry | None:
        check_list(list_name)
        key = parse_network(network)
        if self.store is not None:
            old = self.store.remove(list_name, network, who=who, now=self.clock())
        else:
            old = self._get(list_name, key)
        self._put(list_name, key, None)
        self._changed()
        return old

    def entry(self, list_name: str, network: str) -> Entry | None:
        """The live stored entry for exactly this network in this list, if any."""
        e = self._get(check_list(list_name), parse_network(network))
        return None if e is None or e.expired(self.clock()) else e

    def deny_session(self, session: str, duration: float | None) -> None:
        self.sessions.deny(session, None if duration is None else self.clock() + duration)

    def set_config_entries(self, list_name: str, networks: Iterable[str], *,
                           reason: str = "configuration") -> None:
        """Replace the entries a list gets from the configuration file (e.g. exceptions).

        They act like stored ones but live in memory only: the file is their source of truth.
        """
        check_list(list_name)
        i = 2 * _RANK[list_name] + 1
        for e in [s[i].entry for s in self._index.values() if s[i] is not None]:
            self._put(list_name, e.key, None, configured=True)
        now = self.clock()
        for net in networks:
            key = parse_network(str(net))
            self._put(list_name, key, Entry(list_name, format_network(key), reason, "config",
                                            (), now, None, "config"), configured=True)
        self._changed()

    # -- store sync -------------------------------------------------------------------------
    def load(self) -> None:
        """(Re)build the stored entries from the store, skipping what has already expired."""
        assert self.store is not None
        self._data_version = self.store.data_version()
        self._history_id = self.store.last_history_id()
        for slot in list(self._index.values()):
            for name in LISTS:
                v = slot[2 * _RANK[name]]
                if v is not None:
                    self._put(name, v.entry.key, None)
        for e in self.store.list_entries(now=self.clock()):
            self._put(e.list, e.key, e)
        self._changed()

    def refresh(self) -> int:
        """Apply changes other processes (the ip-list command) committed; returns how many.

        Called every second by the node. `PRAGMA data_version` is a counter SQLite keeps per
        connection that moves only when another connection commits, so the idle case costs
        one tiny query.
        """
        if self.store is None:
            return 0
        v = self.store.data_version()
        if v == self._data_version:
            return 0
        self._data_version = v
        self._history_id, changed = self.store.changes_since(self._history_id)
        for list_name, network in changed:
            if list_name in _RANK:
                self._put(list_name, parse_network(network), self.store.get(list_name, network))
        if changed:
            self._changed()
        return len(changed)

    def sweep(self) -> int:
        """Drop expired entries and session denials; expired stored ones are logged."""
        now = self.clock()
        n = self.sessions.sweep(now)
        gone = self.store.expire(now) if self.store is not None else []
        for e in gone:
            cur = self._get(e.list, e.key)
            if cur is not None and cur.expired(now):
                self._put(e.list, e.key, None)
        if self.store is None:
            for slot in list(self._index.values()):
                for name in LISTS:
                    v = slot[2 * _RANK[name]]
                    if v is not None and v.entry.expired(now):
                        self._put(name, v.entry.key, None)
                        gone.append(v.entry)
        if gone:
            self._changed()
        return n + len(gone)

    def prune_history(self) -> tuple[int, int]:
        """Bound the stored history (`IPListStore.prune_history`): (rows by age, by cap)."""
        if self.store is None:
            return 0, 0
        return self.store.prune_history(hold=self.history_hold, now=self.clock())

    def counts(self) -> dict[str, int]:
        """Entries per list (stored and configured; expired-but-unswept included)."""
        return dict(self._counts)

    def _changed(self) -> None:
        for cb in self.on_change:
            try:
                cb()
            except Exception:  # a metrics callback must never break list changes
                logger.exception("ip-list change callback failed")
