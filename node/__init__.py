"""Palisade: API abuse prevention node (engine, control plane, CLI)."""

__version__ = "0.1.0"
