"""The demo shop (node/demo/shop.py) and its offline model (node/sim/shopmodel.py)."""

from __future__ import annotations

import io
import json

import aiohttp
import pytest
from yarl import URL

from node.demo.shop import create_app, start_shop
from node.sim import FAMILIES, Scenario, simulate
from node.sim.http_driver import _Jar
from node.sim.shopmodel import (
    APP_CSS,
    APP_JS,
    N_PRODUCTS,
    UPLOAD_CAP,
    ShopModel,
    login_sid,
    parse_credentials,
    password_for,
    route,
    username,
)

USER = username(42)
PW = password_for(42)


@pytest.fixture
async def client(aiohttp_client):
    # No cookie jar: each test presents the sid it means to, as the simulator does.
    return await aiohttp_client(create_app(seed=1), cookie_jar=aiohttp.DummyCookieJar())


async def login(client, n: int = 42) -> str:
    r = await client.post("/api/login", json={"username": username(n),
                                              "password": password_for(n)})
    assert r.status == 200
    body = await r.json()
    assert r.cookies["sid"].value == body["token"]
    return body["token"]


def test_users_and_passwords_are_deterministic():
    assert username(1) == "user0001@shop.example"
    assert username(2000) == "user2000@shop.example"
    assert password_for(7) == "pw-0007"


async def test_first_response_sets_an_anonymous_sid_once(client):
    r = await client.get("/")
    assert r.status == 200 and r.content_type == "text/html"
    sid = r.cookies["sid"].value
    assert len(sid) == 32
    r = await client.get("/api/health", headers={"Cookie": f"sid={sid}"})
    assert await r.json() == {"status": "ok"}
    assert "sid" not in r.cookies


@pytest.mark.parametrize(("path", "body"), [("/static/app.js", APP_JS),
                                            ("/static/app.css", APP_CSS)])
async def test_static_assets(client, path, body):
    r = await client.get(path)
    assert r.status == 200 and await r.read() == body
    assert 2_000 < len(body) < 10_000


async def test_product_list_pages(client):
    r = await client.get("/api/products", params={"page": "2", "category": "books",
                                                  "sort": "price"})
    assert r.status == 200
    raw = await r.read()
    assert 2_000 < len(raw) < 8_000
    d = json.loads(raw)
    prices = [i["price"] for i in d["items"]]
    assert prices == sorted(prices) and {i["category"] for i in d["items"]} == {"books"}
    r = await client.get("/api/products", params={"page": "999"})
    assert r.status == 200 and (await r.json())["items"] == []


@pytest.mark.parametrize("query", ["page=x", "page=0", "sort=evil", "category=nope"])
async def test_product_list_rejects_bad_parameters(client, query):
    r = await client.get("/api/products?" + query)
    assert r.status == 400 and (await r.json())["error"] == "bad request"


async def test_product_detail(client):
    r = await client.get("/api/products/42")
    assert r.status == 200
    raw = await r.read()
    assert 500 < len(raw) < 1_500 and json.loads(raw)["id"] == 42


@pytest.mark.parametrize("pid", ["0", str(N_PRODUCTS + 1), "abc", "1%27%20OR%201=1"])
async def test_unknown_product_is_404(client, pid):
    r = await client.get(f"/api/products/{pid}")
    assert r.status == 404 and r.content_type == "application/json"


async def test_search_size_varies_with_the_query(client):
    sizes = {}
    for q in ("lamp", "red lamp", "zzzz"):
        r = await client.get("/api/search", params={"q": q})
        assert r.status == 200
        sizes[q] = len(await r.read())
    assert sizes["lamp"] > sizes["red lamp"] > sizes["zzzz"]
    assert (await client.get("/api/search")).status == 400


async def test_login_json_and_form(client):
    await login(client)
    r = await client.post("/api/login", data={"username": USER, "password": PW})
    assert r.status == 200 and "sid" in r.cookies


