"""Model quality benchmark: mlmesh (through the mesh) against AutoGluon and FLAML.

Every dataset is built at run time from a package shipped in the venv (scikit-learn,
statsmodels, palmerpenguins, or a seeded generator), split 80/20 with a fixed seed, and
given to each system with the same wall-clock budget on the same cores:

- mlmesh: the 80% is written to a CSV and submitted to the embedded mesh (``mlmesh up``
  style with one train-gpu and one tune worker per core, as the other two use every core;
  one experiment at a time, stages acquire..select plus tune); the published model
  (``model.joblib``: the selected model refitted on every row of the 80% when the budget
  leaves time for it) then predicts the 20%.
- AutoGluon: ``TabularPredictor(...).fit(train, presets="medium_quality", time_limit=B)``.
- FLAML: ``AutoML().fit(X, y, time_budget=B)``.

It prints one table (test metric and wall time per system per dataset), the share of
datasets where mlmesh ties (within 0.5% relative) or beats AutoGluon and the share where it
beats FLAML outright (the issue's two targets, 80% each), and writes the
raw rows to ``<home>/quality.json``. It asserts nothing: the numbers are the result.

    python -m benchmarks.quality [--budget 60] [--datasets breast_cancer,wine] [--home DIR]
                                 [--replicas train-gpu=2,tune=2]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import joblib
import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, mean_squared_error, roc_auc_score
from sklearn.model_selection import train_test_split

from mlmesh_cli.runner import parse_replicas

SEED = 42
TIE_TOLERANCE = 0.005  # 0.5% relative


@dataclass(frozen=True)
class Dataset:
    """A benchmark dataset: a table, its target, the problem type and the metric."""

    name: str
    frame: pd.DataFrame
    target: str
    problem_type: str  # binary | multiclass | regression
    metric: str  # roc_auc | accuracy | rmse

    @property
    def greater_is_better(self) -> bool:
        return self.metric != "rmse"


def _sklearn(name: str, loader: Callable[..., Any], problem_type: str, metric: str) -> Dataset:
    bunch = loader(as_frame=True)
    frame = bunch.frame.copy()
    target = bunch.target.name if hasattr(bunch.target, "name") else "target"
    if problem_type != "regression":
        frame[target] = frame[target].map(lambda v: f"class_{v}")
    return Dataset(name, frame, target, problem_type, metric)


def load_datasets() -> dict[str, Callable[[], Dataset]]:
    """Name -> builder of every benchmark dataset (built lazily, all offline)."""
    from sklearn import datasets as skd

    def breast_cancer() -> Dataset:
        return _sklearn("breast_cancer", skd.load_breast_cancer, "binary", "roc_auc")

    def wine() -> Dataset:
        return _sklearn("wine", skd.load_wine, "multiclass", "accuracy")

    def digits() -> Dataset:
        return _sklearn("digits", skd.load_digits, "multiclass", "accuracy")

    def diabetes() -> Dataset:
        return _sklearn("diabetes", skd.load_diabetes, "regression", "rmse")

    def penguins() -> Dataset:
        from palmerpenguins import load_penguins

        frame = load_penguins().dropna(subset=["species"]).reset_index(drop=True)
        return Dataset("penguins", frame, "species", "multiclass", "accuracy")

    def affairs() -> Dataset:
        import statsmodels.api as sm

        frame = sm.datasets.fair.load_pandas().data.copy()
        frame["had_affair"] = np.where(frame.pop("affairs") > 0, "yes", "no")
        return Dataset("affairs", frame, "had_affair", "binary", "roc_auc")

    def anes96() -> Dataset:
        import statsmodels.api as sm

        frame = sm.datasets.anes96.load_pandas().data.copy()
        frame["vote"] = frame["vote"].map({0.0: "clinton", 1.0: "dole"})
        frame = frame.drop(columns=["logpopul"])
        return Dataset("anes96", frame, "vote", "binary", "roc_auc")

    def friedman1() -> Dataset:
        x, y = skd.make_friedman1(n_samples=2000, n_features=10, noise=1.0, random_state=SEED)
        frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(x.shape[1])])
        frame["y"] = y
        return Dataset("friedman1", frame, "y", "regression", "rmse")

    def noisy_classification() -> Dataset:
        x, y = skd.make_classification(n_samples=3000, n_features=20, n_informative=8,
                                       n_redundant=4, flip_y=0.05, class_sep=0.8,
                                       random_state=SEED)
        frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])
        frame["label"] = np.where(y == 1, "pos", "neg")
        return Dataset("noisy_classification", frame, "label", "binary", "roc_auc")

    return {f.__name__: f for f in (breast_cancer, wine, digits, diabetes, penguins, affairs,
                                    anes96, friedman1, noisy_classification)}


def split(dataset: Dataset) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The fixed, seeded 80/20 split (stratified for classification)."""
    stratify = None if dataset.problem_type == "regression" else dataset.frame[dataset.target]
    train, test = train_test_split(dataset.frame, test_size=0.2, random_state=SEED,
                                   stratify=stratify)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def evaluate(dataset: Dataset, y_true: pd.Series, *, pred: Any = None,
             proba: np.ndarray | None = None, classes: Any = None) -> float:
    """The dataset's metric on the test split."""
    if dataset.metric == "rmse":
        return float(math.sqrt(mean_squared_error(y_true, np.asarray(pred, dtype=float))))
    if dataset.metric == "accuracy":
        return float(accuracy_score(y_true.astype(str), np.asarray(pred).astype(str)))
    classes = [str(c) for c in classes]
    positive = sorted(classes)[-1]
    column = classes.index(positive)
    return float(roc_auc_score((y_true.astype(str) == positive).astype(int), proba[:, column]))


