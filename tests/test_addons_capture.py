"""Capture (node/capture.py): session and username extraction the record addon relies on."""

from __future__ import annotations

import base64
import json

import pytest

from node.capture import (
    HASH_KEY_FILE,
    MAX_AUTH_BODY,
    Capture,
    bearer_token,
    cookie_value,
    hash_value,
    jwt_claim,
    load_hash_key,
    make_record,
    session_value,
    username_from_body,
)
from node.config.model import Application, AuthEndpoint, EngineConfig, SessionParams
from node.record import MAX_PATH, MAX_UA


def jwt(payload: dict) -> str:
    def b64(d: bytes) -> str:
        return base64.urlsafe_b64encode(d).rstrip(b"=").decode()
    return f"{b64(b'{}')}.{b64(json.dumps(payload).encode())}.sig"


def getter(headers: dict[str, str]):
    low = {k.lower(): v for k, v in headers.items()}
    return lambda name: low.get(name.lower())


@pytest.mark.parametrize("header,name,expected", [
    ("sid=abc; theme=dark", "sid", "abc"),
    ("theme=dark;sid=abc", "sid", "abc"),
    ('sid="quoted"', "sid", "quoted"),
    ("xsid=1; sid=2", "sid", "2"),
    ("sid=", "sid", None),
    ("theme=dark", "sid", None),
    (None, "sid", None),
    ("sid=" + "a" * 9000, "sid", None),          # oversized header not searched
])
def test_cookie_value(header, name, expected):
    assert cookie_value(header, name) == expected


@pytest.mark.parametrize("token,claim,expected", [
    (jwt({"sub": "alice"}), "sub", "alice"),
    (jwt({"sub": 42}), "sub", "42"),
    (jwt({"sub": True}), "sub", None),
    (jwt({"other": "x"}), "sub", None),
    ("not.a-jwt", "sub", None),
    ("a.b.c", "sub", None),
    ("a." + "A" * 9000 + ".c", "sub", None),
    (jwt(["list"]), "sub", None),
])
def test_jwt_claim(token, claim, expected):
    assert jwt_claim(token, claim) == expected


def test_jwt_claim_survives_a_deeply_nested_payload():
    # Raised in the request hook, it would skip enforcement (a denylist bypass).
    deep = base64.urlsafe_b64encode(b"[" * 3000 + b"]" * 3000).rstrip(b"=").decode()
    assert jwt_claim(f"e30.{deep}.sig", "sub") is None
    params = SessionParams(header="Authorization", jwt_claim="sub")
    assert session_value(params, getter({"Authorization": f"Bearer e30.{deep}.sig"})) == \
        hash_value(f"Bearer e30.{deep}.sig", "s-")


def test_bearer_token():
    assert bearer_token("Bearer abc ") == "abc" and bearer_token("bearer x") == "x"
    assert bearer_token("Basic xyz") == "Basic xyz"


COOKIE = SessionParams(cookie="sid")
HEADER_JWT = SessionParams(header="Authorization", jwt_claim="sub")
ALL = SessionParams(cookie="sid", header="Authorization", jwt_claim="sub",
                    api_key_header="X-Api-Key")


@pytest.mark.parametrize("params,headers,expected", [
    (COOKIE, {"Cookie": "sid=abc"}, hash_value("abc", "s-")),
    (COOKIE, {}, None),
    (HEADER_JWT, {"Authorization": "Bearer " + jwt({"sub": "u1"})}, hash_value("jwt:u1", "s-")),
    # a token that is not a JWT is hashed whole
    (HEADER_JWT, {"Authorization": "Bearer opaque"}, hash_value("Bearer opaque", "s-")),
    # refreshed tokens with the same subject are one session
    (HEADER_JWT, {"Authorization": "Bearer " + jwt({"sub": "u1", "iat": 2})},
     hash_value("jwt:u1", "s-")),
    # first present wins: cookie, then header, then API key
    (ALL, {"Cookie": "sid=c", "X-Api-Key": "k"}, hash_value("c", "s-")),
    (ALL, {"X-Api-Key": "k"}, hash_value("k", "s-")),
    (ALL, {"X-Api-Key": "  "}, None),
    (SessionParams(cookie="sid", hash_values=False), {"Cookie": "sid=plain"}, "plain"),
    (SessionParams(), {"Cookie": "sid=abc"}, None),
])
def test_session_value(params, headers, expected):
    assert session_value(params, getter(headers)) == expected


