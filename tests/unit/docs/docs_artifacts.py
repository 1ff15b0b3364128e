"""Test helper: an experiment's stored artifacts as the earlier stages leave them.

A PREPARED folder from a real dataset, the winner refitted by the select stage's own code
(``refit_winner`` + ``save_model``), selection.json with leaderboard and tuning history,
and a profile summary, stored in a local artifact store like the services do.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mlmesh_common.artifacts import open_store
from mlmesh_select.selection import build_leaderboard, refit_winner, save_model

prepared_data = sys.modules["mlmesh_test_prepared_data"]

SEED = 7


@dataclass
class Experiment:
    """Paths and summaries of one stored experiment."""

    store_root: Path
    prepared_dir: Path
    select_dir: Path
    prepared_uri: str
    prepared_sha256: str
    selection_uri: str
    selection_sha256: str
    profile: dict[str, Any]
    prep: dict[str, Any]
    selection: dict[str, Any]


def profile_of(frame: pd.DataFrame, target: str, problem_type: str, metric: str) -> dict:
    """A profile summary with the fields the reports read."""
    columns = []
    for name in frame.columns:
        col = frame[name]
        numeric = pd.api.types.is_numeric_dtype(col) and name != target
        entry = {"name": name, "dtype": str(col.dtype), "kind": "numeric" if numeric
                 else "categorical", "count": int(col.notna().sum()),
                 "missing": int(col.isna().sum()), "unique": int(col.nunique())}
        if numeric:
            entry.update(mean=float(col.mean()), std=float(col.std()), min=float(col.min()),
                         median=float(col.median()), max=float(col.max()))
        else:
            entry["top_values"] = [[str(k), int(v)] for k, v in
                                   col.value_counts().head(3).items()]
        columns.append(entry)
    profile = {"n_rows": len(frame), "n_columns": frame.shape[1], "target": target,
               "problem_type": problem_type, "metric": metric, "columns": columns,
               "duplicate_rows": int(frame.duplicated().sum()), "warnings": []}
    if problem_type != "regression":
        profile["class_balance"] = {str(k): int(v) for k, v in
                                    frame[target].value_counts().items()}
    return profile


def build_experiment(root: Path, frame: pd.DataFrame, target: str, problem_type: str,
                     families: dict[str, tuple[float, float]], winner_params: dict) -> Experiment:
    """Prepare ``frame``, rank ``families`` (name -> (cv_mean, cv_std)), refit the best with
    the select stage's code and store prepared/ and select/ in a local artifact store."""
    prepared_dir = prepared_data.make_prepared(root / "prepared", frame, target, problem_type,
                                               seed=SEED)
    prep = json.loads((prepared_dir / "prep.json").read_text())
    metric = prep["metric"]
    candidates = [{"family": f, "params": winner_params if i == 0 else {}, "source": "train",
                   "cv_mean": mean, "cv_std": std, "metric": metric}
                  for i, (f, (mean, std)) in enumerate(families.items())]
    candidates.append({"family": next(iter(families)), "params": winner_params,
                       "source": "tune", "cv_mean": candidates[0]["cv_mean"] - 0.001,
                       "cv_std": 0.02, "metric": metric})
    board = build_leaderboard(candidates)
    result = refit_winner(prepared_dir, board[0], seed=SEED, device="cpu")
    select_dir = root / "select"
    select_dir.mkdir()
    save_model(result.model, select_dir / "model.joblib")
    selection = result.summary()
    selection["leaderboard"] = board
    selection["model_path"] = "model.joblib"
    values = [0.80, 0.85, 0.83, 0.88, 0.87, 0.9]
    selection["tuning"] = {"family": board[0]["family"], "n_trials": len(values),
                           "best_value": max(values), "best_params": winner_params,
                           "metric": metric,
                           "history": [{"number": i, "value": v, "state": "COMPLETE"}
                                       for i, v in enumerate(values)]}
    (select_dir / "selection.json").write_text(json.dumps(selection, indent=2, default=str))

    store_root = root / "store"
    store = open_store(str(store_root))
    prefix = "projects/test/experiments/exp-docs"
    stored_prep = store.put_dir(prepared_dir, f"{prefix}/prep", "test")
    stored_sel = store.put_dir(select_dir, f"{prefix}/select", "test")
    return Experiment(store_root, prepared_dir, select_dir, stored_prep.uri, stored_prep.sha256,
                      stored_sel.uri, stored_sel.sha256,
                      profile_of(frame, target, problem_type, metric), prep, selection)


@pytest.fixture(scope="session")
def penguins_experiment(tmp_path_factory: pytest.TempPathFactory) -> Experiment:
    """Multiclass: palmerpenguins, lightgbm winner."""
    frame = prepared_data.penguins_frame()
    return build_experiment(tmp_path_factory.mktemp("penguins-docs"), frame, "species",
                            "multiclass", {"lightgbm": (0.97, 0.01), "linear": (0.95, 0.02),
                                           "dummy": (0.44, 0.01)},
                            {"n_estimators": 40, "num_leaves": 8})


@pytest.fixture(scope="session")
def diabetes_experiment(tmp_path_factory: pytest.TempPathFactory) -> Experiment:
    """Regression: sklearn diabetes, linear winner (rmse, lower is better)."""
    frame = prepared_data.diabetes_frame()
    return build_experiment(tmp_path_factory.mktemp("diabetes-docs"), frame, "target",
                            "regression", {"linear": (54.0, 2.0), "lightgbm": (57.0, 3.0),
                                           "dummy": (77.0, 2.0)}, {})


def noisy_binary_frame() -> pd.DataFrame:
    """A binary task the models cannot solve perfectly: 15% of labels flipped, string labels
    ("churn" / "stay"), one categorical column."""
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=400, n_features=5, n_informative=3, n_redundant=0,
                               flip_y=0.15, random_state=3)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(5)])
    frame["region"] = pd.Series(["north", "south", "east", "west"] * 100).sample(
        frac=1, random_state=3).to_numpy()
    frame["outcome"] = ["churn" if v else "stay" for v in y]
    return frame


@pytest.fixture(scope="session")
def binary_experiment(tmp_path_factory: pytest.TempPathFactory) -> Experiment:
    """Binary: noisy synthetic classification, linear winner, roc_auc."""
    return build_experiment(tmp_path_factory.mktemp("binary-docs"), noisy_binary_frame(),
                            "outcome", "binary", {"linear": (0.9, 0.02),
                                                  "lightgbm": (0.88, 0.03),
                                                  "dummy": (0.5, 0.0)}, {})
