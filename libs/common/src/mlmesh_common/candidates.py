"""Candidate models between their event form (protobuf) and the domain code's dicts."""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import json_format

from mlmesh.events.v1.common_pb2 import ArtifactRef
from mlmesh.events.v1.training_pb2 import Candidate

_NUMBERS = ("cv_mean", "cv_std", "fit_seconds")


def to_dict(candidate: Candidate) -> dict[str, Any]:
    """A Candidate as the dict train/tune/select's domain code uses (params decoded)."""
    return {"family": candidate.family, "params": json.loads(candidate.params_json or "{}"),
            "metric": candidate.metric, "cv_mean": candidate.cv_mean, "cv_std": candidate.cv_std,
            "fold_scores": list(candidate.fold_scores), "fit_seconds": candidate.fit_seconds,
            "device": candidate.device, "mlflow_run_id": candidate.mlflow_run_id,
            "source": candidate.source or "train",
            "greater_is_better": candidate.greater_is_better,
            "latency_ms": candidate.latency_ms or None, "size_bytes": candidate.size_bytes or None,
            "fallback_from": candidate.fallback_from, "pareto_optimal": candidate.pareto_optimal,
            "ensemble": json.loads(candidate.ensemble_json) if candidate.ensemble_json else None,
            "oof_predictions": (json_format.MessageToDict(candidate.oof_predictions,
                                                          preserving_proto_field_name=True)
                                if candidate.HasField("oof_predictions") else None)}


def from_dict(data: dict[str, Any]) -> Candidate:
    """A Candidate from a domain dict (missing numbers become 0)."""
    return Candidate(
        family=data["family"], params_json=json.dumps(data.get("params", {}), sort_keys=True,
                                                      default=str),
        metric=data.get("metric", ""), fold_scores=[float(s) for s in data.get("fold_scores", [])],
        device=data.get("device", ""), mlflow_run_id=data.get("mlflow_run_id", ""),
        source=data.get("source", "train"),
        greater_is_better=bool(data.get("greater_is_better", False)),
        latency_ms=float(data.get("latency_ms") or 0.0),
        size_bytes=int(data.get("size_bytes") or 0),
        fallback_from=data.get("fallback_from") or "",
        pareto_optimal=bool(data.get("pareto_optimal", False)),
        ensemble_json=json.dumps(data["ensemble"], sort_keys=True, default=str)
        if data.get("ensemble") else "",
        oof_predictions=json_format.ParseDict(data["oof_predictions"], ArtifactRef(),
                                              ignore_unknown_fields=True)
        if data.get("oof_predictions") else None,
        **{k: float(data.get(k) or 0.0) for k in _NUMBERS})
