# SPDX-License-Identifier: Apache-2.0
"""The Compute Engine v1 contract, read from Google's own discovery document.

An emulator is only worth testing against while it answers like the real API.
So the emulator does not write its own routes: it asks this module which
discovery method a request is (path template and HTTP verb come from the
document), and every body it receives or sends is checked against the
document's schemas. A client that calls a path or sends a field the real API
does not have, or an emulator that answers with a field the real API never
returns, is a violation: the emulator answers 500 and records it, and the
tests fail. The document is the one google-api-python-client ships, so
upgrading that package re-checks the emulator against the newer contract.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

DOCUMENT = Path("discovery_cache") / "documents" / "compute.v1.json"


class ContractViolation(Exception):
    """A request or response that the real Compute API would not send or accept."""


def discovery_path() -> Path:
    """Where google-api-python-client keeps compute.v1.json (found without importing the client)."""
    spec = importlib.util.find_spec("googleapiclient")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("google-api-python-client is not installed: the emulator needs its discovery document")
    return Path(list(spec.submodule_search_locations)[0]) / DOCUMENT


@dataclass
class Method:
    """One discovery method: id (compute.instances.stop), verb, path template and schema names."""

    id: str
    verb: str
    path: str
    parameters: dict
    request: str | None
    response: str | None
    regex: re.Pattern = field(repr=False, default=None)
    literal: int = 0

    def __post_init__(self):
        pattern, names = "", []
        for part in re.split(r"(\{\+?[A-Za-z_]+\})", self.path):
            if part.startswith("{"):
                name = part.strip("{}+")
                names.append(name)
                pattern += f"(?P<{name}>.+)" if part.startswith("{+") else f"(?P<{name}>[^/]+)"
            else:
                pattern += re.escape(part)
                self.literal += len(part)
        self.regex = re.compile(f"^{pattern}$")


@functools.lru_cache(maxsize=4)
def _load(path: str) -> Contract:
    with open(path, encoding="utf-8") as handle:
        return Contract(json.load(handle))


class Contract:
    """Method lookup and schema checks for one discovery document."""

    def __init__(self, document: dict):
        self.document = document
        self.schemas = document["schemas"]
        self.service_path = "/" + document["servicePath"].strip("/")  # /compute/v1
        self.standard_parameters = set(document.get("parameters", {}))
        self.methods: dict[str, Method] = {}
        self._collect(document.get("resources", {}))
        # Most literal characters first: `instances/aggregated` beats `instances/{instance}`.
        self._ordered = sorted(self.methods.values(), key=lambda m: -m.literal)

    @classmethod
    def load(cls, path: Path | None = None) -> Contract:
        """The contract of a document file (the installed compute.v1.json by default), read once per process."""
        return _load(str(path or discovery_path()))

    def _collect(self, resources: dict) -> None:
        for resource in resources.values():
            for method in resource.get("methods", {}).values():
                self.methods[method["id"]] = Method(
                    id=method["id"],
                    verb=method["httpMethod"],
                    path=method["path"],
                    parameters=method.get("parameters", {}),
                    request=(method.get("request") or {}).get("$ref"),
                    response=(method.get("response") or {}).get("$ref"),
                )
            self._collect(resource.get("resources", {}))

    # ------------------------------------------------------------- requests
    def match(self, verb: str, path: str) -> tuple[Method, dict]:
        """The method a request is, and its path parameters; ContractViolation if the API has none."""
        relative = path.removeprefix(self.service_path).lstrip("/")
        other_verbs = []
        for method in self._ordered:
            found = method.regex.match(relative)
            if found and method.verb == verb:
                return method, found.groupdict()
            if found:
                other_verbs.append(f"{method.verb} ({method.id})")
        if other_verbs:
            raise ContractViolation(f"{verb} {path}: the Compute API only has {', '.join(other_verbs)} on this path")
        raise ContractViolation(f"{verb} {path}: no method of the Compute v1 API has this path")

    def check_query(self, method: Method, query: dict) -> None:
        for name in query:
            location = (method.parameters.get(name) or {}).get("location")
            if location != "query" and name not in self.standard_parameters:
                raise ContractViolation(f"{method.id}: query parameter {name!r} is not a parameter of this method")

    def check_request(self, method: Method, body) -> None:
        if method.request is None:
            if body not in (None, b"", {}):
                raise ContractViolation(f"{method.id} takes no request body, the client sent {body!r:.200}")
            return
        problems = self.problems(body if body is not None else {}, {"$ref": method.request}, method.request)
        if problems:
            raise ContractViolation(f"{method.id} request: " + "; ".join(problems))

    def check_response(self, method: Method, body) -> None:
        if method.response:
            problems = self.problems(body, {"$ref": method.response}, method.response)
            if problems:
                raise ContractViolation(f"{method.id} response: " + "; ".join(problems))

    # ------------------------------------------------------------- schemas
    def problems(self, value, schema: dict, where: str) -> list[str]:
        """Every place where value does not fit schema (fields, types, enums), as readable paths."""
        if "$ref" in schema:
            schema = self.schemas[schema["$ref"]]
        kind = schema.get("type")
        if kind == "object":
            if not isinstance(value, dict):
                return [f"{where} must be an object, got {type(value).__name__}"]
            found = []
            properties = schema.get("properties", {})
            extra = schema.get("additionalProperties")
            for key, item in value.items():
                if key in properties:
                    found += self.problems(item, properties[key], f"{where}.{key}")
                elif extra:
                    found += self.problems(item, extra, f"{where}[{key!r}]")
                else:
                    found.append(f"{where}.{key} is not a field of {schema.get('id', 'this object')}")
            return found
        if kind == "array":
            if not isinstance(value, list):
                return [f"{where} must be an array, got {type(value).__name__}"]
            items = schema.get("items", {})
            return [p for i, item in enumerate(value) for p in self.problems(item, items, f"{where}[{i}]")]
        checks = {
            "string": lambda v: isinstance(v, str),
            "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
            "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
            "boolean": lambda v: isinstance(v, bool),
        }
        if kind in checks and not checks[kind](value):
            fmt = f" ({schema['format']})" if "format" in schema else ""
            return [f"{where} must be a {kind}{fmt}, got {value!r:.60}"]
        if "enum" in schema and value not in schema["enum"]:
            return [f"{where} = {value!r:.60} is not one of the API's values"]
        return []
