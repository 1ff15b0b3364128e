"""Transformers of the preprocessors the prep stage fits (and every stage after it loads).

They live here, not in the prep service, so unpickling a fitted ``preprocessor.joblib``
or ``preprocessor_trees.joblib`` (or a model holding one) needs only ``mlmesh_common``
plus pandas and scikit-learn. All are scikit-learn transformers: clonable, picklable,
fitted on training rows only.
"""

from ._datetime_text import (
    DATETIME_PARTS,
    ELAPSED,
    DatetimeParts,
    TextVectorizer,
    calendar_parts,
    to_datetime,
)
from ._encode import (
    MISSING_CATEGORY,
    CrossFitTargetEncoder,
    HashingEncoder,
    QuantileClipper,
    string_cast,
)
from ._generate import (
    GROUP_OPS,
    MISSING_GROUP_KEY,
    OPS,
    PCA_OP,
    ROW_OPS,
    FeatureGenerator,
    row_op,
)
from ._impute import INDICATOR_SUFFIX, NUMERIC_STRATEGIES, NumericImputer

__all__ = [
    "row_op",
    "DATETIME_PARTS",
    "ELAPSED",
    "GROUP_OPS",
    "MISSING_GROUP_KEY",
    "INDICATOR_SUFFIX",
    "MISSING_CATEGORY",
    "NUMERIC_STRATEGIES",
    "OPS",
    "PCA_OP",
    "ROW_OPS",
    "CrossFitTargetEncoder",
    "DatetimeParts",
    "FeatureGenerator",
    "HashingEncoder",
    "NumericImputer",
    "QuantileClipper",
    "TextVectorizer",
    "calendar_parts",
    "string_cast",
    "to_datetime",
]
