"""Candidate models between their event form (protobuf) and the domain code's dicts."""

from __future__ import annotations

import json
from typing import Any

from mlmesh.events.v1.training_pb2 import Candidate

_NUMBERS = ("cv_mean", "cv_std", "fit_seconds")


def to_dict(candidate: Candidate) -> dict[str, Any]:
    """A Candidate as the dict train/tune/select's domain code uses (params decoded)."""
    return {"family": candidate.family, "params": json.loads(candidate.params_json or "{}"),
            "metric": candidate.metric, "cv_mean": candidate.cv_mean, "cv_std": candidate.cv_std,
            "fold_scores": list(candidate.fold_scores), "fit_seconds": candidate.fit_seconds,
            "device": candidate.device, "mlflow_run_id": candidate.mlflow_run_id,
            "source": candidate.source or "train",
            "greater_is_better": candidate.greater_is_better}


def from_dict(data: dict[str, Any]) -> Candidate:
    """A Candidate from a domain dict (missing numbers become 0)."""
    return Candidate(
        family=data["family"], params_json=json.dumps(data.get("params", {}), sort_keys=True,
                                                      default=str),
        metric=data.get("metric", ""), fold_scores=[float(s) for s in data.get("fold_scores", [])],
        device=data.get("device", ""), mlflow_run_id=data.get("mlflow_run_id", ""),
        source=data.get("source", "train"),
        greater_is_better=bool(data.get("greater_is_better", False)),
        **{k: float(data.get(k) or 0.0) for k in _NUMBERS})
