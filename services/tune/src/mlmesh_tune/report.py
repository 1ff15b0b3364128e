"""What a finished tuning leaves behind: the Pareto front, the trial history, parameter
importances and PNG plots of both."""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.trial import TrialState

log = logging.getLogger("mlmesh.tune")


def pareto_indices(points: Sequence[Sequence[float]], directions: Sequence[str]) -> list[int]:
    """Indices of the points no other point dominates (better or equal in every objective,
    strictly better in one), in input order. ``directions`` are maximize/minimize."""
    if not points:
        return []
    signs = np.array([1.0 if d == "maximize" else -1.0 for d in directions])
    values = np.asarray(points, dtype=float) * signs  # now every objective is maximised
    if values.ndim != 2 or values.shape[1] != len(directions):
        raise ValueError(
            f"each point needs {len(directions)} values (one per direction); got shape "
            f"{values.shape}"
        )
    front = []
    for i, v in enumerate(values):
        dominated = np.any(np.all(values >= v, axis=1) & np.any(values > v, axis=1))
        if not dominated:
            front.append(i)
    return front


def history_frame(studies: Mapping[str, optuna.Study]) -> pd.DataFrame:
    """One row per trial of every family's study: family, number, state, value(s), duration,
    params (estimator names) and the worker's measurements."""
    rows: list[dict[str, Any]] = []
    for family, study in studies.items():
        names = ["value"] if len(study.directions) == 1 else ["value", "latency_ms_objective"]
        for t in study.get_trials(deepcopy=False):
            cand = t.user_attrs.get("candidate") or {}
            row: dict[str, Any] = {
                "family": family,
                "number": t.number,
                "state": t.state.name,
                "datetime_start": t.datetime_start,
                "datetime_complete": t.datetime_complete,
                "duration_s": t.duration.total_seconds() if t.duration else None,
                "n_folds_reported": len(t.intermediate_values),
                "cv_std": cand.get("cv_std"),
                "latency_ms": cand.get("latency_ms"),
                "size_bytes": cand.get("size_bytes"),
                "error": t.user_attrs.get("error", ""),
            }
            for i, name in enumerate(names):
                row[name] = t.values[i] if t.values else None
            for key, value in (t.user_attrs.get("params") or {}).items():
                row[f"params_{key}"] = json.dumps(value) if isinstance(value, list) else value
            rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    return frame.sort_values(["datetime_start", "family", "number"], na_position="last")


def param_importances(study: optuna.Study, *, seed: int = 0) -> dict[str, float]:
    """Normalised importance of each searched parameter for the (first) objective.

    fANOVA (Optuna's default evaluator) first, mean decrease in impurity when fANOVA fails;
    empty when fewer than two trials completed or no parameter varied.
    """
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(done) < 2:
        return {}
    target = (lambda t: t.values[0]) if len(study.directions) > 1 else None
    evaluators = (
        optuna.importance.FanovaImportanceEvaluator(seed=seed),
        optuna.importance.MeanDecreaseImpurityImportanceEvaluator(seed=seed),
    )
    for evaluator in evaluators:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                got = optuna.importance.get_param_importances(
                    study, evaluator=evaluator, target=target
                )
            return {k: float(v) for k, v in got.items() if np.isfinite(v)}
        except (RuntimeError, ValueError, ZeroDivisionError) as exc:
            log.info("%s failed on %s: %s", type(evaluator).__name__, study.study_name, exc)
    return {}


def _plot_history(frame: pd.DataFrame, metric: str, maximize: bool, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    finished = frame[frame["state"].isin(["COMPLETE", "PRUNED"])].reset_index(drop=True)
    order = np.arange(len(finished))
    for family, part in finished.groupby("family", sort=False):
        done = part[part["state"] == "COMPLETE"]
        ax.scatter(order[done.index], done["value"], s=18, label=f"{family}")
        pruned = part[part["state"] == "PRUNED"]
        if len(pruned):
            ax.scatter(
                order[pruned.index],
                pruned["value"],
                marker="x",
                s=18,
                c="grey",
                label=f"{family} (pruned)",
            )
    values = finished["value"].where(finished["state"] == "COMPLETE")
    best = (values.cummax() if maximize else values.cummin()).ffill()
    ax.plot(order, best, color="black", linewidth=1.2, label="best so far")
    ax.set_xlabel("trial (in finishing order)")
    ax.set_ylabel(f"CV {metric}")
    ax.set_title("Optimization history")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_importance(family: str, importances: dict[str, float], path: Path) -> None:
    import matplotlib.pyplot as plt

    names = list(importances)[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(names) + 1.2))
    ax.barh([n.split(".", 1)[-1] for n in names], [importances[n] for n in names])
    ax.set_xlabel("importance (fANOVA, normalised)")
    ax.set_title(f"{family}: hyperparameter importance")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_pareto(
    points: list[tuple[float, float]], front: list[int], metric: str, path: Path
) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    arr = np.asarray(points)
    ax.scatter(arr[:, 1], arr[:, 0], s=16, c="lightgrey", label="trials")
    on = arr[sorted(front, key=lambda i: arr[i, 1])]
    ax.plot(on[:, 1], on[:, 0], "o-", color="tab:red", label="Pareto front")
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms per row)")
    ax.set_ylabel(f"CV {metric}")
    ax.set_title("Score against inference latency")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(
    studies: Mapping[str, optuna.Study],
    folder: Path,
    *,
    metric: str,
    maximize: bool,
    pareto: Sequence[dict[str, Any]] = (),
    points: Sequence[dict[str, Any]] = (),
    seed: int = 0,
) -> dict[str, Any]:
    """Write ``history.csv``, ``importance.json`` and PNG plots into ``folder``.

    ``points`` are candidates with cv_mean and latency_ms and ``pareto`` the front among
    them (multi-objective tuning). Returns a summary (files, importances per family).
    """
    import matplotlib

    matplotlib.use("Agg")
    folder.mkdir(parents=True, exist_ok=True)
    frame = history_frame(studies)
    frame.to_csv(folder / "history.csv", index=False)
    importances = {family: param_importances(s, seed=seed) for family, s in studies.items()}
    (folder / "importance.json").write_text(json.dumps(importances, indent=2, sort_keys=True))
    plots = []
    if not frame.empty and (frame["state"] == "COMPLETE").any():
        _plot_history(frame, metric, maximize, folder / "history.png")
        plots.append("history.png")
    for family, imp in importances.items():
        if imp:
            name = f"importance_{family}.png"
            _plot_importance(family, imp, folder / name)
            plots.append(name)
    if pareto and points:
        xy = [(float(p["cv_mean"]), float(p["latency_ms"])) for p in points]
        keys = [(p["family"], p.get("trial_number")) for p in points]
        front = [keys.index((p["family"], p.get("trial_number"))) for p in pareto]
        _plot_pareto(xy, front, metric, folder / "pareto.png")
        plots.append("pareto.png")
    return {"history": "history.csv", "plots": plots, "importance": importances}
