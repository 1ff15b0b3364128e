"""deploy/k8s beyond the registry: NetworkPolicies (evaluated, not just parsed), pod
security, and the kustomize renderer the tests use against `kubectl kustomize`."""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml
from deploy_support import (
    ENVS,
    K8S,
    config,
    containers,
    env_of,
    kind,
    pod_labels,
    render,
    service_source,
)

from mlmesh_common import topics

NAMESPACE = "mlmesh"
#: Services whose code talks to MLflow (runs, registry); only they may reach it.
MLFLOW_CALL = re.compile(r"import mlflow|from mlflow|breaker\(\"mlflow\"\)|\blog_run\(")
#: Who may reach public addresses, and why. Everyone else stays inside the cluster.
INTERNET = {
    "acquire": "downloads datasets from http(s) hosts",
    "git": "pushes to the git remote and opens pull requests",
    "docs": "the optional LLM rewrite of the executive summary",
    "gateway": "delivers webhooks",
}


# -- a NetworkPolicy evaluator (the Kubernetes semantics, for the fields used) ------------------
@dataclass
class Peer:
    """One end of a connection: a pod (labels, namespace) or an address outside the cluster."""

    labels: dict[str, str] = field(default_factory=dict)
    namespace: str | None = NAMESPACE
    ns_labels: dict[str, str] = field(default_factory=dict)
    ip: str | None = None
    ports: dict[str, int] = field(default_factory=dict)  # named container ports

    def __post_init__(self) -> None:
        if self.namespace:
            self.ns_labels = {"kubernetes.io/metadata.name": self.namespace, **self.ns_labels}


def _selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    selector = selector or {}
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        ok = {"In": labels.get(key) in values, "NotIn": labels.get(key) not in values,
              "Exists": key in labels, "DoesNotExist": key not in labels}[op]
        if not ok:
            return False
    return True


def _peer_matches(peer: dict[str, Any], other: Peer, policy_ns: str) -> bool:
    if "ipBlock" in peer:
        if other.ip is None:
            return False
        ip = ipaddress.ip_address(other.ip)
        block = peer["ipBlock"]
        return (ip in ipaddress.ip_network(block["cidr"])
                and not any(ip in ipaddress.ip_network(e) for e in block.get("except", [])))
    if other.namespace is None:  # outside the cluster: only ipBlocks match
        return False
    if "namespaceSelector" in peer:
        if not _selects(peer["namespaceSelector"], other.ns_labels):
            return False
    elif other.namespace != policy_ns:
        return False
    return _selects(peer.get("podSelector"), other.labels)


def _port_matches(rule: dict[str, Any], port: int, protocol: str, target: Peer) -> bool:
    if not rule.get("ports"):
        return True
    for p in rule["ports"]:
        number = target.ports.get(p["port"]) if isinstance(p["port"], str) else p["port"]
        if number == port and p.get("protocol", "TCP") == protocol:
            return True
    return False


def allowed(docs: list[dict[str, Any]], src: Peer, dst: Peer, port: int,
            protocol: str = "TCP") -> bool:
    """Would the cluster let `src` open `port` on `dst`? Both directions must allow it."""
    policies = kind(docs, "NetworkPolicy")

    def side(pod: Peer, direction: str, other: Peer, target: Peer) -> bool:
        if pod.namespace != NAMESPACE:
            return True  # not ours: no policies of this repository apply
        mine = [p for p in policies if _selects(p["spec"]["podSelector"], pod.labels)
                and direction in p["spec"].get("policyTypes", [])]
        if not mine:
            return True  # not isolated
        key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
        for policy in mine:
            ns = policy["metadata"].get("namespace", NAMESPACE)
            for rule in policy["spec"].get(key, []):
                if not _port_matches(rule, port, protocol, target):
                    continue
                if peers_key not in rule or any(_peer_matches(peer, other, ns)
                                                for peer in rule[peers_key]):
                    return True
        return False

    return side(src, "Egress", dst, dst) and side(dst, "Ingress", src, dst)


def _pod(dep: dict[str, Any]) -> Peer:
    ports = {p["name"]: p["containerPort"] for p in containers(dep)[0].get("ports", [])}
    return Peer(labels=pod_labels(dep), ports=ports)


