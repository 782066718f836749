"""node.signatures.cloud: packaged provider ranges, published-file parsers, `palisade ranges`."""

import json
import os

import pytest

from node.cli import main
from node.config import parse_config_text
from node.errors import ConfigError, InputError
from node.signatures import cloud


@pytest.mark.parametrize("ip, expected", [
    ("52.94.0.1", "aws"),                  # us-east-1 (AMAZON / EC2)
    ("3.5.140.2", "aws"),                  # S3
    ("2600:1f18::1", "aws"),
    ("::ffff:52.94.0.1", "aws"),           # v4-mapped, as a dual-stack socket reports it
    ("34.1.2.3", "gcp"),
    ("35.190.0.1", "gcp"),
    ("2600:1900:4000::1", "gcp"),
    ("20.42.0.1", "azure"),
    ("13.64.0.1", "azure"),
    ("129.146.0.1", "oracle"),
    ("167.99.0.1", "digitalocean"),
    ("45.32.0.1", "vultr"),
    ("116.202.1.1", "hetzner"),
])
def test_known_provider_addresses(ip, expected):
    assert cloud.provider(ip) == expected


@pytest.mark.parametrize("ip", [
    "192.0.2.1", "198.51.100.7", "203.0.113.9", "2001:db8::1",   # documentation (Vultr's
    "10.0.0.1", "127.0.0.1", "::1",                               # geofeed lists them)
    "81.2.69.142", "8.8.8.8",            # a residential-style address, Google's resolver
    "66.249.66.1",                       # Googlebot: Google's, but no cloud customer's
    "not an ip", "",
])
def test_other_addresses_are_no_provider(ip):
    assert cloud.provider(ip) is None


def test_packaged_data_records_source_and_date_per_provider():
    ranges = cloud.default_ranges()
    assert {"aws", "gcp", "azure", "oracle", "digitalocean", "linode", "vultr"} <= set(
        ranges.providers)
    for p in ranges.providers.values():
        assert p.meta["date"][:2] == "20" and p.meta["source"] and p.meta["licence"], p.name
        assert p.networks, p.name
    assert os.path.getsize(cloud.resources.files("node").joinpath("data", cloud.DATA_FILE)) \
        < 4 * 1024 * 1024
    text = ranges.dumps()
    assert cloud.loads(text).dumps() == text            # the format round-trips


def _aws(tmp_path, prefixes, v6=()):
    path = tmp_path / "ip-ranges.json"
    path.write_text(json.dumps({
        "syncToken": "1", "createDate": "2026-11-30-12-00-00",
        "prefixes": [{"ip_prefix": p, "region": "eu-west-1", "service": "EC2"} for p in prefixes],
        "ipv6_prefixes": [{"ipv6_prefix": p} for p in v6]}))
    return str(path)


def test_update_from_a_newer_published_file_replaces_that_provider_only(tmp_path, capsys):
    out = str(tmp_path / "cloud_ranges.txt")
    src = _aws(tmp_path, ["81.2.68.0/24", "81.2.69.0/24", "198.18.0.0/15"], ["2a05:d000::/25"])
    assert main(["ranges", "update", src, "-o", out]) == 0
    printed = capsys.readouterr().out
    assert "updated aws: 1 IPv4 + 1 IPv6 networks, published 2026-11-30" in printed
    ranges = cloud.load(out)
    assert ranges.provider("81.2.69.142") == "aws"       # the new range
    assert ranges.provider("52.94.0.1") is None          # AWS's old ranges replaced whole
    assert ranges.provider("198.18.0.1") is None         # benchmark range: nobody's cloud
    assert ranges.provider("20.42.0.1") == "azure"       # others kept from the packaged data
    assert "81.2.68.0/23" in ranges.dumps()             # aggregated
    # The node loads it through the config key; lookups use it.
    cfg = parse_config_text(f"engine:\n  cloud_ranges: {out}\n")
    assert cloud.provider("81.2.69.142", cfg.engine.cloud_ranges) == "aws"
    assert cloud.provider("81.2.69.142") is None         # the packaged ranges are unchanged


