"""Domain logic of the prep service: split, fold, engineer features, fit preprocessors."""

from mlmesh_prep.engineering import Engineered, dfs_candidates, engineer_features
from mlmesh_prep.features import (
    MAX_ONE_HOT_CATEGORIES,
    ColumnChoice,
    FeaturePlan,
    plan_columns,
)
from mlmesh_prep.preparation import (
    DROP_REASONS,
    FILES,
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
from mlmesh_prep.splitting import Split, split_rows

__all__ = [
    "DROP_REASONS",
    "FILES",
    "MAX_ONE_HOT_CATEGORIES",
    "ColumnChoice",
    "Engineered",
    "FeaturePlan",
    "InvalidProfileError",
    "InvalidSplitError",
    "NoFeaturesError",
    "NotEnoughRowsError",
    "PrepError",
    "ProfileMismatchError",
    "Split",
    "UnusableTargetError",
    "build_preprocessor",
    "dfs_candidates",
    "engineer_features",
    "plan_columns",
    "prepare",
    "split_rows",
]
