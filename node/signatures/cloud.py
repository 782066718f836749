"""Public cloud providers' published address ranges: which provider, if any, an address is at.

A browser's or a mobile app's user agent from a datacenter address is a strong sign of
scraping or harvesting: people do not browse from AWS. The ranges ship as package data
(`node/data/cloud_ranges.txt`: aggregated CIDRs per provider, each section headed with its
source, date and licence) and load once into a `NetMatcher`, so a lookup is a few dict probes
(one per prefix length present), a few microseconds.

Ranges change. `palisade ranges update FILE...` reads the providers' own published files
(AWS ip-ranges.json, Google cloud.json, Azure ServiceTags_Public_*.json, Oracle
public_ip_ranges.json, or a CIDR list / geofeed CSV with `--provider`) into a file of the same
format, and `engine.cloud_ranges: PATH` makes the node load that file instead; a provider not in
an update keeps its packaged ranges.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

from node.errors import InputError
from node.iplists.matcher import NetKey, NetMatcher, format_network, parse_ip, parse_network

DATA_FILE = "cloud_ranges.txt"
_BITS = {4: 32, 6: 128}
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")
_META_KEY = re.compile(r"^[a-z_]{1,16}$")
MAX_FILE_BYTES = 64 * 1024 * 1024   # Azure's ServiceTags file is ~5 MB; refuse a runaway input


@dataclass(slots=True)
class Provider:
    name: str
    networks: list[NetKey]
    meta: dict[str, str] = field(default_factory=dict)   # source, date, via, licence, ...


class CloudRanges:
    """Providers' networks in one matcher: `provider(ip)` → provider name or None."""

    __slots__ = ("matcher", "providers", "source")

    def __init__(self, providers: Iterable[Provider], source: str = "", *,
                 collapse: bool = True) -> None:
        self.providers: dict[str, Provider] = {}
        self.matcher: NetMatcher[str] = NetMatcher()
        self.source = source
        for p in providers:
            if collapse:
                p = Provider(p.name, _collapse(p.networks), p.meta)
            self.providers[p.name] = p
            for key in p.networks:
                self.matcher.set(key, p.name)

    def provider(self, ip: str) -> str | None:
        key = parse_ip(ip)
        return None if key is None else self.matcher.get(key)

    def merged(self, update: Iterable[Provider]) -> CloudRanges:
        """These ranges with each updated provider's networks replaced whole."""
        out = dict(self.providers)
        for p in update:
            out[p.name] = Provider(p.name, _collapse(p.networks), dict(p.meta))
        return CloudRanges(out.values(), self.source, collapse=False)

    def dumps(self) -> str:
        lines = ["# Palisade: public cloud providers' published address ranges "
                 "(node.signatures.cloud).",
                 "# '[provider] key=value ...' starts a section: where and when its ranges "
                 "were published;",
                 "# then one aggregated CIDR a line. Update: palisade ranges update FILE..."]
        for name in sorted(self.providers):
            p = self.providers[name]
            meta = " ".join(f"{k}={re.sub(r'\s+', '_', v)}" for k, v in sorted(p.meta.items()))
            lines.append(f"[{name}]" + (f" {meta}" if meta else ""))
            lines.extend(format_network(k) for k in p.networks)
        return "\n".join(lines) + "\n"

    def summary(self) -> list[str]:
        out = []
        for name in sorted(self.providers):
            p = self.providers[name]
            v4 = sum(1 for k in p.networks if k.version == 4)
            out.append(f"{name}: {v4} IPv4 + {len(p.networks) - v4} IPv6 networks, "
                       f"published {p.meta.get('date', '?')} ({p.meta.get('source', '?')})")
        return out


def _collapse(keys: Iterable[NetKey]) -> list[NetKey]:
    # Non-global networks are nobody's cloud: Vultr's geofeed, for one, lists the
    # documentation ranges (192.0.2.0/24, 2001:db8::/32) among its own.
    nets = [n for n in (ipaddress.ip_network(format_network(k)) for k in keys) if n.is_global]
    out = []
    for version in (4, 6):
        for n in ipaddress.collapse_addresses(x for x in nets if x.version == version):
            out.append(parse_network(str(n)))
    return out


