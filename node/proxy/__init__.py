"""The embedded mitmproxy node: settings, lean master, protocol guards, admin listener.

Import `node.proxy.run` for `run_node`; this package itself stays light so that
`palisade check` can compile settings without loading mitmproxy.
"""
