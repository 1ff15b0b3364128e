"""run_selection end to end on real PREPARED folders (small: 3 folds, fast families)."""

import json

import joblib
import numpy as np
import pandas as pd
import pytest

from mlmesh_common.modeling import (
    EnsembleModel,
    cross_validate,
    load_prepared,
    save_oof,
    score_model,
)
from mlmesh_select import ConstraintError, SelectionOptions, build_leaderboard, run_selection
from mlmesh_select.analysis import fairness_report

FAMILIES = (("linear", {}), ("dummy", {}), ("lightgbm", {"n_estimators": 40}))


@pytest.fixture(scope="module")
def cancer_candidates(cancer_prepared, tmp_path_factory):
    data = load_prepared(cancer_prepared)
    root = tmp_path_factory.mktemp("oof")
    cands = []
    for family, params in FAMILIES:
        r = cross_validate(data, family, params, device="cpu", seed=0, measure=True)
        cands.append(
            {
                "family": family,
                "params": params,
                "source": "train",
                "metric": r.metric,
                "cv_mean": r.mean,
                "cv_std": r.std,
                "fold_scores": r.fold_scores,
                "latency_ms": r.latency_ms,
                "size_bytes": r.size_bytes,
                "oof": str(save_oof(r, root / family / "oof.parquet")),
            }
        )
    board = build_leaderboard(cands)
    return board, {i: c["oof"] for i, c in enumerate(board)}


def test_selection_writes_every_section(cancer_prepared, cancer_candidates, tmp_path):
    board, oofs = cancer_candidates
    sel = run_selection(
        cancer_prepared,
        board,
        oofs,
        tmp_path,
        SelectionOptions(seed=0, n_boot=100, shap_budget_s=5, importance_repeats=1),
    )
    s = json.loads((tmp_path / "selection.json").read_text())
    for key in (
        "statistics",
        "ensemble",
        "pareto_front",
        "constraints",
        "calibration",
        "importance",
        "fairness",
        "error_analysis",
        "test_score_ci",
    ):
        assert key in s
    assert {e["kind"] for e in s["ensemble_candidates"]} == {"caruana", "stacking"}
    best_single = board[0]["cv_mean"]
    if sel.ensemble_kind == "single":
        assert s["ensemble"] is None and s["family"] == board[0]["family"]
    else:  # an ensemble wins only with a better honest CV score than the best single
        assert s["winner"]["cv_mean"] > best_single - 0.02
        assert isinstance(sel.model, EnsembleModel)
        gains = [
            e["gain_over_best_single"]
            for e in s["ensemble_candidates"]
            if e["kind"] == sel.ensemble_kind
        ]
        assert gains[0] > 0
    assert s["test_score_ci"]["low"] <= s["test_score"] <= s["test_score_ci"]["high"]
    comparisons = s["statistics"]["comparisons"]
    assert comparisons and all("t_p_adjusted" in r and "mcnemar_p_value" in r for r in comparisons)
    assert 0 <= s["calibration"]["ece"] <= 1 and "brier_score" in s["calibration"]
    assert s["importance"]["permutation"] and s["importance"]["shap"]["status"] == "ok"
    assert s["error_analysis"]["confusion_matrix"]["labels"] == ["0", "1"]
    assert (tmp_path / "plots" / "calibration.png").is_file()
    assert (tmp_path / "plots" / "pareto.png").is_file()
    model = joblib.load(tmp_path / "model.joblib")
    data = load_prepared(cancer_prepared)
    np.testing.assert_allclose(
        model.predict_proba(data.X_test), sel.model.predict_proba(data.X_test)
    )


def _train_rows(model):
    members = model.members_ if isinstance(model, EnsembleModel) else [model]
    return {m.fit_info_["train_rows"] for m in members}


