"""How many tuning trials to start now, and when tuning is over."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlmesh_common.modeling import expected_fit_s


class BudgetInputError(ValueError):
    """Budget settings or progress counters that make no sense."""


#: Share of the experiment's budget tuning plans on when nothing is known of time spent.
TUNE_BUDGET_SHARE = 0.35
#: Share of the experiment's budget kept for select (refit, ensembles, statistics).
SELECT_RESERVE_SHARE = 0.15
#: Tuning gets at least this many seconds, even when earlier stages used up the budget.
MIN_TUNE_S = 5.0


def tune_time_budget(
    experiment_budget_s: float, elapsed_s: float | None, select_refit_s: float = 0.0
) -> float:
    """Seconds of tuning for an experiment of ``experiment_budget_s`` of which
    ``elapsed_s`` are spent: what is left after keeping select's reserve (at least
    MIN_TUNE_S), or TUNE_BUDGET_SHARE of the budget when the time spent is unknown.

    Select's reserve is SELECT_RESERVE_SHARE of the budget plus ``select_refit_s``, the
    expected time of its refit of the winner (a Gaussian process on a few thousand rows
    takes longer than the whole share of a one-minute budget)."""
    if not experiment_budget_s > 0:
        raise BudgetInputError(f"experiment budget must be > 0; got {experiment_budget_s}")
    if elapsed_s is None:
        return max(MIN_TUNE_S, experiment_budget_s * TUNE_BUDGET_SHARE)
    reserve = experiment_budget_s * SELECT_RESERVE_SHARE + max(0.0, select_refit_s)
    left = experiment_budget_s - reserve - max(0.0, elapsed_s)
    return max(MIN_TUNE_S, left)


def select_refit_estimate(
    leader: Mapping[str, Any] | None, n_train: int, n_valid: int, n_folds: int
) -> float:
    """Seconds select's refit of the training ``leader`` (a leaderboard dict) on
    train+valid should take, from its CV seconds per fold (0 when unknown)."""
    if leader is None or n_train <= 0:
        return 0.0
    return expected_fit_s(leader, int(n_folds) or 5, (n_train + max(0, n_valid)) / n_train)


def grace_for(time_budget_s: float) -> float:
    """How long tuning waits past its deadline for trials in flight (they stop at the next
    fold boundary): a quarter of the budget, at least 10 s."""
    return max(10.0, time_budget_s / 4)


@dataclass(frozen=True)
class TuningBudget:
    """At most ``max_trials`` trials, ``parallelism`` in flight, within ``time_budget_s``.

    When the time is up no new trial starts; tuning ends once the trials in flight finish,
    or ``grace_s`` after the deadline at the latest (a lost trial must not hang tuning).
    """

    max_trials: int
    time_budget_s: float
    parallelism: int
    grace_s: float = 60.0

    def __post_init__(self) -> None:
        if self.max_trials < 0:
            raise BudgetInputError(f"max_trials must be >= 0; got {self.max_trials}")
        if not self.time_budget_s > 0:
            raise BudgetInputError(f"time_budget_s must be > 0; got {self.time_budget_s}")
        if self.parallelism < 1:
            raise BudgetInputError(f"parallelism must be >= 1; got {self.parallelism}")
        if self.grace_s < 0:
            raise BudgetInputError(f"grace_s must be >= 0; got {self.grace_s}")

    @staticmethod
    def _check(n_asked: int, n_finished: int, elapsed_s: float) -> None:
        if n_asked < 0 or n_finished < 0 or elapsed_s < 0:
            raise BudgetInputError(
                f"counters must be >= 0; got n_asked={n_asked}, n_finished={n_finished}, "
                f"elapsed_s={elapsed_s}"
            )
        if n_finished > n_asked:
            raise BudgetInputError(f"n_finished ({n_finished}) cannot exceed n_asked ({n_asked})")

    def next_batch_size(self, n_asked: int, n_finished: int, elapsed_s: float) -> int:
        """How many new trials to ask for now (0 when full, out of trials or out of time)."""
        self._check(n_asked, n_finished, elapsed_s)
        if elapsed_s >= self.time_budget_s:
            return 0
        in_flight = n_asked - n_finished
        return max(0, min(self.parallelism - in_flight, self.max_trials - n_asked))

    def is_done(self, n_asked: int, n_finished: int, elapsed_s: float) -> bool:
        """True when tuning is over and its result can be published."""
        self._check(n_asked, n_finished, elapsed_s)
        if n_finished >= self.max_trials:
            return True
        if elapsed_s >= self.time_budget_s:
            return n_finished == n_asked or elapsed_s >= self.time_budget_s + self.grace_s
        return False
