"""The node's side of the node ↔ control-plane sync protocol."""

from node.sync.client import SyncClient

__all__ = ["SyncClient"]
