"""Per-column preprocessing choices and the two preprocessors built from them.

:func:`plan_columns` decides, from the train split only, how each feature column is
imputed, encoded and (for numbers) treated for outliers; :class:`FeaturePlan` turns those
choices, plus any generated features and selected-out columns, into

- the dense preprocessor (scaled, fully numeric; for linear, SVM, KNN and MLP models) and
- the tree preprocessor (no scaling; low-cardinality categories as integer codes placed
  first, so their output indices are ``0 .. n_codes-1``).

Every transformer used comes from scikit-learn or :mod:`mlmesh_common.preprocessing`.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from mlmesh_common.preprocessing import (
    DATETIME_PARTS,
    ELAPSED,
    MISSING_CATEGORY,
    CrossFitTargetEncoder,
    DatetimeParts,
    FeatureGenerator,
    HashingEncoder,
    NumericImputer,
    QuantileClipper,
    TextVectorizer,
    calendar_parts,
    string_cast,
)

#: One-hot columns per categorical feature at most; rarer categories share one column.
MAX_ONE_HOT_CATEGORIES = 50
#: Categories up to this many distinct values are one-hot encoded (dense preprocessor).
ONE_HOT_MAX_UNIQUE = 15
#: Above this many distinct values, the dense preprocessor hashes instead of target-encoding.
TARGET_ENCODING_MAX_UNIQUE = 1_000
#: Categories up to this many distinct values become native integer codes for trees.
TREE_CODES_MAX_UNIQUE = 64
HASH_FEATURES = 32
TEXT_MAX_FEATURES = 200
TEXT_SVD_COMPONENTS = 16
#: Missing share up to which a numeric column gets simple (median) imputation.
SIMPLE_MAX_MISSING = 0.05
#: Missing share above which model-based imputation is not worth it (median + indicator).
MODEL_MAX_MISSING = 0.5
#: Missing share from which a missing indicator is always added ("substantial").
INDICATOR_MIN_SHARE = 0.10
#: p-value below which missingness counts as informative about the target.
INFORMATIVE_P = 0.01
#: |Spearman| with another column needed for iterative (strong) or KNN (moderate) imputation.
ITERATIVE_MIN_CORR = 0.5
KNN_MIN_CORR = 0.3
KNN_MAX_ROWS = 20_000
MODEL_IMPUTE_MAX_COLUMNS = 100
#: Share of values beyond 3 IQR from the quartiles that marks a heavy-tailed column.
OUTLIER_MIN_SHARE = 0.01
OUTLIER_QUANTILES = (0.01, 0.99)
OUTLIER_MODES = ("auto", "clip", "none")

FEATURE_KINDS = ("numeric", "categorical", "boolean", "datetime", "text")


@dataclass
class ColumnChoice:
    """How one feature column is imputed and encoded, and why."""

    name: str
    kind: str
    missing_share: float
    n_unique: int
    imputation: str
    missing_indicator: bool
    encoding: str
    tree_encoding: str
    outliers: str = "none"
    reasons: list[str] = field(default_factory=list)
    categories: list[str] | None = None
    datetime_parts: list[str] | None = None

    def to_json(self) -> dict[str, Any]:
        """The choice as prep.json records it."""
        out = asdict(self)
        out.pop("name")
        if out["categories"] is None:
            out.pop("categories")
        if out["datetime_parts"] is None:
            out.pop("datetime_parts")
        return out


# --- choosing ---------------------------------------------------------------------------


def plan_columns(
    train: pd.DataFrame,
    y: pd.Series,
    kinds: dict[str, str],
    problem_type: str,
    *,
    outliers: str = "auto",
) -> list[ColumnChoice]:
    """Choose imputation, encodings and outlier treatment for each column of ``train``.

    ``kinds`` gives each column's feature kind (:data:`FEATURE_KINDS`); ``y`` is the train
    target, used only to test whether a column's missingness is informative.
    """
    if outliers not in OUTLIER_MODES:
        raise ValueError(f"outliers={outliers!r} is not one of {', '.join(OUTLIER_MODES)}")
    numeric = [c for c in train.columns if kinds[c] == "numeric"]
    corr = _abs_spearman(train[numeric]) if 1 < len(numeric) <= MODEL_IMPUTE_MAX_COLUMNS else None
    choices = []
    for name in train.columns:
        kind = kinds[name]
        series = train[name]
        share = float(series.isna().mean()) if len(series) else 0.0
        if kind == "numeric":
            choice = _numeric_choice(name, series, share, y, problem_type, corr, outliers)
        elif kind in ("categorical", "boolean"):
            choice = _categorical_choice(name, kind, series, share, y, problem_type)
        elif kind == "datetime":
            choice = _datetime_choice(name, series, share)
        elif kind == "text":
            choice = ColumnChoice(
                name, kind, share, int(series.nunique()), "empty_text", False, "tfidf",
                "tfidf_svd", reasons=[f"free text: TF-IDF of at most {TEXT_MAX_FEATURES} terms "
                                      f"(trees: {TEXT_SVD_COMPONENTS} SVD components)"],
            )  # fmt: skip
        else:
            raise ValueError(f"column '{name}' has feature kind {kind!r}; use {FEATURE_KINDS}")
        choices.append(choice)
    return choices


def _abs_spearman(frame: pd.DataFrame) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return frame.astype("float64").corr(method="spearman", min_periods=10).abs()


def _missingness_p_value(missing: pd.Series, y: pd.Series, problem_type: str) -> float:
    """p-value of 'the target does not depend on whether the value is missing'."""
    if missing.sum() < 5 or (~missing).sum() < 5:
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if problem_type == "regression":
                values = y.to_numpy(dtype=np.float64)
                result = stats.mannwhitneyu(values[missing.to_numpy()],
                                            values[~missing.to_numpy()])  # fmt: skip
                return float(result.pvalue)
            table = pd.crosstab(missing.to_numpy(), y.astype(str).to_numpy())
            if table.shape[0] < 2 or table.shape[1] < 2:
                return 1.0
            return float(stats.chi2_contingency(table.to_numpy())[1])
        except ValueError:
            return 1.0


def _indicator(
    name: str, missing: pd.Series, share: float, y: pd.Series, problem_type: str,
    reasons: list[str],
) -> bool:  # fmt: skip
    if share >= INDICATOR_MIN_SHARE:
        reasons.append(f"{share:.0%} missing (>= {INDICATOR_MIN_SHARE:.0%}): missing indicator")
        return True
    if share > 0:
        p = _missingness_p_value(missing, y, problem_type)
        if p < INFORMATIVE_P:
            reasons.append(f"missingness is informative about the target (p={p:.2g}): "
                           "missing indicator")  # fmt: skip
            return True
    return False


def _numeric_choice(
    name: str, series: pd.Series, share: float, y: pd.Series, problem_type: str,
    corr: pd.DataFrame | None, outliers: str,
) -> ColumnChoice:  # fmt: skip
    reasons: list[str] = []
    missing = series.isna()
    best_corr = 0.0
    if corr is not None and name in corr.columns:
        others = corr[name].drop(index=name).dropna()
        best_corr = float(others.max()) if len(others) else 0.0
    if share == 0:
        imputation = "median"
        reasons.append("no missing values in train: median fill for unseen gaps")
    elif share <= SIMPLE_MAX_MISSING:
        imputation = "median"
        reasons.append(f"{share:.1%} missing (<= {SIMPLE_MAX_MISSING:.0%}): median")
    elif share > MODEL_MAX_MISSING:
        imputation = "median"
        reasons.append(f"{share:.0%} missing (> {MODEL_MAX_MISSING:.0%}): too sparse to model; "
                       "median")  # fmt: skip
    elif best_corr >= ITERATIVE_MIN_CORR:
        imputation = "iterative"
        reasons.append(f"{share:.0%} missing and strongly correlated with another column "
                       f"(|rho|={best_corr:.2f}): iterative imputation")  # fmt: skip
    elif best_corr >= KNN_MIN_CORR and len(series) <= KNN_MAX_ROWS:
        imputation = "knn"
        reasons.append(f"{share:.0%} missing, moderately correlated with other columns "
                       f"(|rho|={best_corr:.2f}): KNN imputation")  # fmt: skip
    else:
        imputation = "median"
        reasons.append(f"{share:.0%} missing, unrelated to other columns "
                       f"(|rho|={best_corr:.2f}): median")  # fmt: skip
    indicator = _indicator(name, missing, share, y, problem_type, reasons)
    treatment = "none"
    if outliers == "clip":
        treatment = "clip"
        reasons.append("outliers: clipped to the 1st/99th percentiles (requested)")
    elif outliers == "auto":
        values = series.dropna().to_numpy(dtype=np.float64)
        if values.size >= 20:
            q1, q3 = np.quantile(values, [0.25, 0.75])
            iqr = q3 - q1
            extreme = float(np.mean((values < q1 - 3 * iqr) | (values > q3 + 3 * iqr)))
            if iqr > 0 and extreme >= OUTLIER_MIN_SHARE:
                treatment = "clip"
                reasons.append(f"{extreme:.1%} of values lie beyond 3 IQR: clipped to the "
                               "1st/99th percentiles for scaled models")  # fmt: skip
    return ColumnChoice(name, "numeric", share, int(series.nunique()), imputation, indicator,
                        "standard_scale", "number", treatment, reasons)  # fmt: skip


def _categorical_choice(
    name: str, kind: str, series: pd.Series, share: float, y: pd.Series, problem_type: str
) -> ColumnChoice:
    reasons: list[str] = []
    as_text = series.astype("string")
    n_unique = int(as_text.nunique())
    indicator_like = _indicator(name, series.isna(), share, y, problem_type, reasons)
    if indicator_like:
        imputation = "missing_category"
        reasons[-1] = reasons[-1].replace("missing indicator", "missing kept as a category")
    else:
        imputation = "most_frequent"
    categories = None
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype) and dtype.ordered:
        categories = [str(c) for c in dtype.categories]
        encoding = tree_encoding = "ordinal"
        reasons.append("ordered categories: ordinal codes in their declared order")
    else:
        if n_unique <= ONE_HOT_MAX_UNIQUE:
            encoding = "one_hot"
            reasons.append(f"{n_unique} categories (<= {ONE_HOT_MAX_UNIQUE}): one-hot")
        elif n_unique <= TARGET_ENCODING_MAX_UNIQUE:
            encoding = "target"
            reasons.append(f"{n_unique} categories: target encoding (cross-fitted)")
        else:
            encoding = "hashing"
            reasons.append(f"{n_unique} categories (> {TARGET_ENCODING_MAX_UNIQUE}): hashed "
                           f"into {HASH_FEATURES} columns")  # fmt: skip
        if n_unique <= TREE_CODES_MAX_UNIQUE:
            tree_encoding = "code"
            reasons.append("trees: native categorical codes")
        else:
            tree_encoding = "target"
            reasons.append(f"trees: target encoding (> {TREE_CODES_MAX_UNIQUE} categories)")
    return ColumnChoice(name, kind, share, n_unique, imputation, False, encoding, tree_encoding,
                        "none", reasons, categories)  # fmt: skip


def _datetime_choice(name: str, series: pd.Series, share: float) -> ColumnChoice:
    from mlmesh_common.preprocessing import to_datetime

    times = to_datetime(series)
    parts = []
    if times.notna().any():
        calendar = calendar_parts(times.dropna())
        parts = [p for p in DATETIME_PARTS if calendar[p].nunique() > 1]
    parts.append(ELAPSED)
    return ColumnChoice(
        name, "datetime", share, int(series.nunique()), "median", False, "datetime_parts",
        "datetime_parts", reasons=[f"datetime: parts {', '.join(parts)} (those that vary in "
                                   "train), then median fill"],
        datetime_parts=parts,
    )  # fmt: skip


# --- building --------------------------------------------------------------------------


@dataclass
class FeaturePlan:
    """Column choices plus generated features and selected-out columns: builds preprocessors.

    ``generated`` holds :class:`~mlmesh_common.preprocessing.FeatureGenerator` specs;
    ``excluded`` lists raw columns the models do not see directly (feature selection),
    though generated features may still read them.
    """

    columns: list[ColumnChoice]
    problem_type: str
    seed: int = 0
    generated: list[dict[str, Any]] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)

    def with_changes(self, **changes: Any) -> FeaturePlan:
        """A copy with some fields replaced."""
        return replace(self, **changes)

    @property
    def used(self) -> list[ColumnChoice]:
        """Columns models see directly."""
        return [c for c in self.columns if c.name not in set(self.excluded)]

    def raw_columns(self) -> list[str]:
        """Raw columns the preprocessors read (direct inputs and generator inputs)."""
        needed = {c.name for c in self.used} | {i for s in self.generated for i in s["inputs"]}
        return [c.name for c in self.columns if c.name in needed]

    def _target_type(self) -> str:
        return "continuous" if self.problem_type == "regression" else self.problem_type

    def _numeric_block(self, dense: bool) -> tuple[str, TransformerMixin, list[str]] | None:
        numeric = [c for c in self.used if c.kind == "numeric"]
        generated = [s["name"] for s in self.generated]
        names = [c.name for c in numeric] + generated
        if not names:
            return None
        strategies = {c.name: c.imputation for c in numeric if c.imputation != "median"}
        indicators = [c.name for c in numeric if c.missing_indicator]
        steps: list[tuple[str, Any]] = []
        if strategies or indicators:
            steps.append(("impute", NumericImputer(strategies, indicators,
                                                   random_state=self.seed)))  # fmt: skip
        else:
            steps.append(("impute", SimpleImputer(strategy="median", keep_empty_features=True)))
        clip = [i for i, c in enumerate(numeric) if c.outliers == "clip"]
        if dense and clip:
            low, high = OUTLIER_QUANTILES
            steps.append(("clip", QuantileClipper(low, high, clip)))
        if dense:
            steps.append(("scale", StandardScaler()))
        return "num", Pipeline(steps), names

    def _category_blocks(self, dense: bool) -> list[tuple[str, Any, list[str]]]:
        blocks: list[tuple[str, Any, list[str]]] = []
        categorical = [c for c in self.used if c.kind in ("categorical", "boolean")]
        for encoding in ("code", "one_hot", "target", "hashing", "ordinal"):
            for imputation in ("most_frequent", "missing_category"):
                cols = [
                    c for c in categorical
                    if (c.encoding if dense else c.tree_encoding) == encoding
                    and c.imputation == imputation
                ]  # fmt: skip
                if not cols:
                    continue
                blocks.append((f"{encoding}_{imputation}",
                               self._category_pipeline(encoding, imputation, cols, dense),
                               [c.name for c in cols]))  # fmt: skip
        return blocks

    def _category_pipeline(
        self, encoding: str, imputation: str, cols: list[ColumnChoice], dense: bool
    ) -> Pipeline:
        if imputation == "most_frequent":
            impute = SimpleImputer(strategy="most_frequent", missing_values=pd.NA)
        else:
            impute = SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY,
                                   missing_values=pd.NA)  # fmt: skip
        steps: list[tuple[str, Any]] = [("as_str", string_cast()), ("impute", impute)]
        if encoding == "one_hot":
            steps.append(
                (
                    "onehot",
                    OneHotEncoder(
                        handle_unknown="ignore",
                        sparse_output=False,
                        max_categories=MAX_ONE_HOT_CATEGORIES,
                    ),
                )
            )
        elif encoding == "code":
            steps.append(
                (
                    "codes",
                    OrdinalEncoder(
                        handle_unknown="use_encoded_value",
                        unknown_value=np.nan,
                        max_categories=TREE_CODES_MAX_UNIQUE + 1,
                        dtype=np.float64,
                    ),
                )
            )
        elif encoding == "target":
            steps.append(("target", CrossFitTargetEncoder(target_type=self._target_type())))
        elif encoding == "hashing":
            steps.append(("hash", HashingEncoder(HASH_FEATURES)))
        else:  # ordinal: declared order, unseen categories at -1
            steps.append(
                (
                    "ordinal",
                    OrdinalEncoder(
                        categories=[list(c.categories or []) for c in cols],
                        handle_unknown="use_encoded_value",
                        unknown_value=-1,
                        dtype=np.float64,
                    ),
                )
            )
        if dense and encoding in ("target", "ordinal"):
            steps.append(("scale", StandardScaler()))
        return Pipeline(steps)  # fmt: skip

    def _build(self, dense: bool) -> tuple[Any, int]:
        transformers: list[tuple[str, Any, list[str]]] = []
        categories = self._category_blocks(dense)
        codes = [b for b in categories if b[0].startswith("code_")]
        transformers.extend(codes)  # first: tree_categorical_features = 0 .. n_codes-1
        numeric = self._numeric_block(dense)
        if numeric is not None:
            transformers.append(numeric)
        transformers.extend(b for b in categories if not b[0].startswith("code_"))
        dates = [c for c in self.used if c.kind == "datetime"]
        if dates:
            steps: list[tuple[str, Any]] = [
                ("parts", DatetimeParts({c.name: list(c.datetime_parts or []) for c in dates})),
                ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ]
            if dense:
                steps.append(("scale", StandardScaler()))
            transformers.append(("datetime", Pipeline(steps), [c.name for c in dates]))
        for c in self.used:
            if c.kind == "text":
                vectorizer = TextVectorizer(
                    TEXT_MAX_FEATURES, None if dense else TEXT_SVD_COMPONENTS,
                    random_state=self.seed,
                )  # fmt: skip
                transformers.append((f"text_{c.name}", vectorizer, [c.name]))
        columns = ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0)
        n_codes = sum(len(b[2]) for b in codes)
        if not self.generated:
            return columns, n_codes
        steps = [("generate", FeatureGenerator(self.generated)), ("columns", columns)]
        return Pipeline(steps), n_codes

    def dense(self) -> Any:
        """The unfitted dense preprocessor (scaled, fully numeric)."""
        return self._build(dense=True)[0]

    def trees(self) -> tuple[Any, list[int]]:
        """The unfitted tree preprocessor and its categorical-code output indices."""
        pre, n_codes = self._build(dense=False)
        return pre, list(range(n_codes))