@dataclass
class Row:
    dataset: str
    system: str
    metric: str
    score: float | None
    wall_s: float
    detail: str = ""


# ---------------------------------------------------------------------------------------
# The systems


class MeshSystem:
    """mlmesh through the embedded mesh (one experiment at a time)."""

    name = "mlmesh"

    def __init__(self, home: Path, replicas: dict[str, int]) -> None:
        from mlmesh_cli import runner
        from mlmesh_common.broker import free_port

        self.home = home
        self.runner = runner
        config = runner.MeshConfig(home=home, gateway_port=free_port(), grpc_port=free_port(),
                                   replicas=replicas)
        runner.launch_detached(config)
        self.state = runner.wait_ready(home, timeout_s=300)
        self.client = _gateway_client(self.state, home)

    def close(self) -> None:
        self.client.close()
        self.runner.shutdown(self.home)

    def run(self, dataset: Dataset, train: pd.DataFrame, test: pd.DataFrame,
            budget_s: int, work: Path) -> Row:
        csv = work / f"{dataset.name}.csv"
        train.to_csv(csv, index=False)
        spec = {"dataset_uri": csv.resolve().as_uri(), "target": dataset.target,
                "problem_type": dataset.problem_type, "metric": dataset.metric,
                "time_budget_s": budget_s, "seed": SEED, "stages": ["tune"],
                "project": "bench-quality"}
        started = time.perf_counter()
        experiment_id = self.client.submit(spec)["experiment_id"]
        while True:
            record = self.client.get(experiment_id)
            if record["status"] in ("completed", "failed", "cancelled"):
                break
            if time.perf_counter() - started > budget_s * 6 + 600:
                self.client.cancel(experiment_id, "benchmark timeout")
                return Row(dataset.name, self.name, dataset.metric, None,
                           time.perf_counter() - started, "timed out")
            time.sleep(1.0)
        wall = time.perf_counter() - started
        if record["status"] != "completed":
            return Row(dataset.name, self.name, dataset.metric, None, wall,
                       f"{record['status']}: {record.get('failure_reason', '')}"[:200])
        result = record.get("result", {})
        model = joblib.load(_local_path(result["model_uri"]))
        features = test.drop(columns=[dataset.target])
        y = test[dataset.target]
        if dataset.metric == "roc_auc":
            score = evaluate(dataset, y, proba=model.predict_proba(features),
                             classes=model.classes_)
        else:
            score = evaluate(dataset, y, pred=model.predict(features))
        return Row(dataset.name, self.name, dataset.metric, score, wall,
                   f"winner {result.get('winner', '?')}; {stage_seconds(record)}")


