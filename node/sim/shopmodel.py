"""The demo shop without HTTP: its tables, its request logic, and a latency model.

`ShopState.handle()` is the whole shop: the aiohttp app in `node/demo/shop.py` is a thin
adapter over it, and `ShopModel.respond()` calls it offline to give the simulator the status
and size the real shop would answer, plus a sampled duration. One implementation, so the two
cannot drift apart. Everything is deterministic: the catalog is fixed, tokens come from a
seeded generator.
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
import random
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import parse_qs, unquote

HOST = "shop.example"
N_PRODUCTS = 5000
N_USERS = 2000
PAGE_SIZE = 24
SEARCH_LIMIT = 20
UPLOAD_CAP = 2 * 1024 * 1024
SID_COOKIE = "sid"
# Server-side state is capped: a bot hammering without cookies must not grow it without bound.
MAX_CARTS = 100_000
MAX_AUTH = 100_000
MAX_ORDERS_PER_USER = 50

CATEGORY_NOUNS: dict[str, tuple[str, ...]] = {
    "books": ("novel", "cookbook", "atlas", "journal", "guide", "anthology", "biography", "comic"),
    "electronics": ("headphones", "charger", "speaker", "keyboard", "mouse", "monitor", "cable",
                    "router"),
    "home": ("lamp", "pillow", "blanket", "vase", "mirror", "rug", "clock", "curtain"),
    "garden": ("shovel", "planter", "hose", "rake", "seeds", "lantern", "bench", "trowel"),
    "toys": ("puzzle", "robot", "blocks", "kite", "doll", "drone", "yoyo", "boardgame"),
    "sports": ("ball", "racket", "helmet", "gloves", "mat", "bottle", "jersey", "skates"),
    "fashion": ("jacket", "scarf", "sneakers", "hat", "belt", "dress", "shirt", "backpack"),
    "beauty": ("serum", "lotion", "brush", "perfume", "shampoo", "balm", "mask", "soap"),
    "grocery": ("coffee", "tea", "honey", "pasta", "oil", "chocolate", "granola", "spice"),
    "automotive": ("wiper", "polish", "jack", "dashcam", "cover", "floormat", "bulb", "toolkit"),
    "music": ("guitar", "strings", "drumsticks", "ukulele", "capo", "tuner", "vinyl",
              "microphone"),
    "office": ("notebook", "pen", "stapler", "chair", "desk", "folder", "planner", "marker"),
}
CATEGORIES = tuple(CATEGORY_NOUNS)
ADJECTIVES = ("classic", "compact", "deluxe", "eco", "smart", "vintage", "modern", "rustic",
              "premium", "mini", "ultra", "soft", "pro", "travel", "wireless", "handmade",
              "organic", "sturdy", "bright", "quiet")
COLORS = ("red", "blue", "green", "black", "white", "oak", "steel", "copper", "navy", "amber",
          "olive", "ivory", "graphite", "coral", "sand")
SORTS = ("relevance", "price", "-price", "name", "rating", "newest")
_LOREM = ("quality design everyday durable comfortable lightweight perfect gift made with care "
          "easy to clean fits most sizes includes warranty tested for long life crafted from "
          "selected materials designed in europe shipped in recyclable packaging customers love "
          "this for home office travel and outdoor use").split()


def username(n: int) -> str:
    """The n-th shop account (1..N_USERS)."""
    return f"user{n:04d}@shop.example"


def password_for(n: int) -> str:
    """The password of account n: `pw-` and the same four digits as the username."""
    return f"pw-{n:04d}"


_USER_RE = re.compile(r"user(\d{4})@shop\.example")


def user_number(name: str) -> int | None:
    m = _USER_RE.fullmatch(name)
    if m is None:
        return None
    n = int(m.group(1))
    return n if 1 <= n <= N_USERS else None


def check_password(name: str, password: str) -> bool:
    n = user_number(name)
    return n is not None and password == password_for(n)


# -- catalog -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Product:
    id: int
    name: str
    category: str
    price: int  # cents
    rating: float
    reviews: int
    stock: int
    added: int  # days since launch; "newest" sorts on it
    blurb: str
    tokens: tuple[str, ...]


@lru_cache(maxsize=1)
def catalog() -> tuple[Product, ...]:
    """The fixed catalog, index 0 is product 1. Independent of any seed on purpose: every
    shop and every model answer the same for the same product."""
    rng = random.Random(0x5409)
    out = []
    for pid in range(1, N_PRODUCTS + 1):
        cat = CATEGORIES[rng.randrange(len(CATEGORIES))]
        adj, color = rng.choice(ADJECTIVES), rng.choice(COLORS)
        noun = rng.choice(CATEGORY_NOUNS[cat])
        model = rng.randrange(10, 990) * 10
        name = f"{adj.title()} {color.title()} {noun.title()} {model}"
        blurb = " ".join(rng.choices(_LOREM, k=rng.randint(4, 14))).capitalize() + "."
        out.append(Product(
            id=pid, name=name, category=cat, price=rng.randint(199, 49_999),
            rating=round(rng.uniform(2.5, 5.0), 1), reviews=int(rng.paretovariate(1.2) * 3),
            stock=rng.randint(0, 250), added=rng.randint(0, 1500), blurb=blurb,
            tokens=(adj, color, noun, str(model), cat),
        ))
    return tuple(out)


def product(pid: int) -> Product | None:
    return catalog()[pid - 1] if 1 <= pid <= N_PRODUCTS else None


@lru_cache(maxsize=1)
def _popularity() -> tuple[tuple[int, ...], list[float]]:
    # Zipf(1.07) over a fixed shuffle of ids: popular items are spread over the id range.
    ids = list(range(1, N_PRODUCTS + 1))
    random.Random(0x909).shuffle(ids)
    cum = list(itertools.accumulate(1.0 / (r + 1) ** 1.07 for r in range(N_PRODUCTS)))
    return tuple(ids), cum


def popular_product(rng: random.Random) -> int:
    """A product id drawn the way shoppers look at products (Zipf over popularity rank)."""
    ids, cum = _popularity()
    return ids[min(bisect.bisect(cum, rng.random() * cum[-1]), N_PRODUCTS - 1)]


def popularity_rank(pid: int) -> int:
    return _rank()[pid]


@lru_cache(maxsize=1)
def _rank() -> dict[int, int]:
    return {pid: r for r, pid in enumerate(_popularity()[0])}


def pages(category: str | None = None) -> int:
    """How many list pages a category (or the whole catalog) has."""
    return math.ceil(len(_sorted(category, "relevance")) / PAGE_SIZE)


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _price(cents: int) -> float:
    return cents / 100


def _summary(p: Product) -> dict:
    d = {"id": p.id, "name": p.name, "category": p.category, "price": _price(p.price),
         "rating": p.rating, "thumb": f"/img/p/{p.id}/t.jpg", "blurb": p.blurb}
    if p.id % 5 == 0:  # some items are on sale: list pages vary in size
        d["was"] = _price(p.price * 5 // 4)
        d["badges"] = ["sale"]
    return d


@lru_cache(maxsize=1)
def _lorem_text() -> str:
    return " ".join(random.Random(0x10E).choices(_LOREM, k=800))


@lru_cache(maxsize=N_PRODUCTS)
def product_json(pid: int) -> bytes:
    p = catalog()[pid - 1]
    # Cheap variety: a window of a long fixed text, and ids from a multiplicative hash.
    text = _lorem_text()
    h = pid * 2654435761 & 0xFFFFFFFF
    start = text.index(" ", h % 3000) + 1
    desc = text[start: text.index(" ", start + 350 + h % 500)].capitalize() + "."
    related = [(pid * k * 7919 + h) % N_PRODUCTS + 1 for k in (1, 2, 3, 4)]
    return _dumps({
        "id": p.id, "name": p.name, "category": p.category, "price": _price(p.price),
        "currency": "EUR", "rating": p.rating, "reviews": p.reviews, "stock": p.stock,
        "description": desc, "images": [f"/img/p/{p.id}/{k}.jpg" for k in (1, 2, 3)],
        "attributes": {"sku": f"SKU-{p.id:06d}", "color": p.tokens[1],
                       "weight_g": 50 + h % 8950},
        "related": related,
    })


_SORT_KEYS: dict[str, Callable[[Product], object]] = {
    "relevance": lambda p: popularity_rank(p.id),
    "price": lambda p: (p.price, p.id),
    "-price": lambda p: (-p.price, p.id),
    "name": lambda p: (p.name, p.id),
    "rating": lambda p: (-p.rating, p.id),
    "newest": lambda p: (p.added, p.id),
}


@lru_cache(maxsize=(len(CATEGORIES) + 1) * len(SORTS))
def _sorted(category: str | None, sort: str) -> tuple[int, ...]:
    items = [p for p in catalog() if category is None or p.category == category]
    items.sort(key=_SORT_KEYS[sort])
    return tuple(p.id for p in items)


@lru_cache(maxsize=4096)
def list_json(page: int, category: str | None, sort: str) -> bytes:
    ids = _sorted(category, sort)
    chunk = ids[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
    cat = catalog()
    return _dumps({"page": page, "per_page": PAGE_SIZE, "total": len(ids),
                   "pages": math.ceil(len(ids) / PAGE_SIZE), "category": category,
                   "sort": sort, "items": [_summary(cat[i - 1]) for i in chunk]})


@lru_cache(maxsize=1)
def _index() -> tuple[dict[str, frozenset[int]], tuple[str, ...]]:
    index: dict[str, set[int]] = {}
    for p in catalog():
        for t in p.tokens:
            index.setdefault(t, set()).add(p.id)
    return {k: frozenset(v) for k, v in index.items()}, tuple(sorted(index))


_TOKEN = re.compile(r"[a-z0-9]+")


@lru_cache(maxsize=8192)
def search_json(q: str) -> bytes:
    """Every query token must match a name word or category (a prefix, from two letters)."""
    index, vocab = _index()
    hits: frozenset[int] | None = None
    for tok in _TOKEN.findall(q.lower())[:8]:
        if len(tok) >= 2:
            lo = bisect.bisect_left(vocab, tok)
            words = itertools.takewhile(lambda w, t=tok: w.startswith(t), vocab[lo:])
            found = frozenset().union(*(index[w] for w in words))
        else:
            found = index.get(tok, frozenset())
        hits = found if hits is None else hits & found
        if not hits:
            break
    ids = sorted(hits or (), key=popularity_rank)
    cat = catalog()
    return _dumps({"q": q, "total": len(ids),
                   "items": [_summary(cat[i - 1]) for i in ids[:SEARCH_LIMIT]]})


@lru_cache(maxsize=2)
def export_body(fmt: str) -> bytes:
    cat = catalog()
    if fmt == "csv":
        lines = ["id,name,category,price,rating,reviews,stock"]
        lines += [f"{p.id},{p.name},{p.category},{_price(p.price):.2f},{p.rating},{p.reviews},"
                  f"{p.stock}" for p in cat]
        return ("\n".join(lines) + "\n").encode()
    return _dumps([{"id": p.id, "name": p.name, "category": p.category,
                    "price": _price(p.price), "rating": p.rating, "reviews": p.reviews,
                    "stock": p.stock, "sku": f"SKU-{p.id:06d}"} for p in cat])


def export_work_ms(size: int) -> float:
    """Server time an export takes: 100 ms plus 200 ms per MB (the real shop sleeps it)."""
    return 100.0 + 200.0 * min(1.0, size / 1_000_000)


# -- static assets ---------------------------------------------------------------------------

INDEX_HTML = (
    "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    "<title>Demo Shop</title><link rel=\"stylesheet\" href=\"/static/app.css\">"
    "<script defer src=\"/static/app.js\"></script></head>\n<body><header><a href=\"/\">Demo Shop"
    "</a><form id=\"search\"><input name=\"q\" placeholder=\"Search\"></form>"
    "<nav>" + "".join(f"<a href=\"#/c/{c}\">{c.title()}</a>" for c in CATEGORIES) +
    "</nav></header>\n<main id=\"app\"><noscript>This shop needs JavaScript.</noscript></main>"
    "<footer>Demo shop for Palisade. Not a real store.</footer></body></html>\n"
).encode()


def _asset(kind: str, n: int) -> bytes:
    if kind == "js":
        head = "\"use strict\";\nconst API = \"/api\";\n"
        parts = [f"function view{i}(el, data) {{ el.innerHTML = render{i % 7}(data); "
                 f"return fetch(API + \"/products?page={i}\").then(r => r.json()); }}\n"
                 for i in range(n)]
    else:
        head = ":root { --fg: #222; --bg: #fff; --accent: #0a6; }\n"
        parts = [f".c{i} {{ margin: {i % 9}px; padding: {i % 5}px {i % 7}px; "
                 f"color: var(--fg); }}\n" for i in range(n)]
    return (head + "".join(parts)).encode()


APP_JS = _asset("js", 48)
APP_CSS = _asset("css", 56)
STATIC = {"/static/app.js": (APP_JS, "application/javascript"),
          "/static/app.css": (APP_CSS, "text/css")}

# -- routing ---------------------------------------------------------------------------------

# path → {method: endpoint name}. Two templated routes are matched by prefix below.
ROUTES: dict[str, dict[str, str]] = {
    "/": {"GET": "home"},
    "/static/app.js": {"GET": "static"},
    "/static/app.css": {"GET": "static"},
    "/api/products": {"GET": "products"},
    "/api/search": {"GET": "search"},
    "/api/login": {"POST": "login"},
    "/api/logout": {"POST": "logout"},
    "/api/cart": {"GET": "cart", "POST": "cart_add"},
    "/api/checkout": {"POST": "checkout"},
    "/api/orders": {"GET": "orders"},
    "/api/export": {"GET": "export"},
    "/api/upload": {"POST": "upload"},
    "/api/health": {"GET": "health"},
}
TEMPLATES = (("/api/products/", {"GET": "product"}), ("/api/orders/", {"GET": "order"}))
ENDPOINTS = tuple(sorted({n for m in ROUTES.values() for n in m.values()}
                         | {n for _, m in TEMPLATES for n in m.values()}))


def route(path: str) -> tuple[dict[str, str] | None, str]:
    """(method → endpoint, path argument) for a raw path; (None, "") when nothing matches."""
    if "%" in path:
        path = unquote(path)
    m = ROUTES.get(path)
    if m is not None:
        return m, ""
    for prefix, m in TEMPLATES:
        if path.startswith(prefix) and "/" not in path[len(prefix):] and len(path) > len(prefix):
            return m, path[len(prefix):]
    return None, ""


_ERRORS = {400: "bad request", 401: "unauthorized", 404: "not found",
           405: "method not allowed", 409: "conflict", 413: "payload too large",
           500: "internal error"}


@lru_cache(maxsize=256)
def error_body(status: int, detail: str | None = None) -> bytes:
    d = {"error": _ERRORS.get(status, "error"), "status": status}
    if detail:
        d["detail"] = detail
    return _dumps(d)


@dataclass(slots=True)
class ShopResponse:
    status: int
    body: bytes
    content_type: str = "application/json"
    endpoint: str = "not_found"
    set_sid: str | None = None
    work_ms: float = 0.0  # server time the real shop spends (sleeps); the model adds it


def _err(status: int, endpoint: str, detail: str | None = None) -> ShopResponse:
    return ShopResponse(status, error_body(status, detail), endpoint=endpoint)


def _qs(query: str, blanks: bool = False) -> dict[str, list[str]] | None:
    """Parsed query, or None when it is not one (too many fields): the caller answers 400."""
    if not query:
        return {}
    try:
        return parse_qs(query, keep_blank_values=blanks, max_num_fields=20)
    except ValueError:
        return None


def _int(s: str) -> int | None:
    return int(s) if s.isascii() and s.isdigit() and len(s) <= 9 else None


def parse_credentials(body: bytes, content_type: str | None) -> tuple[str, str] | None:
    """Username and password from a JSON or form body, else None (400)."""
    ct = (content_type or "").lower()
    is_json = "json" in ct or (not ct and body[:1] == b"{")
    try:
        text = body.decode()
        if is_json:
            d = json.loads(text)
            if not isinstance(d, dict):
                return None
            u, p = d.get("username"), d.get("password")
        elif "x-www-form-urlencoded" in ct or (not ct and "=" in text):
            d = parse_qs(text, keep_blank_values=True, max_num_fields=20)
            u, p = d.get("username", [None])[0], d.get("password", [None])[0]
        else:
            return None
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(u, str) or not isinstance(p, str) or not u or len(u) > 256:
        return None
    return u, p


# Read-only endpoints: a pure function of (path, query, path argument), cached.

def _home(path: str, query: str, arg: str) -> ShopResponse:
    return ShopResponse(200, INDEX_HTML, "text/html")


def _static(path: str, query: str, arg: str) -> ShopResponse:
    body, ct = STATIC[unquote(path)]
    return ShopResponse(200, body, ct)


def _health(path: str, query: str, arg: str) -> ShopResponse:
    return ShopResponse(200, b'{"status":"ok"}')


def _products(path: str, query: str, arg: str) -> ShopResponse:
    q = _qs(query)
    if q is None:
        return _err(400, "products")
    page = _int(q.get("page", ["1"])[0])
    category = q.get("category", [None])[0] or None
    sort = q.get("sort", ["relevance"])[0]
    if page is None or not 1 <= page <= 10_000:
        return _err(400, "products", "page")
    if category is not None and category not in CATEGORY_NOUNS:
        return _err(400, "products", "category")
    if sort not in _SORT_KEYS:
        return _err(400, "products", "sort")
    return ShopResponse(200, list_json(page, category, sort))


def _product(path: str, query: str, arg: str) -> ShopResponse:
    pid = _int(arg)
    if pid is None or not 1 <= pid <= N_PRODUCTS:
        return _err(404, "product")
    return ShopResponse(200, product_json(pid))


def _search(path: str, query: str, arg: str) -> ShopResponse:
    q = _qs(query, blanks=True)
    if q is None or "q" not in q:
        return _err(400, "search", "q")
    return ShopResponse(200, search_json(q["q"][0][:200]))


def _export(path: str, query: str, arg: str) -> ShopResponse:
    q = _qs(query)
    if q is None:
        return _err(400, "export")
    fmt = q.get("format", ["json"])[0]
    if fmt not in ("csv", "json"):
        return _err(400, "export", "format must be csv or json")
    body = export_body(fmt)
    r = ShopResponse(200, body, "text/csv" if fmt == "csv" else "application/json")
    r.work_ms = export_work_ms(len(body))
    return r


_PURE = {"home": _home, "static": _static, "health": _health, "products": _products,
         "product": _product, "search": _search, "export": _export}


@lru_cache(maxsize=16384)
def _pure(name: str, path: str, query: str, arg: str) -> tuple[int, bytes, str, float]:
    r = _PURE[name](path, query, arg)
    return r.status, r.body, r.content_type, r.work_ms


class ShopState:
    """The shop: catalog (shared, fixed), sessions, carts and orders (per instance).

    Any presented `sid` is accepted as an anonymous session (the shop is permissive on purpose,
    like many frameworks): only login creates an authenticated one. A request without `sid`
    gets a fresh anonymous one set. `new_token` makes tokens; `login_token(prev_sid, user)`, if
    given, makes the authenticated one (the offline model derives it so the simulator can
    know it in advance).
    """

    def __init__(self, new_token: Callable[[], str],
                 login_token: Callable[[str | None, str], str] | None = None) -> None:
        self._new_token = new_token
        self._login_token = login_token
        self.auth: OrderedDict[str, str] = OrderedDict()  # sid → username
        self.carts: OrderedDict[str, dict[int, int]] = OrderedDict()
        self.orders: dict[str, dict[int, bytes]] = {}  # username → order id → body
        self._next_order = 1000
        self._presented: str | None = None

    def handle(self, method: str, path: str, query: str, body: bytes | None, sid: str | None,
               content_type: str | None = None, body_len: int | None = None) -> ShopResponse:
        methods, arg = route(path)
        if methods is None:
            r = _err(404, "not_found")
        else:
            name = methods.get(method)
            if name is None:
                r = _err(405, "method_not_allowed")
            else:
                self._presented = sid  # login derives the new token from what was sent
                if sid is None:
                    sid = self._new_token()
                    fresh = sid
                else:
                    fresh = None
                if name in _PURE:
                    status, rbody, ct, work = _pure(name, path, query, arg)
                    return ShopResponse(status, rbody, ct, name, fresh, work)
                r = getattr(self, "_" + name)(path, query, body or b"", sid, content_type,
                                              len(body or b"") if body_len is None else body_len,
                                              arg)
                r.endpoint = name
                if r.set_sid is None:
                    r.set_sid = fresh
                return r
        if sid is None:
            r.set_sid = self._new_token()
        return r

    # Handlers: (path, query, body, sid, content_type, body_len, arg) -> ShopResponse.

    def _login(self, path: str, query: str, body: bytes, sid: str, ct: str | None,
               *_: object) -> ShopResponse:
        creds = parse_credentials(body, ct)
        if creds is None:
            return _err(400, "login", "expected username and password")
        user, password = creds
        r = _err(401, "login") if not check_password(user, password) else None
        if r is not None:
            r.work_ms = 25.0  # password hashing costs the same either way
            return r
        token = (self._login_token(self._presented, user) if self._login_token
                 else self._new_token())
        self.auth.pop(sid, None)
        self._put(self.auth, token, user, MAX_AUTH)
        cart = self.carts.pop(sid, None)
        if cart:
            self._put(self.carts, token, cart, MAX_CARTS)
        r = ShopResponse(200, _dumps({"token": token, "user": user}), set_sid=token)
        r.work_ms = 25.0
        return r

    def _logout(self, path: str, query: str, body: bytes, sid: str, *_: object) -> ShopResponse:
        self.auth.pop(sid, None)
        self.carts.pop(sid, None)
        return ShopResponse(200, b'{"ok":true}', set_sid=self._new_token())

    def _cart_json(self, sid: str) -> bytes:
        cart = self.carts.get(sid) or {}
        cat = catalog()
        items = [{"product_id": pid, "qty": qty, "price": _price(cat[pid - 1].price)}
                 for pid, qty in cart.items()]
        total = sum(cat[pid - 1].price * qty for pid, qty in cart.items())
        return _dumps({"items": items, "total": _price(total), "currency": "EUR"})

    def _cart(self, path: str, query: str, body: bytes, sid: str, *_: object) -> ShopResponse:
        return ShopResponse(200, self._cart_json(sid))

    def _cart_add(self, path: str, query: str, body: bytes, sid: str, *_: object) -> ShopResponse:
        try:
            d = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            d = None
        if not isinstance(d, dict):
            return _err(400, "cart_add", "expected product_id and qty")
        pid, qty = d.get("product_id"), d.get("qty", 1)
        if type(pid) is not int or type(qty) is not int or not 1 <= qty <= 99:
            return _err(400, "cart_add", "expected product_id and qty")
        if not 1 <= pid <= N_PRODUCTS:
            return _err(404, "cart_add", "no such product")
        cart = self.carts.get(sid)
        if cart is None:
            cart = {}
            self._put(self.carts, sid, cart, MAX_CARTS)
        else:
            self.carts.move_to_end(sid)
        if pid in cart or len(cart) < 50:
            cart[pid] = min(99, cart.get(pid, 0) + qty)
        return ShopResponse(200, self._cart_json(sid))

    def _checkout(self, path: str, query: str, body: bytes, sid: str, *_: object) -> ShopResponse:
        user = self.auth.get(sid)
        if user is None:
            return _err(401, "checkout")
        cart = self.carts.pop(sid, None)
        if not cart:
            return _err(409, "checkout", "cart is empty")
        oid = self._next_order
        self._next_order += 1
        cat = catalog()
        total = sum(cat[pid - 1].price * qty for pid, qty in cart.items())
        order = _dumps({"id": oid, "status": "placed", "total": _price(total),
                        "currency": "EUR",
                        "items": [{"product_id": p, "qty": q} for p, q in cart.items()]})
        mine = self.orders.setdefault(user, {})
        mine[oid] = order
        if len(mine) > MAX_ORDERS_PER_USER:
            del mine[next(iter(mine))]
        return ShopResponse(201, order)

    def _orders(self, path: str, query: str, body: bytes, sid: str, *_: object) -> ShopResponse:
        user = self.auth.get(sid)
        if user is None:
            return _err(401, "orders")
        mine = self.orders.get(user, {})
        return ShopResponse(200, _dumps({"orders": [{"id": oid, "href": f"/api/orders/{oid}"}
                                                    for oid in list(mine)[-20:]]}))

    def _order(self, path: str, query: str, body: bytes, sid: str, ct: object, n: int,
               arg: str) -> ShopResponse:
        user = self.auth.get(sid)
        if user is None:
            return _err(401, "order")
        oid = _int(arg)
        order = self.orders.get(user, {}).get(oid) if oid is not None else None
        if order is None:  # someone else's order is "not found", not "forbidden"
            return _err(404, "order")
        return ShopResponse(200, order)

    def _upload(self, path: str, query: str, body: bytes, sid: str, ct: object,
                n: int, *_: object) -> ShopResponse:
        if n > UPLOAD_CAP:
            return _err(413, "upload")
        return ShopResponse(200, _dumps({"received": n}))

    @staticmethod
    def _put(d: OrderedDict, key: str, value: object, cap: int) -> None:
        d[key] = value
        d.move_to_end(key)
        while len(d) > cap:
            d.popitem(last=False)


def login_sid(prev_sid: str | None, user: str) -> str:
    """The authenticated sid the offline model issues on login: derived from the presented one,
    so a simulated client knows its next cookie without asking a server."""
    h = 0xCBF29CE484222325
    for ch in f"{prev_sid or ''}|{user}".encode():  # FNV-1a, 64 bit, twice for 128 bits
        h = ((h ^ ch) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    h2 = ((h ^ 0x5A) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}{h2:016x}"


# Per-endpoint latency: (median ms, lognormal sigma). Measured shapes of a small Python shop:
# cheap reads in a few ms, search grows with hits, login pays for password hashing.
LATENCY: dict[str, tuple[float, float]] = {
    "home": (2.5, 0.35), "static": (0.9, 0.35), "health": (0.6, 0.3),
    "products": (11.0, 0.35), "product": (6.0, 0.4), "search": (14.0, 0.45),
    "login": (9.0, 0.3), "logout": (3.0, 0.3), "cart": (3.5, 0.3), "cart_add": (7.0, 0.35),
    "checkout": (42.0, 0.3), "orders": (9.0, 0.35), "order": (5.0, 0.35),
    "export": (6.0, 0.3), "upload": (4.0, 0.3), "not_found": (0.7, 0.3),
    "method_not_allowed": (0.5, 0.3),
}


_LOG_LATENCY = {k: (math.log(m), s) for k, (m, s) in LATENCY.items()}


class ShopModel:
    """`respond()` answers like the real shop, without HTTP, with a sampled duration."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        counter = itertools.count(1)
        self.state = ShopState(lambda: f"m{next(counter):031x}", login_sid)

    def respond(self, method: str, path: str, query: str, body: bytes | None,
                session: str | None, content_type: str | None = None
                ) -> tuple[int, int, float]:
        """(status, response body bytes, duration ms) for one request."""
        r = self.state.handle(method, path, query, body, session, content_type)
        mu, sigma = _LOG_LATENCY[r.endpoint]
        if r.endpoint == "search" and r.status == 200:
            mu = math.log(LATENCY["search"][0] + len(r.body) / 400)  # more hits, more work
        elif r.endpoint == "upload":
            # ~80 MB/s to read and store a body
            mu = math.log(LATENCY["upload"][0] + len(body or b"") / 80_000)
        dur = self.rng.lognormvariate(mu, sigma) + r.work_ms
        if self.rng.random() < 0.005:  # rare stalls: GC, a slow disk
            dur *= self.rng.uniform(3, 12)
        return r.status, len(r.body), round(dur, 2)


@lru_cache(maxsize=256)
def body_of_size(n: int) -> bytes:
    """An upload body of n bytes, shared: many intents carry the same object without copies."""
    return bytes(n)
