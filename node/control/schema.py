"""Declared inputs: query/path parameters and JSON bodies, validated strictly.

The same declarations validate requests and produce the OpenAPI document, so the document can
not drift from what the server accepts. Bodies use a small subset of JSON Schema.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import json
import math
from dataclasses import dataclass
from typing import Any


class InvalidInput(ValueError):
    """A request input that breaks its declaration; `where` names it (`query.limit`)."""

    def __init__(self, where: str, message: str) -> None:
        self.where = where
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True, slots=True)
class Param:
    """One query or path parameter. `kind`: integer, number, string, boolean, ip, cidr,
    timestamp (unix seconds or ISO 8601)."""

    name: str
    kind: str = "string"
    where: str = "query"
    required: bool = False
    enum: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    max_length: int = 256
    default: Any = None
    description: str = ""

    def openapi(self) -> dict[str, Any]:
        schema: dict[str, Any]
        if self.kind in ("integer", "number", "boolean"):
            schema = {"type": self.kind}
        else:
            schema = {"type": "string", "maxLength": self.max_length}
            if self.kind in ("ip", "cidr"):
                schema["format"] = {"ip": "ip-address", "cidr": "cidr"}[self.kind]
            if self.kind == "timestamp":
                schema["pattern"] = r"^[0-9T:.+\-Z]+$"
        if self.enum:
            schema["enum"] = list(self.enum)
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        if self.default is not None:
            schema["default"] = self.default
        out = {"name": self.name, "in": self.where, "required": self.required or
               self.where == "path", "schema": schema}
        if self.description:
            out["description"] = self.description
        return out

    def parse(self, raw: str) -> Any:
        where = f"{self.where}.{self.name}"
        if len(raw) > self.max_length:
            raise InvalidInput(where, f"longer than {self.max_length} characters")
        value: Any
        if self.kind == "integer":
            try:
                value = int(raw, 10)
            except ValueError:
                raise InvalidInput(where, "expected an integer") from None
        elif self.kind == "number":
            try:
                value = float(raw)
            except ValueError:
                raise InvalidInput(where, "expected a number") from None
            if not math.isfinite(value):
                raise InvalidInput(where, "expected a finite number")
        elif self.kind == "boolean":
            if raw not in ("true", "false", "1", "0"):
                raise InvalidInput(where, "expected true or false")
            value = raw in ("true", "1")
        elif self.kind == "ip":
            try:
                value = str(ipaddress.ip_address(raw))
            except ValueError:
                raise InvalidInput(where, "expected an IP address") from None
        elif self.kind == "cidr":
            try:
                value = normalize_cidr(raw)
            except ValueError:
                raise InvalidInput(where, "expected an IP address or CIDR") from None
        elif self.kind == "timestamp":
            value = parse_timestamp(raw, where)
        else:
            if any(ord(ch) < 32 for ch in raw):
                raise InvalidInput(where, "control characters are not allowed")
            value = raw
        if self.enum and value not in self.enum:
            raise InvalidInput(where, f"must be one of {', '.join(self.enum)}")
        if self.minimum is not None and value < self.minimum:
            raise InvalidInput(where, f"must be >= {self.minimum:g}")
        if self.maximum is not None and value > self.maximum:
            raise InvalidInput(where, f"must be <= {self.maximum:g}")
        return value


def parse_timestamp(raw: str, where: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        try:
            d = _dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput(where, "expected unix seconds or an ISO 8601 time") from None
        if d.tzinfo is None:
            d = d.replace(tzinfo=_dt.UTC)
        value = d.timestamp()
    if not math.isfinite(value) or not 0 <= value < 1e11:
        raise InvalidInput(where, "time out of range")
    return value


def normalize_cidr(raw: str) -> str:
    """`203.0.113.7` and `203.0.113.7/32` → `203.0.113.7`; `10.1.2.3/8` → `10.0.0.0/8`."""
    if "/" not in raw:
        return str(ipaddress.ip_address(raw.strip()))
    net = ipaddress.ip_network(raw.strip(), strict=False)
    if net.num_addresses == 1:
        return str(net.network_address)
    return str(net)


def parse_query(params: tuple[Param, ...], query: Any, match: Any) -> dict[str, Any]:
    """Validate a request's query (a MultiDict) and path values → {name: value}. Unknown or
    repeated query parameters are errors: a typo must not silently widen a filter."""
    declared = {p.name for p in params if p.where == "query"}
    for key in query:
        if key not in declared:
            raise InvalidInput(f"query.{key}", "unknown parameter")
        if len(query.getall(key)) > 1:
            raise InvalidInput(f"query.{key}", "given more than once")
    out: dict[str, Any] = {}
    for p in params:
        raw = (match if p.where == "path" else query).get(p.name)
        if raw is None:
            if p.required:
                raise InvalidInput(f"{p.where}.{p.name}", "required")
            out[p.name] = p.default
        else:
            out[p.name] = p.parse(raw)
    return out


# -- JSON bodies ------------------------------------------------------------------------------
def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def loads(body: bytes) -> Any:
    """Strict JSON: NaN and Infinity (which Python's json accepts) are rejected."""
    return json.loads(body, parse_constant=_reject_constant)


_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "boolean": (bool,),
    "integer": (int,), "number": (int, float), "null": (type(None),),
}


