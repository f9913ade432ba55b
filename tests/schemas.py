"""The official OCPP JSON schemas shipped by the `ocpp` package: the tests' independent oracle.

1.6 schemas are named by action (`Authorize`, `AuthorizeResponse`) and are JSON Schema draft 4;
2.0.1 schemas by action and direction (`AuthorizeRequest`, `AuthorizeResponse`), draft 6.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from fractions import Fraction
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


def _multiple_of(validator: Any, divisor: float, instance: Any,
                 schema: dict[str, Any]) -> Iterator[jsonschema.ValidationError]:
    """`multipleOf` on the number as JSON writes it: 1.6's limits are multiples of 0.1, and
    31.9 is one, though 31.9 / 0.1 is 318.99999999999994 in floats."""
    if validator.is_type(instance, "number") and (
            Fraction(repr(instance)) / Fraction(repr(divisor))).denominator != 1:
        yield jsonschema.ValidationError(f"{instance!r} is not a multiple of {divisor}")


_Draft4 = jsonschema.validators.extend(jsonschema.Draft4Validator,
                                       {"multipleOf": _multiple_of})


@cache
def validator_16(name: str) -> jsonschema.Draft4Validator:
    validator: jsonschema.Draft4Validator = _Draft4(
        schema_16(name), format_checker=jsonschema.FormatChecker())
    return validator


@cache
def validator_201(name: str) -> jsonschema.Draft6Validator:
    return jsonschema.Draft6Validator(schema_201(name),
                                      format_checker=jsonschema.FormatChecker())
