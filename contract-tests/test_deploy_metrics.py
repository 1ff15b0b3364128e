"""The compose stack's observability against the code: Prometheus scrapes every mesh
container, and every Grafana query uses metric and label names the code really exports
(read from the prometheus_client definitions in libs/, services/ and the serving app's
template), so a renamed metric breaks this test instead of a dashboard."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from deploy_support import COMPOSE, compose, compose_env, exported_metrics, kind, load_yaml, render

DASHBOARDS = COMPOSE / "grafana" / "dashboards"
#: What each dashboard must show, as (what, metric series, label it is broken down by).
REQUIRED_PANELS = {
    "mesh": [("throughput per topic", "mlmesh_events_in_total", "topic"),
             ("throughput per topic (produced)", "mlmesh_events_out_total", "topic"),
             ("consumer lag per group", "mlmesh_consumer_lag", "group"),
             ("DLQ counts", "mlmesh_dlq_total", "topic"),
             ("breaker states", "mlmesh_breaker_state", "breaker"),
             ("stage durations", "mlmesh_handler_seconds_bucket", "group")],
    "models": [("drift share", "mlmesh_monitor_share_drifted", "model"),
               ("prediction latency", "mlmesh_model_prediction_seconds_bucket", "endpoint")],
}
_AGG = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
_LEGEND = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")


def _prometheus() -> dict[str, Any]:
    return load_yaml(COMPOSE / "prometheus.yml")[0]


def _target_labels() -> set[str]:
    """Labels Prometheus attaches to every scraped series (job, instance, static labels)."""
    labels = {"job", "instance"}
    for job in _prometheus()["scrape_configs"]:
        for sc in job.get("static_configs", []):
            labels |= set(sc.get("labels", {}))
    return labels


def _queries() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    out = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text(encoding="utf-8"))
        for panel in board["panels"]:
            out += [(path.stem, panel, target) for target in panel["targets"]]
    return out


def test_exported_metrics_are_found() -> None:
    """The source scan must see the runtime's, the breakers', monitor's and serving's."""
    found = exported_metrics()
    for series in ("mlmesh_events_in_total", "mlmesh_handler_seconds_bucket",
                   "mlmesh_breaker_state", "mlmesh_monitor_share_drifted",
                   "mlmesh_model_requests_total"):
        assert series in found, f"scan of the code misses {series}"
    assert found["mlmesh_events_failed_total"].labels == ("group", "topic", "error_type")


def test_every_dashboard_query_uses_exported_metrics_and_labels() -> None:
    metrics = exported_metrics()
    target_labels = _target_labels()
    problems = []
    queries = _queries()
    assert queries, "no dashboard queries"
    for board, panel, target in queries:
        expr, where = target["expr"], f"{board}.json '{panel['title']}'"
        names = re.findall(r"\b(mlmesh_[a-z0-9_]+)\b", expr)
        if not names:
            problems.append(f"{where}: no mlmesh metric in {expr!r}")
        unknown = [n for n in names if n not in metrics]
        if unknown:
            problems.append(f"{where}: {unknown} not exported by the code")
            continue
        labels = set(target_labels)
        for n in names:
            labels |= set(metrics[n].labels) | ({"le"} if n.endswith("_bucket") else set())
        grouped = [g for group in _AGG.findall(expr) for g in re.split(r"\s*,\s*", group.strip())
                   if g]
        matched = [m for sel in re.findall(r"\{([^}]*)\}", expr) for m in _MATCHER.findall(sel)]
        bad = sorted(set(grouped + matched) - labels)
        if bad:
            problems.append(f"{where}: labels {bad} are not labels of {names}")
        legend = set(_LEGEND.findall(target.get("legendFormat", "")))
        visible = set(grouped) - {"le"} if grouped else labels
        if legend - visible:
            problems.append(f"{where}: legend uses {sorted(legend - visible)}, which the query "
                            f"aggregates away")
        if target.get("datasource", {}).get("uid") != "prometheus":
            problems.append(f"{where}: not on the provisioned Prometheus datasource")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("board", sorted(REQUIRED_PANELS))
def test_dashboards_show_what_operators_need(board: str) -> None:
    path = DASHBOARDS / f"{board}.json"
    assert path.exists(), f"no {board} dashboard"
    exprs = [t["expr"] for _, p, t in _queries() if _ == board]
    for what, series, label in REQUIRED_PANELS[board]:
        assert any(series in e and re.search(rf"\bby\s*\([^)]*\b{label}\b", e) for e in exprs), (
            f"{board} dashboard: no panel for {what} ({series} by {label})")
    uids = [json.loads(p.read_text())["uid"] for p in DASHBOARDS.glob("*.json")]
    assert len(uids) == len(set(uids)), f"duplicate dashboard uids {uids}"


def test_grafana_provisioning_matches_the_compose_mounts() -> None:
    grafana = compose()["services"]["grafana"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in grafana["volumes"]}
    provider = load_yaml(COMPOSE / "grafana" / "provisioning" / "dashboards" /
                         "mlmesh.yaml")[0]["providers"][0]
    dashboards_in = provider["options"]["path"]
    assert (COMPOSE / mounts[dashboards_in]).resolve() == DASHBOARDS.resolve()
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(dashboards_in + "/")
    assert (DASHBOARDS / home.removeprefix(dashboards_in + "/")).exists(), home
    sources = load_yaml(COMPOSE / "grafana" / "provisioning" / "datasources" /
                        "datasources.yaml")[0]["datasources"]
    assert any(s["type"] == "prometheus" and s["uid"] == "prometheus" for s in sources)
    assert any(s["type"] == "jaeger" and "jaeger:16686" in s["url"] for s in sources)


def test_prometheus_scrapes_every_service_and_the_serving_apps() -> None:
    config = _prometheus()
    port = compose_env()["MLMESH_HTTP_PORT"]
    targets = {t: job for job in config["scrape_configs"] for sc in job.get("static_configs", [])
               for t in sc["targets"]}
    services = compose()["services"]
    problems = []
    for dep in kind(render("base"), "Deployment"):
        name = dep["metadata"]["name"]
        job = targets.get(f"{name}:{port}")
        if job is None:
            problems.append(f"prometheus.yml does not scrape {name}:{port}")
        elif job.get("metrics_path", "/metrics") != "/metrics":
            problems.append(f"{name}: metrics_path {job['metrics_path']}")
        if name not in services:
            problems.append(f"{name}: scraped but no compose service")
    serving = [j for j in config["scrape_configs"] if j.get("file_sd_configs")]
    assert serving, "no file_sd job for the generated serving apps"
    mounts = {v.split(":")[1]: v.split(":")[0] for v in services["prometheus"]["volumes"]}
    for job in serving:
        for sd in job["file_sd_configs"]:
            for pattern in sd["files"]:
                folder = pattern.rsplit("/", 1)[0]
                if folder not in mounts or not (COMPOSE / mounts[folder]).is_dir():
                    problems.append(f"{job['job_name']}: {folder} is not mounted from the repo")
    assert not problems, "\n".join(problems)