@pytest.mark.parametrize(("kwargs", "status"), [
    ({"json": {"username": USER, "password": "pw-0043"}}, 401),
    ({"json": {"username": "nobody@shop.example", "password": PW}}, 401),
    ({"json": {"username": USER}}, 400),
    ({"json": [USER, PW]}, 400),
    ({"data": b"not json", "headers": {"Content-Type": "application/json"}}, 400),
    ({"data": b"\xff\xfe", "headers": {"Content-Type": "text/plain"}}, 400),
])
async def test_login_failures(client, kwargs, status):
    r = await client.post("/api/login", **kwargs)
    assert r.status == status
    assert (await r.json())["status"] == status


async def test_checkout_needs_login_and_a_cart(client):
    anon = (await client.get("/")).cookies["sid"].value
    r = await client.post("/api/cart", json={"product_id": 7, "qty": 2},
                          headers={"Cookie": f"sid={anon}"})
    assert r.status == 200 and (await r.json())["items"][0]["qty"] == 2
    r = await client.post("/api/checkout", headers={"Cookie": f"sid={anon}"})
    assert r.status == 401
    r = await client.post("/api/login", json={"username": USER, "password": PW},
                          headers={"Cookie": f"sid={anon}"})
    sid = r.cookies["sid"].value
    assert sid != anon
    cookie = {"Cookie": f"sid={sid}"}
    r = await client.post("/api/checkout", headers=cookie)  # the cart followed the login
    assert r.status == 201
    oid = (await r.json())["id"]
    assert (await client.post("/api/checkout", headers=cookie)).status == 409  # empty now
    r = await client.get("/api/orders", headers=cookie)
    assert [o["id"] for o in (await r.json())["orders"]] == [oid]
    assert (await client.get(f"/api/orders/{oid}", headers=cookie)).status == 200
    other = await login(client, 43)
    r = await client.get(f"/api/orders/{oid}", headers={"Cookie": f"sid={other}"})
    assert r.status == 404  # not yours: not found
    assert (await client.get(f"/api/orders/{oid}")).status == 401


@pytest.mark.parametrize(("body", "status"), [({"product_id": 0}, 404), ({"qty": 1}, 400),
                                              ({"product_id": 1, "qty": 100}, 400)])
async def test_cart_validation(client, body, status):
    assert (await client.post("/api/cart", json=body)).status == status


async def test_logout_ends_the_session(client):
    sid = await login(client)
    r = await client.post("/api/logout", headers={"Cookie": f"sid={sid}"})
    assert r.status == 200 and r.cookies["sid"].value != sid
    assert (await client.get("/api/orders", headers={"Cookie": f"sid={sid}"})).status == 401


@pytest.mark.parametrize(("fmt", "ctype"), [("csv", "text/csv"), ("json", "application/json")])
async def test_export_is_heavy(client, fmt, ctype):
    r = await client.get("/api/export", params={"format": fmt})
    assert r.status == 200 and r.content_type == ctype
    assert 200_000 < len(await r.read()) <= 1_000_000
    assert (await client.get("/api/export?format=xml")).status == 400


async def test_upload_cap(client):
    r = await client.post("/api/upload", data=bytes(100_000))
    assert r.status == 200 and await r.json() == {"received": 100_000}
    r = await client.post("/api/upload", data=io.BytesIO(bytes(UPLOAD_CAP + 1)))
    assert r.status == 413 and (await r.json())["error"] == "payload too large"


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/.env", 404), ("GET", "/wp-login.php", 404), ("GET", "/api/products/", 404),
    ("GET", "/static/..%2f..%2fetc/passwd", 404), ("GET", "/api/login", 405),
    ("DELETE", "/api/cart", 405),
])
async def test_unknown_paths_and_methods_are_json(client, method, path, status):
    r = await client.request(method, URL(path, encoded=True))
    assert r.status == status and r.content_type == "application/json"
    assert (await r.json())["status"] == status


async def test_start_shop_serves_on_a_free_port():
    runner = await start_shop("127.0.0.1", 0)
    try:
        host, port = runner.addresses[0][:2]
        async with aiohttp.ClientSession() as s, s.get(f"http://{host}:{port}/api/health") as r:
            assert r.status == 200
    finally:
        await runner.cleanup()


