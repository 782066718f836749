"""The console in a real headless Chromium (Debian's, driven by Playwright), against a control
plane on loopback filled with simulated demo traffic run through the engine.

Every page is loaded, filtered and drilled into; the CSV download is compared with the
session; actions change the IP lists (and a viewer's cannot); records carrying script
payloads run nothing. Any dialog, page error or console error fails the test. Screenshots go
to artifacts/screenshots/ (and to docs/screenshots/ with PALISADE_DOCS_SCREENSHOTS=1).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import urllib.request
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from node.console.demo_data import HOSTILE_IP, HOSTILE_PATHS, HOSTILE_UA
from node.console.fmt import form_time
from node.console.live import OPERATOR_TOKEN, VIEWER_TOKEN, LiveConsole

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts" / "screenshots"
DOCS = ROOT / "docs" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1440, "height": 900}
MAX_SHOT_HEIGHT = 2600
DOCS_SHOT_HEIGHT = 1400


def _chromium() -> str:
    for candidate in (os.environ.get("PALISADE_CHROMIUM"), "/usr/bin/chromium",
                      shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.path.exists(candidate):
            return candidate
    reason = ("Debian's chromium is not installed (apt-get install chromium); "
              "Playwright cannot download its own browser here")
    if os.environ.get("CI") == "true":
        pytest.fail(reason + "; CI=true requires it")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium_path() -> str:
    return _chromium()


@pytest.fixture(scope="module")
def live(chromium_path, tmp_path_factory):
    with LiveConsole(tmp_path_factory.mktemp("console"), scale=0.2) as live:
        yield live


@pytest.fixture(scope="module")
def browser(chromium_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    pw = sync_api.sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield b
        b.close()
    finally:
        pw.stop()


class Watch:
    """Everything a page says that it should not: dialogs, errors, console errors."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def attach(self, page) -> None:
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("console", self._console)

    def _dialog(self, dialog) -> None:
        self.problems.append(f"dialog {dialog.type}: {dialog.message}")
        dialog.dismiss()

    def _console(self, msg) -> None:
        if msg.type == "error":
            self.problems.append(f"console error: {msg.text}")


def _context(browser, live, token: str | None, watch: Watch):
    ctx = browser.new_context(viewport=VIEWPORT, accept_downloads=True,
                              base_url=live.url)
    ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.url)
    page = ctx.new_page()
    page.set_default_timeout(15_000)
    watch.attach(page)
    if token:
        login(page, token)
    return ctx, page


def login(page, token: str) -> None:
    page.goto("/console/login")
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/console/$"))


@pytest.fixture
def watch():
    w = Watch()
    yield w
    assert w.problems == []


@pytest.fixture
def page(browser, live, watch):
    ctx, page = _context(browser, live, OPERATOR_TOKEN, watch)
    yield page
    ctx.close()


@pytest.fixture
def viewer_page(browser, live, watch):
    ctx, page = _context(browser, live, VIEWER_TOKEN, watch)
    yield page
    ctx.close()


def shot(page, name: str) -> None:
    """Save a screenshot as a test artifact (long pages are cut at MAX_SHOT_HEIGHT)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    height = page.evaluate("document.documentElement.scrollHeight")
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True,
                    clip={"x": 0, "y": 0, "width": VIEWPORT["width"],
                          "height": min(height, MAX_SHOT_HEIGHT)})
    if os.environ.get("PALISADE_DOCS_SCREENSHOTS") == "1":
        # The README's copies show the first screen and a half: smaller files in git.
        DOCS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS / f"{name}.png"), full_page=True,
                        clip={"x": 0, "y": 0, "width": VIEWPORT["width"],
                              "height": min(height, DOCS_SHOT_HEIGHT)})


def api(live, path: str, **params) -> dict:
    """The JSON API, with the operator's bearer token (what the page must agree with)."""
    query = "&".join(f"{k}={urllib.request.quote(str(v))}" for k, v in params.items())
    req = urllib.request.Request(f"{live.url}{path}" + (f"?{query}" if query else ""),
                                 headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        body = resp.read().decode()
    return json.loads(body) if resp.headers.get_content_type().endswith("json") else body


def ids(page, attr: str) -> list[int]:
    return [int(x) for x in page.locator(f"[data-{attr}]").evaluate_all(
        f"els => els.map(e => e.dataset.{attr})")]


def query_of(page) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(page.url).query))


