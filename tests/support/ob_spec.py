"""The official UK Open Banking v4.0 OpenAPI documents, and a check that a response (status,
headers, body) is one the document declares for its operation.

The documents live in ../shared/data/openbanking/uk-ob-v4.0-update4 (README-openbanking-vectors.md
beside it). Without them the tests that need them skip, or fail under
STRONGROOM_REQUIRE_SHARED_DATA=1 (tests/support/flags.py). Loading applies the README's quirk
fixes (fix_quirks): integer response codes become strings (v3.1's files) and an enum's repeated
values are dropped (v4.0 payment-initiation lists WEEK twice).

Bodies are validated with openapi-schema-validator's OAS30Validator (the documents are OpenAPI
3.0), its format checker (a date-time without a time zone is refused), and a `referencing`
registry holding the whole document, so every `#/components/...` reference resolves.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from tests.conftest import SHARED_DATA
from tests.support import flags

SPEC_DIR = SHARED_DATA / "openbanking" / "uk-ob-v4.0-update4"
CODESET_CSV = SHARED_DATA / "openbanking" / "uk-ob-codesets" / "OB_Internal_Codeset.csv"
SPEC_NAMES = (
    "account-info",
    "payment-initiation",
    "confirmation-funds",
    "events",
    "event-notifications",
    "vrp",
)
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
JSON_MEDIA_TYPES = ("application/json; charset=utf-8", "application/json")


class ResponseInvalid(AssertionError):
    """The response is not one the operation declares; `problems` lists each finding."""

    def __init__(self, where: str, problems: list[str]) -> None:
        super().__init__(f"{where}: " + "; ".join(problems))
        self.problems = problems


def need(path: Path) -> Path:
    """`path`, or skip (fail under STRONGROOM_REQUIRE_SHARED_DATA) when it is absent."""
    if not path.exists():
        flags.skip_or_fail(
            f"shared Open Banking data not found at {path}", flags.REQUIRE_SHARED_DATA
        )
    return path


def spec_path(name: str) -> Path:
    assert name in SPEC_NAMES, name
    return need(SPEC_DIR / f"{name}-openapi.yaml")


# -- loading -------------------------------------------------------------------------------


def fix_quirks(node: Any) -> tuple[Any, list[str]]:
    """A copy of a loaded document with the README's two loader quirks fixed, and what was
    fixed: mapping keys that YAML read as integers (`201:`) become strings, and an `enum`
    list's repeated values are dropped (the first kept, order kept)."""
    fixes: list[str] = []

    def walk(value: Any, where: str) -> Any:
        if isinstance(value, dict):
            fixed: dict[str, Any] = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    fixes.append(f"{where}/{key}: key made a string")
                    key = str(key)
                fixed[key] = walk(item, f"{where}/{key}")
            enum = fixed.get("enum")
            if isinstance(enum, list):
                unique = [v for i, v in enumerate(enum) if v not in enum[:i]]
                if len(unique) != len(enum):
                    fixes.append(f"{where}/enum: repeated values dropped")
                    fixed["enum"] = unique
            return fixed
        if isinstance(value, list):
            return [walk(item, f"{where}/{i}") for i, item in enumerate(value)]
        return value

    return walk(node, "#"), fixes


def _read_yaml(path: Path) -> Any:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open(encoding="utf-8") as f:
        return yaml.load(f, Loader=loader)  # noqa: S506 -- a safe loader (C or Python)


@functools.cache
def _load(name: str) -> tuple[Mapping[str, Any], tuple[str, ...]]:
    document, fixes = fix_quirks(_read_yaml(spec_path(name)))
    return document, tuple(fixes)


def load_spec(name: str) -> Mapping[str, Any]:
    """The v4.0 document `name` (SPEC_NAMES), quirks fixed; cached: do not change it."""
    return _load(name)[0]


def quirk_fixes(name: str) -> tuple[str, ...]:
    """What fix_quirks changed in the document `name`."""
    return _load(name)[1]


def component_schema(spec_name: str, schema_name: str) -> Mapping[str, Any]:
    schema: Mapping[str, Any] = load_spec(spec_name)["components"]["schemas"][schema_name]
    return schema


# -- validating ----------------------------------------------------------------------------


@functools.cache
def _registry(spec_name: str) -> Registry[Any]:
    resource = Resource.from_contents(load_spec(spec_name), default_specification=DRAFT4)
    return Registry().with_resource(_uri(spec_name), resource)


def _uri(spec_name: str) -> str:
    return f"urn:strongroom:ob-v4:{spec_name}"


