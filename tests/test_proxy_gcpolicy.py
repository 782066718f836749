"""GenerationalFreeze: old-generation collections without scanning the frozen state, a full
pass every `max_freezes` freezes or once quiet after a freeze, that reclaims cycles which
died frozen, and garbage left below the limit collected once quiet."""

from __future__ import annotations

import gc
import weakref

import pytest

from node.proxy.gcpolicy import NO_AUTOMATIC, GenerationalFreeze


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def cycle() -> tuple[Node, weakref.ref]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return a, weakref.ref(b)


def to_oldest(*objs) -> None:
    """Survivors of a young collection move to the oldest generation."""
    gc.collect(1)
    assert all(gc.is_tracked(o) for o in objs)


@pytest.fixture
def policy():
    before = gc.get_threshold()
    p = GenerationalFreeze(limit=50, freeze_at=20, max_freezes=3)
    p.start()
    try:
        yield p
    finally:
        p.stop()
        assert gc.get_threshold() == before
        assert gc.get_freeze_count() == 0


def test_start_freezes_and_takes_the_oldest_generation_over(policy):
    assert gc.get_freeze_count() > 1000          # this interpreter's modules, pytest, ...
    assert gc.get_threshold()[2] == NO_AUTOMATIC
    policy.start()                               # idempotent
    assert gc.get_threshold()[2] == NO_AUTOMATIC


def test_tick_collects_garbage_and_freezes_survivors(policy):
    frozen = gc.get_freeze_count()
    keep = [[i] for i in range(100)]             # live state, as the engine's
    garbage = [cycle() for _ in range(100)]      # cycles, as mitmproxy's flows
    refs = [r for _, r in garbage]
    to_oldest(keep)
    del garbage
    policy.tick()
    assert all(r() is None for r in refs)        # the cycles were collected ...
    assert gc.get_freeze_count() >= frozen + 100  # ... and the survivors frozen
    assert policy.freezes == 1
    assert len(gc.get_objects(2)) < policy.limit
    policy.tick()                                # below the limit: nothing to do
    assert policy.freezes == 1


def test_few_survivors_stay_unfrozen(policy):
    policy.freeze_at = 10_000                    # more than pytest leaves behind meanwhile
    frozen = gc.get_freeze_count()
    garbage = [cycle() for _ in range(100)]
    to_oldest(garbage)
    del garbage
    policy.tick()
    assert policy.freezes == 0 and gc.get_freeze_count() == frozen


def test_full_pass_reclaims_cycles_that_died_frozen(policy):
    live, ref = cycle()                          # e.g. a connection open at a freeze
    batches = []
    for _ in range(policy.max_freezes):
        batches.append([[i] for i in range(100)])
        to_oldest(batches[-1])
        policy.tick()
    assert policy.freezes == policy.max_freezes and gc.is_tracked(live)
    del live
    gc.collect()
    assert ref() is not None                     # frozen: the collector never sees it
    batches.append([[i] for i in range(100)])
    to_oldest(batches[-1])
    policy.tick()                                # the full pass
    assert ref() is None
    assert policy.full_passes == 1 and policy.freezes == 1


def test_quiet_after_a_freeze_reclaims_what_the_burst_froze(policy):
    live, ref = cycle()                          # a connection in flight during a burst
    burst = [[i] for i in range(100)]
    to_oldest(burst, live)
    policy.tick()                                # the burst's freeze catches it
    assert policy.freezes == 1
    del live, burst
    gc.collect()
    assert ref() is not None                     # it died frozen
    for _ in range(policy.settle - 1):
        policy.tick()                            # quiet, but not for long enough yet
    assert ref() is not None and policy.full_passes == 0
    policy.tick()
    assert ref() is None and policy.full_passes == 1
    for _ in range(policy.settle * 2):
        policy.tick()                            # quiet without a new freeze: no more passes
    assert policy.full_passes == 1


def test_quiet_collects_garbage_left_below_the_limit(policy):
    policy.limit = 10_000                        # the burst's garbage stays below it
    garbage = [cycle() for _ in range(policy.limit // 20)]   # >= limit / 10 objects
    refs = [r for _, r in garbage]
    to_oldest(garbage)
    del garbage
    for _ in range(policy.settle - 1):
        policy.tick()
    assert all(r() is not None for r in refs)    # below the limit: left for now ...
    policy.tick()
    assert all(r() is None for r in refs)        # ... collected once the node is quiet
    assert policy.freezes == 0 and policy.full_passes == 0
