"""The OpenAPI 3.0 document, built from the route declarations (node.control.routing)."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from node import __version__
from node.control.routing import PUBLIC, spec_of

_PROBLEM = {"$ref": "#/components/schemas/Problem"}
_ERRORS = {"400": "invalid parameter or body", "401": "missing or unknown token",
           "403": "this token's role may not use this route", "404": "not found",
           "413": "body too large", "415": "body is not JSON"}


def _schema30(schema: Any) -> Any:
    """Our JSON Schema subset → OpenAPI 3.0 (type lists become nullable / anyOf)."""
    if isinstance(schema, list):
        return [_schema30(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _schema30(v) for k, v in schema.items()}
    kinds = out.get("type")
    if isinstance(kinds, list):
        rest = [k for k in kinds if k != "null"]
        if "null" in kinds:
            out["nullable"] = True
        if len(rest) == 1:
            out["type"] = rest[0]
        else:
            del out["type"]
            out["anyOf"] = [{"type": k} for k in rest]
    if "required" in out and not out["required"]:
        del out["required"]
    return out


def openapi_document(routes: web.RouteTableDef) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        spec = spec_of(getattr(route, "handler", None))
        if spec is None:
            continue
        path = re.sub(r"\{(\w+):[^}]+\}", r"{\1}", spec.path)
        op: dict[str, Any] = {
            "operationId": route.handler.__name__,  # type: ignore[attr-defined]
            "summary": spec.summary, "tags": [spec.tag],
            "parameters": [p.openapi() for p in spec.params],
            "x-roles": sorted(spec.roles),
            "responses": {str(spec.ok_status): {"description": "OK", "content": {
                spec.produces: {"schema": {"type": "string"} if spec.produces == "text/csv"
                                else {"type": "object"}}}}},
        }
        if spec.roles == PUBLIC:
            op["security"] = []
        else:
            for code in ("400", "401", "403"):
                op["responses"][code] = _error(code)
            if "{" in path:
                op["responses"]["404"] = _error("404")
        if spec.body is not None:
            op["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": _schema30(spec.body)}}}
            op["responses"]["413"] = _error("413")
            op["responses"]["415"] = _error("415")
        paths.setdefault(path, {})[spec.method.lower()] = op
    return {
        "openapi": "3.0.3",
        "info": {"title": "Palisade control plane", "version": __version__,
                 "description": "IP lists, attacks, sessions, statistics and node sync. "
                                "Send `Authorization: Bearer <token>`; roles: node (sync "
                                "only), operator (read-write), viewer (read-only)."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "security": [{"bearerAuth": []}],
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Problem": {"type": "object", "required": ["title", "status"],
                                    "properties": {"type": {"type": "string"},
                                                   "title": {"type": "string"},
                                                   "status": {"type": "integer"},
                                                   "detail": {"type": "string"}}}},
        },
    }


def _error(code: str) -> dict[str, Any]:
    return {"description": _ERRORS[code],
            "content": {"application/problem+json": {"schema": _PROBLEM}}}
