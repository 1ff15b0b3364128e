"""tune domain logic: search spaces, shared Optuna studies, trial budget and evaluation."""

from .budget import BudgetInputError, TuningBudget
from .plan import NothingToTuneError, family_for_trial, pick_families
from .spaces import TUNABLE_FAMILIES, UntunableFamilyError, suggest_params
from .study import (
    StorageUrlError,
    StudyConflictError,
    TrialResultError,
    ask_trial,
    completed_candidates,
    direction_for,
    make_storage,
    open_study,
    tell_trial,
)
from .trials import TrialOutcome, evaluate_trial

__all__ = [
    "TUNABLE_FAMILIES",
    "BudgetInputError",
    "NothingToTuneError",
    "StorageUrlError",
    "StudyConflictError",
    "TrialOutcome",
    "TrialResultError",
    "TuningBudget",
    "UntunableFamilyError",
    "ask_trial",
    "completed_candidates",
    "direction_for",
    "evaluate_trial",
    "family_for_trial",
    "make_storage",
    "open_study",
    "pick_families",
    "suggest_params",
    "tell_trial",
]
