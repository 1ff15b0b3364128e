"""Registry vs deploy: Kubernetes manifests, compose stack, Dockerfiles and READMEs.

Everything here is checked against mlmesh_common.topics, mlmesh_common.settings and the
services' code (and the committed files), not against the generator's own constants, so a
hand edit or a stale generation fails. The overlays are rendered by scripts/kustomize_lite.py
(test_deploy_policies.py compares it with `kubectl kustomize` where kubectl exists).
Network policies and pod security: test_deploy_policies.py; dashboards: test_deploy_metrics.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_support import (
    COMPOSE,
    ENVS,
    K8S,
    ROOT,
    compose,
    compose_env,
    config,
    containers,
    env_of,
    groups_of_deployment,
    kind,
    load_yaml,
    partitions,
    read_env_file,
    render,
    service_source,
)

from mlmesh_common import topics
from mlmesh_common.settings import Settings

GPU_GROUP = "train-gpu-worker"
MODELING_SERVICES = {"train-gpu", "tune", "select"}
#: Settings every deployment must set although the code has a default: the default is a
#: local file, folder or database under MLMESH_HOME, which only one machine can share.
#: required_settings() adds every field whose default is a loopback address.
MULTI_HOST_SETTINGS = ("kafka_bootstrap", "ledger_url", "artifact_root", "s3_endpoint_url",
                       "mlflow_tracking_uri", "optuna_storage", "git_repo", "home",
                       "http_host", "http_port")
#: Set for the gateway only (its own variables, not Settings fields).
GATEWAY_ENV = ("MLMESH_GATEWAY_HOST", "MLMESH_GATEWAY_PORT", "MLMESH_GRPC_PORT")
#: Secrets: never in the ConfigMap, always a secretKeyRef in every Deployment.
SECRET_ENV = ("PGPASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
#: A service's own secret-looking variables, found in its code.
SECRET_NAME = re.compile(r"\b(MLMESH_[A-Z_]*(?:TOKEN|API_KEY|PEPPER|PASSWORD|SECRET))\b")
#: ... except variables the code sets itself for a child process.
INTERNAL_SECRET_ENV = {"MLMESH_GIT_ASKPASS_PASSWORD": "mlmesh_git sets it for its GIT_ASKPASS"}


def required_settings() -> list[str]:
    """MLMESH_* names of the Settings fields whose default cannot work beyond one host."""
    out = []
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=False)
        loopback = isinstance(default, str) and ("127.0.0.1" in default or "localhost" in default)
        if name in MULTI_HOST_SETTINGS or loopback:
            out.append(f"MLMESH_{name.upper()}")
    return out


def service_secrets(service: str) -> set[str]:
    """Secret-looking MLMESH_* variables the service's code (or its libs helper) reads."""
    text = service_source(service)
    if service == "gateway":  # API keys: the helpers live in mlmesh_common.apikeys
        text += (ROOT / "libs/common/src/mlmesh_common/apikeys.py").read_text(encoding="utf-8")
    return set(SECRET_NAME.findall(text)) - set(INTERNAL_SECRET_ENV)


# -- generation ---------------------------------------------------------------------------------
def test_generated_deploy_files_are_current() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_deploy.py"), "--check"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_base_kustomization_lists_every_manifest() -> None:
    listed = set(load_yaml(K8S / "base" / "kustomization.yaml")[0]["resources"])
    present = {p.relative_to(K8S / "base").as_posix() for p in (K8S / "base").rglob("*.yaml")
               if p.name != "kustomization.yaml"}
    assert present == listed, f"unlisted: {present - listed}, missing: {listed - present}"