def _is(kind: str, value: Any) -> bool:
    if kind in ("integer", "number") and isinstance(value, bool):
        return False
    if kind == "number" and isinstance(value, float) and not math.isfinite(value):
        return False
    return isinstance(value, _TYPES[kind])


def validate(schema: dict[str, Any], value: Any, where: str = "body") -> None:
    """Check `value` against the JSON Schema subset we use; raise InvalidInput."""
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not any(_is(k, value) for k in kinds):
            raise InvalidInput(where, f"expected {' or '.join(kinds)}")
    if value is None:
        return
    if "enum" in schema and value not in schema["enum"]:
        raise InvalidInput(where, f"must be one of {', '.join(map(str, schema['enum']))}")
    if isinstance(value, str):
        if len(value) > schema.get("maxLength", 1 << 30):
            raise InvalidInput(where, f"longer than {schema['maxLength']} characters")
        if len(value) < schema.get("minLength", 0):
            raise InvalidInput(where, "too short")
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise InvalidInput(where, f"must be >= {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            raise InvalidInput(where, f"must be <= {schema['maximum']}")
    elif isinstance(value, list):
        if len(value) > schema.get("maxItems", 1 << 30):
            raise InvalidInput(where, f"more than {schema['maxItems']} items")
        if "items" in schema:
            for i, item in enumerate(value):
                validate(schema["items"], item, f"{where}[{i}]")
    elif isinstance(value, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", ()):
            if key not in value:
                raise InvalidInput(f"{where}.{key}", "required")
        if len(value) > schema.get("maxProperties", 1 << 30):
            raise InvalidInput(where, f"more than {schema['maxProperties']} keys")
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in props:
                validate(props[key], item, f"{where}.{key}")
            elif extra is False:
                raise InvalidInput(f"{where}.{key}", "unknown key")
            elif isinstance(extra, dict):
                if len(key) > 64:
                    raise InvalidInput(where, "key longer than 64 characters")
                validate(extra, item, f"{where}.{key}")


def obj(required: tuple[str, ...] = (), **props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(required),
            "additionalProperties": False}


def string(max_length: int = 256, **kw: Any) -> dict[str, Any]:
    return {"type": "string", "maxLength": max_length, **kw}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    return {**schema, "type": [*kinds, "null"]}


NUMBER = {"type": "number"}
TS = {"type": "number", "minimum": 0, "maximum": 1e11}
COUNT = {"type": "integer", "minimum": 0, "maximum": 2**53}
