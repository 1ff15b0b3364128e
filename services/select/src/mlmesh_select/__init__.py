"""select domain logic: leaderboard of candidates, refit of the winner, model saving."""

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

__all__ = [
    "SOURCES",
    "CandidateError",
    "NoCandidatesError",
    "SelectionResult",
    "build_leaderboard",
    "load_model",
    "refit_winner",
    "save_model",
]
