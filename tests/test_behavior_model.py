"""The learned behaviour model: it learns the population's sequences, scores a product walk
far from people, unlearns flagged sessions, and survives a restart through the baselines."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from node.engine import Baselines, Engine
from node.engine.behavior import COLS, START, TRANS_CELLS, BehaviorModel, bump, new_seq
from node.sim import Scenario, simulate, to_records
from tests.detector_kit import T0, fired, fires, rec


@pytest.fixture(scope="module")
def learned():
    """An engine that has seen an hour of people (humans only: nothing to flag)."""
    eng = Engine()
    for r in to_records(simulate(Scenario.humans_only(scale=0.5, seed=11)), seed=11):
        eng.process(r)
    eng.finish()
    return eng


def _walk(model: BehaviorModel, n: int = 200, seed: int = 1) -> bytearray:
    """A stealth scraper's session: product after product, 3-12 s apart."""
    rng = random.Random(seed)
    st = model.vocab[("default", "GET", "/api/products/{id}")]
    seq = new_seq()
    bump(seq, START * COLS + st)
    from node.engine.behavior import gap_bin
    for _ in range(n):
        bump(seq, st * COLS + st)
        bump(seq, TRANS_CELLS + gap_bin(rng.uniform(3, 12)))
    return seq


def test_model_learns_states_and_normal_scores(learned):
    m = learned.baselines.behavior
    assert m.ready and m.vocab is not None and 8 <= len(m.vocab) <= 15
    assert ("default", "GET", "/api/products/{id}") in m.vocab
    assert m.score_pct is not None
    p50, p95, p99 = m.score_pct
    assert 0 < p50 <= p95 <= p99 < 2.0


def test_product_walk_scores_beyond_people(learned):
    m = learned.baselines.behavior
    score, nll, n = m.score(_walk(m))
    assert n == 201
    assert score > m.score_pct[2]
    # Its average log-likelihood is *better* than a person's: every step is common, which is
    # why the score is a divergence and not the plain likelihood.
    assert nll < 1.2


def test_flagged_session_is_unlearned():
    m = BehaviorModel()
    m.vocab = {("a", "GET", f"/{i}"): i for i in range(15)}
    seq = new_seq()
    for _ in range(10):
        cell = 3 * COLS + 4
        m.learn(cell, 2)
        bump(seq, cell)
        bump(seq, TRANS_CELLS + 2)
    assert m.trans[3 * COLS + 4] == 10
    m.unlearn(seq)
    assert m.trans[3 * COLS + 4] == 0 and m.gaps[2] == 0


def test_bump_saturates_by_halving():
    seq = new_seq()
    for _ in range(300):
        bump(seq, 5)
    bump(seq, 6)
    assert 128 <= seq[5] <= 255 and seq[6] == 1


def test_model_survives_a_restart(learned, tmp_path):
    path = str(tmp_path / "baselines.npz")
    learned.baselines.save(path)
    loaded = Baselines.load(path)
    a, b = learned.baselines.behavior, loaded.behavior
    assert b.ready and b.vocab == a.vocab and b.learned == a.learned
    assert b.score_pct == pytest.approx(a.score_pct, rel=0.15)   # live lags a few samples
    seq = _walk(a)
    assert b.score(seq)[0] == pytest.approx(a.score(seq)[0], rel=0.05)   # refreshed on load
    assert loaded.sessions_auth.n == learned.baselines.sessions_auth.n
    # A restarted engine judges at once: no second warm-up.
    eng = Engine(baselines=loaded)
    assert eng.ctx.warmed_up and eng.ctx.behavior.ready


def test_version_1_baselines_still_load(learned, tmp_path):
    path = str(tmp_path / "v1.npz")
    learned.baselines.save(path)
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files if not k.startswith(("behavior_", "sessions_auth"))}
        meta = json.loads(bytes(z["meta"]).decode())
    meta["version"] = 1
    meta["sessions"] = meta["sessions"][:2]
    del meta["behavior"]
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez_compressed(path, **arrays)
    b = Baselines.load(path)
    assert b.seen == learned.baselines.seen and not b.behavior.ready


def test_detector_judges_only_a_learned_model():
    eng = Engine()
    records = [rec(i, f"/api/products/{i}", ts=T0 + i * 5, session="s") for i in range(60)]
    for r in records:
        eng.process(r)
    s = next(iter(eng.sessions))
    det = next(d for d in eng.detectors if d.name == "suspicious_behavior")
    from node.engine.context import Event
    ev = Event(records[-1], eng.apps[0], "/", s, eng.ips.get(records[-1].ip), None, False, False)
    assert det.evaluate(s, ev) is None        # no model yet: it abstains, never guesses


@fires("suspicious_behavior")
def test_detector_fires_on_a_stealth_walk_with_a_saved_model(learned, tmp_path):
    path = str(tmp_path / "b.npz")
    learned.baselines.save(path)
    eng = Engine(baselines=Baselines.load(path))
    rng = random.Random(4)
    t = T0 + 10_000
    records = [rec(0, "/", ts=t, session="w")]
    for i in range(1, 120):
        t += rng.uniform(3, 12)
        records.append(rec(i, f"/api/products/{rng.randint(1, 5000)}", ts=t, session="w"))
    for r in records:
        eng.process(r)
    s = next(a for a in eng.sessions if a.key[2] == "w")
    det = next(d for d in eng.detectors if d.name == "suspicious_behavior")
    from node.engine.context import Event
    ev = Event(records[-1], eng.apps[0], "/", s, eng.ips.get(records[-1].ip), None, False, False)
    f = det.evaluate(s, ev)
    assert fired(f) and f.value > learned.baselines.behavior.score_pct[2]