def schema_errors(spec_name: str, schema: Mapping[str, Any], instance: Any) -> list[str]:
    """Each way `instance` breaks `schema` (a schema of the document, or a `$ref` into it:
    `{"$ref": "#/components/schemas/OBErrorResponse1"}`), as "path: message"."""
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#"):
        schema = {"$ref": _uri(spec_name) + ref}
    validator = OAS30Validator(
        schema, registry=_registry(spec_name), format_checker=oas30_format_checker
    )
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '(body)'}: {error.message}"
        for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    ]


def validate_schema(spec_name: str, schema_name: str, instance: Any) -> None:
    """Raise ResponseInvalid unless `instance` is a valid components/schemas/`schema_name`."""
    problems = schema_errors(spec_name, {"$ref": f"#/components/schemas/{schema_name}"}, instance)
    if problems:
        raise ResponseInvalid(f"{spec_name} {schema_name}", problems)


def _resolve(spec_name: str, node: Mapping[str, Any]) -> Mapping[str, Any]:
    """A response, parameter or header object, following a local `$ref` (several times)."""
    for _ in range(10):
        ref = node.get("$ref")
        if not isinstance(ref, str):
            return node
        assert ref.startswith("#/"), ref
        found: Any = load_spec(spec_name)
        for part in ref[2:].split("/"):
            found = found[part.replace("~1", "/").replace("~0", "~")]
        node = found
    raise AssertionError(f"a $ref chain too long in {spec_name}")


def _base_path(spec_name: str) -> str:
    servers = load_spec(spec_name).get("servers") or [{"url": ""}]
    return str(servers[0]["url"]).rstrip("/")


def find_operation(spec_name: str, path: str, method: str) -> tuple[str, Mapping[str, Any]]:
    """The path template and operation object that `path` (a template such as
    /accounts/{AccountId}, or a concrete path, with or without the document's server base
    /open-banking/v4.0/aisp) and `method` name. AssertionError when there is none."""
    method = method.lower()
    assert method in METHODS, method
    paths: Mapping[str, Any] = load_spec(spec_name)["paths"]
    path = path.split("?", 1)[0]
    base = _base_path(spec_name)
    if base and path.startswith(base + "/"):
        path = path[len(base) :]
    template = path if path in paths else None
    if template is None:
        for candidate in paths:
            pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(candidate))
            if re.fullmatch(pattern, path):
                template = candidate
                break
    assert template is not None, f"{spec_name} declares no path {path}"
    operation = paths[template].get(method)
    assert operation is not None, f"{spec_name} declares no {method.upper()} {template}"
    return template, operation


def validate_response(
    spec_name: str,
    path: str,
    method: str,
    status: int,
    body: Any = None,
    headers: Mapping[str, str] | None = None,
) -> None:
    """Raise ResponseInvalid unless the operation (`method` `path` of the v4.0 document
    `spec_name`) declares `status`, every header it declares as required is in `headers`
    (names compared case-insensitively) and valid, and `body` (parsed JSON; None for no
    body) is valid against the JSON schema of the declared response, or absent when the
    response declares no content."""
    template, operation = find_operation(spec_name, path, method)
    where = f"{spec_name} {method.upper()} {template} -> {status}"
    responses: Mapping[str, Any] = operation.get("responses", {})
    declared = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX")
    declared = declared or responses.get("default")
    if declared is None:
        raise ResponseInvalid(where, [f"status {status} is not declared ({', '.join(responses)})"])
    response = _resolve(spec_name, declared)
    problems: list[str] = []

    given = {k.lower(): v for k, v in (headers or {}).items()}
    for name, header in (response.get("headers") or {}).items():
        header = _resolve(spec_name, header)
        value = given.get(name.lower())
        if value is None:
            if header.get("required"):
                problems.append(f"header {name} is required")
            continue
        problems += [
            f"header {name}: {p}"
            for p in schema_errors(spec_name, header.get("schema") or {}, value)
        ]

    content: Mapping[str, Any] = response.get("content") or {}
    if not content:
        if body not in (None, b"", ""):
            problems.append("the response declares no body, but one was sent")
    else:
        media = next((content[m] for m in JSON_MEDIA_TYPES if m in content), None)
        assert media is not None, f"{where}: no JSON content declared ({', '.join(content)})"
        if body is None:
            problems.append("the response declares a JSON body, but none was sent")
        else:
            problems += schema_errors(spec_name, media.get("schema") or {}, body)
    if problems:
        raise ResponseInvalid(where, problems)