def test_hash_value_shape():
    h = hash_value("abc", "s-")
    assert h.startswith("s-") and len(h) == 26 and h == hash_value("abc", "s-")
    assert hash_value("abc", "s-") != hash_value("abd", "s-")


def test_keyed_hash_cannot_be_recomputed_without_the_key():
    k1, k2 = b"k" * 32, b"j" * 32
    h = hash_value("alice@example.com", "u-", k1)
    assert h.startswith("u-") and len(h) == 26 and h == hash_value("alice@example.com", "u-", k1)
    assert h != hash_value("alice@example.com", "u-")          # not the plain sha256
    assert h != hash_value("alice@example.com", "u-", k2)


@pytest.mark.parametrize("params,headers,raw", [
    (HEADER_JWT, {"Authorization": "Bearer " + jwt({"sub": "alice"})}, "jwt:alice"),
    (COOKIE, {"Cookie": "sid=abc"}, "abc"),
    (ALL, {"X-Api-Key": "k"}, "k"),
])
def test_session_keys_are_hashed_with_the_node_key(params, headers, raw):
    """Issue 12: session keys were plain sha256, so a JWT `sub` could be found by hashing
    guesses; they now take the same keyed BLAKE2b as usernames."""
    key = b"k" * 32
    h = session_value(params, getter(headers), key)
    assert h == hash_value(raw, "s-", key) and h.startswith("s-")
    assert h != hash_value(raw, "s-") and h != session_value(params, getter(headers), b"j" * 32)


def test_hash_key_is_made_once_private_and_reused(tmp_path):
    import os
    import stat

    d = str(tmp_path / "state")
    key = load_hash_key(d)
    assert len(key) == 32 and load_hash_key(d) == key
    mode = stat.S_IMODE(os.stat(os.path.join(d, HASH_KEY_FILE)).st_mode)
    assert mode == 0o600
    cap = Capture(app_config(), key)
    shop = cap.apps[0]
    user = cap.username(shop, "POST", "/login", b'{"username": "Alice"}', "application/json",
                        getter({}))
    assert user == hash_value("alice", "u-", key) != hash_value("alice", "u-")


JSON_EP = AuthEndpoint("POST", "/login", "json", "username")
NESTED = AuthEndpoint("POST", "/login", "json", "user.email")
FORM = AuthEndpoint("POST", "/login", "form", "login")
HDR = AuthEndpoint("POST", "/login", "header", "X-User")


@pytest.mark.parametrize("body,ctype,ep,expected", [
    (b'{"username": "alice", "password": "x"}', "application/json", JSON_EP, "alice"),
    (b'{"user": {"email": "a@b.c"}}', "application/json", NESTED, "a@b.c"),
    (b'{"username": 12345}', "application/json", JSON_EP, "12345"),
    (b'{"username": ["x"]}', "application/json", JSON_EP, None),
    (b'{"username": ""}', "application/json", JSON_EP, None),
    (b"not json", "application/json", JSON_EP, None),
    (b"[1, 2]", "application/json", JSON_EP, None),
    (b"login=bob%40x.io&password=y", "application/x-www-form-urlencoded", FORM, "bob@x.io"),
    (b"password=y", "application/x-www-form-urlencoded", FORM, None),
    (b"\xff\xfe", "application/x-www-form-urlencoded", FORM, None),
    (b"", "application/json", JSON_EP, None),
    (b'{"username": "' + b"a" * MAX_AUTH_BODY + b'"}', "application/json", JSON_EP, None),
    (b'{"username": "' + b"a" * 1000 + b'"}', "application/json", JSON_EP, "a" * 256),
    (b"[" * 5000 + b"]" * 5000, "application/json", JSON_EP, None),    # deep nesting
])
def test_username_from_body(body, ctype, ep, expected):
    assert username_from_body(body, ctype, ep) == expected


