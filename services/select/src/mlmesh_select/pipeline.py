"""The whole selection: constraints, Pareto front, ensembles, statistics, refit, final test
evaluation. ``run_selection`` is a plain function of a PREPARED folder and the leaderboard;
it writes ``selection.json``, ``model.joblib`` and ``plots/`` into one folder."""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlmesh_common.modeling import (
    EnsembleModel,
    PreparedData,
    expected_fit_s,
    fit_and_score,
    greater_is_better,
    load_prepared,
    measure_latency_ms,
    metrics_for,
    model_size_bytes,
    needs_proba,
    new_model,
    oof_frame,
    score,
    score_model_many,
)
from mlmesh_select import analysis
from mlmesh_select.ensembles import (
    EnsembleFit,
    OOFPool,
    best_single_cv,
    build_pool,
    caruana_cv,
    fold_scores,
    pool_positions,
    stacking_cv,
)
from mlmesh_select.pareto import apply_constraints, pareto_optimal
from mlmesh_select.selection import cv_cut_short, most_folds, save_model
from mlmesh_select.statistics import bootstrap_ci, compare_to_winner

log = logging.getLogger(__name__)

MAX_POOL = 8
"""Most leaderboard entries that ensembles (a diverse pool, see ``pool_positions``) and
McNemar (best first) consider."""
EVALUATED_MODEL = "evaluated_model.joblib"
"""The winner as scored on the test split (fitted on train+valid), when the published
``model.joblib`` is its refit on every row."""
MIN_GAIN = 1e-9


@dataclass
class SelectionOptions:
    """What the spec asks of select."""

    seed: int = 42
    device: str = "cpu"
    max_latency_ms: float = 0.0
    max_model_size_mb: float = 0.0
    sensitive_columns: list[str] = field(default_factory=list)
    ensembles: bool = True
    n_boot: int = 500
    shap_budget_s: float = 30.0
    importance_budget_s: float = 20.0
    importance_repeats: int = 3
    refit_all_rows: bool = True
    """Publish the winner refitted on every row (train, valid and test) once the test split
    has scored its train+valid fit; that score stays the reported, honest estimate."""
    time_left_s: float | None = None
    """Seconds of the experiment's budget left when selection starts (None: unknown)."""
    final_fit_allowance_s: float = math.inf
    """Seconds the refit on every row may take even when nothing of the budget is left (as
    the analyses get their share): it is skipped only when the train+valid refit's time,
    scaled by the rows, exceeds both this and what is left."""

    holdout_budget_s: float = math.inf
    """Seconds the train-only fits of the winner's rivals may take: each gives McNemar's
    test on the valid split one more comparison. They run best first while the next one's
    expected time (its CV's seconds per fold) fits; the winner's own train-only fit, which
    calibration needs, always runs. Regression has no McNemar and fits none."""

    @classmethod
    def budget_shares(cls, experiment_budget_s: float) -> dict[str, float]:
        """The time budgets of selection's optional work for an experiment of
        ``experiment_budget_s`` seconds: SHAP and permutation importance 5% of it each
        (between 2 s and 30 s / 20 s), the rivals' train-only fits and the refit on every
        row a tenth each (at least 2 s; the rivals' fits at most 60 s)."""
        budget = float(experiment_budget_s)
        share = 0.05 * budget
        return {"shap_budget_s": min(30.0, max(2.0, share)),
                "importance_budget_s": min(20.0, max(2.0, share)),
                "holdout_budget_s": min(60.0, max(2.0, 0.1 * budget)),
                "final_fit_allowance_s": max(2.0, 0.1 * budget)}


@dataclass
class Selection:
    """The refit winner and everything selection.json says about it."""

    model: Any
    winner: dict[str, Any]
    leaderboard: list[dict[str, Any]]
    summary: dict[str, Any]
    out_dir: Path

    @property
    def ensemble_kind(self) -> str:
        return str((self.summary.get("ensemble") or {}).get("kind") or "single")


def _name(c: dict[str, Any]) -> str:
    return f"#{c['rank']} {c['family']} ({c['source']})"


def _labels(model: Any, X: Any) -> np.ndarray:
    return np.asarray(model.predict(X))


