"""GPU benchmark: the GPU families (XGBoost, CatBoost) fitted through MeshModel on the CPU
and, where a CUDA GPU is found, on the GPU.

A seeded generated table (numeric columns plus categorical columns that CatBoost takes
natively) is split 80/20; for each family and problem type (binary, multiclass, regression)
a MeshModel with the family's default params is fitted with ``device="cpu"`` and, when
:func:`detect_device` answers ``cuda``, with ``device="cuda"``. Each row prints the fit
seconds, the device the model really trained on (``device_``; a GPU fit that failed falls
back to the CPU and says why), the boosting rounds kept by early stopping and the test
metric. GPU rows also check that the model, pickled and loaded with ``to_cpu()``, predicts
on the CPU what it predicted on the GPU (the serving case: no GPU where the model is served).

Without a GPU the GPU rows are skipped and the line says so. It asserts nothing: the
numbers printed are the measurement.

    python -m benchmarks.gpu [--rows 200000] [--families xgboost,catboost] [--n-jobs N]
"""

from __future__ import annotations

import argparse
import os
import pickle
import time
import traceback
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import OrdinalEncoder

from mlmesh_common.modeling import (
    GPU_FAMILIES,
    MeshModel,
    default_metric,
    detect_device,
    needs_proba,
    score,
)

PROBLEM_TYPES = ("binary", "multiclass", "regression")
N_CATEGORICAL = 4


def make_table(rows: int, numeric: int, problem_type: str, seed: int) -> pd.DataFrame:
    """``numeric`` float columns and :data:`N_CATEGORICAL` string columns (with missing
    values), and a ``target`` that depends on both through a non-linear signal."""
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {f"x{i:02d}": rng.normal(size=rows) for i in range(numeric)}
    for j in range(N_CATEGORICAL):
        levels = np.array([f"c{j}_{k}" for k in range(5 + 10 * j)], dtype=object)
        column = levels[rng.integers(0, len(levels), rows)]
        column[rng.random(rows) < 0.05] = None
        data[f"cat{j}"] = column
    frame = pd.DataFrame(data)
    cat_effect = frame["cat0"].map({f"c0_{k}": k - 2.0 for k in range(5)}).fillna(0.0)
    signal = (
        np.sin(2 * frame["x00"]) + frame["x01"] * frame["x02"] + 0.5 * frame["x03"] ** 2
        + cat_effect + rng.normal(scale=0.5, size=rows)
    )
    if problem_type == "regression":
        frame["target"] = signal
    elif problem_type == "binary":
        frame["target"] = np.where(signal > np.median(signal), "yes", "no")
    else:
        frame["target"] = pd.qcut(signal, 4, labels=["q1", "q2", "q3", "q4"]).astype(str)
    return frame


def preprocessor(categorical: list[str]) -> ColumnTransformer:
    """Category codes for the categorical columns (unknown and missing → NaN), numbers as is."""
    codes = OrdinalEncoder(
        handle_unknown="use_encoded_value", unknown_value=np.nan, encoded_missing_value=np.nan
    )
    return ColumnTransformer(
        [("cat", codes, categorical)], remainder="passthrough", verbose_feature_names_out=False
    )


def _test_score(model: MeshModel, metric: str, X: pd.DataFrame, y: pd.Series) -> float:
    if needs_proba(metric):
        return score(metric, y, y_proba=model.predict_proba(X), labels=list(model.classes_))
    return score(metric, y, y_pred=model.predict(X))


def _predictions(model: MeshModel, X: pd.DataFrame) -> np.ndarray:
    if hasattr(model, "classes_"):
        return model.predict_proba(X)
    return model.predict(X)


def run_one(family: str, problem_type: str, device: str, rows: int, numeric: int,
            n_jobs: int, seed: int) -> dict[str, Any]:
    """Fit one MeshModel and measure it; the dict is one printed row."""
    frame = make_table(rows, numeric, problem_type, seed)
    X, y = frame.drop(columns="target"), frame["target"]
    stratify = None if problem_type == "regression" else y
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, random_state=seed,
                                              stratify=stratify)
    categorical = [c for c in X.columns if c.startswith("cat")]
    model = MeshModel(
        preprocessor(categorical), family, problem_type, list(X.columns), device=device,
        seed=seed, n_jobs=n_jobs, categorical_features=list(range(len(categorical))),
    )
    started = time.perf_counter()
    model.fit(X_tr, y_tr)
    fit_s = time.perf_counter() - started
    metric = default_metric(problem_type)
    row: dict[str, Any] = {
        "family": family, "problem": problem_type, "asked": device, "trained_on": model.device_,
        "fit_s": fit_s, "rounds": model.fit_info_.get("best_rounds"), "metric": metric,
        "test": _test_score(model, metric, X_te, y_te), "fallback": model.device_fallback_reason_,
        "cpu_copy": "",
    }
    if model.device_ == "cuda":
        on_gpu = _predictions(model, X_te)
        served = pickle.loads(pickle.dumps(model)).to_cpu()
        gap = float(np.max(np.abs(_predictions(served, X_te) - on_gpu)))
        row["cpu_copy"] = f"max |diff| {gap:.1e}"
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--numeric", type=int, default=40, help="numeric feature columns")
    parser.add_argument("--families", default=",".join(f for f in GPU_FAMILIES
                                                       if f != "autogluon"))
    parser.add_argument("--problems", default=",".join(PROBLEM_TYPES))
    parser.add_argument("--n-jobs", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    found = detect_device()
    devices = ["cpu", "cuda"] if found == "cuda" else ["cpu"]
    print(f"{args.rows:,} rows x {args.numeric + N_CATEGORICAL} columns, 80/20 split, "
          f"n_jobs {args.n_jobs}, device found: {found}", flush=True)
    if found != "cuda":
        print("no CUDA GPU found: GPU rows skipped (MLMESH_DEVICE=cuda forces the attempt)")
    header = (f"{'family':<10}{'problem':<12}{'asked':<6}{'trained':<9}{'fit s':>8}"
              f"{'rounds':>8}  {'metric':<9}{'test':>9}  note")
    print(header)
    for family in args.families.split(","):
        for problem_type in args.problems.split(","):
            for device in devices:
                try:
                    r = run_one(family, problem_type, device, args.rows, args.numeric,
                                args.n_jobs, args.seed)
                except Exception as exc:  # noqa: BLE001 - a benchmark row reports, not stops
                    traceback.print_exc()
                    print(f"{family:<10}{problem_type:<12}{device:<6}failed: "
                          f"{type(exc).__name__}: {exc}", flush=True)
                    continue
                note = r["fallback"] or r["cpu_copy"]
                print(f"{family:<10}{problem_type:<12}{device:<6}{r['trained_on']:<9}"
                      f"{r['fit_s']:>8.2f}{str(r['rounds']):>8}  {r['metric']:<9}"
                      f"{r['test']:>9.4f}  {note}", flush=True)


if __name__ == "__main__":
    main()
