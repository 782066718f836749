"""YAML loading that remembers where every key came from, so errors can name file and line."""

from __future__ import annotations

from typing import Any

import yaml

from node.errors import ConfigError

MAX_CONFIG_BYTES = 4 * 1024 * 1024  # a config file is small; refuse anything absurd


class LocDict(dict):
    """A mapping from YAML with `line` (its own) and `lines[key]` (each key's line)."""

    __slots__ = ("line", "lines")


class LocList(list):
    __slots__ = ("line", "lines")


class _Loader(yaml.SafeLoader):
    pass


def _mapping(loader: _Loader, node: yaml.MappingNode) -> LocDict:
    loader.flatten_mapping(node)
    d = LocDict()
    d.line = node.start_mark.line + 1
    d.lines = {}
    for k_node, v_node in node.value:
        key = loader.construct_object(k_node, deep=True)
        if not isinstance(key, str | int | float | bool) or isinstance(key, bool):
            raise ConfigError("keys must be strings", file=loader.name,
                              line=k_node.start_mark.line + 1)
        key = str(key)
        if key in d:
            raise ConfigError("duplicate key", file=loader.name, line=k_node.start_mark.line + 1,
                              key=key)
        d[key] = loader.construct_object(v_node, deep=True)
        d.lines[key] = k_node.start_mark.line + 1
    return d


def _sequence(loader: _Loader, node: yaml.SequenceNode) -> LocList:
    lst = LocList(loader.construct_object(n, deep=True) for n in node.value)
    lst.line = node.start_mark.line + 1
    lst.lines = [n.start_mark.line + 1 for n in node.value]
    return lst


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _sequence)


def load_yaml_text(text: str, name: str) -> Any:
    """Parse YAML text into LocDict/LocList trees; a syntax error becomes one ConfigError line."""
    loader = _Loader(text)
    loader.name = name
    try:
        return loader.get_single_data()
    except ConfigError:
        raise
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        raise ConfigError(f"YAML syntax error: {e.problem or e.context}", file=name,
                          line=line) from None
    except yaml.YAMLError as e:
        raise ConfigError(f"YAML error: {e}", file=name) from None
    except RecursionError:
        line = loader.get_mark().line + 1 if loader.get_mark() else None
        raise ConfigError("YAML nested too deeply", file=name, line=line) from None
    finally:
        loader.dispose()


def load_yaml_file(path: str) -> Any:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as e:
        raise ConfigError(f"cannot read: {e.strerror or e}", file=path) from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"file larger than {MAX_CONFIG_BYTES} bytes", file=path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError("not UTF-8 text", file=path) from None
    return load_yaml_text(text, path)