def _headline(metric: str, model: Any, X: Any, y: Any) -> float:
    return score_model_many(model, X, y, [metric])[metric]


def run_selection(
    prepared_folder: Path | str,
    leaderboard: list[dict[str, Any]],
    oof_paths: dict[int, Path | None],
    out_dir: Path | str,
    options: SelectionOptions | None = None,
) -> Selection:
    """Select, refit and evaluate; ``oof_paths`` maps leaderboard index -> OOF file."""
    opts = options or SelectionOptions()
    out = Path(out_dir)
    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    data = load_prepared(Path(prepared_folder))
    metric, higher = data.metric, greater_is_better(data.metric)
    classification = data.problem_type != "regression"
    timings: dict[str, float] = {}
    started = clock = time.perf_counter()

    # Train-only fits give holdout (valid) predictions for McNemar and calibration. Before
    # constraints, only candidates they need and whose latency/size train-gpu/tune did not
    # measure get one; the winner's and its rivals' follow once the winner is known.
    board = [dict(c) for c in leaderboard]
    train_fits: dict[int, Any] = {}
    if opts.max_latency_ms or opts.max_model_size_mb:
        for i, c in enumerate(board):
            if not c.get("latency_ms") or not c.get("size_bytes"):
                _fit_train_only(data, board, i, train_fits, opts)
    timings["cost_fits"] = time.perf_counter() - clock

    for c, flag in zip(board, pareto_optimal(board, greater_is_better=higher), strict=True):
        c["pareto_optimal"] = flag
    kept, constraints = apply_constraints(
        board, max_latency_ms=opts.max_latency_ms, max_model_size_mb=opts.max_model_size_mb
    )
    kept_idx = [board.index(c) for c in kept]
    best_idx = kept_idx[0]

    # Ensembles over the OOF predictions of a diverse pool of the kept entries.
    clock = time.perf_counter()
    # Members need OOF predictions on every row: a CV the budget cut short has fewer.
    complete_folds = most_folds(board)
    with_oof = [i for i in kept_idx if oof_paths.get(i) is not None
                and not cv_cut_short(board[i], complete_folds)]
    pool_idx = [with_oof[p] for p in pool_positions([board[i]["family"] for i in with_oof],
                                                     MAX_POOL)] if with_oof else []
    left_out = [i for i in kept_idx[:MAX_POOL] if i not in with_oof]  # listed as dropped
    pool = build_pool(
        {i: oof_paths.get(i) if i in pool_idx else None for i in sorted(pool_idx + left_out)},
        data.y_train,
        data.folds,
        problem_type=data.problem_type,
        metric=metric,
    )
    for i in left_out:
        if oof_paths.get(i) is not None and cv_cut_short(board[i], complete_folds):
            scored = len(board[i]["fold_scores"])
            pool.dropped[i] = f"cross-validation cut short ({scored} of {complete_folds} folds)"
    ensemble_fits: list[EnsembleFit] = []
    if opts.ensembles and len(pool.keys) >= 2:
        ensemble_fits = [caruana_cv(pool), stacking_cv(pool, seed=opts.seed)]
    single_scores = {k: fold_scores(pool, o) for k, o in zip(pool.keys, pool.outputs, strict=True)}
    best_single = single_scores.get(best_idx)
    # What the ensembles compete with: picking the best single candidate, scored per fold
    # like they are (the best candidate's own CV mean is inflated by having been picked).
    picking = best_single_cv(pool) if ensemble_fits else None
    chosen: EnsembleFit | None = None
    ensemble_report = []
    for fit in ensemble_fits:
        entry = _ensemble_entry(fit, pool, board)
        if best_single is not None and picking is not None:
            gain = (fit.cv_mean - picking.cv_mean) * (1 if higher else -1)
            entry["gain_over_best_single"] = gain
            entry["best_single_cv_mean"] = {"picked_per_fold": picking.cv_mean,
                                            "own_cv": float(np.mean(best_single))}
            within = _ensemble_within(entry, opts)
            entry["satisfies_constraints"] = within
            if (
                gain > MIN_GAIN
                and within
                and (chosen is None or (fit.cv_mean - chosen.cv_mean) * (1 if higher else -1) > 0)
            ):
                chosen = fit
        ensemble_report.append(entry)
    timings["ensembles"] = time.perf_counter() - clock

    # The winner fitted on train only gives holdout (valid) predictions for calibration and
    # McNemar (classification only); then it is refitted on train+valid.
    clock = time.perf_counter()
    holdout_model = None
    if chosen is not None:
        if chosen.kind == "caruana":
            pairs = [
                (k, w) for k, w in zip(pool.keys, _weights(chosen, pool), strict=True) if w > 0
            ]
            member_idx, weights = [k for k, _ in pairs], [w for _, w in pairs]
        else:  # the meta-learner reads every pool member, in pool order
            member_idx, weights = list(pool.keys), None
        if classification:
            members = [_fit_train_only(data, board, k, train_fits, opts, required=True)
                       for k in member_idx]
            holdout_model = EnsembleModel(
                members, weights, kind=chosen.kind, meta=chosen.meta, meta_classes=pool.classes
            ).from_fitted()
        else:  # fit() refits clones: unfitted members will do
            members = [new_model(data, board[k]["family"], board[k]["params"],
                                 device=opts.device, seed=opts.seed) for k in member_idx]
        timings["holdout_fits"] = time.perf_counter() - clock
        clock = time.perf_counter()
        model = EnsembleModel(
            members, weights, kind=chosen.kind, meta=chosen.meta, meta_classes=pool.classes
        ).fit(*data.combined(("train", "valid")))
        winner = {
            "family": "ensemble",
            "source": "select",
            "metric": metric,
            "params": {"kind": chosen.kind, "members": [_name(board[k]) for k in member_idx]},
            "cv_mean": chosen.cv_mean,
            "cv_std": chosen.cv_std,
            "fold_scores": chosen.fold_scores,
            "greater_is_better": higher,
            "ensemble": {
                "kind": chosen.kind,
                "members": [
                    {
                        "family": board[k]["family"],
                        "params": board[k]["params"],
                        "source": board[k]["source"],
                        "rank": board[k]["rank"],
                        "cv_mean": board[k]["cv_mean"],
                        "weight": w,
                    }
                    for k, w in zip(member_idx, weights or [None] * len(member_idx), strict=True)
                ],
            },
        }
        winner_scores = chosen.fold_scores
    else:
        c = board[best_idx]
        if classification:
            holdout_model = _fit_train_only(data, board, best_idx, train_fits, opts)
        timings["holdout_fits"] = time.perf_counter() - clock
        clock = time.perf_counter()
        model, _ = fit_and_score(data, c["family"], c["params"], device=opts.device, seed=opts.seed)
        winner = dict(c)
        winner_scores = best_single if best_single is not None else list(c.get("fold_scores") or [])
    timings["refit"] = time.perf_counter() - clock
    winner["latency_ms"] = measure_latency_ms(model, data.X_test)
    winner["size_bytes"] = model_size_bytes(model)
    baseline, _ = fit_and_score(data, "dummy", {}, device="cpu", seed=opts.seed)

    # Statistics: the winner against every other kept candidate.
    clock = time.perf_counter()
    win_name = "ensemble" if chosen is not None else _name(board[best_idx])
    others = []
    for i in kept_idx:
        if chosen is None and i == best_idx:
            continue
        scores = single_scores.get(i)
        if scores is None or len(scores) != len(winner_scores):
            scores = list(board[i].get("fold_scores") or [])
        others.append({"name": _name(board[i]), "fold_scores": scores})
    holdout, unfitted = None, {}
    if classification and holdout_model is not None:
        rivals = [i for i in kept_idx[:MAX_POOL] if _name(board[i]) != win_name]
        unfitted = _fit_rivals(data, board, rivals, train_fits, opts)
        preds = {win_name: _labels(holdout_model, data.X_valid)}
        for i in rivals:
            if i in train_fits:
                preds[_name(board[i])] = _labels(train_fits[i], data.X_valid)
        holdout = {"y": np.asarray(data.y_valid), "predictions": preds}
    statistics = compare_to_winner(
        {"name": win_name, "fold_scores": winner_scores},
        others,
        greater_is_better=higher,
        holdout=holdout,
    )
    statistics["holdout"] = "valid split (models fitted on train only)" if holdout else None
    if holdout and unfitted:
        statistics["mcnemar_skipped"] = {
            _name(board[i]): why for i, why in unfitted.items()}
    timings["statistics"] = time.perf_counter() - clock

    # Final test evaluation.
    clock = time.perf_counter()
    summary = _evaluate(
        data,
        model,
        baseline,
        metric,
        opts,
        plots,
        holdout_model=holdout_model,
        folder=Path(prepared_folder),
    )
    timings["evaluation"] = time.perf_counter() - clock
    clock = time.perf_counter()
    left = None if opts.time_left_s is None else opts.time_left_s - (clock - started)
    published, final_fit = _final_fit(model, data, opts, timings["refit"], left)
    timings["final_fit"] = time.perf_counter() - clock
    if published is not model:
        save_model(model, out / EVALUATED_MODEL)
    save_model(published, out / "model.joblib")
    _save_pool_oof(pool, chosen, out)
    pareto = [
        {
            "name": _name(c),
            "family": c["family"],
            "cv_mean": c["cv_mean"],
            "latency_ms": c.get("latency_ms"),
            "size_bytes": c.get("size_bytes"),
            "pareto_optimal": c["pareto_optimal"],
        }
        for c in board
    ]
    analysis.pareto_plot(pareto, metric, plots / "pareto.png")

    if chosen is not None:
        winner["rank"] = 1
        final_board = [winner] + [{**c, "rank": c["rank"] + 1} for c in board]
    else:
        final_board = board
    summary.update(
        {
            "family": winner["family"],
            "params": winner["params"],
            "metric": metric,
            "greater_is_better": higher,
            "n_test": len(data.X_test),
            "leaderboard": final_board,
            "model_path": "model.joblib",
            "evaluated_model_path": EVALUATED_MODEL if published is not model else "model.joblib",
            "final_fit": final_fit,
            "winner": {k: v for k, v in winner.items() if k != "ensemble"},
            "ensemble": winner.get("ensemble"),
            "ensemble_candidates": ensemble_report,
            "ensemble_pool": {
                "members": [_name(board[k]) for k in pool.keys],
                "rows": int(pool.y.shape[0]),
                "dropped": {_name(board[k]): why for k, why in pool.dropped.items()},
            },
            "statistics": statistics,
            "constraints": constraints,
            "pareto_front": [p for p in pareto if p["pareto_optimal"]],
            "plots": sorted(f"plots/{p.name}" for p in plots.glob("*.png")),
            "timings_s": {k: round(v, 3) for k, v in timings.items()},
        }
    )
    (out / "selection.json").write_text(json.dumps(_jsonable(summary), indent=2, default=str))
    return Selection(published, winner, final_board, summary, out)


