"""Validate response bodies against OpenAI's OpenAPI 3.1 description (components.schemas).

from tests.openai_schema import validate
validate("CreateChatCompletionResponse", response.json())
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_ENV = "OPENAI_OPENAPI_SPEC"
SPEC_URI = "urn:openai-openapi"
MAX_REPORTED_ERRORS = 20


def spec_path() -> Path:
    override = os.environ.get(SPEC_ENV)
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2] / "shared/specs/openai-openapi.json"


def _to_json_schema(node: Any) -> Any:
    """Rewrite OpenAPI 3.0 leftovers that JSON Schema 2020-12 would misread.

    `nullable: true` is not a 2020-12 keyword (it would be silently ignored, so null
    would be rejected); express it as `anyOf [..., null]`. `x-*` and `discriminator`
    are unknown keywords and are ignored by jsonschema, so they need no handling.
    """
    if isinstance(node, list):
        return [_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _to_json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True:
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


@functools.lru_cache(maxsize=1)
def _spec() -> dict[str, Any]:
    with spec_path().open(encoding="utf-8") as fh:
        raw = json.load(fh)
    # Only components are needed; converting `paths` too would be wasted work.
    return {"components": {"schemas": _to_json_schema(raw["components"]["schemas"])}}


def schema_names() -> list[str]:
    return sorted(_spec()["components"]["schemas"])


def _allow_extra_top_level(schema: dict[str, Any]) -> dict[str, Any]:
    # The gateway may add fields such as `_proxy_info` at the top level.
    if schema.get("additionalProperties") is False or schema.get("unevaluatedProperties") is False:
        return {k: v for k, v in schema.items() if k not in ("additionalProperties", "unevaluatedProperties")}
    return schema


@functools.cache
def _validator(schema_name: str) -> Draft202012Validator:
    spec = _spec()
    schemas = spec["components"]["schemas"]
    if schema_name not in schemas:
        raise KeyError(f"{schema_name!r} is not in components.schemas of {spec_path()}")
    patched = {**schemas, schema_name: _allow_extra_top_level(schemas[schema_name])}
    document = {"components": {"schemas": patched}}
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    registry: Registry = Registry().with_resource(SPEC_URI, resource)
    root = {"$ref": f"{SPEC_URI}#/components/schemas/{schema_name}"}
    return Draft202012Validator(root, registry=registry)


def errors(schema_name: str, instance: Any) -> list[str]:
    """Readable error lines (empty if valid)."""
    found = sorted(_validator(schema_name).iter_errors(instance), key=lambda e: list(e.absolute_path))
    return [_describe(e) for e in found]


def _describe(error: Any) -> str:
    where = "/".join(str(p) for p in error.absolute_path) or "<root>"
    line = f"at {where}: {error.message}"
    if error.context:
        # For anyOf/oneOf failures the useful detail lives in the sub-errors.
        best = sorted(error.context, key=lambda e: len(e.absolute_path), reverse=True)[:3]
        line += "".join(f"\n      - {'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}" for e in best)
    return line


def validate(schema_name: str, instance: Any) -> None:
    """Raise AssertionError listing every schema violation of `instance`."""
    problems = errors(schema_name, instance)
    if not problems:
        return
    shown = problems[:MAX_REPORTED_ERRORS]
    more = f"\n  ... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
    raise AssertionError(f"{len(problems)} error(s) validating against {schema_name}:\n  " + "\n  ".join(shown) + more)