def test_username_from_header():
    assert username_from_body(b"", None, HDR, getter({"X-User": " carol "})) == "carol"


def app_config() -> EngineConfig:
    shop = Application("shop", hosts=("shop.example", "*.shop.example"),
                       session=COOKIE,
                       auth=(JSON_EP, AuthEndpoint("POST", "/api/{tenant}/login", "form", "user")))
    api = Application("api", hosts=("api.example",), hash_usernames=False,
                      auth=(AuthEndpoint("POST", "/v1/token", "json", "client_id"),))
    return EngineConfig(applications=(shop, api))


@pytest.mark.parametrize("host,app", [
    ("shop.example", "shop"), ("shop.example:8443", "shop"), ("eu.shop.example", "shop"),
    ("api.example", "api"), ("unknown.example", "shop"), ("[::1]:8000", "shop"),
])
def test_app_for(host, app):
    assert Capture(app_config()).app_for(host).name == app


def test_auth_endpoints_and_hashing():
    cap = Capture(app_config())
    shop, api = cap.apps
    assert cap.auth_endpoint(shop, "POST", "/login") is JSON_EP
    assert cap.auth_endpoint(shop, "GET", "/login") is None
    assert cap.auth_endpoint(shop, "POST", "/api/acme/login").username_in == "form"
    assert cap.auth_endpoint(shop, "POST", "/api/acme/x/login") is None
    assert cap.username(shop, "POST", "/login", b'{"username": "Alice"}', "application/json",
                        getter({})) == hash_value("alice", "u-")
    assert cap.username(shop, "POST", "/api/t1/login", b"user=bob", None, getter({})) == (
        hash_value("bob", "u-"))
    assert cap.username(api, "POST", "/v1/token", b'{"client_id": "c-1"}', None,
                        getter({})) == "c-1"
    assert cap.username(shop, "POST", "/other", b'{"username": "a"}', None, getter({})) is None


def test_make_record_bounds():
    rec = make_record(ts=1.5, ip="203.0.113.7", method="get", host="Shop.Example",
                      target="/" + "p" * 5000 + "?q=1", status=200, req_bytes=0, resp_bytes=10,
                      duration_ms=1.0, ua="u" * 2000, request_id="r1")
    assert rec.method == "GET" and rec.host == "shop.example" and rec.query == "q=1"
    assert len(rec.path) == MAX_PATH and len(rec.ua) == MAX_UA
    rec = make_record(ts=1.5, ip="203.0.113.7", method="GET", host="h", target="?x",
                      status=200, req_bytes=0, resp_bytes=0, duration_ms=None, ua="")
    assert rec.path == "/" and rec.query == "x"
    assert json.loads(rec.to_json())["ip"] == "203.0.113.7"


@pytest.mark.parametrize(("path", "body", "ctype", "expected"), [
    ("/oauth/token", b"grant_type=password&username=Ann%40x.example&password=p",
     "application/x-www-form-urlencoded", "ann@x.example"),
    ("/v2/auth/sign-in", b'{"email": "Bo@x.example", "password": "p"}', "application/json",
     "bo@x.example"),
    ("/api/session", b'{"login": "carol"}', None, "carol"),
    ("/v1/sessions", b'{"phone_number": "+15550100"}', "application/json", "+15550100"),
    ("/oauth/token", b"grant_type=refresh_token&refresh_token=r", None, None),
    ("/v1/payments", b'{"email": "d@x.example"}', "application/json", None),   # not a login
    ("/api/session", b'{"email": ' + b"[" * 5000 + b"]" * 5000 + b"}", None, None),
])
def test_inferred_login_routes_capture_the_username(path, body, ctype, expected):
    cap = Capture(EngineConfig(), hash_key=None)
    app = cap.apps[0]
    got = cap.username(app, "POST", path, body, ctype, getter({}))
    assert got == (hash_value(expected, "u-") if expected else None)
