"""Business-flow state shared by the flow detectors: per-actor counts of each endpoint role
and its outcomes, and the bounded per-account table.

- `flows` on an actor: one small list, allocated on the actor's first request to a role
  endpoint, holding per role (engine.roles.ROLES) its requests and its bad outcomes
  (failure, decline, lockout). Sign-ups per source, codes sent and never verified, declined
  card checks are read from it in O(1).
- `Accounts`: per (application, username), decayed failures and the addresses they came
  from, the addresses that logged in successfully, lockouts. One account attacked from many
  addresses, each sending one or two guesses, is visible here and nowhere else; the owner's
  own addresses (those with a success) are never named as attackers. Capped LRU (50,000
  accounts, 1 day of inactivity), each entry listing at most 64 attacking addresses.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

from node.engine.auth import _Lru
from node.engine.roles import ROLES
from node.engine.sketch import hll_add, hll_count, hll_new

N_ROLES = len(ROLES)
ACCOUNT_CAP = 50_000
ACCOUNT_TTL = 86400.0
ACCOUNT_TAU = 6 * 3600.0     # s: an account's failure count halves in about four hours
ACCOUNT_IPS = 64             # attacking addresses named per account
OWNER_IPS = 4                # addresses remembered with a success on the account


def flow_add(actor: Any, ri: int, bad: bool) -> None:
    f = actor.flows
    if f is None:
        f = actor.flows = [0] * (2 * N_ROLES)
    f[ri] += 1
    if bad:
        f[N_ROLES + ri] += 1


def flow_count(actor: Any, ri: int) -> int:
    f = actor.flows
    return f[ri] if f is not None else 0


def flow_bad(actor: Any, ri: int) -> int:
    f = actor.flows
    return f[N_ROLES + ri] if f is not None else 0


class Account:
    __slots__ = ("last_ts", "fails", "locks", "codes", "ip_hll", "ips", "owners", "oks")

    def __init__(self, ts: float) -> None:
        self.last_ts = ts
        self.fails = 0.0                                   # decayed
        self.locks = 0.0                                   # decayed lockout answers
        self.codes = 0.0                                   # decayed failed one-time codes
        self.oks = 0
        self.ip_hll: bytearray | None = None               # distinct failing addresses
        self.ips: OrderedDict[str, None] | None = None     # the most recent of them
        self.owners: tuple[str, ...] = ()                  # addresses that logged in

    def decay(self, ts: float) -> None:
        gap = ts - self.last_ts
        if gap > 0:
            f = math.exp(-gap / ACCOUNT_TAU)
            self.fails *= f
            self.locks *= f
            self.codes *= f
            self.last_ts = ts

    def fail(self, ip: str, locked: bool) -> None:
        self.fails += 1.0
        if locked:
            self.locks += 1.0
        if ip in self.owners:
            return                    # the owner's typos: not an attacker's address
        if self.ip_hll is None:
            self.ip_hll = hll_new()
            self.ips = OrderedDict()
        hll_add(self.ip_hll, hash(ip))
        ips = self.ips
        if ip in ips:
            ips.move_to_end(ip)
        else:
            ips[ip] = None
            if len(ips) > ACCOUNT_IPS:
                ips.popitem(last=False)

    def code_failed(self, ip: str) -> None:
        """A wrong one-time code in a session that logged in to this account: the password
        was right, the second factor is being guessed (from wherever)."""
        self.codes += 1.0
        self.fail(ip, False)
        self.fails -= 1.0          # a code is not a password failure

    def success(self, ip: str) -> None:
        self.oks += 1
        if ip not in self.owners:
            self.owners = (*self.owners[-(OWNER_IPS - 1):], ip)
        if self.ips is not None:
            self.ips.pop(ip, None)

    @property
    def distinct_ips(self) -> int:
        return round(hll_count(self.ip_hll)) if self.ip_hll is not None else 0

    def attackers(self) -> tuple[str, ...]:
        return tuple(a for a in self.ips if a not in self.owners) if self.ips else ()


class Accounts(_Lru):
    """Accounts by (application index, username hash): a capped LRU with an inactivity TTL."""

    def touch(self, key: Any, ts: float) -> Account:
        a = self._touch(key, ts, Account)
        a.decay(ts)
        return a