def test_the_published_model_is_the_winner_refitted_on_every_row(
    cancer_prepared, cancer_candidates, tmp_path
):
    board, oofs = cancer_candidates
    data = load_prepared(cancer_prepared)
    n_evaluated = len(data.y_train) + len(data.y_valid)
    options = {"seed": 0, "n_boot": 20, "shap_budget_s": 2, "importance_repeats": 1}
    sel = run_selection(cancer_prepared, board, oofs, tmp_path / "all", SelectionOptions(**options))
    s = json.loads((tmp_path / "all" / "selection.json").read_text())
    assert s["final_fit"]["status"] == "refitted on every row"
    assert s["final_fit"]["rows"] == n_evaluated + len(data.y_test)
    assert s["final_fit"]["evaluated_fit"]["rows"] == n_evaluated
    evaluated = joblib.load(tmp_path / "all" / s["evaluated_model_path"])
    published = joblib.load(tmp_path / "all" / s["model_path"])
    assert s["evaluated_model_path"] != s["model_path"]
    assert type(published) is type(evaluated) is type(sel.model)
    assert _train_rows(evaluated) == {n_evaluated}
    assert _train_rows(published) == {n_evaluated + len(data.y_test)}
    # The reported test score is the evaluated model's: the published one has seen the rows.
    assert score_model(evaluated, data.X_test, data.y_test, s["metric"]) == pytest.approx(
        s["test_score"]
    )

    kept = run_selection(cancer_prepared, board, oofs, tmp_path / "kept",
                         SelectionOptions(**options, refit_all_rows=False))
    k = json.loads((tmp_path / "kept" / "selection.json").read_text())
    assert k["evaluated_model_path"] == k["model_path"] == "model.joblib"
    assert k["final_fit"]["status"].startswith("evaluated model published")
    assert not (tmp_path / "kept" / "evaluated_model.joblib").exists()
    assert _train_rows(kept.model) == {n_evaluated}

    late = run_selection(cancer_prepared, board, oofs, tmp_path / "late",
                         SelectionOptions(**options, time_left_s=0.0,
                                          final_fit_allowance_s=0.0))
    lt = json.loads((tmp_path / "late" / "selection.json").read_text())
    assert lt["final_fit"]["status"] == "evaluated model published"
    assert "of the time budget are left" in lt["final_fit"]["reason"]
    assert lt["evaluated_model_path"] == "model.joblib"
    assert _train_rows(late.model) == {n_evaluated}
    allowed = run_selection(cancer_prepared, board, oofs, tmp_path / "allowed",
                            SelectionOptions(**options, time_left_s=0.0,
                                             final_fit_allowance_s=60.0))
    assert _train_rows(allowed.model) == {n_evaluated + len(data.y_test)}


def test_constraints_that_nothing_meets_fail_clearly(cancer_prepared, cancer_candidates, tmp_path):
    board, oofs = cancer_candidates
    with pytest.raises(ConstraintError, match="max_latency_ms=1e-09"):
        run_selection(
            cancer_prepared, board, oofs, tmp_path, SelectionOptions(max_latency_ms=1e-9, n_boot=10)
        )


def test_fairness_on_a_biased_classifier():
    rng = np.random.default_rng(0)
    group = np.array(["a"] * 500 + ["b"] * 500)
    y = rng.integers(0, 2, 1000)
    pred = y.copy()
    flip = (group == "b") & (rng.uniform(size=1000) < 0.4)
    pred[flip] = 1  # group b gets many false positives
    report = fairness_report(
        y, pred, pd.DataFrame({"group": group}), problem_type="binary", classes=[0, 1]
    )["group"]
    assert report["by_group"]["a"]["accuracy"] == 1.0
    assert report["by_group"]["b"]["accuracy"] < 0.9
    assert report["demographic_parity_difference"] > 0.1
    assert report["equalized_odds_difference"] > 0.3
    assert report["group_sizes"] == {"a": 500, "b": 500}


def test_budget_shares_scale_with_the_experiment_budget():
    assert SelectionOptions.budget_shares(60) == {
        "shap_budget_s": 3.0, "importance_budget_s": 3.0,
        "holdout_budget_s": 6.0, "final_fit_allowance_s": 6.0}
    assert SelectionOptions.budget_shares(10) == {
        "shap_budget_s": 2.0, "importance_budget_s": 2.0,
        "holdout_budget_s": 2.0, "final_fit_allowance_s": 2.0}
    assert SelectionOptions.budget_shares(3600) == {
        "shap_budget_s": 30.0, "importance_budget_s": 20.0,
        "holdout_budget_s": 60.0, "final_fit_allowance_s": 360.0}


def test_rivals_fits_beyond_their_budget_are_skipped_and_said(
    cancer_prepared, cancer_candidates, tmp_path
):
    board, oofs = cancer_candidates
    # Rivals whose train-only fit would take an hour: none fits a 1 s budget; the
    # winner's own train-only fit still runs (calibration on the valid split needs it).
    slow = [{**c, "fit_seconds": 3600.0} for c in board]
    options = {"seed": 0, "n_boot": 20, "shap_budget_s": 2, "importance_repeats": 1,
               "ensembles": False}
    run_selection(cancer_prepared, slow, oofs, tmp_path / "tight",
                  SelectionOptions(**options, holdout_budget_s=1.0))
    s = json.loads((tmp_path / "tight" / "selection.json").read_text())
    rivals = [r["candidate"] for r in s["statistics"]["comparisons"]]
    assert sorted(s["statistics"]["mcnemar_skipped"]) == sorted(rivals)
    assert all("budget for rivals' fits" in why
               for why in s["statistics"]["mcnemar_skipped"].values())
    assert not any("mcnemar_p_value" in r for r in s["statistics"]["comparisons"])
    assert "valid_log_loss" in s["calibration"]  # the winner's own train-only fit ran

    run_selection(cancer_prepared, slow, oofs, tmp_path / "roomy",
                  SelectionOptions(**options, holdout_budget_s=1e5))
    r = json.loads((tmp_path / "roomy" / "selection.json").read_text())
    assert "mcnemar_skipped" not in r["statistics"]
    assert all("mcnemar_p_value" in c for c in r["statistics"]["comparisons"])