def assert_attacks_match_api(page, live) -> dict[str, str]:
    """The attacks the page lists are the API's for the filters in the page's URL."""
    q = query_of(page)
    expected = [a["id"] for a in api(live, "/api/v1/attacks", limit=50, **q)["items"]]
    assert ids(page, "attack") == expected, q
    return q


def wait_charts(page, n: int) -> None:
    """Until n charts are drawn (console.js marks each; no page-side eval, which CSP bars)."""
    page.locator(".drawn").nth(n - 1).wait_for(state="attached")


# -- every page -------------------------------------------------------------------------------
def test_every_page_loads_with_data(browser, live, watch):
    ctx, page = _context(browser, live, None, watch)
    page.goto("/console/attacks")
    assert "/console/login" in page.url
    shot(page, "login")
    login(page, OPERATOR_TOKEN)

    wait_charts(page, 1)
    assert page.locator("#timeline .point").count() > 0
    detections = page.locator(".stat-value").first.inner_text().replace("\u202f", "")
    assert int(detections) > 0
    assert page.get_by_text("Top attackers").is_visible()
    assert page.locator(".patterns tbody tr").count() > 3
    shot(page, "statistics")

    page.goto("/console/attacks")
    assert len(ids(page, "attack")) == 50
    shot(page, "attacks")

    # An attack worth showing: the most confident scraper seen over a few requests.
    scrapers = api(live, "/api/v1/attacks", type="scraping", limit=200)["items"]
    best = max((a for a in scrapers if a["has_detail"]),
               key=lambda a: ((a["ttd_requests"] or 0) >= 10, a["confidence"]))
    page.goto(f"/console/attacks/{best['id']}")
    wait_charts(page, 3)
    assert page.locator(".chart-heat").count() == 3
    shot(page, "attack")

    page.goto("/console/sessions")
    assert len(ids(page, "session")) == 50
    shot(page, "sessions")

    page.goto(f"/console/attacks/{best['id']}")
    page.click("#explore-sessions")
    page.wait_for_url(re.compile(r".*/console/sessions/\d+"))
    assert page.locator("[data-request]").count() > 0
    wait_charts(page, 1)
    shot(page, "session")

    page.goto("/console/lists")
    assert page.locator("#entries-table tbody tr").count() > 0
    assert page.locator("#history-table tbody tr").count() > 0
    shot(page, "lists")

    page.goto("/console/nodes")
    rows = page.locator("#nodes-table tbody tr")
    assert rows.count() == 2
    assert "connected" in rows.nth(0).inner_text() and "stale" in rows.nth(1).inner_text()
    assert page.locator(".profile").count() >= 1
    shot(page, "nodes")
    ctx.close()


# -- drill-downs and filters ------------------------------------------------------------------
def test_statistics_drill_down_to_the_filtered_attacks(page, live):
    page.goto("/console/")
    wait_charts(page, 1)
    # A top attacker.
    ip = page.locator("table a.mono").first.inner_text()
    page.locator("table a.mono").first.click()
    page.wait_for_url(re.compile(r".*/console/attacks\?"))
    assert assert_attacks_match_api(page, live)["ip"] == ip

    # A bar of the timeline: that day's attacks of that type.
    page.goto("/console/")
    wait_charts(page, 1)
    bars = page.locator("#timeline .point path")
    heights = bars.evaluate_all("els => els.map(e => e.getBoundingClientRect().height)")
    bars.nth(heights.index(max(heights))).click(force=True)
    page.wait_for_url(re.compile(r".*/console/attacks\?.*type="))
    q = assert_attacks_match_api(page, live)
    assert {"type", "since", "until"} <= set(q)
    assert len(ids(page, "attack")) > 0
    for badge in page.locator("#attacks-table tbody .bot").all_inner_texts():
        assert badge == page.locator("select[name=type] option:checked").inner_text()

    # A behavioural pattern (detector), a bot-type chip, a target application.
    for selector, key in ((".patterns tbody tr td:first-child a", "detector"),
                          (".type-chips a:not(.chip-zero)", "type"),
                          ("text=Applications >> xpath=following::table[1]//a", "app")):
        page.goto("/console/")
        page.locator(selector).first.click()
        page.wait_for_url(re.compile(rf".*/console/attacks\?.*{key}="))
        assert key in assert_attacks_match_api(page, live)
        assert len(ids(page, "attack")) > 0


