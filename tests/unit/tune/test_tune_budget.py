"""TuningBudget: batch sizes and the end of tuning."""

import pytest

from mlmesh_tune import BudgetInputError, TuningBudget


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
