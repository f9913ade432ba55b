"""The JSON Schema of the report, generated from its classes, so pipelines can validate a
report without fleetsim and the schema never drifts from what fleetsim reads.

A small walk over `attrs.fields` and the type hints: the report uses only JSON scalars,
`X | None`, `list[X]`, `dict[str, X]`, `Any` and attrs classes, and each class becomes one
entry of `$defs`. Optional keys (see `_model`) are not `required`; unknown keys are allowed,
as the contract lets a newer fleetsim add keys.
"""

from __future__ import annotations

import types
import typing
from typing import Any

import attrs

from fleetsim.report._build import SCHEMA
from fleetsim.report._model import _OPTIONAL, Report

__all__ = ["report_schema"]

_SCALARS: dict[Any, str] = {int: "integer", float: "number", str: "string", bool: "boolean",
                            type(None): "null"}


def report_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a `fleetsim.report/1` report."""
    definitions: dict[str, Any] = {}
    root = _class(Report, definitions)
    root["properties"]["schema"] = {"const": SCHEMA}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"fleetsim report ({SCHEMA})",
        **root,
        "$defs": dict(sorted(definitions.items())),
    }


def _class(cls: type, definitions: dict[str, Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    fields = attrs.fields(cls)
    properties = {}
    for field in fields:
        kind = hints[field.name]
        if field.metadata.get(_OPTIONAL):
            kind = _without_none(kind)
        properties[field.name] = _type(kind, definitions)
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": [field.name for field in fields if not field.metadata.get(_OPTIONAL)],
    }
    if cls.__doc__ and not cls.__doc__.startswith(f"{cls.__name__}("):
        schema["description"] = " ".join(cls.__doc__.split())
    return schema


def _without_none(kind: Any) -> Any:
    """An optional key is absent, never null: `int | None` there means `int`."""
    args = [arg for arg in typing.get_args(kind) if arg is not type(None)]
    return args[0] if len(args) == 1 else kind


def _type(kind: Any, definitions: dict[str, Any]) -> dict[str, Any]:
    if kind is Any:
        return {}
    if kind in _SCALARS:
        return {"type": _SCALARS[kind]}
    if attrs.has(kind):
        name = kind.__name__
        if name not in definitions:
            definitions[name] = {}  # a placeholder first: no class refers to itself yet
            definitions[name] = _class(kind, definitions)
        return {"$ref": f"#/$defs/{name}"}
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (types.UnionType, typing.Union):
        return {"anyOf": [_type(arg, definitions) for arg in args]}
    if origin is list:
        return {"type": "array", "items": _type(args[0], definitions)}
    if origin is dict:
        return {"type": "object", "additionalProperties": _type(args[1], definitions)}
    raise TypeError(f"no JSON Schema for {kind!r}")
