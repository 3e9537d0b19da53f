"""JSON schemas for kubeconform: Kubernetes' own, and those of CustomResourceDefinitions.

Usage: python3 scripts/kube_schemas.py --wheel kubernetes_validate-X.whl
           --kubernetes-version v1.N.P --output DIR

The kubernetes-validate package ships strict schemas per kind whose ``$ref``s point into one
shared ``_definitions.json`` at a URL kubeconform would try to fetch. Each kind's schema is
written standalone instead, with the definitions it reaches copied into its own ``$defs``
(definitions refer to each other, recursively, so they are linked locally, not expanded), in
kubeconform's layout ``DIR/v1.N.0-standalone-strict/<kind>[-<group>]-<version>.json``, for
``-schema-location 'DIR/{{.NormalizedKubernetesVersion}}-standalone{{.StrictSuffix}}/
{{.ResourceKind}}{{.KindSuffix}}.json' -kubernetes-version 1.N.0``. deploy/k8s/ensure-tools.sh
runs it with the system Python (standard library only).

:func:`crd_schemas` turns CRDs into strict JSON schemas the way kubeconform's
openapi2jsonschema does, at ``DIR/<group>/<kind>_<version>.json``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

_REF = re.compile(r"^(?:/api/_definitions\.json)?#/\$defs/(.+)$")
_DIR = "kubernetes_validate/kubernetes-json-schema/"


def _refs(node: Any) -> Iterable[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            match = _REF.match(ref)
            if match is None:
                raise ValueError(f"unexpected $ref {ref!r}")
            yield match[1]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _localize(node: Any) -> Any:
    """The same schema with every reference pointing at its own ``$defs``."""
    if isinstance(node, dict):
        out = {k: _localize(v) for k, v in node.items()}
        if isinstance(out.get("$ref"), str):
            match = _REF.match(out["$ref"])
            assert match is not None
            out["$ref"] = f"#/$defs/{match[1]}"
        return out
    if isinstance(node, list):
        return [_localize(v) for v in node]
    return node


def standalone(schema: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with the definitions it reaches (transitively) in its own ``$defs``."""
    needed: set[str] = set()
    pending = list(_refs(schema))
    while pending:
        name = pending.pop()
        if name not in needed:
            needed.add(name)
            pending.extend(_refs(definitions[name]))
    out = _localize({k: v for k, v in schema.items() if k != "$id"})
    out["$defs"] = {name: _localize(definitions[name]) for name in sorted(needed)}
    return out


def kubernetes_schemas(wheel: Path, version: str, output: Path) -> int:
    """Write the standalone strict schema of every kind of release ``version``; their count."""
    minor = ".".join(version.lstrip("v").split(".")[:2])
    source = f"{_DIR}v{minor}.0-local-strict/"
    target = output / f"v{minor}.0-standalone-strict"
    target.mkdir(parents=True, exist_ok=True)
    written = 0
    with zipfile.ZipFile(wheel) as archive:
        names = [n for n in archive.namelist() if n.startswith(source)]
        if not names:
            raise SystemExit(f"{wheel.name} has no schemas of Kubernetes {minor}")
        definitions = json.loads(archive.read(source + "_definitions.json"))["$defs"]
        for name in names:
            base = name.rsplit("/", 1)[1]
            if base.startswith("_") or base == "all.json":
                continue
            schema = json.loads(archive.read(name))
            # Only kinds (objects with apiVersion and kind) are validated as documents.
            if "x-kubernetes-group-version-kind" not in schema:
                continue
            (target / base).write_text(json.dumps(standalone(schema, definitions)))
            written += 1
    return written


def _openapi_to_json_schema(node: Any, strict: bool = True) -> Any:
    """A CRD's OpenAPI v3 schema as JSON schema, as kubeconform's openapi2jsonschema makes it:
    int-or-string becomes a choice, nullable admits null, and (strict) an object with
    ``properties`` refuses other fields unless it preserves unknown fields."""
    if isinstance(node, list):
        return [_openapi_to_json_schema(v, strict) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _openapi_to_json_schema(v, strict) for k, v in node.items()}
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out["oneOf"] = [{"type": "string"}, {"type": "integer"}]
    if out.pop("nullable", False) and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    preserve = out.get("x-kubernetes-preserve-unknown-fields", False)
    if strict and "properties" in out and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    return out


def load_crds(directory: Path, pattern: str = "*.yaml") -> list[dict[str, Any]]:
    """The CRDs of the files ``pattern`` in ``directory`` (controller-gen writes one a file)."""
    # PyYAML is the venv's; the schema conversion above runs on the bare system Python.
    import yaml  # noqa: PLC0415

    class Loader(yaml.SafeLoader):
        """YAML 1.1 reads a bare ``=`` (an enum value of the operator's CRDs) as a "value" tag
        PyYAML cannot construct; here it is the string it is in YAML 1.2."""

    Loader.yaml_implicit_resolvers = {
        first: [r for r in resolvers if r[0] != "tag:yaml.org,2002:value"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    crds = []
    for path in sorted(directory.glob(pattern)):
        crds.extend(d for d in yaml.load_all(path.read_text(), Loader=Loader) if d)
    return crds


def crd_schemas(crds: Iterable[dict[str, Any]], output: Path) -> list[Path]:
    """Write each served version of each CRD as ``output/<group>/<kind>_<version>.json``."""
    written = []
    for crd in crds:
        spec = crd["spec"]
        group, kind = spec["group"], spec["names"]["kind"].lower()
        for version in spec["versions"]:
            if not version.get("served", True) or "schema" not in version:
                continue
            schema = _openapi_to_json_schema(version["schema"]["openAPIV3Schema"])
            path = output / group / f"{kind}_{version['name']}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(schema))
            written.append(path)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, required=True, help="kubernetes-validate wheel")
    parser.add_argument("--kubernetes-version", required=True, help="e.g. v1.37.2")
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    count = kubernetes_schemas(args.wheel, args.kubernetes_version, args.output)
    print(f"kube_schemas: {count} kinds of Kubernetes {args.kubernetes_version}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