def test_attack_filters_in_the_form(page, live):
    page.goto("/console/attacks")
    page.select_option("select[name=type]", "scraping")
    page.click("text=Apply")
    page.wait_for_url(re.compile(r".*type=scraping"))
    assert query_of(page) == {"type": "scraping"}          # empty fields stay out of the URL
    assert_attacks_match_api(page, live)
    assert set(page.locator("#attacks-table tbody .bot").all_inner_texts()) == {"Scraping"}

    ip = api(live, "/api/v1/attacks", type="scraping")["items"][0]["ip"]
    page.fill("input[name=ip]", ip)
    page.fill("input[name=since]", form_time(live.now - 7200))
    page.click("text=Apply")
    page.wait_for_url(re.compile(r".*ip="))
    q = assert_attacks_match_api(page, live)
    assert q["ip"] == ip and q["type"] == "scraping" and "since" in q
    assert len(ids(page, "attack")) >= 1

    page.click(".presets >> text=24 h")
    assert "since" in assert_attacks_match_api(page, live)

    page.goto("/console/attacks?ip=not-an-ip&type=scraping")
    assert page.get_by_text("IP: expected an IP address").is_visible()
    assert set(page.locator("#attacks-table tbody .bot").all_inner_texts()) == {"Scraping"}


def test_attack_detail_heatmaps_explore_and_back(page, live):
    items = api(live, "/api/v1/attacks", limit=200)["items"]
    a = max((x for x in items if x["has_detail"] and x["session"]),
            key=lambda x: x["confidence"])
    page.goto(f"/console/attacks/{a['id']}")
    wait_charts(page, 3)
    for kind in ("performance", "behavior", "http_errors"):
        chart = page.locator(f"#heatmap-{kind}")
        assert chart.locator(".point").count() >= 1
        assert "this bot" in chart.inner_text()
    assert page.locator("table.detectors tbody tr").count() >= 1
    page.click("#explore-sessions")
    page.wait_for_url(re.compile(r".*/console/sessions/\d+"))
    sid = int(urlsplit(page.url).path.rsplit("/", 1)[1])
    session = api(live, f"/api/v1/sessions/{sid}")
    assert session["session_id"] == a["session"] and session["app"] == a["app"]
    page.locator(".explore-attack").first.click()
    page.wait_for_url(re.compile(r".*/console/attacks/\d+$"))
    back = int(urlsplit(page.url).path.rsplit("/", 1)[1])
    assert back in [x["id"] for x in session["attacks"]]

    # A bubble opens that bot's attack.
    page.goto(f"/console/attacks/{a['id']}")
    wait_charts(page, 3)
    page.locator("#heatmap-behavior path.point").last.click(force=True)
    page.wait_for_url(re.compile(r".*/console/attacks/\d+$"))


def test_expired_detail_says_not_enough_data(page, live):
    old = api(live, "/api/v1/attacks", until=int(live.now - 32 * 86400), limit=1)["items"]
    assert old, "the demo data has attacks older than the 31 days of detail"
    page.goto(f"/console/attacks/{old[0]['id']}")
    assert page.get_by_text("Not enough data").first.is_visible()
    assert page.locator(".chart-heat").count() == 0


