"""Suspicious behavior score: how far a session's sequence of business-logic calls (which
endpoint follows which, and the pauses between them) is from the learned normal model of the
application's own traffic (node.engine.behavior: a Markov chain over the top endpoints with
gap distributions, learned with numpy from sessions that were never flagged).

Per request O(1): the session's transition and gap counters (one bytearray) and, for sessions
not flagged, the population's counters. The score (a KL divergence, bias-corrected) is
computed at evaluation only. Silent until the engine is warmed up and the model has learned
enough transitions; its normal is the p99 of finished human-looking sessions' scores.
"""

from bisect import bisect_right

from node.detectors.base import Detector, Finding, Param, fmt
from node.engine.behavior import COLS, GAP_EDGES, START, TRANS_CELLS, bump, new_seq
from node.engine.context import UNSET

MAX_GAP = 1800.0     # a pause longer than a session's inactivity timeout is no rhythm


class SuspiciousBehavior(Detector):
    name = "suspicious_behavior"
    title = "Suspicious behavior score"
    specificity = 2
    votes = {"scraping": 1.5, "api_abuse": 1.0, "account_takeover": 0.5}
    params = {"min_transitions": Param(20, "int", minimum=5,
                                       help="a session's calls before its path is judged"),
              "floor": Param(0.5, help="divergence (nats per call) that is never unusual"),
              "p99_factor": Param(1.0, minimum=1.0)}
    slots = ("prev", "prev_ts", "scored_n", "score")
    observes = True
    learned = True
    actors = frozenset({"session"})

    def __init__(self, params, ctx, slot_base):
        super().__init__(params, ctx, slot_base)
        self._model = None

    def observe(self, ev):
        # The hot path of a learned detector: plain list and bytearray stores, no numpy.
        memo = ev.endpoint.memo
        st = memo[self.memo]
        if st is UNSET:
            st = self.ctx.behavior.state(ev.endpoint.key)
            if st < 0:
                return False             # states not chosen yet (the model counts endpoints)
            memo[self.memo] = st         # the vocabulary is frozen once chosen
        rec = ev.rec
        s = ev.session
        ext = s.ext
        if ext is None:
            self.set(s, 0, 0)
            ext = s.ext
        b = self.base
        prev = ext[b]                        # stored as an int: no conversion needed
        ts = rec.ts
        ext[b] = st + 1
        if prev:
            gap = ts - ext[b + 1]
            row, gbin = prev - 1, bisect_right(GAP_EDGES, gap) if 0 <= gap <= MAX_GAP else -1
        else:
            row, gbin = START, -1
        ext[b + 1] = ts
        cell = row * COLS + st
        seq = s.seq
        if seq is None and prev:
            seq = s.seq = new_seq()          # from the 2nd request: one-shot floods stay small
            bump(seq, START * COLS + prev - 1)
        if seq is not None:
            if seq[cell] < 255:
                seq[cell] += 1
            else:
                bump(seq, cell)
            if gbin >= 0:
                g = TRANS_CELLS + gbin
                if seq[g] < 255:
                    seq[g] += 1
                else:
                    bump(seq, g)
        if not (s.flagged or ev.ip.flagged):
            model = self._model
            if model is None or model is not self.ctx.baselines.behavior:
                model = self._model = self.ctx.baselines.behavior
            model.learn(cell, gbin)
        return False

    def evaluate(self, actor, ev):
        model = self.ctx.behavior
        # Both the model and the scores of normal sessions must be learned before judging.
        if (actor.seq is None or actor.n <= self.p["min_transitions"] or not model.ready
                or model.score_pct is None):
            return None
        # Scoring reads the whole sequence (numpy, ~10 µs): a session's score moves slowly,
        # so it is recomputed once the session has grown by a quarter since the last one.
        scored_n = self.get(actor, 2)
        if actor.n >= scored_n * 1.25:
            r = model.score(actor.seq)
            ok = r is not None and r[2] >= self.p["min_transitions"]
            self.set(actor, 2, actor.n)
            self.set(actor, 3, r[0] if ok else -1.0)
        score = self.get(actor, 3)
        if score < 0:
            return None
        p50, _, p99 = model.score_pct
        limit = max(self.p["floor"], p99 * self.p["p99_factor"])
        # Beyond the normal's p99, full strength one normal spread (p99 - p50) further out.
        spread = max(limit - p50, 0.1)
        strength = 0.0 if score <= limit else min(1.0, 0.5 + (score - limit) / spread)
        return Finding(round(score, 2), f"< {fmt(limit)} divergence from the learned model",
                       strength)
