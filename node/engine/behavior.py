"""The learned model of normal business-logic sequences (suspicious behavior score, SPEC §5).

States are the application's K most used endpoints (method + template), learned from the first
`VOCAB_AFTER` requests and then frozen (one more state, OTHER, takes the rest; START opens a
session). The population model is a first-order Markov chain over those states with additive
smoothing, plus the distribution of the gap before each request in `len(GAP_EDGES) + 1`
logarithmic bins. Both are plain counts updated in O(1) per request from sessions that are
not flagged; a session flagged later is subtracted again (its own counts), so the bots the
model should catch do not teach it. Log-probabilities are recomputed with numpy every
`REFRESH` learned transitions, off the per-request path.

A session keeps its own counts in one bytearray (`(K + 2) * (K + 1)` transition cells and the
gap bins, 280 bytes for K = 15), allocated at its second request. Its score is how far its
behaviour is from the population's: the Kullback-Leibler divergence of its transition rows and
its gap distribution from the model's, weighted by how often it used each row, less the
small-sample bias (Miller-Madow) so that a short visit is not unusual merely for being short.
A person's visit mixes lists, products, search and cart with bursts and pauses; a scraper
that walks product after product at a steady pace has a path no population produces, even
though every single step of it is common. Normal scores are learned too: the scores of
finished sessions that were never flagged (a ring, p50 / p95 / p99 with numpy).
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Any

import numpy as np

K = 15                           # learned states; index K is OTHER
START = K + 1                    # the row of a session's first request
ROWS = K + 2
COLS = K + 1
GAP_EDGES = (0.25, 1.0, 2.0, 4.0, 8.0, 16.0, 64.0)   # seconds
GAPS = len(GAP_EDGES) + 1
TRANS_CELLS = ROWS * COLS
SEQ_BYTES = TRANS_CELLS + GAPS
VOCAB_AFTER = 2000               # requests seen before the states are chosen
VOCAB_CAP = 5000                 # distinct endpoints counted while choosing
REFRESH = 2048                   # learned transitions between two recomputations
MIN_TRANSITIONS = 5000           # the model is ready after this many learned transitions
ALPHA = 0.5                      # additive smoothing of the population's counts
SCORE_RING = 512
SCORE_MIN_SAMPLES = 30


def gap_bin(gap: float) -> int:
    return bisect_right(GAP_EDGES, gap)


class BehaviorModel:
    """Population transition and gap counts; per-session sequences live on the actor."""

    def __init__(self) -> None:
        self.vocab: dict[tuple[str, str, str], int] | None = None   # frozen states
        self._freq: dict[tuple[str, str, str], int] = {}
        self._seen = 0
        self.trans = [0.0] * TRANS_CELLS
        self.gaps = [0.0] * GAPS
        self.learned = 0                  # transitions learned (warm-up gauge)
        self._since = 0
        self.logp: np.ndarray | None = None      # (ROWS, COLS) log P(next | current)
        self.loggap: np.ndarray | None = None    # (GAPS,) log P(gap bin)
        self.scores: list[float] = [0.0] * SCORE_RING   # finished normal sessions' scores
        self.n_scores = 0
        self.score_pct: tuple[float, float, float] | None = None

    # -- states ---------------------------------------------------------------------------------
    def state(self, key: tuple[str, str, str]) -> int:
        """State index of an endpoint; -1 while the vocabulary is still being learned."""
        v = self.vocab
        if v is not None:
            return v.get(key, K)
        f = self._freq
        if key in f:
            f[key] += 1
        elif len(f) < VOCAB_CAP:
            f[key] = 1
        self._seen += 1
        if self._seen >= VOCAB_AFTER:
            top = sorted(f.items(), key=lambda kv: -kv[1])[:K]
            self.vocab = {k: i for i, (k, _) in enumerate(top)}
            self._freq = {}
        return -1

    @property
    def ready(self) -> bool:
        return self.logp is not None and self.learned >= MIN_TRANSITIONS

    # -- learning ---------------------------------------------------------------------------------
    def learn(self, cell: int, gbin: int) -> None:
        self.trans[cell] += 1.0
        if gbin >= 0:
            self.gaps[gbin] += 1.0
        self.learned += 1
        self._since += 1
        if self._since >= REFRESH:
            self.refresh()

    def unlearn(self, seq: bytearray) -> None:
        """Take a flagged session's own counts back out of the population."""
        t = self.trans
        for i in range(TRANS_CELLS):
            c = seq[i]
            if c:
                t[i] = max(0.0, t[i] - c)
                self.learned -= c
        g = self.gaps
        for i in range(GAPS):
            c = seq[TRANS_CELLS + i]
            if c:
                g[i] = max(0.0, g[i] - c)

    def refresh(self) -> None:
        self._since = 0
        t = np.asarray(self.trans, dtype=np.float64).reshape(ROWS, COLS) + ALPHA
        self.logp = np.log(t / t.sum(axis=1, keepdims=True))
        g = np.asarray(self.gaps, dtype=np.float64) + ALPHA
        self.loggap = np.log(g / g.sum())

    def learn_score(self, score: float) -> None:
        n = self.n_scores
        self.scores[n % SCORE_RING] = score
        self.n_scores = n = n + 1
        if n >= SCORE_MIN_SAMPLES and not n % 8:
            self._score_pct()

    def _score_pct(self) -> None:
        k = min(self.n_scores, SCORE_RING)
        p = np.percentile(np.asarray(self.scores[:k], dtype=np.float64), (50.0, 95.0, 99.0))
        self.score_pct = (float(p[0]), float(p[1]), float(p[2]))

    # -- scoring ----------------------------------------------------------------------------------
    def score(self, seq: bytearray) -> tuple[float, float, int] | None:
        """(divergence score, average negative log-likelihood, transitions) of a session, or
        None before the model is ready."""
        if self.logp is None or self.loggap is None:
            return None
        a = np.frombuffer(seq, dtype=np.uint8)
        c = a[:TRANS_CELLS].astype(np.float64).reshape(ROWS, COLS)
        n = c.sum()
        if n <= 0:
            return None
        rows = c.sum(axis=1, keepdims=True)
        nz = c > 0
        emp = np.where(nz, c / np.maximum(rows, 1.0), 1.0)
        kl_t = float((c * (np.log(emp) - self.logp))[nz].sum()) / n
        nll = float(-(c * self.logp).sum()) / n
        bias = (int(nz.sum()) - int((rows > 0).sum())) / (2.0 * n)
        g = a[TRANS_CELLS:].astype(np.float64)
        ng = g.sum()
        kl_g = 0.0
        if ng > 0:
            gz = g > 0
            kl_g = float((g[gz] / ng * (np.log(g[gz] / ng) - self.loggap[gz])).sum())
            kl_g -= (int(gz.sum()) - 1) / (2.0 * ng)
        return float(max(0.0, kl_t - bias) + max(0.0, kl_g)), nll, int(n)

    # -- persistence (with the baselines, node.engine.baselines) -------------------------------
    def to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta = {"k": K, "gap_edges": list(GAP_EDGES), "learned": self.learned,
                "vocab": [[*k, i] for k, i in (self.vocab or {}).items()],
                "frozen": self.vocab is not None, "n_scores": self.n_scores}
        arrays = {"behavior_trans": np.asarray(self.trans, dtype=np.float64),
                  "behavior_gaps": np.asarray(self.gaps, dtype=np.float64),
                  "behavior_scores": np.asarray(self.scores, dtype=np.float32)}
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: Any) -> BehaviorModel:
        m = cls()
        if meta.get("k") != K or list(meta.get("gap_edges", ())) != list(GAP_EDGES):
            return m                     # another layout: start learning afresh
        if meta.get("frozen"):
            m.vocab = {(a, b, c): int(i) for a, b, c, i in meta["vocab"]}
        m.trans = [float(v) for v in arrays["behavior_trans"]]
        m.gaps = [float(v) for v in arrays["behavior_gaps"]]
        m.scores = [float(v) for v in arrays["behavior_scores"]]
        m.learned = int(meta.get("learned", 0))
        m.n_scores = int(meta.get("n_scores", 0))
        if m.learned:
            m.refresh()
        if m.n_scores >= SCORE_MIN_SAMPLES:
            m._score_pct()
        return m


def new_seq() -> bytearray:
    return bytearray(SEQ_BYTES)


def bump(seq: bytearray, i: int) -> None:
    """Count one event in a session's bytearray; at 255 the session's counts halve (its
    proportions, which is what the score reads, stay)."""
    v = seq[i]
    if v < 255:
        seq[i] = v + 1
        return
    lo, hi = (0, TRANS_CELLS) if i < TRANS_CELLS else (TRANS_CELLS, SEQ_BYTES)
    for j in range(lo, hi):
        seq[j] >>= 1
    seq[i] += 1

