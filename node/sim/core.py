"""Simulator building blocks: the intent, the actor base class and the family registry.

An actor is one client (a person, a bot, a campaign) whose `run()` generator yields its
requests in time order. A family is a kind of actor with its ground-truth label; families
register themselves with `@family(...)`, so adding one touches no other file but its own.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from node.sim.shopmodel import HOST

HUMAN = "human"
BOT_TYPES = ("api_abuse", "account_takeover", "security_crawlers", "scraping",
             "resource_consumption")
LABELS = (HUMAN, *BOT_TYPES)


@dataclass(slots=True)
class Intent:
    """One request an actor means to send. `headers` may be shared between intents of an
    actor: treat it as read-only."""

    ts: float
    ip: str
    method: str
    path: str
    query: str
    ua: str
    headers: dict[str, str]
    body: bytes | None
    session: str | None  # the sid cookie the client presents
    user: str | None  # username submitted to the login endpoint
    actor: str
    label: str
    family: str


class Env:
    """What actors of one scenario share: seed, time window, host."""

    def __init__(self, seed: int, start: float, duration: float, host: str = HOST) -> None:
        self.seed = seed
        self.start = start
        self.duration = duration
        self.end = start + duration
        self.host = host

    def rng(self, key: str) -> random.Random:
        # Seeded by (scenario seed, key): an actor's randomness does not depend on how many
        # other actors exist, so adding a family leaves every other actor's traffic unchanged.
        return random.Random(f"{self.seed}/{key}")


# What an actor is, beside its label: a person, a customer's program (label human, counted
# apart so a report can say "customer integrations blocked"), or a bot.
KINDS = ("person", "integration", "bot")


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    label: str
    count: int  # actor groups at scale 1
    cls: type[Actor]
    human: bool
    doc: str
    world: str = "shop"
    kind: str = "person"


# world → family name → family. Family names are unique across worlds, so actor ids are too
# and the worlds can run in one scenario.
REGISTRIES: dict[str, dict[str, Family]] = {"shop": {}}
REGISTRY = REGISTRIES["shop"]  # the shop's families (the default world)


def family(name: str, label: str, count: int, *, world: str = "shop", kind: str | None = None
           ) -> Callable[[type[Actor]], type[Actor]]:
    """Class decorator: register an actor class as family `name` of `world` with ground-truth
    `label` and `count` actors (or groups, see `Actor.spawn`) at scale 1. `kind` defaults to
    "person" for humans and "bot" for bots; a customer's program is "integration"."""
    if label not in LABELS:
        raise ValueError(f"unknown label {label!r}")
    kind = kind or ("person" if label == HUMAN else "bot")
    if kind not in KINDS or (kind == "bot") != (label != HUMAN):
        raise ValueError(f"kind {kind!r} does not fit label {label!r}")

    def deco(cls: type[Actor]) -> type[Actor]:
        if any(name in reg for reg in REGISTRIES.values()):
            raise ValueError(f"family {name!r} registered twice")
        doc = (cls.__doc__ or "").strip().splitlines()
        REGISTRIES.setdefault(world, {})[name] = Family(
            name, label, count, cls, label == HUMAN, doc[0] if doc else "", world, kind)
        return cls

    return deco


def family_of(name: str) -> Family | None:
    for reg in REGISTRIES.values():
        f = reg.get(name)
        if f is not None:
            return f
    return None


JSON_CT = {"Content-Type": "application/json"}
FORM_CT = {"Content-Type": "application/x-www-form-urlencoded"}


def login_body(user: str, password: str, form: bool = False) -> bytes:
    if form:
        from urllib.parse import urlencode
        return urlencode({"username": user, "password": password}).encode()
    return json.dumps({"username": user, "password": password}).encode()


def new_sid(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


class Actor:
    """Base class. Subclasses set `ip`, `ua`, `headers`, `start` and write `run()`.
    Keep `__init__` and `spawn` cheap and free of `rng` where there are many actors: draw
    their randomness when `run()` starts.

    `sid` is the cookie the actor presents next (None: no cookie). `req()` stamps an intent
    with the actor's current state; `count` is how many it made.
    """

    family: str
    label: str

    def __init__(self, env: Env, fam: Family, idx: int, actor_id: str | None = None) -> None:
        self.env = env
        self.family = fam.name
        self.label = fam.label
        self.idx = idx
        self.id = actor_id or f"{fam.name}-{idx:03d}"
        self._rng: random.Random | None = None
        self.ip = ""
        self.ua = ""
        self.headers: dict[str, str] = {}
        self.sid: str | None = None
        self.start = env.start
        self.count = 0

    @property
    def rng(self) -> random.Random:
        # Made on first use: an actor waiting for its start costs a few hundred bytes, not the
        # 2.5 KB of a generator state, so large scenarios stay small until actors run.
        if self._rng is None:
            self._rng = self.env.rng(self.id)
        return self._rng

    @classmethod
    def spawn(cls, env: Env, fam: Family, n: int) -> list[Actor]:
        """The family's actors for `n` (its scaled count). Override to share addresses."""
        return [cls(env, fam, i) for i in range(n)]

    def run(self) -> Iterator[Intent]:
        raise NotImplementedError

    def req(self, t: float, method: str, path: str, query: str = "", body: bytes | None = None,
            *, user: str | None = None, headers: dict[str, str] | None = None,
            ip: str | None = None) -> Intent:
        self.count += 1
        return Intent(round(t, 3), ip or self.ip, method, path, query, self.ua,
                      self.headers if headers is None else headers, body, self.sid, user,
                      self.id, self.label, self.family)

    def at(self, lo: float, hi: float) -> float:
        """A time drawn between fractions lo and hi of the window."""
        return self.env.start + self.rng.uniform(lo, hi) * self.env.duration

    def window(self, first: tuple[float, float], length: tuple[float, float]
               ) -> tuple[float, float]:
        """A start drawn in `first` and a length in `length`, both fractions of the duration."""
        env, rng = self.env, self.rng
        t0 = env.start + rng.uniform(*first) * env.duration
        return t0, min(env.end, t0 + rng.uniform(*length) * env.duration)
