#!/usr/bin/env python
"""Reproduce an mlmesh experiment's test score from its stored artifacts.

Stored by the docs stage as ``reproduce.py`` next to ``reproduction.json``. It downloads
the prepared data folder and ``selection.json`` from the artifact store (checking every
sha256), rebuilds the selected model with ``mlmesh_common.modeling`` exactly as the select
stage did (a MeshModel of the stored family, parameters and seed, or for an ensemble winner
its members with their weights, fitted on train+valid; a stacking ensemble reuses the
stored meta-learner, which was fitted on out-of-fold predictions), scores it on the test
split and compares with the recorded test score. (The published model is that fit refitted
on every row, test split included, when selection.json's ``final_fit`` says so; the test
score is the train+valid fit's, which is what this script reproduces.)

    python reproduce.py                       # uses reproduction.json next to this file
    python reproduce.py --prepared DIR --selection FILE   # local copies instead
    MLMESH_ARTIFACT_ROOT=s3://bucket/prefix MLMESH_S3_ENDPOINT_URL=... python reproduce.py

Exit code 0 when the score matches within the tolerance; 1 when it does not or the
artifacts cannot be read (the reason is printed). Needs the ``mlmesh-common`` package
(and the model family's library: lightgbm, xgboost or catboost).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

CONFIG_NAME = "reproduction.json"


def _fetch(config: dict, workdir: Path) -> tuple[Path, Path]:
    from mlmesh_common.artifacts import open_store

    root = os.environ.get("MLMESH_ARTIFACT_ROOT") or config["artifact_root"]
    store = open_store(root, os.environ.get("MLMESH_S3_ENDPOINT_URL") or None)
    prepared = store.get_dir(config["prepared"]["uri"], workdir / "prepared",
                             config["prepared"].get("sha256", ""))
    selection_dir = store.get_dir(config["selection"]["uri"], workdir / "select",
                                  config["selection"].get("sha256", ""))
    return prepared, selection_dir / "selection.json"


def reproduce(prepared_dir: Path, selection_path: Path, seed: int, tolerance: float) -> dict:
    """Refit the winner recorded in ``selection_path`` and score it on the test split."""
    from mlmesh_common.modeling import load_prepared, new_model, score_model

    selection = json.loads(Path(selection_path).read_text())
    data = load_prepared(Path(prepared_dir))
    X_fit, y_fit = data.combined(("train", "valid"))
    ensemble = selection.get("ensemble")
    if ensemble:
        model = _ensemble(ensemble, data, seed, Path(selection_path).parent)
    else:
        model = new_model(data, selection["family"], dict(selection.get("params") or {}),
                          device="cpu", seed=seed)
    model.fit(X_fit, y_fit)
    metric = selection.get("metric") or data.metric
    score = float(score_model(model, data.X_test, data.y_test, metric))
    recorded = float(selection["test_score"])
    return {"family": selection["family"], "metric": metric, "recorded_test_score": recorded,
            "reproduced_test_score": score, "difference": abs(score - recorded),
            "tolerance": tolerance, "matches": abs(score - recorded) <= tolerance}


def _ensemble(ensemble: dict, data: object, seed: int, select_dir: Path) -> object:
    """The unfitted ensemble select refit: its members, weights and (stacking) meta-learner."""
    from mlmesh_common.modeling import EnsembleModel, new_model

    members = [new_model(data, m["family"], dict(m.get("params") or {}), device="cpu",
                         seed=seed) for m in ensemble["members"]]
    if ensemble["kind"] == "caruana":
        return EnsembleModel(members, [float(m["weight"]) for m in ensemble["members"]],
                             kind="caruana")
    import joblib

    stored = joblib.load(select_dir / "model.joblib")
    return EnsembleModel(members, None, kind=ensemble["kind"], meta=stored.meta,
                         meta_classes=stored.meta_classes)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=here / CONFIG_NAME,
                        help="reproduction.json written by the docs stage")
    parser.add_argument("--prepared", type=Path, help="local prepared folder (skip download)")
    parser.add_argument("--selection", type=Path, help="local selection.json (skip download)")
    parser.add_argument("--tolerance", type=float, help="allowed absolute score difference")
    args = parser.parse_args(argv)
    try:
        config = json.loads(args.config.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        print(f"cannot read {args.config}: {exc}", file=sys.stderr)
        return 1
    tolerance = args.tolerance if args.tolerance is not None else float(config["tolerance"])
    with tempfile.TemporaryDirectory(prefix="mlmesh-reproduce-") as tmp:
        try:
            if args.prepared and args.selection:
                prepared, selection = args.prepared, args.selection
            else:
                prepared, selection = _fetch(config, Path(tmp))
            result = reproduce(prepared, selection, int(config["seed"]), tolerance)
        except (OSError, ValueError, KeyError) as exc:
            print(f"cannot reproduce: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
    print(json.dumps(result, indent=2))
    verdict = "REPRODUCED" if result["matches"] else "MISMATCH"
    print(f"{verdict}: {result['metric']} {result['reproduced_test_score']:.6f} vs recorded "
          f"{result['recorded_test_score']:.6f} (tolerance {tolerance:g})")
    return 0 if result["matches"] else 1


if __name__ == "__main__":
    sys.exit(main())