def stage_seconds(record: dict[str, Any]) -> str:
    """Seconds each stage of an experiment record took, e.g. ``prep 3.1 train 20.4``."""
    parts = []
    for stage in record.get("stages", []):
        if stage.get("started_at") and stage.get("finished_at"):
            parts.append(f"{stage['name']} {stage['finished_at'] - stage['started_at']:.1f}")
    return " ".join(parts)


def _gateway_client(state: dict, home: Path) -> Any:
    from mlmesh_cli.client import GatewayClient

    return GatewayClient.for_home(home, state["gateway_url"])


def _local_path(uri: str) -> Path:
    parsed = urlparse(uri)
    if parsed.scheme not in ("", "file"):
        raise ValueError(f"the benchmark reads local artifacts only, not {uri}")
    return Path(unquote(parsed.path))


class AutoGluonSystem:
    """AutoGluon's TabularPredictor with the medium_quality preset."""

    name = "autogluon"
    _METRICS = {"roc_auc": "roc_auc", "accuracy": "accuracy", "rmse": "root_mean_squared_error"}

    def run(self, dataset: Dataset, train: pd.DataFrame, test: pd.DataFrame,
            budget_s: int, work: Path) -> Row:
        from autogluon.tabular import TabularPredictor

        started = time.perf_counter()
        predictor = TabularPredictor(
            label=dataset.target, eval_metric=self._METRICS[dataset.metric],
            problem_type=dataset.problem_type, path=str(work / f"ag-{dataset.name}"),
            verbosity=0,
        ).fit(train, presets="medium_quality", time_limit=budget_s)
        wall = time.perf_counter() - started
        features = test.drop(columns=[dataset.target])
        y = test[dataset.target]
        if dataset.metric == "roc_auc":
            proba = predictor.predict_proba(features)
            score = evaluate(dataset, y, proba=proba.to_numpy(), classes=list(proba.columns))
        else:
            score = evaluate(dataset, y, pred=predictor.predict(features))
        return Row(dataset.name, self.name, dataset.metric, score, wall,
                   f"best {predictor.model_best}")


class FlamlSystem:
    """FLAML's AutoML with its default estimator list."""

    name = "flaml"

    def run(self, dataset: Dataset, train: pd.DataFrame, test: pd.DataFrame,
            budget_s: int, work: Path) -> Row:
        from flaml import AutoML

        automl = AutoML()
        x = train.drop(columns=[dataset.target])
        y = train[dataset.target]
        task = "regression" if dataset.problem_type == "regression" else "classification"
        started = time.perf_counter()
        automl.fit(x, y, task=task, metric=dataset.metric, time_budget=budget_s, seed=SEED,
                   verbose=0, log_file_name=str(work / f"flaml-{dataset.name}.log"))
        wall = time.perf_counter() - started
        features = test.drop(columns=[dataset.target])
        ytest = test[dataset.target]
        if dataset.metric == "roc_auc":
            score = evaluate(dataset, ytest, proba=automl.predict_proba(features),
                             classes=automl.classes_)
        else:
            score = evaluate(dataset, ytest, pred=automl.predict(features))
        return Row(dataset.name, self.name, dataset.metric, score, wall,
                   f"best {automl.best_estimator}")


# ---------------------------------------------------------------------------------------
# The table


def verdict(mesh: float | None, other: float | None, greater_is_better: bool,
            tolerance: float = TIE_TOLERANCE) -> str:
    """'beats', 'ties' (within ``tolerance`` relative) or 'loses': mlmesh against one
    baseline. With ``tolerance=0`` only equal scores tie."""
    if mesh is None:
        return "loses"
    if other is None:  # the baseline failed where mlmesh produced a model
        return "beats"
    gap = (mesh - other) if greater_is_better else (other - mesh)
    if abs(gap) <= tolerance * max(abs(other), 1e-12):
        return "ties"
    return "beats" if gap > 0 else "loses"


#: The issue's targets: tie (within 0.5% relative) or beat AutoGluon; beat FLAML outright.
TARGETS = {"autogluon": (TIE_TOLERANCE, ("beats", "ties")), "flaml": (0.0, ("beats",))}


