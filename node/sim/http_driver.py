"""Send simulated intents over real HTTP (to the node in front of the shop), in simulated time.

Each intent goes out when its turn comes (its time gap from the first intent divided by
`speedup`), from its own address (`X-Forwarded-For`, which the node trusts from loopback),
with its user agent, headers, body and cookie. Requests of one actor go out one after the
other, as a client's would; different actors overlap up to `concurrency`.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import aiohttp
from yarl import URL

from node.sim.core import Intent
from node.sim.shopmodel import SID_COOKIE

log = logging.getLogger(__name__)

_BIG_BODY = 256 * 1024  # sent from a stream: aiohttp warns about large raw bytes bodies
_JAR_CAP = 16  # cookies remembered per actor: enough for any simulated actor's live sessions


@dataclass(slots=True)
class DriveStats:
    sent: int = 0
    errors: int = 0  # transport errors (status 0)
    statuses: Counter[int] = field(default_factory=Counter)
    max_lag_s: float = 0.0  # worst delay behind the replay schedule


class _Jar:
    """An actor's cookie: maps the simulator's sid values onto the ones the server issued.

    The simulator picks sid values offline. A real server issues its own: the one a response
    sets is what the actor presents next time it presents a new simulated sid (after a first
    cookie-less request, after login), and replaces the simulated one it was sent with.
    """

    __slots__ = ("known", "fresh", "tail")

    def __init__(self) -> None:
        self.known: dict[str, str] = {}
        self.fresh: str | None = None
        self.tail: asyncio.Task[None] | None = None  # the actor's last request

    def cookie_for(self, sim_sid: str | None) -> str | None:
        if sim_sid is None:
            return None
        real = self.known.get(sim_sid)
        if real is None:
            real, self.fresh = (self.fresh or sim_sid), None  # the shop accepts any sid
            self._remember(sim_sid, real)
        return real

    def learn(self, sim_sid: str | None, real: str) -> None:
        self.fresh = real
        if sim_sid is not None:
            self._remember(sim_sid, real)

    def _remember(self, sim_sid: str, real: str) -> None:
        self.known[sim_sid] = real
        if len(self.known) > _JAR_CAP:
            del self.known[next(iter(self.known))]


async def drive(intents: Iterable[Intent], base_url: str, *, speedup: float = 1.0,
                concurrency: int = 32, trust_xff: bool = True,
                on_result: Callable[[Intent, int], None] | None = None,
                timeout: float = 30.0) -> DriveStats:
    """Send `intents` (time-ordered) to `base_url`; `on_result(intent, status)` after each
    (status 0 on a transport error). `speedup` <= 0 sends as fast as possible.
    Returns counts; cancelling stops cleanly (in-flight requests are cancelled)."""
    loop = asyncio.get_running_loop()
    base = base_url.rstrip("/")
    sem = asyncio.Semaphore(concurrency)
    jars: dict[str, _Jar] = {}
    stats = DriveStats()
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with (
        aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                              timeout=aiohttp.ClientTimeout(total=timeout)) as http,
        asyncio.TaskGroup() as tg,
    ):
        t0 = wall0 = None
        for it in intents:
            if t0 is None:
                t0, wall0 = it.ts, loop.time()
            if speedup > 0:
                due = wall0 + (it.ts - t0) / speedup
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                else:
                    stats.max_lag_s = max(stats.max_lag_s, -delay)
            await sem.acquire()  # released by the request's task
            jar = jars.get(it.actor)
            if jar is None:
                jar = jars[it.actor] = _Jar()
            jar.tail = tg.create_task(_send(http, base, it, jar, jar.tail, sem, stats,
                                            on_result, trust_xff))
    return stats


async def _send(http: aiohttp.ClientSession, base: str, it: Intent, jar: _Jar,
                prev: asyncio.Task[None] | None, sem: asyncio.Semaphore, stats: DriveStats,
                on_result: Callable[[Intent, int], None] | None, trust_xff: bool) -> None:
    status = 0
    try:
        if prev is not None and not prev.done():
            await asyncio.wait([prev])  # one actor, one request at a time, in order
        headers = {"User-Agent": it.ua, **it.headers}
        if trust_xff:
            headers["X-Forwarded-For"] = it.ip
        sid = jar.cookie_for(it.session)
        if sid is not None:
            headers["Cookie"] = f"{SID_COOKIE}={sid}"
        # encoded=True: send the path as simulated (probes with %2e, ../ and quotes included).
        url = URL(base + it.path + ("?" + it.query if it.query else ""), encoded=True)
        body = it.body
        data = io.BytesIO(body) if body and len(body) > _BIG_BODY else body
        async with http.request(it.method, url, headers=headers, data=data,
                                allow_redirects=False) as resp:
            async for _ in resp.content.iter_chunked(256 * 1024):
                pass
            status = resp.status
            morsel = resp.cookies.get(SID_COOKIE)
            if morsel is not None and morsel.value:
                jar.learn(it.session, morsel.value)
    except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as e:
        stats.errors += 1
        log.debug("drive: %s %s: %s", it.method, it.path, e)
    finally:
        sem.release()
    stats.sent += 1
    stats.statuses[status] += 1
    if on_result is not None:
        try:
            on_result(it, status)
        except Exception:  # a reporting bug must not stop the traffic
            log.exception("drive: on_result failed")
