"""Demo pieces: the shop API that `palisade demo` puts behind the node."""
