"""Render deploy/k8s kustomizations without a kustomize binary (the subset mlmesh uses).

`kubectl kustomize` is the reference; this renders the same documents for the features
scripts/gen_deploy.py writes: `resources` (files and other kustomizations), `namespace`,
`labels` (metadata only), `images` (newName/newTag) and JSON6902 `patches` (add, replace,
remove) with a kind/name target. Anything else fails loudly instead of rendering wrong.
contract-tests/test_deploy.py renders with it and, where kubectl exists, compares the two;
scripts/lint_deploy.sh falls back to it when neither kubectl nor kustomize is installed.

    python scripts/kustomize_lite.py deploy/k8s/overlays/prod > prod.yaml
"""

from __future__ import annotations

import copy
import sys
from functools import cache
from pathlib import Path
from typing import Any

import yaml

SUPPORTED_KEYS = {"apiVersion", "kind", "resources", "patches", "namespace", "labels", "images"}
SUPPORTED_OPS = {"add", "replace", "remove"}
CLUSTER_SCOPED = {"Namespace"}


class KustomizeError(ValueError):
    """The kustomization uses something this subset does not model, or is broken."""


def load_yaml(path: Path) -> list[dict[str, Any]]:
    """Every non-empty YAML document in `path`."""
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def _pointer(path: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]


def apply_op(doc: dict[str, Any], op: dict[str, Any]) -> None:
    """Apply one JSON6902 operation to `doc` in place."""
    if op.get("op") not in SUPPORTED_OPS:
        raise KustomizeError(f"unsupported patch op {op.get('op')!r}; use one of "
                             f"{sorted(SUPPORTED_OPS)}")
    *parents, last = _pointer(op["path"])
    node: Any = doc
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        index = len(node) if last == "-" else int(last)
        if op["op"] == "add":
            node.insert(index, op["value"])
        elif op["op"] == "replace":
            node[index] = op["value"]
        else:
            del node[index]
        return
    if op["op"] in ("replace", "remove") and last not in node:
        raise KustomizeError(f"patch {op} targets a missing path in "
                             f"{doc['kind']}/{doc['metadata']['name']}")
    if op["op"] == "remove":
        del node[last]
    else:
        node[last] = op["value"]


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The containers of a Deployment (none for other kinds)."""
    if doc["kind"] != "Deployment":
        return []
    return doc["spec"]["template"]["spec"]["containers"]


@cache
def _render(kdir: Path) -> tuple[dict[str, Any], ...]:
    k = load_yaml(kdir / "kustomization.yaml")[0]
    unknown = set(k) - SUPPORTED_KEYS
    if unknown:
        raise KustomizeError(f"{kdir}/kustomization.yaml uses {sorted(unknown)}, which "
                             "scripts/kustomize_lite.py does not model; teach it or use kubectl")
    docs: list[dict[str, Any]] = []
    for res in k.get("resources", []):
        path = (kdir / res).resolve()
        if not path.exists():
            raise KustomizeError(f"{kdir}/kustomization.yaml: resource {res} does not exist")
        docs += copy.deepcopy(list(_render(path))) if path.is_dir() else load_yaml(path)
    for patch in k.get("patches", []):
        target, ops = patch["target"], yaml.safe_load(patch["patch"])
        if not isinstance(ops, list):
            raise KustomizeError(f"{kdir}: only JSON6902 patches (a list of ops) are modelled")
        matched = [d for d in docs if d["kind"] == target["kind"]
                   and target.get("name", d["metadata"]["name"]) == d["metadata"]["name"]]
        if not matched:
            raise KustomizeError(f"{kdir}: patch target {target} matches nothing")
        for doc in matched:
            for op in ops:
                apply_op(doc, op)
    for doc in docs:
        if "namespace" in k and doc["kind"] not in CLUSTER_SCOPED:
            doc["metadata"]["namespace"] = k["namespace"]
        for label in k.get("labels", []):
            if label.get("includeSelectors") or label.get("includeTemplates"):
                raise KustomizeError(f"{kdir}: labels with includeSelectors/includeTemplates "
                                     "are not modelled")
            doc["metadata"].setdefault("labels", {}).update(label["pairs"])
    for image in k.get("images", []):
        for doc in docs:
            for c in containers(doc):
                if c["image"].split(":")[0] == image["name"]:
                    c["image"] = f"{image.get('newName', image['name'])}:{image['newTag']}"
    return tuple(docs)


def render(kdir: Path | str) -> list[dict[str, Any]]:
    """The documents `kubectl kustomize <kdir>` produces (for the modelled subset)."""
    return copy.deepcopy(list(_render(Path(kdir).resolve())))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: kustomize_lite.py <kustomization folder>", file=sys.stderr)
        return 2
    try:
        docs = render(args[0])
    except KustomizeError as exc:
        print(f"kustomize_lite: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(yaml.safe_dump_all(docs, sort_keys=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