def _fit_train_only(
    data: PreparedData, board: list[dict[str, Any]], i: int, fits: dict[int, Any],
    opts: SelectionOptions, *, required: bool = False,
) -> Any:
    """Candidate ``i`` fitted on the train split (cached in ``fits``), filling its latency
    and size if train-gpu/tune did not measure them; None when the fit fails, unless
    ``required`` (an ensemble needs every member)."""
    if i in fits:
        return fits[i]
    c = board[i]
    try:
        model, _ = fit_and_score(data, c["family"], c["params"], device=opts.device,
                                 seed=opts.seed, fit_on=("train",), eval_on="valid")
    except Exception as exc:
        if required:
            raise
        log.warning("train-only fit of %s failed: %s", _name(c), exc)
        return None
    fits[i] = model
    if not c.get("latency_ms") or not c.get("size_bytes"):
        c["latency_ms"] = measure_latency_ms(model, data.X_valid)
        c["size_bytes"] = model_size_bytes(model)
        c["cost_measured_by"] = "select"
    return model


def _fit_rivals(
    data: PreparedData, board: list[dict[str, Any]], rivals: list[int], fits: dict[int, Any],
    opts: SelectionOptions,
) -> dict[int, str]:
    """Train-only fits of the winner's ``rivals``, best first, within
    ``opts.holdout_budget_s``; returns the rivals left without one and why."""
    n_folds = int(np.unique(data.folds).size)
    spent, left_out = 0.0, {}
    for i in rivals:
        if i in fits:
            continue
        expected = expected_fit_s(board[i], n_folds)
        if spent + expected > opts.holdout_budget_s:
            left_out[i] = (f"a train-only fit (about {expected:.1f} s) would exceed the "
                           f"{opts.holdout_budget_s:.0f} s budget for rivals' fits")
            continue
        clock = time.perf_counter()
        if _fit_train_only(data, board, i, fits, opts) is None:
            left_out[i] = "its train-only fit failed"
        spent += time.perf_counter() - clock
    return left_out