# -- the compact format ------------------------------------------------------------------------
def loads(text: str, source: str = "<text>") -> CloudRanges:
    """Parse the compact format; InputError (one line, `source:line: ...`) on any mistake."""
    providers: list[Provider] = []
    cur: Provider | None = None
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            head, _, rest = line.partition("]")
            name = head[1:].strip()
            if not _NAME.match(name):
                raise InputError(f"{source}:{no}: bad provider name {name!r} (a-z, 0-9, _.-)")
            if any(p.name == name for p in providers):
                raise InputError(f"{source}:{no}: provider {name!r} appears twice")
            meta = {}
            for item in rest.split():
                k, sep, v = item.partition("=")
                if not sep or not _META_KEY.match(k):
                    raise InputError(f"{source}:{no}: expected key=value after [{name}], "
                                     f"got {item!r}")
                meta[k] = v
            cur = Provider(name, [], meta)
            providers.append(cur)
            continue
        if cur is None:
            raise InputError(f"{source}:{no}: a CIDR before any [provider] line")
        cur.networks.append(_network(line, f"{source}:{no}"))
    if not providers:
        raise InputError(f"{source}: no [provider] section: not a cloud ranges file")
    # A file we wrote is already aggregated; a hand-edited one may not be: cheap to check.
    return CloudRanges(providers, source, collapse=not all(_is_collapsed(p.networks)
                                                            for p in providers))


def _is_collapsed(nets: list[NetKey]) -> bool:
    """Sorted and disjoint per address family, v4 first (what `_collapse` gives)."""
    prev: NetKey | None = None
    for k in nets:
        if prev is not None and (k.version < prev.version or k.version == prev.version and
                                 _first(k) <= _last(prev)):
            return False
        prev = k
    return True


def _first(k: NetKey) -> int:
    return k.network << (_BITS[k.version] - k.prefix)


def _last(k: NetKey) -> int:
    return _first(k) | ((1 << (_BITS[k.version] - k.prefix)) - 1)


def _network(text: str, where: str) -> NetKey:
    """`a.b.c.d/n` or `x::/n` → NetKey: inet_pton, ~10x faster than `ipaddress` (a ranges
    file is ~10,000 lines, read at every start); v4-mapped v6 goes the slow, folding way."""
    addr, _, plen = text.strip().partition("/")
    try:
        v6 = ":" in addr
        bits = 128 if v6 else 32
        value = int.from_bytes(socket.inet_pton(socket.AF_INET6 if v6 else socket.AF_INET, addr))
        prefix = int(plen) if plen else bits
        if not 0 <= prefix <= bits or (v6 and value >> 32 == 0xFFFF):
            return parse_network(text)
        return NetKey(6 if v6 else 4, prefix, value >> (bits - prefix))
    except (OSError, ValueError):
        pass
    try:
        return parse_network(text)
    except ValueError:
        raise InputError(f"{where}: {text.strip()[:60]!r} is not an IP network") from None


def load(path: str) -> CloudRanges:
    """A compact ranges file (what `palisade ranges update` writes)."""
    return loads(_read(path), path)


@lru_cache(maxsize=1)
def default_ranges() -> CloudRanges:
    """The packaged ranges, loaded on first use and kept."""
    text = resources.files("node").joinpath("data", DATA_FILE).read_text(encoding="utf-8")
    return loads(text, f"node/data/{DATA_FILE}")


def provider(ip: str, ranges: CloudRanges | None = None) -> str | None:
    """The cloud provider whose published ranges hold `ip` (packaged ranges unless given)."""
    return (ranges or default_ranges()).provider(ip)


def _read(path: str) -> str:
    try:
        if os.path.getsize(path) > MAX_FILE_BYTES:
            raise InputError(f"{path}: larger than {MAX_FILE_BYTES >> 20} MiB")
        with open(path, encoding="utf-8") as f:
            return f.read()
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    except OSError as e:
        raise InputError(f"{path}: {e.strerror or e}") from None


# -- providers' published files ----------------------------------------------------------------
def parse_published(path: str, provider_name: str | None = None) -> list[Provider]:
    """One published file → its provider(s). JSON files say whose they are; a CIDR list or a
    geofeed CSV (first column a CIDR) needs `provider_name`; a compact file gives all its own."""
    providers = _parse_published(path, provider_name)
    for p in providers:
        if not _collapse(p.networks):
            raise InputError(f"{path}: no public networks for {p.name} in it")
    return providers


