"""Plotly figures as plain dicts (plotly.js draws them; no plotly Python objects needed).

Figures travel to the page as JSON inside `<script type="application/json">` (escaped with
jinja's `tojson`) and are drawn by static/console.js. Plotly renders a subset of HTML in text
and hover labels, so every string that could come from traffic is HTML-escaped here first;
drill-down targets travel in `customdata` as console URLs built on the server.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape
from typing import Any

from node.console.fmt import BOT_COLORS, BOT_LABELS, utc
from node.control.storage.base import BOT_TYPES, DAY

FONT = {"family": "Inter, system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
        "size": 12, "color": "#334155"}
GRID = "#e2e8f0"
# Pale (less bot-like) to deep red (more); plotly's own "YlOrRd" runs the other way round.
HEAT = [[0.0, "#fef3c7"], [0.35, "#fbbf24"], [0.7, "#f97316"], [1.0, "#b91c1c"]]


def text(value: Any) -> str:
    """A string safe for plotly's text / hover rendering (it parses a subset of HTML)."""
    return escape(str(value), quote=True)


def _layout(**kw: Any) -> dict[str, Any]:
    base = {"font": FONT, "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)",
            "margin": {"l": 48, "r": 16, "t": 16, "b": 40},
            "hoverlabel": {"bgcolor": "#0f172a", "bordercolor": "#0f172a",
                           "font": {"color": "#f8fafc", "family": FONT["family"]}}}
    base.update(kw)
    return base


def timeline(stats: dict[str, Any], drill: Callable[[str, float, float], str]
             ) -> dict[str, Any]:
    """30-day stacked bars of detections per bot type; a bar opens that day's attacks."""
    days = stats["timeline"]
    x = [d["date"] for d in days]
    data = []
    for t in BOT_TYPES:
        ys = [d["by_type"].get(t, 0) for d in days]
        if not any(ys):
            continue
        data.append({
            "type": "bar", "name": BOT_LABELS[t], "x": x, "y": ys,
            "marker": {"color": BOT_COLORS[t]},
            "customdata": [drill(t, d["day"] * DAY, (d["day"] + 1) * DAY) for d in days],
            "hovertemplate": f"%{{x|%b %d}} · {text(BOT_LABELS[t])}: <b>%{{y}}</b>"
                             "<extra></extra>",
        })
    return {"data": data, "layout": _layout(
        barmode="stack", height=300, bargap=0.25, showlegend=False,
        xaxis={"type": "date", "gridcolor": GRID, "tickformat": "%b %d", "fixedrange": True},
        yaxis={"gridcolor": GRID, "title": {"text": "detections"}, "fixedrange": True,
               "rangemode": "tozero"},
        margin={"l": 56, "r": 16, "t": 12, "b": 36}),
        "config": {"displayModeBar": False}}


# The three heatmaps (issue 6): each draws four features as x, y, bubble size and colour,
# oriented so that further up-right, bigger and redder all mean "more like a bot".
HEATMAPS: dict[str, dict[str, Any]] = {
    "performance": {
        "title": "Performance",
        "x": ("rps", "Requests per second", "log"),
        "y": ("regularity", "Interval regularity (1 − CV)", "linear"),
        "size": ("non_uniqueness", "Request non-uniqueness"),
        "color": ("scheduled", "Scheduled requests"),
    },
    "behavior": {
        "title": "Behavior",
        "x": ("suspicious_behavior", "Suspicious behavior score", "linear"),
        "y": ("critical_sensitive_use", "Critical / sensitive endpoint use", "linear"),
        "size": ("rps", "Requests per second"),
        "color": ("detectors_count", "Detectors fired"),
    },
    "http_errors": {
        "title": "HTTP errors",
        "x": ("distinct_endpoints", "Distinct endpoints", "log"),
        "y": ("error_responses", "Error responses", "log"),
        "size": ("rps", "Requests per second"),
        "color": ("unsafe_requests", "Unsafe requests"),
    },
}
FEATURE_LABELS = {
    "rps": "Requests per second", "request_interval_cv": "Request interval CV",
    "non_uniqueness": "Request non-uniqueness", "scheduled": "Scheduled requests",
    "suspicious_behavior": "Suspicious behavior score",
    "critical_sensitive_use": "Critical / sensitive endpoint use",
    "detectors_count": "Detectors fired", "distinct_endpoints": "Distinct endpoints",
    "unsafe_requests": "Unsafe requests", "error_responses": "Error responses",
}