def _final_fit(
    model: Any, data: PreparedData, opts: SelectionOptions, refit_s: float, left_s: float | None
) -> tuple[Any, dict]:
    """The model to publish and what selection.json says of it: the evaluated winner
    refitted (same family, params, members, weights and meta-learner) on every row, or the
    evaluated winner itself when that is off, would overrun the budget (``refit_s``, the
    train+valid refit's seconds, scaled by the rows, against ``left_s``) or fails."""
    evaluated = {"splits": ["train", "valid"], "rows": len(data.y_train) + len(data.y_valid)}
    if not opts.refit_all_rows:
        return model, {**evaluated, "status": "evaluated model published (refit off)"}
    X_all, y_all = data.combined(("train", "valid", "test"))
    expected_s = refit_s * len(y_all) / max(1, evaluated["rows"])
    if left_s is not None and expected_s > max(left_s, opts.final_fit_allowance_s):
        return model, {**evaluated, "status": "evaluated model published",
                       "reason": f"a refit on every row would take about {expected_s:.0f} s; "
                                 f"{max(0.0, left_s):.0f} s of the time budget are left and "
                                 f"{opts.final_fit_allowance_s:.0f} s allowed past it"}
    try:  # not sklearn's clone: it would reset the stacking meta-learner, fitted on OOF
        refitted = type(model)(**model.get_params(deep=False)).fit(X_all, y_all)
    except Exception as exc:  # noqa: BLE001 - the evaluated model is still a good answer
        log.warning("refit on every row failed; publishing the evaluated model: %s", exc)
        return model, {**evaluated, "status": "evaluated model published",
                       "reason": f"refit on every row failed: {type(exc).__name__}: {exc}"[:300]}
    return refitted, {"splits": ["train", "valid", "test"], "rows": len(y_all),
                      "status": "refitted on every row", "evaluated_on": "test",
                      "evaluated_fit": evaluated}


