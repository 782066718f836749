"""node.signatures.browser: family / major version and the outdated-browser check."""

import pytest

from node.signatures.browser import DEFAULT_MIN_VERSIONS, browser_version, is_outdated

CHROME_131 = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
CHROME_90 = CHROME_131.replace("131.0.0.0", "90.0.4430.212")
FIREFOX_52 = "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:52.0) Gecko/20100101 Firefox/52.0"
FIREFOX_133 = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
SAFARI_IOS_18 = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)
SAFARI_IOS_12 = SAFARI_IOS_18.replace("18_1", "12_5").replace("Version/18.1", "Version/12.1")
EDGE_131 = CHROME_131 + " Edg/131.0.0.0"
SAMSUNG_26 = (
    "Mozilla/5.0 (Linux; Android 13; SM-S901B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36"
)
CHROME_ANDROID_131 = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36"
)
IE_11 = "Mozilla/5.0 (Windows NT 10.0; Trident/7.0; rv:11.0) like Gecko"


IE_FORGED = "Mozilla/5.0 (compatible; MSIE 66.0; 68K; Trident/49.0)"   # cc-attack's generator


@pytest.mark.parametrize(
    ("ua", "expected"),
    [
        (CHROME_131, ("Chrome", 131)),
        (CHROME_90, ("Chrome", 90)),
        (FIREFOX_133, ("Firefox", 133)),
        (SAFARI_IOS_18, ("Mobile Safari", 18)),
        (EDGE_131, ("Edge", 131)),
        (SAMSUNG_26, ("Samsung Internet", 26)),
        (CHROME_ANDROID_131, ("Chrome Mobile", 131)),
        (IE_11, ("IE", 11)),
        # not browsers: no version even when a Chrome token is present
        ("curl/8.4.0", None),
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", None),
        (CHROME_131.replace("Chrome/", "HeadlessChrome/"), None),
        (CHROME_131 + " sqlmap", None),
        ("", None),
        (None, None),
    ],
)
def test_browser_version(ua, expected):
    assert browser_version(ua) == expected


@pytest.mark.parametrize(
    ("ua", "expected"),
    [
        (CHROME_131, None),
        (FIREFOX_133, None),
        (SAFARI_IOS_18, None),
        (EDGE_131, None),
        (SAMSUNG_26, None),
        (CHROME_90, ("Chrome", 90, 110)),
        (FIREFOX_52, ("Firefox", 52, 110)),
        (SAFARI_IOS_12, ("Mobile Safari", 12, 16)),
        (IE_11, ("IE", 11, 12)),
        (IE_FORGED, ("IE", 66, 12)),      # never released: forged
        ("python-requests/2.31", None),
        ("", None),
    ],
)
def test_is_outdated_defaults(ua, expected):
    assert is_outdated(ua) == expected


def test_forged_major_of_a_discontinued_family_counts_whatever_the_minimum():
    # An operator who lets IE through (minimum 0) still does not let a forged IE through.
    assert is_outdated(IE_FORGED, {"IE": 0}) == ("IE", 66, 0)
    assert is_outdated(IE_11, {"IE": 0}) is None


def test_custom_minimums_and_unknown_families():
    assert is_outdated(CHROME_131, {"Chrome": 200}) == ("Chrome", 131, 200)
    assert is_outdated(CHROME_90, {"Firefox": 200}) is None  # family without a minimum
    assert is_outdated(CHROME_90, {}) is None


def test_default_table_is_sane():
    for family in (
        "Chrome",
        "Firefox",
        "Safari",
        "Edge",
        "Opera",
        "Samsung Internet",
        "Mobile Safari",
        "Chrome Mobile",
        "Firefox Mobile",
    ):
        assert family in DEFAULT_MIN_VERSIONS
    assert all(isinstance(v, int) and v > 0 for v in DEFAULT_MIN_VERSIONS.values())
    assert DEFAULT_MIN_VERSIONS["Chrome"] == 110


HOSTILE = [
    "Mozilla/5.0 (" * 5000,
    "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/" + "9" * 65536,
    "Mozilla/5.0 (X11) Gecko/20100101 Firefox/" + "1." * 30000,
    "Mozilla/5.0 (" + ";" * 65536 + ") AppleWebKit/537.36",
    "\udcff" * 600,
]


@pytest.mark.parametrize("ua", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_input_is_bounded(ua):
    result = browser_version(ua)
    assert result is None or (isinstance(result[0], str) and isinstance(result[1], int))
    is_outdated(ua)