def test_update_reads_the_other_published_formats(tmp_path):
    gcp = tmp_path / "cloud.json"
    gcp.write_text(json.dumps({"syncToken": "1", "creationTime": "2026-11-29T00:00:00",
                               "prefixes": [{"ipv4Prefix": "81.2.71.0/24",
                                             "service": "Google Cloud", "scope": "europe-west1"},
                                            {"ipv6Prefix": "2a00:1450:4000::/37",
                                             "service": "Google Cloud"}]}))
    azure = tmp_path / "ServiceTags_Public_20261130.json"
    azure.write_text(json.dumps({"changeNumber": 400, "cloud": "Public", "values": [
        {"name": "AzureCloud", "properties": {"addressPrefixes": ["81.2.72.0/24"]}}]}))
    oracle = tmp_path / "public_ip_ranges.json"
    oracle.write_text(json.dumps({"last_updated_timestamp": "2026-11-28T00:00:00", "regions": [
        {"region": "eu-frankfurt-1", "cidrs": [{"cidr": "81.2.73.0/24", "tags": ["OCI"]}]}]}))
    geofeed = tmp_path / "geoip.csv"
    geofeed.write_text("# Linode geofeed\n81.2.74.0/24,DE,DE-HE,Frankfurt,\n")
    [g] = cloud.parse_published(str(gcp))
    [a] = cloud.parse_published(str(azure))
    [o] = cloud.parse_published(str(oracle))
    [li] = cloud.parse_published(str(geofeed), "linode")
    assert (g.name, g.meta["date"], a.name, o.name, o.meta["date"], li.name) == (
        "gcp", "2026-11-29", "azure", "oracle", "2026-11-28", "linode")
    ranges = cloud.default_ranges().merged([g, a, o, li])
    for ip, want in (("81.2.71.1", "gcp"), ("2a00:1450:4000::1", "gcp"), ("81.2.72.1", "azure"),
                     ("81.2.73.1", "oracle"), ("81.2.74.1", "linode"), ("52.94.0.1", "aws")):
        assert ranges.provider(ip) == want


@pytest.mark.parametrize("content, provider, needle", [
    ('{"prefixes": [{"ipv4Prefix": "66.249.64.0/27"}]}', None, "not Google's cloud.json"),
    ('{"something": 1}', None, "not a known published ranges file"),
    ('{"prefixes": [', None, "not valid JSON"),
    ("81.2.69.0/24\n", None, "give --provider NAME"),
    ("81.2.69.0/24\nnot-a-network\n", "hetzner", ":2: 'not-a-network' is not an IP network"),
    ("[aws]\n81.2.69.0/33\n", None, ":2: '81.2.69.0/33' is not an IP network"),
    ("# only a comment\n", "hetzner", "no networks in it"),
    ("81.2.69.0/24\n", "Bad Name!", "bad provider name"),
])
def test_bad_files_are_one_line_errors(tmp_path, capsys, content, provider, needle):
    src = tmp_path / "in.txt"
    src.write_text(content)
    args = ["ranges", "update", str(src), "-o", str(tmp_path / "out.txt")]
    assert main(args + (["--provider", provider] if provider else [])) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out.txt").exists()           # nothing written


@pytest.mark.parametrize("content, needle", [
    ("81.2.69.0/24\n", "a CIDR before any [provider] line"),
    ("[aws] date\n", "expected key=value"),
    ("[aws]\n[aws]\n", "appears twice"),
    ("", "no [provider] section"),
])
def test_bad_ranges_file_in_config_is_a_config_error(tmp_path, content, needle):
    path = tmp_path / "cloud_ranges.txt"
    path.write_text(content)
    with pytest.raises(ConfigError) as e:
        parse_config_text(f"engine:\n  cloud_ranges: {path}\n", "palisade.yaml")
    assert str(e.value).startswith("palisade.yaml:2: engine.cloud_ranges: ")
    assert needle in str(e.value)
    with pytest.raises(InputError):
        cloud.load(str(path))


def test_missing_ranges_file_in_config(tmp_path):
    with pytest.raises(ConfigError, match="engine.cloud_ranges: .*No such file"):
        parse_config_text(f"engine:\n  cloud_ranges: {tmp_path}/none.txt\n", "p.yaml")


def test_lookup_and_show_commands(capsys):
    assert main(["ranges", "lookup", "52.94.0.1", "81.2.69.142"]) == 0
    assert capsys.readouterr().out.splitlines() == ["52.94.0.1\taws", "81.2.69.142\t-"]
    assert main(["ranges", "show"]) == 0
    assert "gcp: " in capsys.readouterr().out