def _weights(fit: EnsembleFit, pool: OOFPool) -> list[float]:
    if fit.weights is not None:
        return [float(w) for w in fit.weights]
    return [1.0] * len(pool.keys)


def _ensemble_entry(fit: EnsembleFit, pool: OOFPool, board: list[dict]) -> dict[str, Any]:
    members = []
    for k, w in zip(pool.keys, _weights(fit, pool), strict=True):
        if w > 0:
            members.append(
                {
                    "name": _name(board[k]),
                    "weight": w if fit.weights is not None else None,
                    "latency_ms": board[k].get("latency_ms"),
                    "size_bytes": board[k].get("size_bytes"),
                }
            )
    return {
        "kind": fit.kind,
        "cv_mean": fit.cv_mean,
        "cv_std": fit.cv_std,
        "fold_scores": fit.fold_scores,
        "members": members,
        "latency_ms_estimate": _sum(m["latency_ms"] for m in members),
        "size_bytes_estimate": _sum(m["size_bytes"] for m in members),
    }


def _sum(values: Any) -> float | None:
    values = list(values)
    if any(v is None or not math.isfinite(float(v)) for v in values):
        return None
    return float(sum(values))


def _ensemble_within(entry: dict[str, Any], opts: SelectionOptions) -> bool:
    """An ensemble costs the sum of its members' latency and size."""
    lat, size = entry["latency_ms_estimate"], entry["size_bytes_estimate"]
    if opts.max_latency_ms and (lat is None or lat > opts.max_latency_ms):
        return False
    return not (
        opts.max_model_size_mb and (size is None or size / 1024**2 > opts.max_model_size_mb)
    )