def test_sessions_filters_copy_link_and_csv(page, live):
    records = [i["data"] for i in live.items if i["kind"] == "record"]
    ip, _ = Counter(r["ip"] for r in records if not r.get("blocked")).most_common(1)[0]
    page.goto("/console/sessions")
    page.fill("input[name=ip]", ip)
    page.click("text=Apply")
    page.wait_for_url(re.compile(r".*ip="))
    assert query_of(page) == {"ip": ip}
    shown = ids(page, "session")
    assert shown == [s["id"] for s in api(live, "/api/v1/sessions", ip=ip, limit=50)["items"]]
    assert set(page.locator("#sessions-table tbody tr td:nth-child(2)").all_inner_texts()) \
        == {ip}

    # By request id: exactly the session that holds it.
    rec = records[len(records) // 2]
    page.goto(f"/console/sessions?request_id={rec['id']}")
    (sid,) = ids(page, "session")
    page.click(f"[data-session='{sid}'] a")
    assert page.locator(f"[data-request='{rec['id']}']").count() == 1 or \
        api(live, f"/api/v1/sessions/{sid}")["requests"] > 100

    # By time range: sessions active in it.
    since, until = form_time(live.now - 1800), form_time(live.now - 1200)
    page.goto("/console/sessions")
    page.fill("input[name=since]", since)
    page.fill("input[name=until]", until)
    page.click("text=Apply")
    page.wait_for_url(re.compile(r".*until="))
    assert ids(page, "session") == [s["id"] for s in api(
        live, "/api/v1/sessions", since=since, until=until, limit=50)["items"]]

    # In one session: filters, its statistics, the copied link, the CSV.
    big = max(api(live, "/api/v1/sessions", limit=200)["items"],
              key=lambda s: (sum(v for k, v in s["statuses"].items() if k.startswith("4"))
                             if s["requests"] <= 100 else 0))
    page.goto(f"/console/sessions/{big['id']}")
    page.select_option("select[name=status]", "4xx")
    page.click("text=Filter")
    page.wait_for_url(re.compile(r".*status=4xx"))
    statuses = page.locator("#requests-table tbody td:nth-child(5)").all_inner_texts()
    assert statuses and all(s.startswith("4") for s in statuses)
    stats = page.locator("#session-stats").inner_text()
    assert re.search(rf"REQUESTS\s*{len(statuses)}\b", stats, re.I), stats

    page.click("[data-copy-link]")
    page.locator("[data-copy-link]", has_text="Link copied").wait_for()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == page.url and "status=4xx" in copied
    page.goto(copied)
    assert page.locator("select[name=status] option:checked").inner_text() == "4xx"

    with page.expect_download() as dl:
        page.click("#download-csv")
    text = Path(dl.value.path()).read_bytes().decode("utf-8")   # CSV lines end in CRLF
    assert text == api(live, f"/api/v1/sessions/{big['id']}/requests.csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    requests = api(live, f"/api/v1/sessions/{big['id']}/requests", limit=500)["items"]
    assert [r["request_id"] for r in rows] == [r["request_id"] for r in requests]
    assert len(rows) == api(live, f"/api/v1/sessions/{big['id']}")["stats"]["stored_requests"]


# -- actions ----------------------------------------------------------------------------------
def _listed(live, lst: str, cidr: str) -> dict | None:
    items = api(live, f"/api/v1/lists/{lst}", q=cidr.split("/")[0])["items"]
    return next((e for e in items if e["cidr"] == cidr), None)


def test_operator_actions_change_the_ip_lists(page, live):
    items = api(live, "/api/v1/attacks", type="api_abuse", limit=100)["items"] or \
        api(live, "/api/v1/attacks", limit=100)["items"]
    a = next(x for x in items if not x["false_positive"])
    page.goto(f"/console/attacks/{a['id']}")
    page.select_option("form:has(#action-deny) select[name=duration]", "3600")
    page.click("#action-deny")
    page.wait_for_url(re.compile(rf".*/console/attacks/{a['id']}$"))
    assert page.get_by_text(f"{a['ip']} added to the deny list.").is_visible()
    entry = _listed(live, "deny", a["ip"])
    assert entry and entry["source"] == "manual" and entry["who"] == "alice"
    assert 3500 < entry["expires"] - entry["created"] <= 3600

    page.click("#action-exception")
    assert page.get_by_text(f"{a['ip']} added to the exception list.").is_visible()
    assert _listed(live, "exception", a["ip"])["expires"] is None

    page.fill("form:has(#action-fp) input[name=reason]", "our own load test")
    page.click("#action-fp")
    assert page.get_by_text("Marked as a false positive").first.is_visible()
    assert api(live, f"/api/v1/attacks/{a['id']}")["false_positive"] is True

    page.goto("/console/lists?list=gray")
    page.fill("#add-entry input[name=cidr]", "198.51.100.0/25")
    page.select_option("#add-entry select[name=list]", "gray")
    page.fill("#add-entry input[name=reason]", "suspicious partner range")
    page.click("#add-entry button[type=submit]")
    row = page.locator("#entries-table tr[data-cidr='198.51.100.0/25']")
    assert row.count() == 1 and _listed(live, "gray", "198.51.100.0/25")
    row.locator("button.remove").click()
    assert page.get_by_text("198.51.100.0/25 removed from the gray list.").is_visible()
    assert _listed(live, "gray", "198.51.100.0/25") is None
    page.goto("/console/lists?list=gray&cidr=198.51.100.0/25")
    ops = page.locator("#history-table tbody td:nth-child(2)").all_inner_texts()
    assert ops[:2] == ["removed", "added"]


def test_viewer_sees_everything_and_changes_nothing(viewer_page, live, watch):
    page = viewer_page
    a = api(live, "/api/v1/attacks", limit=1)["items"][0]
    page.goto(f"/console/attacks/{a['id']}")
    assert page.locator("#action-deny, #action-exception, #action-fp").count() == 0
    assert page.get_by_text("actions need an operator token").is_visible()
    page.goto("/console/lists")
    assert page.locator("#add-entry, button.remove").count() == 0
    # A hand-made POST with the viewer's own valid CSRF token is still refused.
    status = page.evaluate("""async () => {
        const csrf = document.querySelector("input[name=csrf]").value;
        const body = new URLSearchParams({csrf, list: "deny", cidr: "10.66.66.66"});
        const r = await fetch("/console/lists/add", {method: "POST", body});
        return r.status;
    }""")
    assert status == 403
    assert _listed(live, "deny", "10.66.66.66") is None
    # The browser logs the refused request; that one error is the point of this test.
    refused = [p for p in watch.problems if "status of 403" in p]
    assert len(refused) == 1
    watch.problems.remove(refused[0])


# -- hostile input ----------------------------------------------------------------------------
@pytest.mark.parametrize("csp", ["enforced", "bypassed"])
def test_script_payloads_in_records_execute_nothing(browser, live, watch, csp):
    """With the CSP, and without it: escaping alone must keep the payloads inert."""
    attacks = api(live, "/api/v1/attacks", ip=HOSTILE_IP)["items"]
    assert attacks, "the hostile scanner is detected"
    sessions = api(live, "/api/v1/sessions", ip=HOSTILE_IP)["items"]
    assert sessions
    ctx = browser.new_context(viewport=VIEWPORT, base_url=live.url,
                              bypass_csp=csp == "bypassed")
    page = ctx.new_page()
    page.set_default_timeout(15_000)
    watch.attach(page)
    page.add_init_script("window.__pwned = 0; window.alert = () => { window.__pwned++; };")
    login(page, OPERATOR_TOKEN)
    paths = ["/console/", f"/console/attacks?ip={HOSTILE_IP}",
             f"/console/attacks/{attacks[0]['id']}", f"/console/sessions?ip={HOSTILE_IP}",
             f"/console/sessions/{sessions[0]['id']}",
             f"/console/sessions/{sessions[0]['id']}?status=4xx",
             f"/console/lists?list=deny&q={HOSTILE_IP}", "/console/lists?list=deny"]
    for path in paths:
        page.goto(path)
        page.wait_for_load_state("networkidle")
        if page.locator("[data-chart]").count():
            wait_charts(page, page.locator("[data-chart]").count())
        dom = page.evaluate("""() => ({
            imgs: document.querySelectorAll("img").length,
            handlers: document.querySelectorAll("[onload], [onerror], [onclick]").length,
            iframes: document.querySelectorAll("iframe").length,
            scripts: [...document.scripts].filter(
                s => !(s.type === "application/json" || s.src.includes("/console/static/"))
            ).length,
            jsLinks: [...document.querySelectorAll("a[href]")].filter(
                a => a.href.trim().toLowerCase().startsWith("javascript:")).length,
            pwned: window.__pwned,
        })""")
        assert dom == {"imgs": 0, "handlers": 0, "iframes": 0, "scripts": 0, "jsLinks": 0,
                       "pwned": 0}, (path, dom)

    # The payloads are shown, as text.
    page.goto(f"/console/sessions/{sessions[0]['id']}")
    assert page.get_by_text(HOSTILE_UA).first.is_visible()
    assert page.locator(f"td.path:has-text('{HOSTILE_PATHS[0][:12]}')").count() >= 1
    # Chart hover labels carry paths too: plotly must show them as text.
    if page.locator("#session-scatter").count():
        wait_charts(page, 1)
        page.locator("#session-scatter path.point").first.hover(force=True)
        page.wait_for_timeout(300)
    assert page.locator("img, iframe").count() == 0
    assert page.evaluate("window.__pwned") == 0
    ctx.close()