def _value(features: dict[str, Any], name: str) -> float | None:
    if name == "regularity":   # lower interval CV = more regular = more bot-like
        cv = _finite(features.get("request_interval_cv"))
        return None if cv is None else max(0.0, 1.0 - min(cv, 1.0))
    return _finite(features.get(name))


def _finite(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return float(v)


def heatmap(kind: str, this: dict[str, Any], peers: Sequence[dict[str, Any]],
            attack_url: Callable[[int], str]) -> dict[str, Any] | None:
    """One bubble chart: this bot (outlined, labelled, drawn last so it is on top) among up
    to 30 peers of the same application in the last 24 h. None when no bot has features."""
    spec = HEATMAPS[kind]
    names = [spec["x"][0], spec["y"][0], spec["size"][0], spec["color"][0]]
    rows = []
    for b in [*peers, this]:
        features = b.get("features") or {}
        if not features:      # nothing to place it by (a node that sends no features)
            continue
        # A feature a detection lacks is one its detectors did not measure: 0.
        rows.append((b, [_value(features, n) or 0.0 for n in names]))
    if not rows:
        return None
    has_this = rows[-1][0] is this
    xs, ys, ss, cs = ([r[1][i] for r in rows] for i in range(4))
    spots = len(set(zip(xs, ys, strict=True)))
    axes = {axis: _axis(spec[axis][1], spec[axis][2], vals)
            for axis, vals in (("x", xs), ("y", ys))}
    smax = max(ss) or 1.0
    sizes = [14 + 36 * math.sqrt(max(s, 0.0) / smax) for s in ss]
    cmin, cmax = min(cs), max(cs)
    if cmax == cmin:
        cmax = cmin + 1.0
    widths = [1.0] * len(rows)
    if has_this:
        widths[-1] = 3.0
    data = [{
        "type": "scatter", "mode": "markers",
        "x": xs, "y": ys, "text": [_hover(b, names) for b, _ in rows],
        "hovertemplate": "%{text}<extra></extra>",
        "customdata": [attack_url(int(b["id"])) for b, _ in rows],
        "marker": {"size": sizes, "color": cs, "cmin": cmin, "cmax": cmax,
                   "colorscale": HEAT, "opacity": 0.8,
                   "line": {"color": ["#0f172a" if w > 1 else "rgba(15,23,42,0.35)"
                                      for w in widths], "width": widths}},
        "showlegend": False,
    }]
    annotations = []
    if has_this:
        annotations.append({"x": _axis_pos(xs[-1], axes["x"]),
                            "y": _axis_pos(ys[-1], axes["y"]),
                            "text": "this bot", "showarrow": True, "arrowhead": 0, "ax": 0,
                            "ay": -34, "font": {"size": 11, "color": "#0f172a"},
                            "bgcolor": "#ffffff", "bordercolor": "#0f172a",
                            "borderpad": 3})
    layout = _layout(height=330, xaxis=axes["x"], yaxis=axes["y"], annotations=annotations,
                     margin={"l": 60, "r": 16, "t": 16, "b": 48})
    return {"data": data, "layout": layout,
            "config": {"displayModeBar": False},
            "legend": {"size": spec["size"][1], "color": spec["color"][1],
                       "bots": len(rows), "overlap": len(rows) - spots}}


def _axis(label: str, scale: str, vals: list[float]) -> dict[str, Any]:
    """An axis for `vals` (changed in place: zeros on a log axis sit at its floor, the
    hover text keeps the true value)."""
    out: dict[str, Any] = {"title": {"text": label}, "gridcolor": GRID, "zeroline": False,
                           "type": "linear"}
    pos = [v for v in vals if v > 0]
    if scale == "log" and pos and max(pos) / min(pos) >= 20:   # spans decades
        out["type"] = "log"
        floor = min(pos) / 2
        vals[:] = [v if v > 0 else floor for v in vals]
    elif max(vals) == min(vals):
        # One value for all: plotly would centre it in [v-1, v+1]; these features are never
        # negative, so start at 0 (with room for the bubble).
        top = max(1.0, 1.5 * max(vals))
        out["range"] = [-0.2 * top, 1.2 * top]
    return out


def _hover(b: dict[str, Any], names: list[str]) -> str:
    f = b.get("features") or {}
    lines = [f"<b>{text(b['ip'])}</b> · {text(BOT_LABELS.get(b['bot_type'], b['bot_type']))}"
             f" · {float(b.get('confidence') or 0) * 100:.0f}%"]
    for n in FEATURE_LABELS:
        if n in names or (n == "request_interval_cv" and "regularity" in names):
            v = _finite(f.get(n))
            lines.append(f"{FEATURE_LABELS[n]}: {'—' if v is None else f'{v:g}'}")
    return "<br>".join(lines)


def _axis_pos(v: float, axis: dict[str, Any]) -> float:
    # Annotations on a log axis are placed in log10 units.
    return math.log10(v) if axis["type"] == "log" and v > 0 else v


SCATTER_POINTS = 1500
STATUS_COLORS = {"2": "#16a34a", "3": "#0891b2", "4": "#d97706", "5": "#dc2626"}


def session_scatter(rows: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """A session's requests over time: y = time ms, bubble = response size, colour = status
    class; requests marked as attack evidence get a dark outline. None when fewer than two
    requests reached the API (blocked ones are left out)."""
    # The node's own 403s say nothing about the API's time or size: not drawn.
    pts = [r for r in rows if r.get("duration_ms") is not None and not r.get("blocked")]
    if len(pts) < 2:
        return None
    if len(pts) > SCATTER_POINTS:   # an even sample keeps the SVG quick to draw
        step = len(pts) / SCATTER_POINTS
        pts = [pts[int(i * step)] for i in range(SCATTER_POINTS)]
    by_class: dict[str, list[dict[str, Any]]] = {}
    for r in pts:
        by_class.setdefault(str(r["status"])[:1], []).append(r)
    smax = max((r["resp_bytes"] for r in pts), default=1) or 1
    data = []
    for cls in sorted(by_class):
        rs = by_class[cls]
        data.append({
            "type": "scatter", "mode": "markers",
            "name": f"{cls}xx",
            "x": [utc(r["ts"]) for r in rs], "y": [r["duration_ms"] for r in rs],
            "text": [f"#{r['n']} {text(r['method'])} {text(_short(r['path']))}<br>"
                     f"status {r['status']} · {r['resp_bytes']} B" for r in rs],
            "hovertemplate": "%{text}<br>%{y:.1f} ms<extra></extra>",
            "marker": {"color": STATUS_COLORS.get(cls, "#64748b"), "opacity": 0.75,
                       "size": [6 + 18 * math.sqrt(r["resp_bytes"] / smax) for r in rs],
                       "line": {"color": ["#0f172a" if r.get("attack") else "rgba(0,0,0,0)"
                                          for r in rs], "width": 1.5}},
        })
    return {"data": data, "layout": _layout(
        height=240, legend={"orientation": "h", "y": 1.15, "x": 0},
        xaxis={"gridcolor": GRID, "type": "date"},
        yaxis={"gridcolor": GRID, "title": {"text": "time ms"}, "type": "log",
               "tickformat": "~g"},
        margin={"l": 56, "r": 16, "t": 28, "b": 36}),
        "config": {"displayModeBar": False}}


def _short(path: str, limit: int = 80) -> str:
    return path if len(path) <= limit else path[:limit - 1] + "…"
