"""Mounting the console on the control-plane application: templates, static files, headers."""

from __future__ import annotations

import gzip
import hashlib
import logging
import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from aiohttp import web

from node.console import fmt
from node.console.auth import ConsoleAuth
from node.console.data import ProfileView, profile_views
from node.control.routing import SESSION_AUTH
from node.control.storage.base import Storage

log = logging.getLogger("palisade.console")

HERE = Path(__file__).parent
CONSOLE = web.AppKey("console", "Console")

# Scripts only from our own origin (no inline script, no eval). Styles from our files, plus
# style attributes: plotly.js positions chart elements with them, and they cannot run code.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; "
       "style-src-attr 'unsafe-inline'; img-src 'self' data:; font-src 'self'; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


class StaticFile:
    __slots__ = ("body", "content_type", "etag", "_gz")

    def __init__(self, body: bytes, content_type: str) -> None:
        self.body = body
        self.content_type = content_type
        self.etag = hashlib.sha256(body).hexdigest()[:16]
        self._gz: bytes | None = None

    def gz(self) -> bytes:
        if self._gz is None:
            self._gz = gzip.compress(self.body, compresslevel=6, mtime=0)
        return self._gz


def _plotly_js() -> bytes | None:
    try:
        return (resources.files("plotly") / "package_data" / "plotly.min.js").read_bytes()
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        return None


_RULES = re.compile(r'"((?:[^"\\]|\\.)*)":(?:\'((?:[^\'\\]|\\.)*)\'|"((?:[^"\\]|\\.)*)")')
_MAPLIBRE_GUARD = re.compile(rb'getElementById\("([0-9a-f]{64})"\)\)\{var \w+=document\.'
                             rb'createElement\("style"\)')


def plotly_css(js: bytes) -> tuple[bytes, str | None]:
    """plotly.js injects its CSS rules as inline <style>, which our CSP refuses. It skips that
    when the page has an element `#plotly.js-style-global.no-inline-styles`, so the console
    serves those rules as a file instead: they are read out of plotly.min.js itself (a
    `{"X,X div": "...", ...}` table), so they follow the plotly version installed. Also
    returns the id of the bundled MapLibre stylesheet, whose injection is skipped when an
    element with that id exists (the console draws no maps)."""
    text = js.decode("utf-8", "replace")
    start = text.find('{"X,X div"')
    end = text.find("};", start)
    rules = []
    if start >= 0 and end > start:
        for key, v1, v2 in _RULES.findall(text[start + 1:end]):
            sel = re.sub(r"^,", " ,", key).replace("X", ".js-plotly-plot .plotly") \
                .replace("Y", ".plotly-notifier")
            rules.append(f"{sel}{{{v1 or v2}}}")
    else:
        log.warning("console: plotly.js CSS rules not found; charts may look unstyled")
    m = _MAPLIBRE_GUARD.search(js)
    return "\n".join(rules).encode(), (m.group(1).decode() if m else None)


class Console:
    """What the mounted console needs: storage, templates, static files, sessions, profiles."""

    def __init__(self, storage: Storage, auth: ConsoleAuth,
                 profiles: Sequence[ProfileView] | None, warmup_requests: int) -> None:
        self.storage = storage
        self.auth = auth
        self.profiles = profiles
        self.warmup_requests = warmup_requests
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,               # every template, whatever its name
            undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
            auto_reload=False)
        self.env.filters.update(fmt.FILTERS)
        self.env.globals.update(url=url, static=self.static_url, BOT_LABELS=fmt.BOT_LABELS,
                                LIST_LABELS=fmt.LIST_LABELS, LIST_HELP=fmt.LIST_HELP,
                                DURATIONS=fmt.DURATIONS)
        self.files: dict[str, StaticFile] = {}
        for name, ctype in (("console.css", "text/css"), ("console.js", "text/javascript"),
                            ("favicon.svg", "image/svg+xml")):
            self.files[name] = StaticFile((HERE / "static" / name).read_bytes(),
                                          ctype + ("; charset=utf-8" if "svg" not in ctype
                                                   else ""))
        js = _plotly_js()
        self.plotly_guard: str | None = None
        if js is not None:
            css, self.plotly_guard = plotly_css(js)
            self.files["plotly.min.js"] = StaticFile(js, "text/javascript; charset=utf-8")
            self.files["plotly.css"] = StaticFile(css, "text/css; charset=utf-8")
        else:
            log.warning("console: plotly is not installed; pages show tables without charts")
        self.env.globals.update(has_plotly=js is not None, plotly_guard=self.plotly_guard)

    def static_url(self, name: str) -> str:
        f = self.files.get(name)
        return f"/console/static/{name}" + (f"?v={f.etag}" if f else "")

    def render(self, template: str, status: int = 200, **ctx: Any) -> web.Response:
        body = self.env.get_template(template).render(**ctx)
        return web.Response(text=body, status=status, content_type="text/html",
                            charset="utf-8", headers=PAGE_HEADERS)


def url(path: str, **params: Any) -> str:
    """A console URL with the given query parameters; empty ones are left out, so a page's
    URL holds exactly the filters that are set (and can be copied as a link)."""
    q = {k: ("" if v is True else str(v)) for k, v in params.items()
         if v is not None and v != "" and v is not False}
    return path + ("?" + urlencode(q) if q else "")


def setup_console(app: web.Application, storage: Storage | None = None, *,
                  engine: Any = None, profiles: Sequence[ProfileView] | None = None,
                  secure_cookies: bool | None = None) -> Console:
    """Mount the console (pages under /console/) on an app made by
    `node.control.api.create_app`.

    engine: the node's EngineConfig, when known, to show its profiles read-only (or pass
    `profiles` directly). secure_cookies: mark the session cookie Secure; None = when the
    request came over TLS."""
    from node.console import pages
    from node.control.api import STORAGE

    storage = storage if storage is not None else app[STORAGE]
    if profiles is None and engine is not None:
        profiles = profile_views(engine)
    auth = ConsoleAuth(secure_cookies=secure_cookies)
    console = Console(storage, auth, profiles,
                      warmup_requests=int(getattr(engine, "warmup_requests", 2000)))
    app[CONSOLE] = console
    app[SESSION_AUTH] = auth
    app.add_routes(pages.routes)
    return console
