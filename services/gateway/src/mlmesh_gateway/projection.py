"""How each event moves an experiment's state in the ledger (no Kafka here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlmesh.events.v1.experiment_pb2 import StageProgress

#: The pipeline's stages in order; an experiment completes when publish is done.
STAGES = ("acquire", "profile", "prep", "train", "tune", "select", "docs", "git", "publish")

#: Event type -> the stage it finishes.
FINISHING_EVENTS = {
    "mlmesh.dataset.acquired": "acquire",
    "mlmesh.dataset.profiled": "profile",
    "mlmesh.dataset.prepared": "prep",
    "mlmesh.training.completed": "train",
    "mlmesh.tuning.completed": "tune",
    "mlmesh.model.selected": "select",
    "mlmesh.docs.generated": "docs",
    "mlmesh.experiment.committed": "git",
    "mlmesh.model.published": "publish",
}
_PROGRESS_STATES = {
    StageProgress.STATE_STARTED: "running", StageProgress.STATE_RUNNING: "running",
    # A stage is finished by its output event (projected below), not by its progress report.
    StageProgress.STATE_FINISHED: "running", StageProgress.STATE_SKIPPED: "running",
    StageProgress.STATE_FAILED: "failed",
}


@dataclass
class Transition:
    """What one event does to its experiment."""

    stage: str = ""
    stage_status: str = ""
    percent: float = 0.0
    message: str = ""
    status: str = ""
    failure_reason: str = ""
    result: dict[str, Any] = field(default_factory=dict)


def _ref(payload: dict, *path: str) -> str:
    node: Any = payload
    for key in path:
        node = node.get(key, {}) if isinstance(node, dict) else {}
    return node.get("uri", "") if isinstance(node, dict) else ""


def transition(event_type: str, payload: dict[str, Any]) -> Transition:
    """The state change `event_type` with `payload` (as a dict) causes."""
    if event_type == "mlmesh.experiment.requested":
        return Transition(status="running")
    if event_type == "mlmesh.stage.progress":
        return Transition(stage=payload.get("stage", ""),
                          stage_status=_PROGRESS_STATES.get(
                              StageProgress.State.Value(payload.get("state",
                                                                    "STATE_RUNNING")),
                              "running"),
                          percent=float(payload.get("percent", 0.0)),
                          message=payload.get("message", ""))
    if event_type == "mlmesh.experiment.failed":
        return Transition(stage=payload.get("stage", ""), stage_status="failed",
                          message=payload.get("reason", ""), status="failed",
                          failure_reason=payload.get("reason", "failed"))
    if event_type == "mlmesh.experiment.completed":
        return Transition(status="completed")
    stage = FINISHING_EVENTS.get(event_type)
    if stage is None:
        return Transition()
    skipped = bool(payload.get("skipped"))
    return Transition(stage=stage, stage_status="skipped" if skipped else "finished",
                      percent=100.0, message="skipped" if skipped else "done",
                      result=_result(event_type, payload))


def _result(event_type: str, p: dict[str, Any]) -> dict[str, Any]:
    if event_type == "mlmesh.dataset.acquired":
        return {"rows": int(p.get("n_rows", 0)), "columns": int(p.get("n_columns", 0)),
                "source_sha256": p.get("source_sha256", ""), "table_uri": _ref(p, "table")}
    if event_type == "mlmesh.dataset.profiled":
        return {"target": p.get("target", ""), "problem_type": p.get("problem_type", ""),
                "metric": p.get("metric", ""), "profile_uri": _ref(p, "profile")}
    if event_type == "mlmesh.dataset.prepared":
        return {"n_train": int(p.get("n_train", 0)), "n_valid": int(p.get("n_valid", 0)),
                "n_test": int(p.get("n_test", 0))}
    if event_type == "mlmesh.tuning.completed":
        return {"tuning": {"n_trials": int(p.get("n_trials", 0)),
                           "skipped": bool(p.get("skipped")),
                           "best_cv": p.get("best", {}).get("cv_mean")}}
    if event_type == "mlmesh.model.selected":
        return {"winner": p.get("winner", {}).get("family", ""),
                "test_score": p.get("test_score"),
                "baseline_test_score": p.get("baseline_test_score"),
                "metric": p.get("metric", ""),
                "test_metrics": {m["name"]: m.get("value", 0.0)
                                 for m in p.get("test_metrics", [])},
                "test_score_ci": ([p["test_score_ci_low"], p["test_score_ci_high"]]
                                  if "test_score_ci_low" in p and "test_score_ci_high" in p
                                  else None),
                "ensemble_kind": p.get("ensemble_kind", ""),
                "leaderboard": [{k: c.get(k) for k in ("family", "source", "cv_mean", "cv_std",
                                                        "fit_seconds", "device",
                                                        "mlflow_run_id", "latency_ms",
                                                        "size_bytes", "pareto_optimal",
                                                        "fallback_from")}
                                for c in p.get("leaderboard", [])],
                "mlflow_run_id": p.get("mlflow_run_id", ""),
                "model_uri": _ref(p, "model"),
                "selection_uri": _ref(p, "selection")}
    if event_type == "mlmesh.docs.generated":
        return {"report_uri": _ref(p, "report_html"),
                "report_markdown_uri": _ref(p, "report_markdown"),
                "model_card_uri": _ref(p, "model_card"),
                "white_paper_uri": _ref(p, "white_paper_pdf"),
                "executive_summary_uri": _ref(p, "executive_summary"),
                "reproduction_uri": _ref(p, "reproduction")}
    if event_type == "mlmesh.experiment.committed":
        return {"git": {"repository": p.get("repository", ""), "branch": p.get("branch", ""),
                        "commit": p.get("commit", ""), "tag": p.get("tag", ""),
                        "commits": p.get("commits", []), "release_tag": p.get("release_tag", ""),
                        "remote": p.get("remote", ""),
                        "pull_request_url": p.get("pull_request_url", "")}}
    if event_type == "mlmesh.model.published":
        return {"registered_model": p.get("registered_model", ""),
                "model_version": p.get("model_version", ""),
                "registry_model_uri": p.get("model_uri", ""),
                "serving_app_uri": _ref(p, "serving_app"),
                "publish_run_id": p.get("mlflow_run_id", ""),
                "registry_alias": p.get("alias", ""),
                "promoted_to_champion": bool(p.get("promoted_to_champion")),
                "onnx_uri": _ref(p, "onnx"), "native_model_uri": _ref(p, "native_model"),
                "serving_docs_uri": _ref(p, "serving_docs")}
    return {}
