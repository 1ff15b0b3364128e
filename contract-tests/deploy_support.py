"""What the test_deploy*.py contract tests share: the rendered manifests, the compose stack
and the metrics the code really exports. Nothing here reads scripts/gen_deploy.py's
constants; the tests compare the committed files with the registry and the code."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from mlmesh_common import topics

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
COMPOSE = ROOT / "deploy" / "compose"
ENVS = ("base", "overlays/dev", "overlays/prod")
if str(ROOT / "scripts") not in sys.path:
    sys.path.insert(0, str(ROOT / "scripts"))

import kustomize_lite  # noqa: E402

load_yaml = kustomize_lite.load_yaml
containers = kustomize_lite.containers


@cache
def _rendered(folder: str) -> tuple[dict[str, Any], ...]:
    return tuple(kustomize_lite.render(K8S / folder))


def render(folder: str) -> list[dict[str, Any]]:
    """The documents of deploy/k8s/<folder> as kustomize builds them (a fresh copy)."""
    import copy

    return copy.deepcopy(list(_rendered(folder)))


def kind(docs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == name]


def config(docs: list[dict[str, Any]]) -> dict[str, str]:
    (cm,) = kind(docs, "ConfigMap")
    return cm["data"]


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e for e in container.get("env", [])}


def groups_of_deployment(dep: dict[str, Any]) -> set[str]:
    value = env_of(containers(dep)[0]).get("MLMESH_GROUPS", {}).get("value", "")
    return {g.strip() for g in value.split(",") if g.strip()}


def partitions(group: topics.ConsumerGroup) -> int:
    return min(topics.topic_by_name(t).partitions for t in group.topics)


def pod_labels(dep: dict[str, Any]) -> dict[str, str]:
    return dep["spec"]["template"]["metadata"]["labels"]


@cache
def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE / "docker-compose.yml")[0]


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


@cache
def compose_env() -> dict[str, str]:
    return read_env_file(COMPOSE / "mlmesh.env")


def service_source(service: str) -> str:
    """Every Python file of services/<service>/src, concatenated."""
    return "\n".join(p.read_text(encoding="utf-8")
                     for p in (ROOT / "services" / service / "src").rglob("*.py"))


# -- metrics the code exports ---------------------------------------------------------------
@dataclass(frozen=True)
class Metric:
    """A prometheus_client metric defined in the code: its kind, name and label names."""

    kind: str
    name: str
    labels: tuple[str, ...]
    path: str

    def series(self) -> set[str]:
        """The sample names Prometheus stores for it (prometheus_client's suffixes)."""
        base = self.name.removesuffix("_total") if self.kind == "Counter" else self.name
        if self.kind == "Counter":
            return {f"{base}_total", f"{base}_created"}
        if self.kind in ("Histogram", "Summary"):
            out = {f"{base}_sum", f"{base}_count", f"{base}_created"}
            return out | ({f"{base}_bucket"} if self.kind == "Histogram" else {base})
        return {base}


_DEFINITION = re.compile(
    r"\b(Counter|Gauge|Histogram|Summary)\(\s*"
    r"\"(mlmesh_[a-z0-9_]+)\"\s*,\s*"       # name
    r"(?:\"[^\"]*\"\s*)+"                    # documentation (maybe several literals)
    r"(?:,\s*\[([^\]]*)\])?")                # label names


@cache
def exported_metrics() -> dict[str, Metric]:
    """Series name -> Metric for every metric defined in libs/ and services/ (the serving
    app's template included), found by reading the source, not by importing it."""
    found: dict[str, Metric] = {}
    files = [*ROOT.glob("libs/*/src/**/*.py"), *ROOT.glob("services/*/src/**/*.py"),
             *ROOT.glob("services/*/src/**/templates/*.j2")]
    for path in files:
        text = path.read_text(encoding="utf-8")
        for m in _DEFINITION.finditer(text):
            labels = tuple(re.findall(r"\"([a-zA-Z_][a-zA-Z0-9_]*)\"", m.group(3) or ""))
            metric = Metric(m.group(1), m.group(2), labels, path.relative_to(ROOT).as_posix())
            for series in metric.series():
                found[series] = metric
    return found
