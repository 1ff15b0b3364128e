"""How a family's study searches and prunes: sampler and pruner choice, objective directions."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import optuna

from mlmesh_common.modeling import greater_is_better
from mlmesh_common.problems import OBJECTIVES, PRUNERS, SAMPLERS

from .spaces import grid_search_space, grid_size, is_small_space

#: Samplers the coordinator may resolve "auto" (and the spec's choice) to.
RESOLVED_SAMPLERS = ("tpe", "random", "grid", "nsga2")
#: Multi-objective studies with at least this many trials per family use NSGA-II
#: (a population of 20 needs a few generations); smaller ones use multi-objective TPE.
NSGA2_MIN_TRIALS = 60
NSGA2_POPULATION = 20
#: TPE starts with this many random trials (fewer when the family's budget is small).
TPE_STARTUP_TRIALS = 10


class StrategyError(ValueError):
    """A sampler, pruner or objective name the tune service does not know."""


class _GridSampler(optuna.samplers.GridSampler):
    """GridSampler for ask/tell use: Optuna's stops the study (only valid inside
    ``study.optimize``) once the grid is exhausted; here the coordinator limits the
    family's trials to the grid size instead."""

    def after_trial(
        self,
        study: optuna.Study,
        trial: optuna.trial.FrozenTrial,
        state: optuna.trial.TrialState,
        values: Sequence[float] | None,
    ) -> None:
        return None


def objective_directions(metric: str, objectives: Sequence[str] = ()) -> list[str]:
    """Optuna directions: the metric's first; ``"minimize"`` latency when it is an objective.

    ``objectives`` empty means score only. Unknown names raise StrategyError.
    """
    unknown = [o for o in objectives if o not in OBJECTIVES]
    if unknown:
        raise StrategyError(
            f"unknown tuning objective(s) {unknown}; use some of {', '.join(OBJECTIVES)}"
        )
    directions = ["maximize" if greater_is_better(metric) else "minimize"]
    if "latency" in objectives:
        directions.append("minimize")
    return directions


def resolve_sampler(
    requested: str, family: str, problem_type: str, *, trials_for_family: int, n_objectives: int
) -> str:
    """The sampler a family's study uses: ``tpe``, ``random``, ``grid`` or ``nsga2``.

    ``auto`` (or empty) picks grid search for a small space (linear, SVMs, KNN) whose grid
    fits in the family's share of the trial budget, NSGA-II for long multi-objective
    searches, and TPE otherwise. An explicit ``tpe``/``random``/``grid`` is honoured (grid
    uses the family's coarse grid).
    """
    requested = requested or "auto"
    if requested not in SAMPLERS:
        raise StrategyError(f"unknown sampler {requested!r}; use one of {', '.join(SAMPLERS)}")
    if requested != "auto":
        return requested
    if is_small_space(family) and grid_size(family, problem_type) <= trials_for_family:
        return "grid"
    if n_objectives > 1 and trials_for_family >= NSGA2_MIN_TRIALS:
        return "nsga2"
    return "tpe"


def make_sampler(
    kind: str, family: str, problem_type: str, *, seed: int, trials_for_family: int = 50
) -> optuna.samplers.BaseSampler:
    """Build the sampler ``kind`` (a :func:`resolve_sampler` result) for ``family``."""
    if kind == "tpe":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(
                seed=seed,
                multivariate=True,
                group=True,  # conditional parameters (e.g. l1_ratio only for elastic net)
                constant_liar=True,  # several trials run at once on the workers
                n_startup_trials=max(3, min(TPE_STARTUP_TRIALS, trials_for_family // 3)),
            )
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if kind == "grid":
        return _GridSampler(grid_search_space(family, problem_type), seed=seed)
    if kind == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=NSGA2_POPULATION, seed=seed)
    raise StrategyError(f"unknown sampler {kind!r}; use one of {', '.join(RESOLVED_SAMPLERS)}")


def make_pruner(kind: str, n_folds: int, *, n_objectives: int = 1) -> optuna.pruners.BasePruner:
    """The pruner for ``kind`` (median, successive_halving, hyperband, none; empty = median).

    Steps are CV folds: a trial reports its running mean after every fold. Multi-objective
    studies cannot prune (Optuna has no intermediate values for several objectives), so they
    get a no-op pruner.
    """
    kind = kind or "median"
    if kind not in PRUNERS:
        raise StrategyError(f"unknown pruner {kind!r}; use one of {', '.join(PRUNERS)}")
    if n_folds < 1:
        raise StrategyError(f"n_folds must be >= 1; got {n_folds}")
    if kind == "none" or n_objectives > 1 or n_folds < 2:
        return optuna.pruners.NopPruner()
    if kind == "median":
        # Pruning starts once 4 trials finished; the last fold is never pruned (it is done).
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=0)
    if kind == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=2)
    return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=n_folds, reduction_factor=2)
