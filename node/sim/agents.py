"""User agents and addresses the simulated actors use.

Browser versions are those current in late 2025 (the default scenario starts 2025-11-23):
Chrome/Edge 142, Firefox 145 (ESR 140), Safari 26. Weights follow a typical shop's mix.
"""

from __future__ import annotations

import ipaddress
import random

_WIN = "Windows NT 10.0; Win64; x64"
_MAC = "Macintosh; Intel Mac OS X 10_15_7"
_CHROME = "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36"

# (weight, user agent)
DESKTOP: tuple[tuple[int, str], ...] = (
    (22, f"Mozilla/5.0 ({_WIN}) " + _CHROME.format(v=142)),
    (5, f"Mozilla/5.0 ({_WIN}) " + _CHROME.format(v=141)),
    (8, f"Mozilla/5.0 ({_MAC}) " + _CHROME.format(v=142)),
    (2, "Mozilla/5.0 (X11; Linux x86_64) " + _CHROME.format(v=142)),
    (6, f"Mozilla/5.0 ({_WIN}) " + _CHROME.format(v=142) + " Edg/142.0.0.0"),
    (1, f"Mozilla/5.0 ({_WIN}) " + _CHROME.format(v=141) + " Edg/141.0.0.0"),
    (4, f"Mozilla/5.0 ({_WIN}; rv:145.0) Gecko/20100101 Firefox/145.0"),
    (1, f"Mozilla/5.0 ({_WIN}; rv:144.0) Gecko/20100101 Firefox/144.0"),
    (1, f"Mozilla/5.0 ({_WIN}; rv:140.0) Gecko/20100101 Firefox/140.0"),
    (1, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:145.0) Gecko/20100101 Firefox/145.0"),
    (1, "Mozilla/5.0 (X11; Linux x86_64; rv:145.0) Gecko/20100101 Firefox/145.0"),
    (1, "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:145.0) Gecko/20100101 Firefox/145.0"),
    (5, f"Mozilla/5.0 ({_MAC}) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/26.1 "
        "Safari/605.1.15"),
    (1, f"Mozilla/5.0 ({_MAC}) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.6 "
        "Safari/605.1.15"),
)
MOBILE: tuple[tuple[int, str], ...] = (
    (18, "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/142.0.0.0 Mobile Safari/537.36"),
    (3, "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/141.0.0.0 Mobile Safari/537.36"),
    (12, "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 "
         "(KHTML, like Gecko) Version/26.1 Mobile/15E148 Safari/604.1"),
    (4, "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6_2 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/18.6 Mobile/15E148 Safari/604.1"),
    # Samsung Internet ships an older Chromium: a real browser that naive version checks flag.
    (3, "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/28.0 Chrome/130.0.0.0 Mobile Safari/537.36"),
    (2, "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) CriOS/142.0.7444.148 Mobile/15E148 Safari/604.1"),
    (1, "Mozilla/5.0 (Android 15; Mobile; rv:145.0) Gecko/145.0 Firefox/145.0"),
    (1, "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/142.0.0.0 Mobile Safari/537.36 EdgA/142.0.0.0"),
)
# What an office fleet runs: one managed build of Chrome and Edge on Windows.
CORPORATE = (f"Mozilla/5.0 ({_WIN}) " + _CHROME.format(v=142),
             f"Mozilla/5.0 ({_WIN}) " + _CHROME.format(v=142) + " Edg/142.0.0.0")
