"""Small bounded sketches for per-key distinct counts (SPEC §5: a few hundred bytes a key)."""

from __future__ import annotations

import math

_M = 128                     # registers: ~9% standard error; linear counting exact-ish < 300
_ALPHA = 0.7213 / (1 + 1.079 / _M) * _M * _M   # HyperLogLog bias constant
_MASK = (1 << 57) - 1


def hll_new() -> bytearray:
    return bytearray(_M)


def hll_add(regs: bytearray, h: int) -> None:
    """Add a 64-bit-ish hash (Python's `hash()` of a str is cached on the object)."""
    idx = h & 127
    w = (h >> 7) & _MASK
    rank = (w & -w).bit_length() if w else 58   # position of the lowest set bit
    if regs[idx] < rank:
        regs[idx] = rank


_POW = [2.0 ** -r for r in range(65)]


def lazy_hll_add(regs: bytearray | None, first: int | None, h: int
                 ) -> tuple[bytearray | None, int | None]:
    """Distinct values in bounded memory that costs nothing until a second value appears:
    remember the first, allocate the sketch on the second distinct one.
    Use as `regs, first = lazy_hll_add(regs, first, h)`."""
    if regs is None:
        if first is None or first == h:
            return None, h
        regs = hll_new()
        hll_add(regs, first)
    hll_add(regs, h)
    return regs, first


def hll_pos(h: int) -> tuple[int, int]:
    """Register index and rank of a hash: computed once, applied to several sketches."""
    w = (h >> 7) & _MASK
    return h & 127, (w & -w).bit_length() if w else 58


def hll_count(regs: bytearray | None) -> float:
    if regs is None:
        return 0.0
    zeros = regs.count(0)
    if zeros == _M:
        return 0.0
    if zeros > 0.3 * _M:                       # linear counting range: no sum needed
        return _M * math.log(_M / zeros)
    est = _ALPHA / sum(map(_POW.__getitem__, regs))
    if est <= 2.5 * _M and zeros:
        return _M * math.log(_M / zeros)       # linear counting: exact-ish for small sets
    return est


# -- linear counting: distinct requests of one actor, where the exact share matters ------------
# 1024 bits in the 128 bytes a HyperLogLog would take: a standard error of about 2.5 % up to
# half full (~700 distinct values), against 6-9 % for 128 registers in that range. The
# uniqueness share of a walk (1.0) and of a person (lower) then stay apart at any hash seed.
LC_BITS = 1024
LC_ROTATE = 0.5              # fill at which a bitmap's count is banked and the bitmap reset


def lc_new() -> bytearray:
    return bytearray(LC_BITS // 8)


def lc_count(bits: bytearray) -> tuple[float, float]:
    """Distinct values set in a bitmap (linear counting: m ln(m / zeros)), and its fill."""
    ones = int.from_bytes(bits).bit_count()
    zeros = max(LC_BITS - ones, 1)              # saturated: the estimate's ceiling
    return LC_BITS * math.log(LC_BITS / zeros), ones / LC_BITS
