"""Learned normal traffic profile (numpy): per-endpoint latency and sizes, per-session totals.

Each endpoint keeps a ring of its last RING observations; percentiles are recomputed every
REFRESH new observations, so the per-request cost is a couple of stores. numpy holds the
saved profile and the behaviour model; percentiles of 256 values are cheaper sorted in Python.
Sessions already flagged as bots are not learned from. The profile is saved to and restored
from the state directory, so a restart does not repeat the warm-up.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict

import numpy as np

from node.engine.behavior import BehaviorModel

FORMAT_VERSION = 2        # 2: + authentication attempts per session, the behaviour model
RING = 256
REFRESH = 128        # half a ring: the percentiles follow the traffic, at half the sorting
MIN_SAMPLES = 100         # an endpoint's baseline votes only after this many observations
_QS = (0.50, 0.95, 0.99)


class Ring:
    """The last RING values (a plain list: a store is cheaper than into a numpy array)."""

    __slots__ = ("values", "n", "pct")

    def __init__(self) -> None:
        self.values: list[float] = [0.0] * RING
        self.n = 0
        self.pct: tuple[float, float, float] | None = None   # p50, p95, p99

    def add(self, v: float) -> None:
        n = self.n
        self.values[n % RING] = v
        self.n = n = n + 1
        if not n % REFRESH and n >= MIN_SAMPLES:
            _refresh(self)


class EndpointBaseline:
    __slots__ = ("latency", "size", "req_size")

    def __init__(self) -> None:
        self.latency = Ring()
        self.size = Ring()
        self.req_size = Ring()


class Baselines:
    """Per (application, endpoint template) rings, capped in number (LRU)."""

    def __init__(self, max_endpoints: int = 5000) -> None:
        self.endpoints: OrderedDict[tuple[str, str], EndpointBaseline] = OrderedDict()
        self.max_endpoints = max_endpoints
        self.sessions_resp = Ring()      # total response bytes of finished human-looking sessions
        self.sessions_req = Ring()       # total request bytes of the same
        self.sessions_auth = Ring()      # login attempts of unflagged sessions that made any
        self.seen = 0                    # requests learned from (warm-up gauge)
        self.behavior = BehaviorModel()  # normal sequences of business-logic calls

    def learn(self, app: str, template: str, duration_ms: float | None, resp_bytes: int,
              req_bytes: int) -> None:
        key = (app, template)
        eb = self.endpoints.get(key)
        if eb is None:
            eb = self.endpoints[key] = EndpointBaseline()
            if len(self.endpoints) > self.max_endpoints:
                self.endpoints.popitem(last=False)
        if duration_ms is not None:
            eb.latency.add(duration_ms)
        eb.size.add(resp_bytes)
        eb.req_size.add(req_bytes)
        self.seen += 1

    def get(self, app: str, template: str) -> EndpointBaseline | None:
        return self.endpoints.get((app, template))

    def learn_session(self, req_bytes: int, resp_bytes: int) -> None:
        self.sessions_req.add(req_bytes)
        self.sessions_resp.add(resp_bytes)

    def learn_auth(self, attempts: int) -> None:
        self.sessions_auth.add(attempts)

    # -- persistence --------------------------------------------------------------------------
    def save(self, path: str) -> None:
        """Write atomically (temp file + rename): a crash never leaves half a model."""
        keys = list(self.endpoints)
        arrays: dict[str, np.ndarray] = {}
        counts = []
        for i, k in enumerate(keys):
            eb = self.endpoints[k]
            for name in ("latency", "size", "req_size"):
                ring: Ring = getattr(eb, name)
                arrays[f"{name}_{i}"] = np.asarray(ring.values, dtype=np.float32)
                counts.append(ring.n)
        arrays["sessions_req"] = np.asarray(self.sessions_req.values, dtype=np.float32)
        arrays["sessions_resp"] = np.asarray(self.sessions_resp.values, dtype=np.float32)
        arrays["sessions_auth"] = np.asarray(self.sessions_auth.values, dtype=np.float32)
        bmeta, barrays = self.behavior.to_state()
        arrays.update(barrays)
        meta = {"version": FORMAT_VERSION, "keys": keys, "counts": counts, "seen": self.seen,
                "sessions": [self.sessions_req.n, self.sessions_resp.n, self.sessions_auth.n],
                "behavior": bmeta}
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str, max_endpoints: int = 5000) -> Baselines:
        b = cls(max_endpoints)
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode())
            version = meta.get("version")
            if version not in (1, FORMAT_VERSION):
                raise ValueError(f"unknown baseline format version {version}")
            counts = iter(meta["counts"])
            for i, k in enumerate(meta["keys"][-max_endpoints:]):
                eb = EndpointBaseline()
                for name in ("latency", "size", "req_size"):
                    ring: Ring = getattr(eb, name)
                    ring.values = [float(v) for v in z[f"{name}_{i}"]]
                    ring.n = next(counts)
                    _refresh(ring)
                b.endpoints[(k[0], k[1])] = eb
            rings = [(b.sessions_req, "sessions_req"), (b.sessions_resp, "sessions_resp")]
            if version >= 2:
                rings.append((b.sessions_auth, "sessions_auth"))
            for (ring, key), n in zip(rings, meta["sessions"], strict=False):
                ring.values = [float(v) for v in z[key]]
                ring.n = n
                _refresh(ring)
            b.seen = int(meta["seen"])
            if version >= 2 and "behavior" in meta:
                b.behavior = BehaviorModel.from_state(meta["behavior"], z)
        return b


def _refresh(ring: Ring) -> None:
    """p50 / p95 / p99 with linear interpolation (numpy's default method). Sorting the 256
    values in Python is ~7x cheaper than numpy.percentile's per-call overhead at this size."""
    if ring.n >= MIN_SAMPLES:
        a = sorted(ring.values[:min(ring.n, RING)])
        last = len(a) - 1
        out = []
        for q in _QS:
            x = q * last
            i = int(x)
            lo = a[i]
            out.append(float(lo + (a[min(i + 1, last)] - lo) * (x - i)))
        ring.pct = (out[0], out[1], out[2])
