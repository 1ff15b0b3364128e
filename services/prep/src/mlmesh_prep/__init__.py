"""Domain logic of the prep service: split, fold and preprocess a profiled table."""

from mlmesh_prep.preparation import (
    DROP_REASONS,
    FILES,
    MAX_ONE_HOT_CATEGORIES,
    InvalidProfileError,
    InvalidSplitError,
    NoFeaturesError,
    NotEnoughRowsError,
    PrepError,
    ProfileMismatchError,
    UnusableTargetError,
    build_preprocessor,
    prepare,
)

__all__ = [
    "DROP_REASONS",
    "FILES",
    "MAX_ONE_HOT_CATEGORIES",
    "InvalidProfileError",
    "InvalidSplitError",
    "NoFeaturesError",
    "NotEnoughRowsError",
    "PrepError",
    "ProfileMismatchError",
    "UnusableTargetError",
    "build_preprocessor",
    "prepare",
]
