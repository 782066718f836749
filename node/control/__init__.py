"""The control plane: storage, the `/api/v1` JSON API and the node ↔ control sync protocol."""