def table(rows: list[Row], datasets: dict[str, Dataset]) -> str:
    """One table: metric and wall time per system per dataset, then the tallies."""
    systems = ["mlmesh", "autogluon", "flaml"]
    by = {(r.dataset, r.system): r for r in rows}
    lines = [f"{'dataset':<22}{'metric':<9}"
             + "".join(f"{s:>22}" for s in systems) + f"{'vs AG':>8}{'vs FLAML':>10}"]
    tallies = {"autogluon": 0, "flaml": 0}
    flaml_ties_or_beats = 0
    names = [n for n in datasets if any(r.dataset == n for r in rows)]
    for name in names:
        ds = datasets[name]
        cells = []
        for system in systems:
            row = by.get((name, system))
            if row is None or row.score is None:
                cells.append(f"{'failed' if row else '-':>22}")
            else:
                cells.append(f"{row.score:>12.4f} {row.wall_s:>7.0f}s ")
        mesh = by.get((name, "mlmesh"))
        verdicts = []
        for other, (tolerance, counted) in TARGETS.items():
            o = by.get((name, other))
            v = verdict(mesh.score if mesh else None, o.score if o else None,
                        ds.greater_is_better, tolerance)
            tallies[other] += v in counted
            if other == "flaml":
                flaml_ties_or_beats += v in ("beats", "ties")
            verdicts.append(v)
        lines.append(f"{name:<22}{ds.metric:<9}" + "".join(cells)
                     + f"{verdicts[0]:>8}{verdicts[1]:>10}")
    n = len(names)
    lines.append("")
    lines.append(f"mlmesh ties or beats AutoGluon on {tallies['autogluon']}/{n} datasets "
                 f"({100 * tallies['autogluon'] / max(n, 1):.0f}%; tie = within 0.5% relative), "
                 f"beats FLAML on {tallies['flaml']}/{n} "
                 f"({100 * tallies['flaml'] / max(n, 1):.0f}%; a strictly better score, "
                 f"ties or beats on {flaml_ties_or_beats}/{n}); target 80% each")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=60, help="seconds per system per dataset")
    parser.add_argument("--datasets", default="", help="comma-separated subset (default all)")
    parser.add_argument("--systems", default="mlmesh,autogluon,flaml")
    parser.add_argument("--home", type=Path, default=Path(".mlmesh/bench-quality"))
    parser.add_argument("--replicas", default=None,
                        help="mlmesh workers, e.g. 'train-gpu=2,tune=2' (default: one "
                             "train-gpu and one tune worker per core, as the other systems "
                             "use every core)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    builders = load_datasets()
    chosen = [d for d in args.datasets.split(",") if d] or list(builders)
    unknown = [d for d in chosen if d not in builders]
    if unknown:
        parser.error(f"unknown dataset(s) {unknown}; choose from {', '.join(builders)}")
    systems_wanted = args.systems.split(",")
    home = args.home.resolve()
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    datasets = {name: builders[name]() for name in chosen}
    work = Path(tempfile.mkdtemp(prefix="mlmesh-bench-quality-"))
    rows: list[Row] = []
    replicas = (parse_replicas(args.replicas) if args.replicas is not None
                else {"train-gpu": os.cpu_count() or 1, "tune": os.cpu_count() or 1})
    mesh = MeshSystem(home / "mesh", replicas) if "mlmesh" in systems_wanted else None
    systems: list[Any] = [s for s in (mesh, AutoGluonSystem(), FlamlSystem())
                          if s is not None and s.name in systems_wanted]
    print(f"{len(datasets)} datasets, budget {args.budget}s per system, "
          f"{os.cpu_count()} cores, seed {SEED}; mlmesh workers {replicas}", flush=True)
    try:
        for name, dataset in datasets.items():
            train, test = split(dataset)
            for system in systems:
                try:
                    row = system.run(dataset, train, test, args.budget, work)
                except Exception as exc:  # noqa: BLE001 - a failed system is a result too
                    row = Row(name, system.name, dataset.metric, None, 0.0,
                              f"{type(exc).__name__}: {exc}"[:200])
                rows.append(row)
                shown = "failed" if row.score is None else f"{row.score:.4f}"
                print(f"  {name:<22}{system.name:<10} {shown:>8} in {row.wall_s:6.1f}s  "
                      f"{row.detail}", flush=True)
            (home / "quality.json").write_text(json.dumps([asdict(r) for r in rows], indent=2))
    finally:
        if mesh is not None:
            mesh.close()
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(table(rows, datasets))


if __name__ == "__main__":
    main()
