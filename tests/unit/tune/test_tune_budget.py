"""TuningBudget: batch sizes and the end of tuning."""

import pytest

from mlmesh_tune import (
    MIN_TUNE_S,
    SELECT_RESERVE_SHARE,
    TUNE_BUDGET_SHARE,
    BudgetInputError,
    TuningBudget,
    grace_for,
    select_refit_estimate,
    tune_time_budget,
)


def test_batches_fill_parallelism_up_to_max_trials():
    b = TuningBudget(max_trials=10, time_budget_s=100, parallelism=4)
    assert b.next_batch_size(0, 0, 0) == 4
    assert b.next_batch_size(4, 1, 5) == 1  # 3 in flight
    assert b.next_batch_size(4, 4, 5) == 4
    assert b.next_batch_size(9, 8, 5) == 1  # only one trial left
    assert b.next_batch_size(10, 8, 5) == 0


def test_no_new_trials_after_the_deadline():
    b = TuningBudget(max_trials=10, time_budget_s=100, parallelism=4)
    assert b.next_batch_size(2, 2, 100) == 0
    assert b.next_batch_size(2, 2, 99.9) == 4


def test_done_when_all_trials_finish():
    b = TuningBudget(max_trials=3, time_budget_s=100, parallelism=2)
    assert not b.is_done(0, 0, 0)
    assert not b.is_done(3, 2, 10)
    assert b.is_done(3, 3, 10)


def test_done_after_deadline_once_in_flight_trials_finish_or_grace_ends():
    b = TuningBudget(max_trials=50, time_budget_s=100, parallelism=4, grace_s=30)
    assert not b.is_done(6, 4, 99)
    assert not b.is_done(6, 4, 120)  # waiting for two stragglers
    assert b.is_done(6, 6, 120)
    assert b.is_done(6, 4, 130)  # lost trials do not hang tuning


def test_zero_trials_is_done_at_once():
    assert TuningBudget(max_trials=0, time_budget_s=10, parallelism=1).is_done(0, 0, 0)


def test_invalid_settings_and_counters():
    with pytest.raises(BudgetInputError, match="parallelism"):
        TuningBudget(max_trials=5, time_budget_s=10, parallelism=0)
    with pytest.raises(BudgetInputError, match="time_budget_s"):
        TuningBudget(max_trials=5, time_budget_s=0, parallelism=1)
    with pytest.raises(BudgetInputError, match="max_trials"):
        TuningBudget(max_trials=-1, time_budget_s=10, parallelism=1)
    b = TuningBudget(max_trials=5, time_budget_s=10, parallelism=1)
    with pytest.raises(BudgetInputError, match="cannot exceed"):
        b.next_batch_size(1, 2, 0)
    with pytest.raises(BudgetInputError, match=">= 0"):
        b.is_done(1, 0, -1)


def test_tuning_gets_what_is_left_of_the_experiment_budget_after_selects_reserve():
    # 60 s experiment, 30 s spent: 60 * (1 - 0.15) - 30 = 21 s
    assert tune_time_budget(60, 30) == pytest.approx(60 * (1 - SELECT_RESERVE_SHARE) - 30)
    # early stages were quick: tuning may use more than its planned share
    assert tune_time_budget(600, 60) > 600 * TUNE_BUDGET_SHARE
    # the budget is spent already: tuning still gets its minimum
    assert tune_time_budget(60, 80) == MIN_TUNE_S
    # A winner whose refit takes long enlarges select's reserve.
    assert tune_time_budget(60, 20, select_refit_s=8) == pytest.approx(
        60 * (1 - SELECT_RESERVE_SHARE) - 20 - 8)
    assert tune_time_budget(60, 20, select_refit_s=100) == MIN_TUNE_S


def test_selects_refit_estimate_comes_from_the_leaders_cv_seconds_per_fold():
    leader = {"family": "gaussian_process", "fit_seconds": 24.0, "fold_scores": [1.0, 0.9]}
    # 12 s per fold on 4/5 of train, refit on train+valid (1.2 x train): 18 s
    assert select_refit_estimate(leader, 1000, 200, 5) == pytest.approx(18.0)
    assert select_refit_estimate(None, 1000, 200, 5) == 0.0
    assert select_refit_estimate({**leader, "fit_seconds": 0.0}, 1000, 200, 5) == 0.0
    # time spent unknown (no ledger record): the planned share
    assert tune_time_budget(600, None) == 600 * TUNE_BUDGET_SHARE
    with pytest.raises(BudgetInputError, match="experiment budget must be > 0"):
        tune_time_budget(0, 10)


def test_grace_is_a_quarter_of_the_tuning_budget_and_at_least_ten_seconds():
    assert grace_for(200) == 50 and grace_for(20) == 10
