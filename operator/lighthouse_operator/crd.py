"""Render the LighthouseBridge CRD from the pydantic models.

Pydantic's JSON Schema is not a Kubernetes structural schema as-is, so it is rewritten here:
`$defs`/`$ref` are inlined, `anyOf` with null collapses to the non-null branch, titles and defaults go away (defaults
belong to the operator, not the stored object), `additionalProperties: false/true` is dropped (the API server prunes),
and only the int-or-string `anyOf` survives, next to `x-kubernetes-int-or-string`.

    python -m lighthouse_operator.crd [OUTPUT]     # hack/update-generated.sh calls this
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from . import models

CRD_FILE = f"{models.GROUP}_{models.PLURAL}.yaml"
HEADER = "# Generated from operator/lighthouse_operator/models.py by hack/update-generated.sh. DO NOT EDIT.\n"

# Keys a structural schema does not want (or that would default fields into the stored object).
_DROP = {"title", "default", "examples"}


class SchemaError(ValueError):
    pass


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    node = dict(node)
    if "$ref" in node:
        target = copy.deepcopy(defs[node.pop("$ref").rsplit("/", 1)[-1]])
        # Field-level siblings (description, extras) win over the referenced model's own.
        target.update(node)
        node = target
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP or key == "$defs":
            continue
        if key == "properties":
            out[key] = {k: _resolve(v, defs) for k, v in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _resolve(value, defs)
        elif key in ("anyOf", "allOf", "oneOf"):
            out[key] = [_resolve(v, defs) for v in value]
        else:
            out[key] = copy.deepcopy(value)
    return _structural(out)


def _structural(node: dict[str, Any]) -> dict[str, Any]:
    # JSON Schema 2020-12 bounds (a number) as OpenAPI 3.0 has them (a flag beside minimum/maximum).
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        value = node.get(bound)
        if isinstance(value, int | float) and not isinstance(value, bool):
            node[limit], node[bound] = value, True
    any_of = node.get("anyOf")
    if any_of is not None:
        non_null = [s for s in any_of if s.get("type") != "null"]
        if {s.get("type") for s in non_null} == {"string", "array"} and len(non_null) == 2:
            # "a name or a list of names" (the policy's rule.tool) has no structural type, and CEL cannot type an
            # untyped node either: the API server keeps any value, the operator's validation checks it.
            del node["anyOf"]
            node["x-kubernetes-preserve-unknown-fields"] = True
            return node
        if node.get("x-kubernetes-int-or-string") is None and {s.get("type") for s in non_null} == {
            "integer",
            "string",
        }:
            raise SchemaError(f"int | str needs x-kubernetes-int-or-string: {node!r}")
        if node.get("x-kubernetes-int-or-string"):
            node["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        elif len(non_null) == 1:
            del node["anyOf"]
            merged = dict(non_null[0])
            merged.update(node)  # siblings (description, validations) stay
            node = merged
        else:
            raise SchemaError(f"union types are not structural: {any_of!r}")
    if node.get("additionalProperties") in (True, False):
        del node["additionalProperties"]
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if node.get("x-kubernetes-preserve-unknown-fields"):
        node.setdefault("type", "object")
    if "enum" in node and "type" not in node:
        node["type"] = "string"
    if "type" not in node and not node.get("x-kubernetes-int-or-string"):
        raise SchemaError(f"schema node without a type: {node!r}")
    # Readable output: type and description first, the rest in model order.
    head = {k: node[k] for k in ("type", "description") if k in node}
    return head | {k: v for k, v in node.items() if k not in head}


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.get("$defs", {})
    return _resolve(raw, defs)


def openapi_schema() -> dict[str, Any]:
    spec = structural_schema(models.LighthouseBridgeSpec)
    # Server-side apply of `spec: {}` by a manager that owned fields under spec leaves spec null; every field of
    # spec is optional, so accept that instead of refusing the apply.
    spec["nullable"] = True
    status = structural_schema(models.LighthouseBridgeStatus)
    return {
        "type": "object",
        "description": "A Lighthouse bridge: the API, its PostgreSQL and Redis, backups and FUSE view.",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
        "x-kubernetes-validations": [
            models.cel(
                f"size(self.metadata.name) <= {models.MAX_NAME_LENGTH}",
                f"metadata.name must be at most {models.MAX_NAME_LENGTH} characters "
                "(child objects add suffixes such as -postgres-credentials)",
            ),
            models.cel(
                "self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
                "metadata.name must start with a letter and contain only lowercase letters, digits and '-' "
                "(it names Services)",
            ),
        ],
    }


PRINTER_COLUMNS = [
    {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Replicas", "type": "string", "jsonPath": ".status.replicaSummary"},
    {"name": "Revision", "type": "string", "jsonPath": ".status.revisions.serving"},
    {"name": "Last Backup", "type": "date", "jsonPath": ".status.lastSuccessfulBackupTime"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def crd() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{models.PLURAL}.{models.GROUP}",
            "labels": {"app.kubernetes.io/part-of": "lighthouse"},
        },
        "spec": {
            "group": models.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": models.KIND,
                "listKind": f"{models.KIND}List",
                "plural": models.PLURAL,
                "singular": models.SINGULAR,
                "shortNames": list(models.SHORT_NAMES),
                "categories": list(models.CATEGORIES),
            },
            "versions": [
                {
                    "name": models.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {"openAPIV3Schema": openapi_schema()},
                }
            ],
        },
    }


def render() -> str:
    return HEADER + yaml.safe_dump(crd(), sort_keys=False, width=1000, allow_unicode=True)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text = render()
    if not args or args[0] == "-":
        sys.stdout.write(text)
        return 0
    out = Path(args[0])
    if out.is_dir():
        out = out / CRD_FILE
    out.write_text(text)
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
