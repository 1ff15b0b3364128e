"""Registry vs deploy: Kubernetes manifests, compose stack, Dockerfiles and READMEs.

Everything here is checked against mlmesh_common.topics (and the committed files), not
against the generator's own constants, so a hand edit or a stale generation fails. The
overlays are rendered by a small kustomize subset below (resources, namespace, labels,
images, JSON6902 patches), so no kubectl/kustomize binary is needed.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlmesh_common import topics
from mlmesh_common.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
COMPOSE = ROOT / "deploy" / "compose"
ENVS = ("base", "overlays/dev", "overlays/prod")
GPU_GROUP = "train-gpu-worker"
MODELING_SERVICES = {"train-gpu", "tune", "select"}
#: What the services read from the environment; each must be set in compose and k8s.
REQUIRED_ENV = (
    "MLMESH_KAFKA_BOOTSTRAP", "MLMESH_LEDGER_URL", "MLMESH_ARTIFACT_ROOT",
    "MLMESH_S3_ENDPOINT_URL", "MLMESH_MLFLOW_TRACKING_URI", "MLMESH_OPTUNA_STORAGE",
    "MLMESH_GIT_REPO", "MLMESH_HOME", "MLMESH_HTTP_HOST", "MLMESH_HTTP_PORT",
    "MLMESH_GATEWAY_HOST", "MLMESH_GATEWAY_PORT", "MLMESH_GRPC_PORT",
    "OTEL_EXPORTER_OTLP_ENDPOINT")
GATEWAY_ENV = ("MLMESH_GATEWAY_HOST", "MLMESH_GATEWAY_PORT", "MLMESH_GRPC_PORT")
#: Secrets: never in the ConfigMap, always a secretKeyRef in every Deployment.
SECRET_ENV = ("PGPASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
CLUSTER_SCOPED = {"Namespace"}


# -- a small kustomize ------------------------------------------------------------------------
def _load_yaml(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def _pointer(path: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]


def _apply_op(doc: dict[str, Any], op: dict[str, Any]) -> None:
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
        raise AssertionError(f"patch {op} targets a missing path in {doc['metadata']['name']}")
    if op["op"] == "remove":
        del node[last]
    elif op["op"] in ("add", "replace"):
        node[last] = op["value"]
    else:
        raise AssertionError(f"unsupported patch op {op['op']}")


@cache
def render(folder: str) -> tuple[dict[str, Any], ...]:
    """The documents `kubectl kustomize deploy/k8s/<folder>` would produce (subset)."""
    kdir = K8S / folder
    k = _load_yaml(kdir / "kustomization.yaml")[0]
    unknown = set(k) - {"apiVersion", "kind", "resources", "patches", "namespace", "labels",
                        "images"}
    assert not unknown, f"{folder}/kustomization.yaml uses {unknown}; teach test_deploy.py"
    docs: list[dict[str, Any]] = []
    for res in k.get("resources", []):
        path = (kdir / res).resolve()
        assert path.exists(), f"{folder}/kustomization.yaml: resource {res} does not exist"
        if path.is_dir():
            docs += copy.deepcopy(list(render(path.relative_to(K8S).as_posix())))
        else:
            docs += _load_yaml(path)
    for patch in k.get("patches", []):
        target, ops = patch["target"], yaml.safe_load(patch["patch"])
        matched = [d for d in docs if d["kind"] == target["kind"]
                   and target.get("name", d["metadata"]["name"]) == d["metadata"]["name"]]
        assert matched, f"{folder}: patch target {target} matches nothing"
        for doc in matched:
            for op in ops:
                _apply_op(doc, op)
    for doc in docs:
        if "namespace" in k and doc["kind"] not in CLUSTER_SCOPED:
            doc["metadata"]["namespace"] = k["namespace"]
        for label in k.get("labels", []):
            doc["metadata"].setdefault("labels", {}).update(label["pairs"])
    for image in k.get("images", []):
        for doc in docs:
            for c in _containers(doc):
                if c["image"].split(":")[0] == image["name"]:
                    c["image"] = f"{image.get('newName', image['name'])}:{image['newTag']}"
    return tuple(docs)


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if doc["kind"] != "Deployment":
        return []
    return doc["spec"]["template"]["spec"]["containers"]


def _kind(docs, kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def _config(docs) -> dict[str, str]:
    (cm,) = [d for d in _kind(docs, "ConfigMap")]
    return cm["data"]


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e for e in container.get("env", [])}


def _groups_of_deployment(dep: dict[str, Any]) -> set[str]:
    value = _env(_containers(dep)[0]).get("MLMESH_GROUPS", {}).get("value", "")
    return {g.strip() for g in value.split(",") if g.strip()}


def _partitions(group: topics.ConsumerGroup) -> int:
    return min(topics.topic_by_name(t).partitions for t in group.topics)


# -- generation ---------------------------------------------------------------------------------
def test_generated_deploy_files_are_current() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_deploy.py"), "--check"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_base_kustomization_lists_every_manifest() -> None:
    listed = set(_load_yaml(K8S / "base" / "kustomization.yaml")[0]["resources"])
    present = {p.relative_to(K8S / "base").as_posix() for p in (K8S / "base").rglob("*.yaml")
               if p.name != "kustomization.yaml"}
    assert present == listed, f"unlisted: {present - listed}, missing: {listed - present}"


# -- Kubernetes -----------------------------------------------------------------------------------
@pytest.mark.parametrize("env", ENVS)
def test_one_scaled_object_per_consumer_group(env: str) -> None:
    docs = render(env)
    deployments = {d["metadata"]["name"]: d for d in _kind(docs, "Deployment")}
    bootstrap = _config(docs)["MLMESH_KAFKA_BOOTSTRAP"]
    scaled = _kind(docs, "ScaledObject")
    problems = []
    for group in topics.CONSUMER_GROUPS:
        mine = [s for s in scaled if {t["metadata"]["consumerGroup"] for t in s["spec"]["triggers"]}
                == {group.group_id}]
        if len(mine) != 1:
            problems.append(f"{group.name}: {len(mine)} ScaledObjects with consumerGroup "
                            f"{group.group_id} (want exactly 1)")
            continue
        spec = mine[0]["spec"]
        triggers = spec["triggers"]
        if {t["type"] for t in triggers} != {"kafka"}:
            problems.append(f"{group.name}: non-kafka triggers")
        if sorted(t["metadata"]["topic"] for t in triggers) != sorted(group.topics):
            seen = [t["metadata"]["topic"] for t in triggers]
            problems.append(f"{group.name}: trigger topics {seen} != registry {list(group.topics)}")
        for t in triggers:
            if int(t["metadata"]["lagThreshold"]) != group.lag_threshold:
                problems.append(f"{group.name}: lagThreshold {t['metadata']['lagThreshold']} != "
                                f"{group.lag_threshold}")
            if t["metadata"]["bootstrapServers"] != bootstrap:
                problems.append(f"{group.name}: bootstrapServers differs from the ConfigMap")
        if not 1 <= spec["maxReplicaCount"] <= _partitions(group):
            problems.append(f"{group.name}: maxReplicaCount {spec['maxReplicaCount']} not in "
                            f"1..{_partitions(group)} (min partitions of its topics)")
        if not 0 <= spec.get("minReplicaCount", 0) <= spec["maxReplicaCount"]:
            problems.append(f"{group.name}: minReplicaCount > maxReplicaCount")
        target = deployments.get(spec["scaleTargetRef"]["name"])
        if target is None:
            problems.append(f"{group.name}: scaleTargetRef {spec['scaleTargetRef']} is not a "
                            "Deployment")
        elif group.name not in _groups_of_deployment(target):
            problems.append(f"{group.name}: target Deployment {target['metadata']['name']} does "
                            f"not run the group (MLMESH_GROUPS)")
    targets = [s["spec"]["scaleTargetRef"]["name"] for s in scaled]
    if len(targets) != len(set(targets)):
        problems.append(f"two ScaledObjects scale one Deployment: {targets}")
    if len(scaled) != len(topics.CONSUMER_GROUPS):
        problems.append(f"{len(scaled)} ScaledObjects for {len(topics.CONSUMER_GROUPS)} groups")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("env", ENVS)
def test_kafka_topic_per_registry_topic_and_dlq(env: str) -> None:
    kafka_topics = _kind(render(env), "KafkaTopic")
    by_name = {t["spec"]["topicName"]: t for t in kafka_topics}
    assert len(by_name) == len(kafka_topics), "duplicate KafkaTopic topicName"
    assert set(by_name) == set(topics.all_topic_names()), (
        f"missing: {set(topics.all_topic_names()) - set(by_name)}, "
        f"extra: {set(by_name) - set(topics.all_topic_names())}")
    for topic in topics.TOPICS:
        for name in (topic.name, topic.dlq):
            kt = by_name[name]
            assert kt["spec"]["partitions"] == topic.partitions, name
            assert kt["metadata"]["labels"].get("strimzi.io/cluster"), name
            assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", kt["metadata"]["name"]), name
            assert int(kt["spec"]["config"]["min.insync.replicas"]) <= kt["spec"]["replicas"]


@pytest.mark.parametrize("env", ENVS)
def test_every_service_has_deployments_with_probes(env: str) -> None:
    docs = render(env)
    http_port = int(_config(docs)["MLMESH_HTTP_PORT"])
    deployments = _kind(docs, "Deployment")
    services = {d["metadata"]["name"]: d for d in _kind(docs, "Service")}
    pdbs = [d for d in _kind(docs, "PodDisruptionBudget")]
    problems = []
    for service in topics.ALL_SERVICES:
        mine = [d for d in deployments
                if d["metadata"]["labels"].get("app.kubernetes.io/component") == service]
        if not mine:
            problems.append(f"{service}: no Deployment (label app.kubernetes.io/component)")
            continue
        run = [g for d in mine for g in _groups_of_deployment(d)]
        wanted = sorted(g.name for g in topics.groups_of(service))
        if sorted(run) != wanted:
            problems.append(f"{service}: Deployments run groups {sorted(run)}, registry {wanted}")
    for dep in deployments:
        name = dep["metadata"]["name"]
        pod = dep["spec"]["template"]["spec"]
        labels = dep["spec"]["template"]["metadata"]["labels"]
        (container,) = pod["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            get = container.get(probe, {}).get("httpGet", {})
            port = ports.get(get.get("port"), get.get("port"))
            if get.get("path") != path or port != http_port:
                problems.append(f"{name}: {probe} must GET {path} on {http_port}, has {get}")
        res = container.get("resources", {})
        for part in ("requests", "limits"):
            if not {"cpu", "memory"} <= set(res.get(part, {})):
                problems.append(f"{name}: resources.{part} needs cpu and memory")
        if {"configMapRef": {"name": "mlmesh-config"}} not in container.get("envFrom", []):
            problems.append(f"{name}: envFrom the ConfigMap mlmesh-config missing")
        if not pod.get("securityContext", {}).get("runAsNonRoot"):
            problems.append(f"{name}: runAsNonRoot missing")
        svc = services.get(name)
        if not svc or any(labels.get(k) != v for k, v in svc["spec"]["selector"].items()):
            problems.append(f"{name}: no Service selecting its pods")
        if not any(all(labels.get(k) == v for k, v in p["spec"]["selector"]["matchLabels"].items())
                   for p in pdbs):
            problems.append(f"{name}: no PodDisruptionBudget selecting its pods")
        if "replicas" in dep["spec"]:
            problems.append(f"{name}: sets replicas, which fights its KEDA ScaledObject")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("env", ("base", "overlays/prod"))
def test_gpu_only_on_train_gpu_worker(env: str) -> None:
    for dep in _kind(render(env), "Deployment"):
        pod = dep["spec"]["template"]["spec"]
        limits = pod["containers"][0]["resources"]["limits"]
        requests = pod["containers"][0]["resources"]["requests"]
        if GPU_GROUP in _groups_of_deployment(dep):
            assert limits.get("nvidia.com/gpu") == 1 and requests.get("nvidia.com/gpu") == 1
            assert any(t.get("key") == "nvidia.com/gpu" for t in pod.get("tolerations", []))
            assert pod.get("nodeSelector"), "GPU worker needs a nodeSelector"
        else:
            name = dep["metadata"]["name"]
            assert "nvidia.com/gpu" not in limits, f"{name} must not take a GPU"
            assert not pod.get("tolerations") and not pod.get("nodeSelector"), name


def test_dev_overlay_needs_no_gpu() -> None:
    for dep in _kind(render("overlays/dev"), "Deployment"):
        assert "nvidia.com/gpu" not in dep["spec"]["template"]["spec"]["containers"][0][
            "resources"]["limits"], dep["metadata"]["name"]


@pytest.mark.parametrize("env", ENVS)
def test_settings_and_secret_references(env: str) -> None:
    docs = render(env)
    data = _config(docs)
    missing = [v for v in REQUIRED_ENV if not data.get(v)]
    assert not missing, f"ConfigMap mlmesh-config lacks {missing}"
    leaked = [k for k in data if k in SECRET_ENV or re.search(r"PASSWORD|SECRET", k)]
    assert not leaked, f"secrets in the ConfigMap: {leaked}"
    assert not [d for d in _kind(docs, "Secret") if d.get("data") or d.get("stringData")], (
        "deploy/k8s must only reference Secrets, never carry their values")
    for dep in _kind(docs, "Deployment"):
        env_vars = _env(_containers(dep)[0])
        for var in SECRET_ENV:
            ref = env_vars.get(var, {}).get("valueFrom", {}).get("secretKeyRef")
            assert ref and ref.get("name") and ref.get("key"), (
                f"{dep['metadata']['name']}: {var} must come from a secretKeyRef")


def test_required_env_names_are_real_settings() -> None:
    """The list above must follow the code: a renamed setting fails here, not in production."""
    fields = set(Settings.model_fields)
    unknown = [v for v in REQUIRED_ENV if v.startswith("MLMESH_") and v not in GATEWAY_ENV
               and v.removeprefix("MLMESH_").lower() not in fields]
    assert not unknown, f"not fields of mlmesh_common.settings.Settings: {unknown}"
    gateway_src = "\n".join(p.read_text(encoding="utf-8")
                            for p in (ROOT / "services" / "gateway" / "src").rglob("*.py"))
    unread = [v for v in GATEWAY_ENV if v not in gateway_src]
    assert not unread, f"the gateway does not read {unread}"


# -- compose --------------------------------------------------------------------------------------
@cache
def compose() -> dict[str, Any]:
    return _load_yaml(COMPOSE / "docker-compose.yml")[0]


@cache
def compose_env() -> dict[str, str]:
    values = {}
    for line in (COMPOSE / "mlmesh.env").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def test_compose_runs_every_deployment_from_its_dockerfile() -> None:
    services = compose()["services"]
    problems = []
    for dep in _kind(render("base"), "Deployment"):
        name = dep["metadata"]["name"]
        component = dep["metadata"]["labels"]["app.kubernetes.io/component"]
        svc = services.get(name)
        if svc is None:
            problems.append(f"no compose service {name}")
            continue
        build = svc.get("build", {})
        if (COMPOSE / build.get("context", "")).resolve() != ROOT:
            problems.append(f"{name}: build context must be the repo root")
        if build.get("dockerfile") != f"services/{component}/Dockerfile":
            problems.append(f"{name}: dockerfile {build.get('dockerfile')}")
        groups = {g for g in str(svc.get("environment", {}).get("MLMESH_GROUPS", "")).split(",")
                  if g}
        if groups != _groups_of_deployment(dep):
            problems.append(f"{name}: MLMESH_GROUPS {groups} != k8s {_groups_of_deployment(dep)}")
        if "mlmesh.env" not in svc.get("env_file", []):
            problems.append(f"{name}: env_file mlmesh.env missing")
        if not svc.get("healthcheck", {}).get("test"):
            problems.append(f"{name}: no healthcheck")
        if not {"kafka", "topic-init"} <= set(svc.get("depends_on", {})):
            problems.append(f"{name}: must depend on kafka and topic-init")
    for name, svc in services.items():
        for dep in svc.get("depends_on", {}):
            if dep not in services:
                problems.append(f"{name}: depends_on unknown service {dep}")
    assert not problems, "\n".join(problems)


def test_compose_infrastructure() -> None:
    services = compose()["services"]
    for name in ("kafka", "postgres", "minio", "minio-init", "mlflow", "otel-collector", "jaeger",
                 "prometheus", "grafana", "topic-init"):
        assert name in services, f"compose lacks {name}"
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert "controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"], "Kafka must run KRaft"
    assert not any("zookeeper" in n for n in services)
    assert services["topic-init"]["command"] == ["python", "-m", "mlmesh_cli", "topics", "create"]
    mlflow = " ".join(services["mlflow"]["command"])
    assert "postgresql://" in mlflow and "s3://" in mlflow, "MLflow on PostgreSQL + MinIO"
    bucket = compose_env()["MLMESH_ARTIFACT_ROOT"].removeprefix("s3://").split("/")[0]
    assert f"local/{bucket}" in " ".join(services["minio-init"]["command"]), (
        f"minio-init must create the artifact bucket {bucket}")
    for name in ("kafka", "postgres", "minio", "mlflow", "prometheus", "grafana"):
        assert services[name].get("healthcheck"), f"{name}: no healthcheck"
    for name, svc in services.items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE / source).exists(), f"{name}: {source} does not exist"
            else:
                assert source in compose().get("volumes", {}), f"{name}: volume {source}"


def test_compose_env_sets_every_required_setting() -> None:
    env = compose_env()
    missing = [v for v in (*REQUIRED_ENV, *SECRET_ENV) if not env.get(v)]
    assert not missing, f"deploy/compose/mlmesh.env lacks {missing}"
    host = env["MLMESH_KAFKA_BOOTSTRAP"].split(":")[0]
    assert host in compose()["services"], f"bootstrap host {host} is no compose service"
    assert set(compose_env()) >= set(_config(render("base"))), (
        "a ConfigMap setting is missing from mlmesh.env: "
        f"{set(_config(render('base'))) - set(compose_env())}")


def test_prometheus_scrapes_every_service() -> None:
    config = _load_yaml(COMPOSE / "prometheus.yml")[0]
    targets = {t for job in config["scrape_configs"] for sc in job.get("static_configs", [])
               for t in sc["targets"]}
    port = compose_env()["MLMESH_HTTP_PORT"]
    missing = [d["metadata"]["name"] for d in _kind(render("base"), "Deployment")
               if f"{d['metadata']['name']}:{port}" not in targets]
    assert not missing, f"prometheus.yml does not scrape {missing}"


def test_grafana_is_provisioned_with_existing_metrics() -> None:
    sources = _load_yaml(COMPOSE / "grafana" / "provisioning" / "datasources" /
                         "datasources.yaml")[0]["datasources"]
    assert any(s["type"] == "prometheus" for s in sources)
    dashboards = list((COMPOSE / "grafana" / "dashboards").glob("*.json"))
    assert dashboards
    defined = "\n".join(p.read_text(encoding="utf-8") for p in
                        (ROOT / "libs" / "common" / "src" / "mlmesh_common").rglob("*.py"))
    for path in dashboards:
        board = json.loads(path.read_text(encoding="utf-8"))
        for panel in board["panels"]:
            for target in panel["targets"]:
                for metric in re.findall(r"mlmesh_[a-z_]+", target["expr"]):
                    base = re.sub(r"_(bucket|sum|count)$", "", metric)
                    assert f'"{base}"' in defined, f"{path.name}: unknown metric {metric}"


# -- images and docs ------------------------------------------------------------------------------
def _package(service: str) -> str:
    return "mlmesh_" + service.replace("-", "_")


def _instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n\s*", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


@pytest.mark.parametrize("service", topics.ALL_SERVICES)
def test_dockerfile(service: str) -> None:
    path = ROOT / "services" / service / "Dockerfile"
    assert path.exists(), f"{path} missing"
    ins = _instructions(path.read_text(encoding="utf-8"))
    froms = [rest for kw, rest in ins if kw == "FROM"]
    assert froms == ["python:3.11-slim AS builder", "python:3.11-slim AS runtime"], froms
    copies = [rest for kw, rest in ins if kw == "COPY"]
    sources = sorted(c.split()[0] for c in copies if not c.startswith("--from"))
    assert sources == sorted(["libs/common", f"services/{service}"]), (
        f"copies only libs/common and the service: {copies}")
    assert "--from=builder /opt/venv /opt/venv" in copies
    runs = " ".join(rest for kw, rest in ins if kw == "RUN")
    extra = "[modeling" if service in MODELING_SERVICES else ""
    assert f"./libs/common{extra}" in runs and f"./services/{service}" in runs
    user = [rest for kw, rest in ins if kw == "USER"]
    assert user and user[-1].split(":")[0] not in ("root", "0"), "must run as a non-root user"
    port = compose_env()["MLMESH_HTTP_PORT"]
    assert any(kw == "EXPOSE" and port in rest.split() for kw, rest in ins)
    assert any(kw == "HEALTHCHECK" and "/healthz" in rest for kw, rest in ins)
    cmd = [rest for kw, rest in ins if kw == "CMD"][-1]
    assert json.loads(cmd) == ["python", "-m", _package(service)]
    assert (ROOT / "services" / service / "src" / _package(service)).is_dir()


def test_dockerignore_keeps_sources() -> None:
    lines = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    for keep in ("libs", "services", "libs/common", "libs/cli"):
        assert keep not in lines, f".dockerignore drops {keep}"
    assert "**/.git" in lines or ".git" in lines


@pytest.mark.parametrize("service", topics.ALL_SERVICES)
def test_service_readme(service: str) -> None:
    path = ROOT / "services" / service / "README.md"
    assert path.exists(), f"{path} missing"
    text = path.read_text(encoding="utf-8")
    for section in ("## What it does", "## Consumes", "## Produces", "## Stores", "## Settings",
                    "## Run", "## Scaling"):
        assert section in text, f"{path.name}: {section} missing"
    consumed = {t for g in topics.groups_of(service) for t in g.topics}
    produced = {t.name for t in topics.TOPICS if service in t.producers}
    missing = [t for t in consumed | produced if f"`{t}`" not in text]
    assert not missing, f"{service}/README.md does not mention {missing}"
    assert f"python -m {_package(service)}" in text
    for g in topics.groups_of(service):
        assert g.group_id in text, f"{service}/README.md lacks group {g.group_id}"


def test_this_module_parses_its_own_kustomize_subset() -> None:
    """Patches with ops the mini-kustomize does not model would be silently wrong."""
    for env in ENVS[1:]:
        k = _load_yaml(K8S / env / "kustomization.yaml")[0]
        for patch in k.get("patches", []):
            ops = yaml.safe_load(patch["patch"])
            assert isinstance(ops, list), f"{env}: only JSON6902 patches are modelled"
            assert {op["op"] for op in ops} <= {"add", "replace", "remove"}
