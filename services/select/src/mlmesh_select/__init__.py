"""select domain logic: leaderboard, constraints and Pareto front, ensembles over OOF
predictions, statistics, refit of the winner and its final evaluation."""

from .ensembles import EnsembleInputError, build_pool, caruana_cv, caruana_weights, stacking_cv
from .pareto import ConstraintError, apply_constraints, pareto_optimal
from .pipeline import Selection, SelectionOptions, run_selection
from .selection import (
    SOURCES,
    CandidateError,
    NoCandidatesError,
    SelectionResult,
    build_leaderboard,
    load_model,
    refit_winner,
    save_model,
)
from .statistics import bootstrap_ci, compare_to_winner, holm, mcnemar, paired_t_test

__all__ = [
    "SOURCES",
    "CandidateError",
    "ConstraintError",
    "EnsembleInputError",
    "NoCandidatesError",
    "Selection",
    "SelectionOptions",
    "SelectionResult",
    "apply_constraints",
    "bootstrap_ci",
    "build_leaderboard",
    "build_pool",
    "caruana_cv",
    "caruana_weights",
    "compare_to_winner",
    "holm",
    "load_model",
    "mcnemar",
    "paired_t_test",
    "pareto_optimal",
    "refit_winner",
    "run_selection",
    "save_model",
    "stacking_cv",
]