KAFKA = Peer(labels={"strimzi.io/cluster": "mlmesh", "strimzi.io/kind": "Kafka",
                     "strimzi.io/name": "mlmesh-kafka"})
POSTGRES = Peer(labels={"app.kubernetes.io/name": "postgresql"}, namespace="data")
MANAGED_POSTGRES = Peer(namespace=None, ip="10.20.0.5")  # e.g. a cloud database
MINIO = Peer(labels={"app": "minio"}, namespace="storage")
MLFLOW = Peer(labels={"app": "mlflow"}, namespace="mlops")
OTEL = Peer(labels={"app": "otel-collector"}, namespace="observability")
DNS = Peer(labels={"k8s-app": "kube-dns"}, namespace="kube-system")
PROMETHEUS = Peer(labels={"app": "prometheus"}, namespace="monitoring")
STRANGER = Peer(labels={"app": "something-else"}, namespace="other")
PUBLIC = Peer(namespace=None, ip="93.184.216.34")
METADATA = Peer(namespace=None, ip="169.254.169.254")
PRIVATE_HOST = Peer(namespace=None, ip="192.168.1.10")


@pytest.mark.parametrize("env", ENVS)
def test_every_mlmesh_pod_is_isolated_both_ways(env: str) -> None:
    docs = render(env)
    deny = [p for p in kind(docs, "NetworkPolicy")
            if not p["spec"].get("ingress") and not p["spec"].get("egress")
            and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}]
    assert deny, "no default-deny NetworkPolicy (policyTypes Ingress+Egress, no rules)"
    for dep in kind(docs, "Deployment"):
        assert any(_selects(p["spec"]["podSelector"], pod_labels(dep)) for p in deny), (
            f"{dep['metadata']['name']}: not selected by the default deny")


@pytest.mark.parametrize("env", ENVS)
def test_network_policies_allow_exactly_the_mesh_traffic(env: str) -> None:
    docs = render(env)
    http = int(config(docs)["MLMESH_HTTP_PORT"])
    gateway_ports = (int(config(docs)["MLMESH_GATEWAY_PORT"]),
                     int(config(docs)["MLMESH_GRPC_PORT"]))
    deployments = kind(docs, "Deployment")
    problems = []

    def want(ok: bool, what: str) -> None:
        if not ok:
            problems.append(what)

    for dep in deployments:
        name = dep["metadata"]["name"]
        service = dep["metadata"]["labels"]["app.kubernetes.io/component"]
        pod = _pod(dep)
        want(allowed(docs, pod, KAFKA, 9092), f"{name} cannot reach Kafka")
        want(not allowed(docs, pod, KAFKA, 9093), f"{name} reaches the Kafka controllers")
        for peer, port, what in ((POSTGRES, 5432, "PostgreSQL"),
                                 (MANAGED_POSTGRES, 5432, "a managed PostgreSQL"),
                                 (MINIO, 9000, "MinIO"), (OTEL, 4318, "the OTel collector")):
            want(allowed(docs, pod, peer, port), f"{name} cannot reach {what}")
        want(allowed(docs, pod, DNS, 53, "UDP"), f"{name} cannot resolve names")
        uses_mlflow = bool(MLFLOW_CALL.search(service_source(service)))
        want(allowed(docs, pod, MLFLOW, 5000) == uses_mlflow,
             f"{name}: MLflow reachable={not uses_mlflow}, but its code "
             f"{'calls' if uses_mlflow else 'never calls'} MLflow")
        want(allowed(docs, pod, PUBLIC, 443) == (service in INTERNET),
             f"{name}: public internet {'blocked' if service in INTERNET else 'open'}")
        for peer in (METADATA, PRIVATE_HOST):
            for port in (80, 443, 22):
                want(not allowed(docs, pod, peer, port), f"{name} reaches {peer.ip}:{port}")
        want(not allowed(docs, pod, STRANGER, 8080), f"{name} reaches arbitrary pods")
        want(allowed(docs, PROMETHEUS, pod, http), f"Prometheus cannot scrape {name}")
        for port in gateway_ports:
            want(allowed(docs, PUBLIC, pod, port) == (service == "gateway"),
                 f"{name}: API port {port} open={service != 'gateway'} to clients")
        want(not allowed(docs, STRANGER, pod, 5432), f"{name} accepts arbitrary traffic")
        for other in deployments:  # the gateway's ops view reads every /metrics
            if other is not dep:
                want(allowed(docs, pod, _pod(other), http) == (service == "gateway"),
                     f"{name} -> {other['metadata']['name']}:{http} wrong")
    assert not problems, "\n".join(problems)