# Years-old browsers: what bot frameworks ship with and nobody browses with any more.
OUTDATED = (
    f"Mozilla/5.0 ({_WIN}) " + _CHROME.format(v=91),
    f"Mozilla/5.0 ({_WIN}) " + _CHROME.format(v=108),
    "Mozilla/5.0 (X11; Linux x86_64) " + _CHROME.format(v=114),
    f"Mozilla/5.0 ({_WIN}; rv:78.0) Gecko/20100101 Firefox/78.0",
    "Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.1; Trident/6.0)",
    f"Mozilla/5.0 ({_MAC}) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.2 "
    "Safari/605.1.15",
)
LIBRARIES = (
    "python-requests/2.32.3", "python-httpx/0.28.1", "Python/3.12 aiohttp/3.11.11",
    "Python-urllib/3.11", "Go-http-client/1.1", "Go-http-client/2.0", "curl/8.5.0",
    "axios/1.7.9", "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)", "okhttp/4.12.0",
    "Java/17.0.9", "Apache-HttpClient/4.5.14 (Java/17.0.9)", "Wget/1.21.4",
    "Scrapy/2.11.2 (+https://scrapy.org)",
)
SCANNERS = (
    "sqlmap/1.8.11#stable (https://sqlmap.org)",
    "Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:000597)",
    "Mozilla/5.0 (compatible; Nuclei - Open-source project (github.com/projectdiscovery/nuclei))",
    "Fuzz Faster U Fool v2.1.0-dev",
    "gobuster/3.6",
    "WPScan v3.8.27 (https://wpscan.com/wordpress-security-scanner)",
    "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
)
GOOGLEBOT = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Chrome/142.0.7444.59 Mobile Safari/537.36 (compatible; Googlebot/2.1; "
    "+http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
)
UPTIME_MONITOR = "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)"
# A real UptimeRobot probe comes from UptimeRobot's published addresses (node/data/good_bots.json),
# and that is what makes its claim verifiable: the one public address the simulator uses.
UPTIMEROBOT_PROBE = "3.12.251.153"
PARTNER = "acme-catalog-sync/1.4 python-requests/2.32.3"
LANGUAGES = ("en-US,en;q=0.9", "en-GB,en;q=0.9", "de-DE,de;q=0.9,en;q=0.8",
             "fr-FR,fr;q=0.9,en;q=0.8", "es-ES,es;q=0.9", "nl-NL,nl;q=0.9,en;q=0.8",
             "it-IT,it;q=0.9,en;q=0.7", "pl-PL,pl;q=0.9,en;q=0.8")

_D_W = [w for w, _ in DESKTOP]
_M_W = [w for w, _ in MOBILE]


def browser_ua(rng: random.Random, mobile: bool | None = None) -> str:
    """A current browser's UA; mobile with ~45% probability unless told."""
    if mobile is None:
        mobile = rng.random() < 0.45
    table, weights = (MOBILE, _M_W) if mobile else (DESKTOP, _D_W)
    return rng.choices(table, weights)[0][1]


def is_mobile(ua: str) -> bool:
    return "Mobile" in ua


# -- addresses ---------------------------------------------------------------------------------
# Documentation / benchmark ranges only (RFC 5737, 2544, 3849). Humans' ISPs live in
# 198.18.0.0/15, bots in TEST-NETs and 2001:db8::/32; each family gets its own block so a truth
# label per address is never ambiguous unless a scenario shares one on purpose.
HUMAN_V4 = "198.18.0.0/17"
HUMAN_V6 = "2001:db8:1000::/36"
OFFICE_NAT = "198.18.200.0/24"
CGNAT = "198.18.201.0/24"
MOBILE_V6 = "2001:db8:4a0::/48"  # one /64 per carrier group
SERVICES = "198.18.210.0/24"  # monitors and partners
PROXY_POOL_A = "198.19.0.0/17"  # residential proxies (distributed credential stuffing)
PROXY_POOL_B = "198.19.128.0/17"  # residential proxies (IP-rotating scraper)


def addresses(rng: random.Random, network: str, n: int) -> list[str]:
    """n distinct host addresses of a network (repeating only when it has fewer than n)."""
    net = ipaddress.ip_network(network)
    size = net.num_addresses - 2 if net.version == 4 else net.num_addresses - 1
    if size <= 0:
        return [str(net.network_address)] * n
    if size < 2**62:
        offs = rng.sample(range(1, size + 1), min(n, size))
        offs += [offs[i % len(offs)] for i in range(n - len(offs))]
    else:  # a v6 prefix: collisions are out of the question
        offs = [rng.getrandbits(min(64, net.max_prefixlen - net.prefixlen)) | 1 for _ in range(n)]
    base = int(net.network_address)
    return [str(ipaddress.ip_address(base + o)) for o in offs]


def v6_in(rng: random.Random, network: str) -> str:
    """A random address (privacy-extension style interface id) in a v6 network."""
    return addresses(rng, network, 1)[0]


def v6_subnet(rng: random.Random, network: str, prefix: int = 64) -> str:
    """A random /prefix inside a larger v6 network, as a network string."""
    net = ipaddress.ip_network(network)
    k = prefix - net.prefixlen
    sub = int(net.network_address) + (rng.getrandbits(k) << (128 - prefix))
    return f"{ipaddress.ip_address(sub)}/{prefix}"
