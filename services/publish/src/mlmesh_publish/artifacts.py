"""The model's published files: the booster's native format and a verified ONNX graph.

``export_artifacts`` writes into one folder and never fails the publication because of
ONNX: an unsupported family or a graph whose predictions differ from the model's is left
out, and the reason is recorded in ``artifacts.json`` (and returned).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mlmesh_publish.onnx_export import OnnxUnsupportedError, export_onnx, verify_onnx

log = logging.getLogger(__name__)

ONNX_FILE = "model.onnx"
NATIVE_FILES = {"lightgbm": "model.lgb.txt", "xgboost": "model.ubj", "catboost": "model.cbm"}


@dataclass(frozen=True)
class PublishedArtifacts:
    """What ``export_artifacts`` wrote: file names relative to the folder, or None."""

    native_model: str | None
    onnx: str | None
    onnx_status: str  # verified | mismatch | unsupported
    onnx_reason: str
    verification: dict[str, Any] | None


def booster_family(model: Any) -> str | None:
    """lightgbm, xgboost or catboost when the model's estimator is one of them."""
    estimator = getattr(model, "estimator_", None)
    if estimator is None and hasattr(model, "steps"):
        estimator = model.steps[-1][1]
    module = type(estimator).__module__.split(".")[0] if estimator is not None else ""
    return module if module in NATIVE_FILES else None


def save_native_model(model: Any, out_dir: Path) -> str | None:
    """Write the booster in its library's own format; returns the file name or None."""
    family = booster_family(model)
    if family is None:
        return None
    estimator = getattr(model, "estimator_", None) or model.steps[-1][1]
    target = Path(out_dir) / NATIVE_FILES[family]
    if family == "lightgbm":
        estimator.booster_.save_model(str(target))
    elif family == "xgboost":
        estimator.get_booster().save_model(str(target))
    else:
        estimator.save_model(str(target), format="cbm")
    return target.name


def export_artifacts(model: Any, out_dir: Path, test_features: pd.DataFrame) -> PublishedArtifacts:
    """Native booster file plus ONNX verified on ``test_features`` (the test split).

    A graph that fails verification is deleted, so only verified ONNX is ever published.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    native = save_native_model(model, out_dir)
    onnx_path = out_dir / ONNX_FILE
    try:
        export_onnx(model, onnx_path)
    except OnnxUnsupportedError as exc:
        result = PublishedArtifacts(native, None, "unsupported", str(exc), None)
    else:
        verification = verify_onnx(onnx_path, model, test_features)
        if verification.passed:
            result = PublishedArtifacts(native, ONNX_FILE, "verified", "", asdict(verification))
        else:
            onnx_path.unlink()
            Path(str(onnx_path) + ".json").unlink()
            result = PublishedArtifacts(native, None, "mismatch", verification.reason,
                                        asdict(verification))
    if result.onnx is None:
        log.warning("ONNX not published (%s): %s", result.onnx_status, result.onnx_reason)
    (out_dir / "artifacts.json").write_text(json.dumps(asdict(result), indent=2) + "\n")
    return result