# -- Kubernetes -----------------------------------------------------------------------------------
@pytest.mark.parametrize("env", ENVS)
def test_one_scaled_object_per_consumer_group(env: str) -> None:
    docs = render(env)
    deployments = {d["metadata"]["name"]: d for d in kind(docs, "Deployment")}
    bootstrap = config(docs)["MLMESH_KAFKA_BOOTSTRAP"]
    scaled = kind(docs, "ScaledObject")
    problems = []
    for group in topics.CONSUMER_GROUPS:
        # each trigger reads the group id that commits on its topic (usually group_id; a
        # second consumer of the same service may commit under its own, topic_group_ids)
        wanted = {(t, group.group_id_for(t)) for t in group.topics}
        mine = [s for s in scaled
                if {(t["metadata"]["topic"], t["metadata"]["consumerGroup"])
                    for t in s["spec"]["triggers"]} == wanted]
        if len(mine) != 1:
            problems.append(f"{group.name}: {len(mine)} ScaledObjects with triggers "
                            f"{sorted(wanted)} (want exactly 1)")
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
        if not 1 <= spec["maxReplicaCount"] <= partitions(group):
            problems.append(f"{group.name}: maxReplicaCount {spec['maxReplicaCount']} not in "
                            f"1..{partitions(group)} (min partitions of its topics)")
        if not 0 <= spec.get("minReplicaCount", 0) <= spec["maxReplicaCount"]:
            problems.append(f"{group.name}: minReplicaCount > maxReplicaCount")
        target = deployments.get(spec["scaleTargetRef"]["name"])
        if target is None:
            problems.append(f"{group.name}: scaleTargetRef {spec['scaleTargetRef']} is not a "
                            "Deployment")
        elif group.name not in groups_of_deployment(target):
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
    kafka_topics = kind(render(env), "KafkaTopic")
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
            assert int(kt["spec"]["config"]["retention.ms"]) >= 86_400_000, (
                f"{name}: keep at least a day (a stuck stage is re-driven from the topic)")
        assert int(by_name[topic.dlq]["spec"]["config"]["retention.ms"]) >= int(
            by_name[topic.name]["spec"]["config"]["retention.ms"]), (
            f"{topic.dlq}: dead letters must outlive the topic's messages (replay)")


@pytest.mark.parametrize("env", ENVS)
def test_every_service_has_deployments_with_probes(env: str) -> None:
    docs = render(env)
    http_port = int(config(docs)["MLMESH_HTTP_PORT"])
    deployments = kind(docs, "Deployment")
    services = {d["metadata"]["name"]: d for d in kind(docs, "Service")}
    pdbs = [d for d in kind(docs, "PodDisruptionBudget")]
    problems = []
    for service in topics.ALL_SERVICES:
        mine = [d for d in deployments
                if d["metadata"]["labels"].get("app.kubernetes.io/component") == service]
        if not mine:
            problems.append(f"{service}: no Deployment (label app.kubernetes.io/component)")
            continue
        run = [g for d in mine for g in groups_of_deployment(d)]
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