# -- the offline model ---------------------------------------------------------------------

@pytest.mark.parametrize(("path", "name", "arg"), [
    ("/api/products/12", "product", "12"), ("/api/products%2f12", "product", "12"),
    ("/api/orders/5", "order", "5"), ("/api/products/1/2", None, ""), ("/x", None, ""),
])
def test_route(path, name, arg):
    methods, got = route(path)
    assert (methods["GET"] if methods else None) == name and got == arg


@pytest.mark.parametrize(("body", "ct", "expected"), [
    (b'{"username":"a","password":"b"}', "application/json", ("a", "b")),
    (b'{"username":"a","password":"b"}', None, ("a", "b")),
    (b"username=a&password=b", "application/x-www-form-urlencoded", ("a", "b")),
    (b"username=a&password=b", None, ("a", "b")),
    (b'{"username":1,"password":"b"}', None, None),
    (b"", None, None),
    (b"a=1&" * 30, None, None),
])
def test_parse_credentials(body, ct, expected):
    assert parse_credentials(body, ct) == expected


def test_model_logs_in_with_a_derived_sid():
    m = ShopModel(0)
    body = json.dumps({"username": USER, "password": PW}).encode()
    assert m.respond("POST", "/api/login", "", body, "s1")[0] == 200
    sid = login_sid("s1", USER)
    assert m.respond("POST", "/api/checkout", "", b"{}", "s1")[0] == 401
    assert m.respond("POST", "/api/cart", "", b'{"product_id":3,"qty":1}', sid)[0] == 200
    status, size, dur = m.respond("POST", "/api/checkout", "", b"{}", sid)
    assert status == 201 and size > 0 and dur > 0


def test_model_latency_is_plausible_and_deterministic():
    def run(seed):
        m = ShopModel(seed)
        return [m.respond("GET", p, q, None, "s")[2] for p, q in
                [("/api/products/5", ""), ("/api/export", "format=json"), ("/api/health", "")]
                * 50]
    a = run(3)
    assert a == run(3) and a != run(4)
    product, export, health = a[0::3], a[1::3], a[2::3]
    assert sorted(health)[25] < sorted(product)[25] < 50 < 100 < sorted(export)[25] < 600


async def test_model_answers_like_the_real_shop(aiohttp_client):
    """The same simulated requests, sent to the shop one by one and to the model: same
    status and the same number of bytes."""
    client = await aiohttp_client(create_app(seed=5, work_scale=0),
                                  cookie_jar=aiohttp.DummyCookieJar())
    # Every family, two actors each, their first 25 requests (whole sequences: the state a
    # login or a cart leaves matters).
    per_actor: dict[str, int] = {}
    actors_of: dict[str, set[str]] = {}
    intents = []
    for it in simulate(Scenario.default(scale=0.05, seed=3, duration=900)):
        fam = actors_of.setdefault(it.family, set())
        if it.actor not in fam and len(fam) >= 2:
            continue
        fam.add(it.actor)
        per_actor[it.actor] = n = per_actor.get(it.actor, 0) + 1
        if n <= 25:
            intents.append(it)
    assert len(actors_of) == len(FAMILIES)
    model = ShopModel(0)
    jars: dict[str, _Jar] = {}
    for it in intents:
        ct = it.headers.get("Content-Type")
        status, size, _ = model.respond(it.method, it.path, it.query, it.body, it.session, ct)
        jar = jars.setdefault(it.actor, _Jar())
        sid = jar.cookie_for(it.session)
        headers = {"User-Agent": it.ua, **it.headers}
        if sid:
            headers["Cookie"] = f"sid={sid}"
        url = URL(it.path + ("?" + it.query if it.query else ""), encoded=True)
        data = io.BytesIO(it.body) if it.body and len(it.body) > 1 << 20 else it.body
        r = await client.request(it.method, url, data=data, headers=headers)
        raw = await r.read()
        if "sid" in r.cookies:
            jar.learn(it.session, r.cookies["sid"].value)
        assert (r.status, len(raw)) == (status, size), (it.family, it.method, it.path, it.query)