def _evaluate(
    data: PreparedData,
    model: Any,
    baseline: Any,
    metric: str,
    opts: SelectionOptions,
    plots: Path,
    *,
    holdout_model: Any,
    folder: Path,
) -> dict[str, Any]:
    all_metrics = metrics_for(data.problem_type)
    X, y = data.X_test, np.asarray(data.y_test)
    classification = data.problem_type != "regression"
    test_metrics = score_model_many(model, X, y, all_metrics)
    proba = model.predict_proba(X) if classification else None
    pred = np.asarray(model.predict(X))
    classes = list(model.classes_) if classification else None

    def stat(idx: np.ndarray) -> float:
        if needs_proba(metric):
            return score(metric, y[idx], y_proba=proba[idx], labels=classes)
        return score(metric, y[idx], y_pred=pred[idx])

    ci = bootstrap_ci(stat, len(y), n_boot=opts.n_boot, seed=opts.seed)
    ci["metric"] = metric
    result: dict[str, Any] = {
        "test_score": test_metrics[metric],
        "baseline_test_score": _headline(metric, baseline, X, y),
        "test_metrics": test_metrics,
        "baseline_test_metrics": score_model_many(baseline, X, y, all_metrics),
        "test_score_ci": ci,
    }
    better = (
        (result["test_score"] > result["baseline_test_score"])
        if greater_is_better(metric)
        else (result["test_score"] < result["baseline_test_score"])
    )
    result["beats_baseline"] = bool(better)
    result["device"] = opts.device
    if classification:
        proba_valid = (
            holdout_model.predict_proba(data.X_valid) if holdout_model is not None else None
        )
        aligned = None
        if proba_valid is not None and list(holdout_model.classes_) == classes:
            aligned = proba_valid
        result["calibration"] = analysis.calibration_report(
            proba,
            y,
            classes,
            proba_valid=aligned,
            y_valid=np.asarray(data.y_valid),
            out_dir=plots,
            seed=opts.seed,
        )
    else:
        result["calibration"] = None

    result["importance"] = {
        "permutation": analysis.permutation_report(
            model, X, y, metric, seed=opts.seed, out_dir=plots,
            n_repeats=opts.importance_repeats, time_budget_s=opts.importance_budget_s,
        ),
        "shap": analysis.shap_report(
            model, X, seed=opts.seed, out_dir=plots, time_budget_s=opts.shap_budget_s
        ),
    }
    result["error_analysis"] = analysis.error_analysis(
        X, y, pred, problem_type=data.problem_type, classes=classes, out_dir=plots
    )
    result["fairness"] = _fairness(data, folder, y, pred, classes, opts)
    return result


def _fairness(
    data: PreparedData,
    folder: Path,
    y: np.ndarray,
    pred: np.ndarray,
    classes: Any,
    opts: SelectionOptions,
) -> dict[str, Any] | None:
    if not opts.sensitive_columns:
        return None
    import pandas as pd

    test = data.X_test
    missing = [c for c in opts.sensitive_columns if c not in test.columns]
    if missing:
        raw_path = folder / "test.parquet"
        raw = pd.read_parquet(raw_path) if raw_path.is_file() else pd.DataFrame()
        if all(c in raw.columns for c in missing):
            test = pd.concat([test, raw[missing].reset_index(drop=True)], axis=1)
        else:
            return {
                "status": "failed",
                "reason": f"sensitive column(s) {missing} are not in "
                "the test split; keep them in the prepared data (as features or extra "
                "columns)",
            }
    report = analysis.fairness_report(
        y, pred, test[opts.sensitive_columns], problem_type=data.problem_type, classes=classes
    )
    return {"status": "ok", "columns": report}


def _save_pool_oof(pool: OOFPool, chosen: EnsembleFit | None, out: Path) -> None:
    """OOF predictions of the chosen ensemble (Caruana blend on the pool rows), if any."""
    if chosen is None or chosen.kind != "caruana":
        return
    blended = sum(w * o for w, o in zip(chosen.weights, pool.outputs, strict=True))
    oof_frame(blended, pool.classes).to_parquet(out / "ensemble_oof.parquet", index=False)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
