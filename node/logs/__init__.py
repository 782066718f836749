"""Streaming access-log readers: files in, `RequestRecord`s out (what `palisade replay` reads).

    reader = LogReader(paths, fmt=None, log_format=None)
    for rec in reader: ...            # a generator: memory does not grow with file size
    reader.lines_read, reader.records, reader.skipped, reader.malformed, reader.format_name,
    reader.formats,
    reader.bytes_read / reader.total_bytes

Formats (`FORMATS`, documented in docs/records.md): `json` (request records), `combined`
(nginx/Apache combined and common, optional trailing `$request_time`, nginx `main`,
`host[:port] ` vhost prefix, BSD or RFC 5424 syslog wrapper, Traefik CLF), `caddy`,
`traefik` (JSON), `envoy` (JSON), `alb` (AWS ALB),
`haproxy` (httplog), `zoraxy`, and `log_format` (any nginx `log_format` string). JSON formats
may sit behind a Kubernetes CRI prefix. Gzip is recognised by its magic bytes.

Lines that yield no record are counted in `skipped` by a short reason
(`parsers.SKIP_REASONS`); nothing in a line is fatal. A missing file, or a file none of whose
first 50 lines parse, raises `InputError`.

Junk request lines (TLS handshake bytes such as `"\\x16\\x03\\x01..."`, `"-"`, `""`, `"HELP"`)
are real traffic, mostly scanners, so they are not dropped: they become records with method
`INVALID`, the raw request line (bounded) as path and the logged status, and are counted in
`malformed["malformed-request"]`. A request whose URI holds a raw space is kept with the space
in its path (`malformed["raw-space-in-uri"]`), one without HTTP version likewise
(`"no-http-version"`). Access-log records have `session` and `user` None; `host` comes from a
vhost prefix or the JSON, else ""; `id` is `basename:lineno` (JSON records keep theirs).
"""

from node.logs.parsers import MALFORMED_REASONS, PARSERS, SKIP_REASONS
from node.logs.reader import ALIASES, FORMATS, LogReader

__all__ = ["ALIASES", "FORMATS", "MALFORMED_REASONS", "PARSERS", "SKIP_REASONS", "LogReader"]