def _gpu(dep: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
    pod = dep["spec"]["template"]["spec"]
    res = pod["containers"][0]["resources"]
    return (res["limits"].get("nvidia.com/gpu"), res["requests"].get("nvidia.com/gpu"),
            pod.get("nodeSelector"), pod.get("tolerations"))


@pytest.mark.parametrize("env", ENVS)
def test_gpu_scheduling(env: str) -> None:
    """base: train-gpu-worker asks for one GPU; prod: plus the GPU pool's nodeSelector and
    taint toleration; dev: no GPU at all (CPU fallback). Nobody else touches GPUs."""
    problems = []
    for dep in kind(render(env), "Deployment"):
        name = dep["metadata"]["name"]
        limit, request, selector, tolerations = _gpu(dep)
        if GPU_GROUP in groups_of_deployment(dep) and env != "overlays/dev":
            if limit != 1 or request != 1:
                problems.append(f"{name}: nvidia.com/gpu limit/request {limit}/{request} != 1")
            if env == "overlays/prod":
                if not any(t.get("key") == "nvidia.com/gpu" and t.get("effect") == "NoSchedule"
                           for t in tolerations or []):
                    problems.append(f"{name}: no toleration for nvidia.com/gpu taints")
                if not selector or not any("gpu" in k for k in selector):
                    problems.append(f"{name}: no nodeSelector for GPU nodes ({selector})")
            elif selector or tolerations:
                problems.append(f"{name}: base must leave GPU node placement to the overlay")
        elif limit or request or selector or tolerations:
            problems.append(f"{name}: takes a GPU or GPU-node placement in {env}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("env", ENVS)
def test_settings_and_secret_references(env: str) -> None:
    docs = render(env)
    data = config(docs)
    missing = [v for v in (*required_settings(), *GATEWAY_ENV) if not data.get(v)]
    assert not missing, f"ConfigMap mlmesh-config lacks {missing}"
    leaked = [k for k in data if k in SECRET_ENV or SECRET_NAME.search(k)
              or re.search(r"PASSWORD|SECRET", k)]
    assert not leaked, f"secrets in the ConfigMap: {leaked}"
    assert not [d for d in kind(docs, "Secret") if d.get("data") or d.get("stringData")], (
        "deploy/k8s must only reference Secrets, never carry their values")
    problems = []
    for dep in kind(docs, "Deployment"):
        name = dep["metadata"]["name"]
        env_vars = env_of(containers(dep)[0])
        service = dep["metadata"]["labels"]["app.kubernetes.io/component"]
        for var in (*SECRET_ENV, *sorted(service_secrets(service))):
            ref = env_vars.get(var, {}).get("valueFrom", {}).get("secretKeyRef")
            if not (ref and ref.get("name") and ref.get("key")):
                problems.append(f"{name}: {var} must come from a secretKeyRef")
        for var, spec in env_vars.items():
            if "value" in spec and SECRET_NAME.search(var):
                problems.append(f"{name}: secret {var} has a literal value")
    assert not problems, "\n".join(problems)


def test_required_settings_follow_the_code() -> None:
    """The derivation above must find the settings a multi-host mesh cannot do without, and
    the gateway must read the variables set for it (a rename fails here, not in production)."""
    required = set(required_settings())
    assert {"MLMESH_KAFKA_BOOTSTRAP", "MLMESH_LEDGER_URL", "MLMESH_ARTIFACT_ROOT",
            "MLMESH_MLFLOW_TRACKING_URI", "MLMESH_OPTUNA_STORAGE", "MLMESH_HOME",
            "MLMESH_HTTP_PORT", "MLMESH_HTTP_HOST"} <= required, required
    stale = [f for f in MULTI_HOST_SETTINGS if f not in Settings.model_fields]
    assert not stale, f"MULTI_HOST_SETTINGS names fields Settings no longer has: {stale}"
    gateway_src = service_source("gateway")
    unread = [v for v in (*GATEWAY_ENV, "MLMESH_OPS_TARGETS") if v not in gateway_src]
    assert not unread, f"the gateway does not read {unread}"


def test_gateway_ops_view_targets_every_other_deployment() -> None:
    docs = render("base")
    http_port = config(docs)["MLMESH_HTTP_PORT"]
    names = {d["metadata"]["name"] for d in kind(docs, "Deployment")}
    for dep in kind(docs, "Deployment"):
        if dep["metadata"]["labels"]["app.kubernetes.io/component"] != "gateway":
            continue
        value = env_of(containers(dep)[0])["MLMESH_OPS_TARGETS"]["value"]
        targets = dict(part.split("=", 1) for part in value.split(","))
        others = {n for n in names if not n.startswith("gateway")}
        assert set(targets) == others, set(targets) ^ others
        assert all(url == f"http://{n}:{http_port}" for n, url in targets.items()), targets
    compose_targets = compose()["services"]["gateway"]["environment"]["MLMESH_OPS_TARGETS"]
    assert compose_targets == value


# -- compose --------------------------------------------------------------------------------------
def _condition_problems(services: dict[str, Any]) -> list[str]:
    """depends_on must wait for health where the target has a healthcheck, for completion
    of one-shot jobs, and may only fall back to service_started for targets with neither."""
    problems = []
    for name, svc in services.items():
        for target, cond in svc.get("depends_on", {}).items():
            if target not in services:
                problems.append(f"{name}: depends_on unknown service {target}")
                continue
            other = services[target]
            if other.get("restart") == "no":
                want = "service_completed_successfully"
            elif other.get("healthcheck"):
                want = "service_healthy"
            else:
                want = "service_started"
            if cond.get("condition") != want:
                problems.append(f"{name} -> {target}: condition {cond.get('condition')}, "
                                f"want {want}")
    return problems


def test_compose_runs_every_deployment_from_its_dockerfile() -> None:
    services = compose()["services"]
    problems = []
    for dep in kind(render("base"), "Deployment"):
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
        if groups != groups_of_deployment(dep):
            problems.append(f"{name}: MLMESH_GROUPS {groups} != k8s {groups_of_deployment(dep)}")
        if "mlmesh.env" not in svc.get("env_file", []):
            problems.append(f"{name}: env_file mlmesh.env missing")
        env = dict(compose_env())
        for env_file in svc.get("env_file", []):
            env.update(read_env_file(COMPOSE / env_file))
        missing = [v for v in service_secrets(component)
                   if v not in env and f"# {v}=" not in "".join(
                       (COMPOSE / f).read_text() for f in svc.get("env_file", []))]
        if missing:
            problems.append(f"{name}: its env files neither set nor list {missing}")
        if not svc.get("healthcheck", {}).get("test"):
            problems.append(f"{name}: no healthcheck")
        home = compose_env()["MLMESH_HOME"]
        if not any(v.split(":")[1] == home and not v.split(":")[0].startswith(".")
                   for v in svc.get("volumes", [])):
            problems.append(f"{name}: MLMESH_HOME {home} is not on a named volume")
        needs = {"kafka", "topic-init", "postgres", "minio-init"}
        if not needs <= set(svc.get("depends_on", {})):
            problems.append(f"{name}: must depend on {sorted(needs)}")
    problems += _condition_problems(services)
    assert not problems, "\n".join(problems)


def test_compose_groups_cover_every_consumer_group_once() -> None:
    run: list[str] = []
    for svc in compose()["services"].values():
        run += [g for g in str(svc.get("environment", {}).get("MLMESH_GROUPS", "")).split(",")
                if g]
    assert sorted(run) == sorted(g.name for g in topics.CONSUMER_GROUPS)


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
    init = " ".join(services["minio-init"]["command"])
    assert f"local/{bucket}" in init, f"minio-init must create the artifact bucket {bucket}"
    mlflow_bucket = re.search(r"--artifacts-destination s3://([^/ ]+)", mlflow).group(1)
    assert f"local/{mlflow_bucket}" in init, f"minio-init must create {mlflow_bucket}"
    exporters = load_yaml(COMPOSE / "otel-collector.yaml")[0]["exporters"]
    assert any("jaeger:4317" in str(e.get("endpoint")) for e in exporters.values()), exporters
    otlp = compose_env()["OTEL_EXPORTER_OTLP_ENDPOINT"]
    assert otlp.split("//")[1].split(":")[0] == "otel-collector"
    for name in ("kafka", "postgres", "minio", "mlflow", "prometheus", "grafana", "jaeger"):
        assert services[name].get("healthcheck"), f"{name}: no healthcheck"
    for name, svc in services.items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE / source).exists(), f"{name}: {source} does not exist"
            else:
                assert source in compose().get("volumes", {}), f"{name}: volume {source}"
        for env_file in svc.get("env_file", []):
            assert (COMPOSE / env_file).exists(), f"{name}: env_file {env_file} missing"


def test_compose_env_sets_every_required_setting() -> None:
    env = compose_env()
    missing = [v for v in (*required_settings(), *GATEWAY_ENV, *SECRET_ENV) if not env.get(v)]
    assert not missing, (
        f"deploy/compose/mlmesh.env lacks {missing}: set them in scripts/gen_deploy.py "
        "SETTINGS")
    host = env["MLMESH_KAFKA_BOOTSTRAP"].split(":")[0]
    assert host in compose()["services"], f"bootstrap host {host} is no compose service"
    assert set(compose_env()) >= set(config(render("base"))), (
        "a ConfigMap setting is missing from mlmesh.env: "
        f"{set(config(render('base'))) - set(compose_env())}")


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


def test_kustomize_subset_refuses_what_it_does_not_model(tmp_path: Path) -> None:
    """A kustomization feature the renderer does not model must fail, never render wrong."""
    import kustomize_lite

    (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
    cases = {
        "gen": {"resources": ["cm.yaml"], "configMapGenerator": [{"name": "x"}]},
        "op": {"resources": ["cm.yaml"], "patches": [{"target": {"kind": "ConfigMap"},
               "patch": '[{"op": "move", "from": "/a", "path": "/b"}]'}]},
        "smp": {"resources": ["cm.yaml"], "patches": [{"target": {"kind": "ConfigMap"},
                "patch": "metadata: {labels: {a: b}}"}]},
        "miss": {"resources": ["cm.yaml"], "patches": [{"target": {"kind": "Secret"},
                 "patch": '[{"op": "remove", "path": "/data"}]'}]},
    }
    for name, k in cases.items():
        folder = tmp_path / name
        folder.mkdir()
        (folder / "cm.yaml").write_text((tmp_path / "cm.yaml").read_text())
        (folder / "kustomization.yaml").write_text(yaml.safe_dump(k))
        with pytest.raises(kustomize_lite.KustomizeError):
            kustomize_lite.render(folder)