def _parse_published(path: str, provider_name: str | None) -> list[Provider]:
    text = _read(path)
    mtime = dt.datetime.fromtimestamp(os.path.getmtime(path), dt.UTC).date().isoformat()
    stripped = text.lstrip()
    if stripped.startswith(("{", "[{")):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
        p = _from_json(data, path, mtime)
        if provider_name:
            p.name = _checked_name(provider_name)
        return [p]
    if _is_compact(text):
        return list(loads(text, path).providers.values())
    if not provider_name:
        raise InputError(f"{path}: a CIDR list or CSV does not say whose it is: "
                         "give --provider NAME")
    nets = []
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        first = line.split(",", 1)[0]
        if no == 1 and "/" not in first and not first[:1].isdigit():
            continue                    # a CSV header row
        nets.append(_network(first, f"{path}:{no}"))
    if not nets:
        raise InputError(f"{path}: no networks in it")
    return [Provider(_checked_name(provider_name), nets,
                     {"date": mtime, "source": os.path.basename(path)})]


def _is_compact(text: str) -> bool:
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            return line.startswith("[")
    return False


def _checked_name(name: str) -> str:
    name = name.strip().lower()
    if not _NAME.match(name):
        raise InputError(f"bad provider name {name!r} (a-z, 0-9, _.-, up to 32 characters)")
    return name


def _from_json(data: object, path: str, mtime: str) -> Provider:
    if isinstance(data, dict) and isinstance(data.get("prefixes"), list) and \
            "ipv6_prefixes" in data:
        nets = [*_field(data["prefixes"], "ip_prefix", path),
                *_field(data["ipv6_prefixes"], "ipv6_prefix", path)]
        return Provider("aws", nets, {
            "date": str(data.get("createDate", mtime))[:10],
            "source": "https://ip-ranges.amazonaws.com/ip-ranges.json"})
    if isinstance(data, dict) and isinstance(data.get("prefixes"), list):
        prefixes = data["prefixes"]
        if not any(isinstance(p, dict) and "service" in p for p in prefixes):
            raise InputError(f"{path}: prefixes without a service: not Google's cloud.json "
                             "(goog.json and crawler lists such as googlebot.json are not "
                             "cloud customers' ranges)")
        nets = [*_field(prefixes, "ipv4Prefix", path), *_field(prefixes, "ipv6Prefix", path)]
        return Provider("gcp", nets, {
            "date": str(data.get("creationTime", mtime))[:10],
            "source": "https://www.gstatic.com/ipranges/cloud.json"})
    if isinstance(data, dict) and isinstance(data.get("values"), list):
        nets = []
        for v in data["values"]:
            props = v.get("properties") if isinstance(v, dict) else None
            prefixes = props.get("addressPrefixes") if isinstance(props, dict) else None
            if not isinstance(prefixes, list):
                raise InputError(f"{path}: a ServiceTags value without "
                                 "properties.addressPrefixes")
            nets.extend(_network(str(x), path) for x in prefixes)
        return Provider("azure", nets, {
            "date": mtime, "change": str(data.get("changeNumber", "?")),
            "source": "https://www.microsoft.com/en-us/download/details.aspx?id=56519"})
    if isinstance(data, dict) and isinstance(data.get("regions"), list):
        nets = []
        for r in data["regions"]:
            cidrs = r.get("cidrs") if isinstance(r, dict) else None
            if not isinstance(cidrs, list):
                raise InputError(f"{path}: an Oracle region without cidrs")
            nets.extend(_field(cidrs, "cidr", path))
        return Provider("oracle", nets, {
            "date": str(data.get("last_updated_timestamp", mtime))[:10],
            "source": "https://docs.oracle.com/iaas/tools/public_ip_ranges.json"})
    raise InputError(f"{path}: not a known published ranges file (AWS ip-ranges.json, Google "
                     "cloud.json, Azure ServiceTags, Oracle public_ip_ranges.json)")


def _field(items: list, key: str, path: str) -> list[NetKey]:
    out = []
    for item in items:
        if isinstance(item, dict) and key in item:
            out.append(_network(str(item[key]), path))
    return out


def write(ranges: CloudRanges, path: str) -> None:
    """Write atomically: a node reading the file never sees half of it."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(ranges.dumps())
    os.replace(tmp, path)
