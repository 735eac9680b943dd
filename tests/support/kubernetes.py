"""Check rendered Kubernetes objects the way an API server would: CRDs by their schema, core kinds by kubernetes-validate."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from . import fastyaml

SCHEMAS = Path(__file__).resolve().parents[1] / "fixtures" / "schemas" / "prometheus-operator-v0.93.0"
CRD_FILES = {
    "PrometheusRule": "monitoring.coreos.com_prometheusrules.yaml",
    "AlertmanagerConfig": "monitoring.coreos.com_alertmanagerconfigs.yaml",
    "PodMonitor": "monitoring.coreos.com_podmonitors.yaml",
    "ServiceMonitor": "monitoring.coreos.com_servicemonitors.yaml",
}
# The release the core kinds are checked against: the oldest Kubernetes still widely run
# that has every field the manifests use (sidecar-free, seccompProfile, internalTrafficPolicy).
KUBERNETES_VERSION = "1.28.0"


class _CrdLoader(yaml.SafeLoader):
    """The CRDs list `=` as an enum value, which YAML 1.1 reads as the `value` tag."""


_CrdLoader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


def schemas_folder() -> Path:
    """Return the folder of CRDs: MEMWARDEN_SCHEMAS, or the copy in tests/fixtures/schemas (its README says whence)."""
    import os

    return Path(os.environ.get("MEMWARDEN_SCHEMAS", SCHEMAS))


def _closed(schema: Any) -> Any:
    """Return the schema with unknown fields refused where the API server would prune them.

    An API server silently drops a field its structural schema does not name, so a typo
    would apply cleanly and do nothing; here it is an error instead.
    """
    if isinstance(schema, dict):
        closed = {key: _closed(value) for key, value in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            closed["additionalProperties"] = False
        if isinstance(schema.get("pattern"), str) and "(?i)" in schema["pattern"][1:]:
            # Go's RE2 takes `(?i)` inside a group (the time intervals' weekdays, months);
            # Python only at the start. Case-insensitive throughout is what those mean.
            closed["pattern"] = "(?i)" + schema["pattern"].replace("(?i)", "")
        return closed
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    return schema


@functools.cache
def crd(kind: str) -> dict[str, Any]:
    with open(schemas_folder() / CRD_FILES[kind], encoding="utf-8") as stream:
        return yaml.load(stream, Loader=_CrdLoader)


@functools.cache
def crd_schema(kind: str, version: str) -> dict[str, Any]:
    for served in crd(kind)["spec"]["versions"]:
        if served["name"] == version:
            return _closed(served["schema"]["openAPIV3Schema"])
    raise AssertionError(f"the {kind} CRD serves no version {version}")


def crd_problems(document: dict[str, Any]) -> list[str]:
    """Return every way `document` breaks its CRD's schema (an empty list when it fits)."""
    kind = document["kind"]
    definition = crd(kind)["spec"]
    group, _, version = document["apiVersion"].partition("/")
    if group != definition["group"]:
        return [f"apiVersion {document['apiVersion']} is not of group {definition['group']}"]
    schema = crd_schema(kind, version)
    body = {key: value for key, value in document.items() if key != "metadata"}
    validator = jsonschema.Draft7Validator({**schema, "properties": {**schema["properties"], "metadata": {"type": "object"}}})
    problems = [f"{'.'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}" for error in validator.iter_errors(body)]
    if kind == "AlertmanagerConfig" and "route" in document.get("spec", {}):
        # Child routes are `x-kubernetes-preserve-unknown-fields`; the operator parses each
        # as a Route, so check them against the route's own schema.
        route_schema = schema["properties"]["spec"]["properties"]["route"]
        problems += _child_route_problems(document["spec"]["route"], route_schema, "spec.route")
    return problems


def _child_route_problems(route: dict[str, Any], schema: dict[str, Any], where: str) -> list[str]:
    problems = []
    for index, child in enumerate(route.get("routes") or []):
        path = f"{where}.routes[{index}]"
        validator = jsonschema.Draft7Validator(schema)
        problems += [f"{path}.{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(child)]
        problems += _child_route_problems(child, schema, path)
    return problems


def core_problems(document: dict[str, Any]) -> list[str]:
    """Return what kubernetes-validate finds wrong with a core object (strict: no unknown fields)."""
    import kubernetes_validate

    try:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{'.'.join(map(str, error.path))}: {error.message}"]
    return []


def load_documents(text: str) -> list[dict[str, Any]]:
    return [document for document in fastyaml.load_all(text) if document is not None]
