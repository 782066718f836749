"""`palisade node --config FILE`: load the configuration and serve until SIGTERM / SIGINT.

SIGHUP reloads the file; a bad file keeps the running configuration and logs why.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging

import node.engine  # noqa: F401  (first: config → detectors → engine is an import cycle)
from node.config import load_config
from node.config.model import Config, EngineConfig
from node.eventlog import configure_logging
from node.proxy.settings import NodeSettings

_DEFAULT_STATE_DIR = NodeSettings().state_dir


def node_settings(cfg: Config) -> NodeSettings:
    """The node section, with the top-level `state_dir` when the section names none."""
    s = cfg.node if isinstance(cfg.node, NodeSettings) else NodeSettings()
    if cfg.state_dir and s.state_dir == _DEFAULT_STATE_DIR:
        s = dataclasses.replace(s, state_dir=cfg.state_dir)
    return s


def main(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    configure_logging(node_settings(cfg).log_format)
    logging.getLogger("mitmproxy").setLevel(logging.WARNING)  # per-connection chatter

    def reload() -> tuple[NodeSettings, EngineConfig]:
        new = load_config(args.config)
        return node_settings(new), new.engine

    from node.proxy.run import serve

    return serve(node_settings(cfg), cfg.engine, reload=reload)
