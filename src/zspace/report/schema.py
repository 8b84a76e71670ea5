"""The layout of ``metrics.json`` (``zspace.metrics/1``): the JSON Schema shipped with the package, and a checker.

The checker understands the subset of JSON Schema the file uses (``type``, ``const``, ``required``,
``properties``, ``additionalProperties``, ``items``, ``allOf``, local ``$ref``), so scripts and tests need no
``jsonschema`` package; with it installed, ``jsonschema.validate(metrics, load_schema())`` says the same.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

SCHEMA_FILE = "metrics.schema.json"
TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "boolean": (bool,),
    "null": (type(None),),
    "integer": (int,),
    "number": (int, float),
}


def load_schema() -> dict[str, Any]:
    """The JSON Schema of metrics.json, read from the installed package."""
    return json.loads(resources.files("zspace").joinpath("schemas", SCHEMA_FILE).read_text())


def problems(value: Any, schema: dict[str, Any] | None = None) -> list[str]:
    """Where ``value`` (a parsed metrics.json) breaks the schema: one line per problem, empty when it conforms."""
    root = schema if schema is not None else load_schema()
    out: list[str] = []
    _check(value, root, root, "$", out)
    return out


def _is(value: Any, name: str) -> bool:
    if isinstance(value, bool) and name in ("integer", "number"):
        return False
    return isinstance(value, TYPES[name])


def _check(value: Any, schema: dict[str, Any], root: dict[str, Any], where: str, out: list[str]) -> None:
    if "$ref" in schema:
        node: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        _check(value, node, root, where, out)
    for sub in schema.get("allOf", []):
        _check(value, sub, root, where, out)
    if "const" in schema and value != schema["const"]:
        out.append(f"{where}: expected {schema['const']!r}, got {value!r}")
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not any(_is(value, k) for k in kinds):
            out.append(f"{where}: expected {' or '.join(kinds)}, got {type(value).__name__}")
            return
    if isinstance(value, dict):
        out.extend(f"{where}: missing {k!r}" for k in schema.get("required", []) if k not in value)
        props, extra = schema.get("properties", {}), schema.get("additionalProperties", True)
        for k, v in value.items():
            if k in props:
                _check(v, props[k], root, f"{where}.{k}", out)
            elif extra is False:
                out.append(f"{where}: unexpected key {k!r}")
            elif isinstance(extra, dict):
                _check(v, extra, root, f"{where}.{k}", out)
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, v in enumerate(value):
            _check(v, schema["items"], root, f"{where}[{i}]", out)
