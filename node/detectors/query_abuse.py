"""Query abuse: many requests that keep the same endpoint and parameter names and vary the
values (paging through everything, trying every search term or id): the shape of a loop.

Per request O(1): hash of (endpoint, parameter names in order) compared with the previous
request's; a request with the same shape but a different query string counts as "varied".
"""

from functools import lru_cache

from node.detectors.base import Detector, Finding, Param

_MAX_Q = 1024


@lru_cache(maxsize=4096)          # keys cut to _MAX_Q: at most 4 MiB held
def _names(q: str) -> str:
    """`q=a&page=2` → `q&page`: parameter names make the shape; a bare token (`/?8890121518`,
    a cache buster) is a value too."""
    if "&" not in q:
        i = q.find("=")
        return q[:i] if i >= 0 else ""
    return "&".join([p[:p.find("=")] if "=" in p else "" for p in q.split("&")])


def _shape(template: str, query: str) -> int:
    return hash((template, _names(query[:_MAX_Q])))


class QueryAbuse(Detector):
    name = "query_abuse"
    title = "Query abuse"
    specificity = 3
    votes = {"api_abuse": 1.5, "scraping": 1.0}
    params = {"max_varied": Param(30, "int", minimum=3),
              "min_share": Param(0.4, maximum=1.0),
              "min_varied": Param(10, "int", minimum=3),
              "loop_share": Param(0.8, maximum=1.0)}
    slots = ("shape", "query", "varied")
    observes_query = True

    def observe(self, ev):
        q = ev.query                       # clock values are one placeholder
        shape = _shape(ev.template, q)
        qh = hash(q)
        b = self.base
        for a in (ev.session, ev.ip):      # the counters in place: this runs per query
            ext = a.ext
            if ext is None:
                ext = a.ext = [0] * self.ctx.ext_size
            if ext[b] == shape and ext[b + 1] != qh:
                ext[b + 2] += 1
            ext[b] = shape
            ext[b + 1] = qh
        return False

    def evaluate(self, actor, ev):
        if actor.n_query < 10:
            return None
        varied = int(self.get(actor, 2))
        share = varied / actor.n
        limit = self.p["max_varied"]
        if varied > limit and share >= self.p["min_share"]:
            strength = min(1.0, 0.5 + (varied - limit) / limit)
        elif varied >= self.p["min_varied"] and share >= self.p["loop_share"]:
            strength = 0.5          # a short loop: nearly every request varies one value
        else:
            strength = 0.0
        return Finding(varied, f"< {limit} varied queries", strength)