# -- pod security ------------------------------------------------------------------------------
def _under(path: str, mounts: list[dict[str, Any]]) -> bool:
    return any(path == m["mountPath"] or path.startswith(m["mountPath"].rstrip("/") + "/")
               for m in mounts if not m.get("readOnly"))


@pytest.mark.parametrize("env", ENVS)
def test_pods_run_locked_down_with_writable_scratch(env: str) -> None:
    """Read-only root filesystem, no token, no privileges; everything the code writes
    (MLMESH_HOME, HOME=/data from the images, /tmp) is a volume."""
    docs = render(env)
    home = config(docs)["MLMESH_HOME"]
    problems = []
    for dep in kind(docs, "Deployment"):
        name = dep["metadata"]["name"]
        pod = dep["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        sc = container.get("securityContext", {})
        if pod.get("automountServiceAccountToken") is not False:
            problems.append(f"{name}: mounts a service-account token")
        if not (sc.get("readOnlyRootFilesystem") and sc.get("allowPrivilegeEscalation") is False
                and "ALL" in sc.get("capabilities", {}).get("drop", [])):
            problems.append(f"{name}: container securityContext not locked down: {sc}")
        if not pod["securityContext"].get("runAsNonRoot") or pod["securityContext"].get(
                "runAsUser", 0) == 0:
            problems.append(f"{name}: may run as root")
        mounts = container.get("volumeMounts", [])
        volumes = {v["name"] for v in pod.get("volumes", [])}
        for path in (home, "/data", "/tmp"):
            if not _under(path, mounts):
                problems.append(f"{name}: {path} is not on a writable volume")
        problems += [f"{name}: mount {m['name']} has no volume" for m in mounts
                     if m["name"] not in volumes]
        if container.get("imagePullPolicy") != "Always":
            problems.append(f"{name}: imagePullPolicy must be Always (mutable dev tags)")
        if env == "overlays/prod" and container["image"].endswith(":dev"):
            problems.append(f"{name}: prod runs the dev tag")
    assert not problems, "\n".join(problems)


# -- the renderer against kubectl ---------------------------------------------------------------
def _key(doc: dict[str, Any]) -> tuple[str, str]:
    return doc["kind"], doc["metadata"]["name"]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
@pytest.mark.parametrize("env", ENVS)
def test_kustomize_lite_renders_what_kubectl_renders(env: str) -> None:
    out = subprocess.run(["kubectl", "kustomize", str(K8S / env)], capture_output=True,
                         text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    real = {_key(d): d for d in yaml.safe_load_all(out.stdout) if d}
    ours = {_key(d): d for d in render(env)}
    assert set(real) == set(ours), set(real) ^ set(ours)
    differ = [k for k in real if real[k] != ours[k]]
    assert not differ, f"{len(differ)} documents differ, e.g. {differ[:3]}"


def test_every_consumer_group_has_its_scaled_object_in_the_deployment_file() -> None:
    """Each base/services/<deployment>.yaml carries its groups' ScaledObjects, so a
    Deployment and its scaling travel together."""
    for path in (K8S / "base" / "services").glob("*.yaml"):
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        (dep,) = kind(docs, "Deployment")
        groups = set(env_of(containers(dep)[0])["MLMESH_GROUPS"]["value"].split(","))
        scaled = {s["metadata"]["name"] for s in kind(docs, "ScaledObject")}
        assert scaled == groups, f"{path.name}: ScaledObjects {scaled} != groups {groups}"
        assert groups <= {g.name for g in topics.CONSUMER_GROUPS}
