"""The official OCPP JSON schemas shipped by the `ocpp` package: the tests' independent oracle.

1.6 schemas are named by action (`Authorize`, `AuthorizeResponse`) and are JSON Schema draft 4;
2.0.1 schemas by action and direction (`AuthorizeRequest`, `AuthorizeResponse`), draft 6.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import jsonschema

SCHEMAS_16 = resources.files("ocpp").joinpath("v16/schemas")
SCHEMAS_201 = resources.files("ocpp").joinpath("v201/schemas")


@cache
def schema_16(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMAS_16.joinpath(f"{name}.json").read_text())
    return loaded


@cache
def schema_201(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMAS_201.joinpath(f"{name}.json").read_text())
    return loaded


@cache
def validator_16(name: str) -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator(schema_16(name), format_checker=jsonschema.FormatChecker())


@cache
def validator_201(name: str) -> jsonschema.Draft6Validator:
    return jsonschema.Draft6Validator(schema_201(name),
                                      format_checker=jsonschema.FormatChecker())
