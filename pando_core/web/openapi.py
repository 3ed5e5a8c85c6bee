"""``/api/openapi.json``: the API's OpenAPI 3.1 schema, built from the routes themselves.

Every ``/api/`` route is listed with its methods, path parameters and summary (the endpoint's
docstring); an endpoint's ``body`` attribute names the fields of its JSON body. Plugins' API
routes appear the same way, so the schema never lists a route that does not exist.
"""

from __future__ import annotations

import re
from typing import Any

STREAMING = {"/api/events", "/api/sessions/{id}/prompt"}


def schema(routes: list[Any], version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        path = getattr(route, "path", "")
        if not path.startswith("/api/") or path == "/api/openapi.json":
            continue
        endpoint = getattr(route, "endpoint", None)
        summary = ((getattr(endpoint, "__doc__", None) or "").strip().splitlines() or [""])[0]
        for method in sorted(set(getattr(route, "methods", None) or {"GET"}) - {"HEAD"}):
            operation: dict[str, Any] = {
                "summary": summary,
                "operationId": f"{method.lower()}_{getattr(endpoint, '__name__', 'endpoint')}",
                "responses": {"200": _ok(path, method), "401": {"description": "no or wrong token"}},
            }
            parameters = [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in re.findall(r"{(\w+)}", path)
            ]
            if parameters:
                operation["parameters"] = parameters
            body = getattr(endpoint, "body", None)
            if body and method != "GET":
                operation["requestBody"] = {
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {key: {"type": kind} for key, kind in body.items()},
                                "required": list(body),
                            }
                        }
                    }
                }
            paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "pando serve", "version": version},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{}, {"bearer": []}],
        "paths": paths,
    }


def _ok(path: str, method: str) -> dict[str, Any]:
    if path in STREAMING or (path == "/api/sessions" and method == "POST"):
        return {"description": "server-sent events", "content": {"text/event-stream": {}}}
    return {"description": "JSON", "content": {"application/json": {}}}
