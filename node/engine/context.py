"""The per-request event handed to detectors, and the engine context they may read."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from node.config.model import Application, AuthEndpoint, EngineConfig
    from node.engine.actor import Actor
    from node.engine.baselines import Baselines
    from node.engine.roles import Outcomes
    from node.record import RequestRecord


UNSET: Any = object()       # an Endpoint memo slot not computed yet
MEMO_SLOTS = 64            # memo slots of an Endpoint made outside the engine (tests)


class Endpoint:
    """One (application, method, template), made once by the engine and handed to detectors
    with every request to it. `memo[det.memo]` is a detector's own per-endpoint verdict
    (is it critical? its behaviour state?), computed on the first request and read after:
    per-endpoint work leaves the per-request path."""

    __slots__ = ("key", "ei", "er", "memo", "static", "role", "ri", "outcomes")

    def __init__(self, key: tuple[str, str, str], ei: int, er: int, slots: int) -> None:
        self.key = key          # (application, method, template)
        self.ei = ei            # the template's register and rank in the breadth sketches
        self.er = er
        self.memo: list[Any] = [UNSET] * slots
        self.static = False     # a page resource (script, style, image, font) fetched by GET
        self.role: str | None = None    # engine.roles: login, signup, otp_send, payment, ...
        self.ri = -1                    # the role's index (engine.roles.ROLE_INDEX)
        self.outcomes: Outcomes | None = None   # its answers, learned (role endpoints only)


class Event:
    """One request as the engine sees it: the record, its endpoint and the actors it touches."""

    __slots__ = ("rec", "app", "template", "session", "ip", "net", "unsafe", "new_session",
                 "auth", "auth_result", "app_index", "endpoint", "query", "role", "outcome")

    def __init__(self, rec: RequestRecord, app: Application, template: str, session: Actor,
                 ip: Actor, net: Actor | None, unsafe: bool, new_session: bool,
                 auth: AuthEndpoint | None = None, auth_result: str | None = None,
                 app_index: int = 0, endpoint: Endpoint | None = None,
                 query: str | None = None) -> None:
        self.rec = rec
        self.app = app
        self.template = template
        self.session = session
        self.ip = ip
        self.net = net
        self.unsafe = unsafe
        self.new_session = new_session
        self.auth = auth                  # the authentication endpoint hit, if any
        self.auth_result = auth_result    # "ok" | "fail" | None (unknown / not auth)
        self.app_index = app_index
        self.endpoint = endpoint or Endpoint((app.name, rec.method, template), 0, 0, MEMO_SLOTS)
        # The query as behaviour sees it: values that are the request's own time are one
        # placeholder (engine.clock), so a polling loop does not look like enumeration.
        self.query = rec.query if query is None else query
        self.role: str | None = None      # the endpoint's role (engine.roles), if any
        self.outcome: str | None = None   # what its answer meant (engine.roles.classify)

    def actors(self) -> tuple[Actor, ...]:
        return (self.session, self.ip) if self.net is None else (self.session, self.ip, self.net)


class EngineContext:
    """What detectors may read besides the actor: learned baselines, warm-up, configuration."""

    def __init__(self, config: EngineConfig, baselines: Baselines) -> None:
        self.config = config
        self.baselines = baselines
        self.ext_size = 0
        self.extra: dict[str, Any] = {}   # shared helpers detectors register by name
        self.clusters: Any = None         # engine.auth.Clusters (set by the engine)
        self.long_auth: Any = None        # engine.auth.LongTermAuth
        self.accounts: Any = None         # engine.flows.Accounts
        # Whole-second timestamps only so far (an access log): gaps under a few seconds
        # are quantisation, not rhythm.
        self.coarse_clock = True
        self.verifier: Any = None         # node.goodbots.GoodBotVerifier

    @property
    def behavior(self) -> Any:
        """The learned sequence model (engine.behavior), kept with the baselines."""
        return self.baselines.behavior

    @property
    def warmed_up(self) -> bool:
        return self.baselines.seen >= self.config.warmup_requests
