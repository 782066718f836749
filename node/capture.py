"""Pure extraction of what a request record needs from a request: session, username.

No mitmproxy here: the `record` addon passes plain values in, and replay tests call the
same functions. Everything read from the client is bounded before it is parsed, and
session keys and usernames are hashed unless the application says otherwise (SPEC §4).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets
from collections.abc import Callable
from urllib.parse import parse_qsl

from node.appmatch import AppRouter, AuthMatcher
from node.config.model import Application, AuthEndpoint, EngineConfig, SessionParams
from node.engine.roles import LOGIN, infer_role
from node.record import MAX_FIELD, MAX_PATH, MAX_QUERY, MAX_UA, RequestRecord

MAX_COOKIE_HEADER = 8192     # longer Cookie headers are not searched
MAX_TOKEN = 8192             # longer tokens are hashed, not decoded
MAX_AUTH_BODY = 16384        # login bodies larger than this are not parsed
MAX_FORM_FIELDS = 64
HASH_HEX = 24                # 96 bits of sha256: collision-free at our scale, short to store

HeaderGet = Callable[[str], "str | None"]


def hash_value(value: str, prefix: str = "", key: bytes | None = None) -> str:
    """sha256, truncated, with a kind prefix (`s-` session, `u-` user). With a `key`, keyed
    BLAKE2b instead: a username (an e-mail address) or a JWT `sub` is guessable, and a keyed
    hash cannot be reversed by hashing a list of candidates without the node's key."""
    data = value.encode("utf-8", "surrogatepass")
    if key:
        return prefix + hashlib.blake2b(data, key=key, digest_size=HASH_HEX // 2).hexdigest()
    return prefix + hashlib.sha256(data).hexdigest()[:HASH_HEX]


HASH_KEY_FILE = "hash.key"


def load_hash_key(state_dir: str) -> bytes:
    """The node's key for session and username hashes: 32 random bytes made on first start
    and kept in the state directory (mode 0600). Nodes whose hashes must match share it."""
    path = os.path.join(state_dir, HASH_KEY_FILE)
    try:
        with open(path, "rb") as f:
            key = f.read(64)
        if len(key) >= 16:
            return key
    except FileNotFoundError:
        pass
    os.makedirs(state_dir, exist_ok=True)
    key = secrets.token_bytes(32)
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    os.replace(tmp, path)
    return key


def cookie_value(cookie_header: str | None, name: str) -> str | None:
    """The value of cookie `name` in a Cookie header, without parsing the whole header."""
    if not cookie_header or len(cookie_header) > MAX_COOKIE_HEADER:
        return None
    for part in cookie_header.split(";"):
        k, sep, v = part.partition("=")
        if sep and k.strip() == name:
            v = v.strip()
            if len(v) >= 2 and v[0] == v[-1] == '"':
                v = v[1:-1]
            return v or None
    return None


def bearer_token(value: str) -> str:
    """`Bearer abc` → `abc`; anything else unchanged."""
    if value[:7].lower() == "bearer ":
        return value[7:].strip()
    return value.strip()


def jwt_claim(token: str, claim: str) -> str | None:
    """A claim from a JWT's payload (not verified: it only groups requests into sessions).

    A forged `sub` only groups the forger's own requests; nothing is trusted because of it.
    """
    if len(token) > MAX_TOKEN or token.count(".") != 2:
        return None
    payload = token.split(".", 2)[1]
    try:
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        return None         # a client's token: `[[[[...` nested 3000 deep must not raise
    if not isinstance(data, dict):
        return None
    v = data.get(claim)
    if isinstance(v, bool) or not isinstance(v, str | int):
        return None
    return str(v)[:MAX_FIELD] or None


def session_value(params: SessionParams, header: HeaderGet, key: bytes | None = None
                  ) -> str | None:
    """The session the client presented: configured cookie or header (a Bearer JWT's claim
    when `jwt_claim` is set), then the API-key header. None = the engine fingerprints.
    Hashed with the node's `key` like usernames: a JWT `sub` is as guessable as an e-mail."""
    raw: str | None = None
    if params.cookie:
        raw = cookie_value(header("cookie"), params.cookie)
    if raw is None and params.header:
        raw = header(params.header)
        if raw is not None:
            raw = raw.strip() or None
    if raw is not None and params.jwt_claim:
        claim = jwt_claim(bearer_token(raw), params.jwt_claim)
        if claim is not None:
            return hash_value(f"jwt:{claim}", "s-", key) if params.hash_values else claim
    if raw is None and params.api_key_header:
        raw = header(params.api_key_header)
        if raw is not None:
            raw = raw.strip() or None
    if raw is None:
        return None
    return hash_value(raw, "s-", key) if params.hash_values else raw[:MAX_FIELD]


def _field(data: object, path: str) -> object:
    """`user.email` style lookup in decoded JSON."""
    for part in path.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def username_from_body(body: bytes, content_type: str | None, endpoint: AuthEndpoint,
                       header: HeaderGet | None = None) -> str | None:
    """The username submitted to an authentication endpoint, read the way it is configured
    (`json` field path, `form` field, or a `header`); None if absent or too large to parse."""
    how, name = endpoint.username_in, endpoint.username_field
    if how == "auto":
        return _guessed_username(body, content_type)
    if how == "header":
        v = header(name) if header else None
    elif len(body) > MAX_AUTH_BODY or not body:
        return None
    elif how == "form" or (how == "auto" and "form" in (content_type or "")):
        try:
            text = body.decode("utf-8")
            fields = parse_qsl(text, max_num_fields=MAX_FORM_FIELDS)
        except (UnicodeDecodeError, ValueError):
            return None
        v = next((val for key, val in fields if key == name), None)
    else:
        try:
            v = _field(json.loads(body), name)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return None
    if isinstance(v, bool) or not isinstance(v, str | int):
        return None
    v = str(v).strip()
    return v[:MAX_FIELD] or None


# An unconfigured login route (inferred, or one of the usual paths): the username is the
# first of these fields present, in a JSON or form body (OAuth's password grant is a form).
GUESSED_FIELDS = ("username", "email", "login", "user", "user_name", "userName", "phone",
                  "phone_number", "phoneNumber", "identifier", "account", "client_id")
GUESSED_LOGIN = AuthEndpoint(method="POST", path="*", username_in="auto")


def _guessed_username(body: bytes, content_type: str | None) -> str | None:
    if not body or len(body) > MAX_AUTH_BODY:
        return None
    data: object
    try:
        if "form" in (content_type or "") or body[:1] not in (b"{", b"["):
            data = dict(parse_qsl(body.decode("utf-8"), max_num_fields=MAX_FORM_FIELDS))
        else:
            data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    for name in GUESSED_FIELDS:
        v = data.get(name)
        if isinstance(v, str | int) and not isinstance(v, bool):
            v = str(v).strip()
            if v:
                return v[:MAX_FIELD]
    return None


class Capture:
    """Per-application capture rules compiled from the engine configuration.

    `app_for(host)` and `auth_endpoint(app, method, path)` are node.appmatch's: the same
    answers the engine gets (configured endpoints, else the usual login routes).
    """

    def __init__(self, config: EngineConfig, hash_key: bytes | None = None) -> None:
        self.hash_key = hash_key          # keys session and username hashes (None: sha256)
        self.apps: tuple[Application, ...] = config.applications or (Application("default"),)
        # The engine's own matchers, so node and engine agree on every request.
        self._router = AppRouter(self.apps)
        self._auth = AuthMatcher(self.apps)

    def app_for(self, host: str) -> Application:
        return self._router.app(host)

    def auth_endpoint(self, app: Application, method: str, path: str) -> AuthEndpoint | None:
        """The configured endpoint; for an application that configures none, the usual
        login routes and any route whose vocabulary says login (engine.roles), whose
        username is read from the usual body fields."""
        ep = self._auth.endpoint(app.name, method, path)
        if self._auth.configured(app.name):
            return ep
        if ep is not None or (method == "POST" and infer_role(method, path) == LOGIN):
            return GUESSED_LOGIN
        return None

    def username(self, app: Application, method: str, path: str, body: bytes,
                 content_type: str | None, header: HeaderGet) -> str | None:
        ep = self.auth_endpoint(app, method, path)
        if ep is None:
            return None
        user = username_from_body(body, content_type, ep, header)
        if user is None:
            return None
        return hash_value(user.lower(), "u-", self.hash_key) if app.hash_usernames else user


def make_record(*, ts: float, ip: str, method: str, host: str, target: str, status: int,
                req_bytes: int, resp_bytes: int, duration_ms: float | None, ua: str,
                session: str | None = None, user: str | None = None,
                request_id: str | None = None, referer: str | None = None,
                content_type: str | None = None, blocked: bool = False) -> RequestRecord:
    """A request record with every client-controlled string bounded (node/record.py)."""
    path, _, query = target.partition("?")
    return RequestRecord(
        ts=ts, ip=ip, method=method[:16].upper(), host=host[:MAX_FIELD].lower(),
        path=(path or "/")[:MAX_PATH], query=query[:MAX_QUERY], status=status,
        req_bytes=req_bytes, resp_bytes=resp_bytes, duration_ms=duration_ms, ua=ua[:MAX_UA],
        session=session, user=user, id=request_id,
        referer=referer[:MAX_FIELD] if referer else None,
        content_type=content_type[:128] if content_type else None, blocked=blocked)
