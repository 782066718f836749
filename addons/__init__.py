"""mitmproxy addons: thin glue between flows and the detection engine in `node`."""
