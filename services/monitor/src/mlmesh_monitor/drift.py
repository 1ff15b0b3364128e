"""Data drift between a reference frame (training data) and a window of served rows.

Uses evidently's ``DataDriftPreset``: every column gets the statistical test evidently
picks for its type and size (Kolmogorov-Smirnov / chi-square p-values for small samples,
Wasserstein / Jensen-Shannon distances for large ones) and is called drifted when the
test says so; the dataset drifts when the share of drifted columns reaches
``drift_share_threshold``. Numeric columns (not bool) are tested as numerical, bool,
string and category columns as categorical; datetime columns and columns without any
value in either frame are skipped and reported in ``skipped_columns``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

# evidently 0.7 needs a shim to import under pandas 3; the package __init__ installs it
# (mlmesh_monitor._evidently_compat) before this module is loaded.
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset

_VALUE_DRIFT = "evidently:metric_v2:ValueDrift"


class DriftInputError(ValueError):
    """The frames or columns given cannot be compared for drift."""


@dataclass(frozen=True)
class DriftResult:
    """Outcome of a drift check.

    ``per_column`` maps each tested column to ``{stattest, score, threshold, drifted,
    column_type}``; ``share_drifted`` is drifted / tested columns.
    """

    dataset_drift: bool
    share_drifted: float
    drifted_columns: list[str]
    per_column: dict[str, dict[str, Any]]
    n_reference: int
    n_current: int
    drift_share_threshold: float
    skipped_columns: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (for events and artifacts)."""
        return asdict(self)


def compute_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    drift_share_threshold: float = 0.5,
    html_path: Path | None = None,
) -> DriftResult:
    """Compare ``current`` with ``reference`` column by column.

    ``columns`` defaults to every column the two frames share. When ``html_path`` is
    given, evidently's interactive report is written there too (self-contained HTML).
    """
    snapshot, plan = _run_report(reference, current, columns, drift_share_threshold)
    result = _parse(snapshot.dict(), plan, drift_share_threshold)
    if html_path is not None:
        Path(html_path).write_text(snapshot.get_html_str(as_iframe=False), encoding="utf-8")
    return result


def render_drift_html(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    drift_share_threshold: float = 0.5,
) -> str:
    """evidently's drift report as a self-contained HTML document."""
    snapshot, _ = _run_report(reference, current, columns, drift_share_threshold)
    return snapshot.get_html_str(as_iframe=False)


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    drift_share_threshold: float = 0.5,
) -> tuple[str, dict[str, Any], DriftResult]:
    """evidently's drift report of one comparison as (self-contained HTML, the report as a
    JSON-serialisable dict, the parsed result), from a single evidently run."""
    snapshot, plan = _run_report(reference, current, columns, drift_share_threshold)
    as_dict = snapshot.dict()
    return (snapshot.get_html_str(as_iframe=False), as_dict,
            _parse(as_dict, plan, drift_share_threshold))


@dataclass(frozen=True)
class _Plan:
    numerical: list[str]
    categorical: list[str]
    skipped: dict[str, str]
    n_reference: int
    n_current: int

    @property
    def tested(self) -> list[str]:
        return self.numerical + self.categorical


def _run_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: Sequence[str] | None,
    drift_share_threshold: float,
) -> tuple[Any, _Plan]:
    plan = _plan(reference, current, columns, drift_share_threshold)
    definition = DataDefinition(
        numerical_columns=plan.numerical, categorical_columns=plan.categorical
    )
    report = Report(
        [DataDriftPreset(columns=plan.tested, drift_share=drift_share_threshold)],
        include_tests=True,
    )
    snapshot = report.run(
        Dataset.from_pandas(_prepare(current, plan), data_definition=definition),
        Dataset.from_pandas(_prepare(reference, plan), data_definition=definition),
    )
    return snapshot, plan


def _plan(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: Sequence[str] | None,
    drift_share_threshold: float,
) -> _Plan:
    for name, frame in (("reference", reference), ("current", current)):
        if not isinstance(frame, pd.DataFrame):
            raise DriftInputError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}")
        if len(frame) == 0:
            raise DriftInputError(f"{name} has no rows; drift needs rows in both frames")
    if not 0 < drift_share_threshold <= 1:
        raise DriftInputError(
            f"drift_share_threshold {drift_share_threshold} must be in (0, 1]: the share of "
            "drifted columns at which the dataset counts as drifted"
        )
    if columns is None:
        chosen = [c for c in reference.columns if c in current.columns]
        if not chosen:
            raise DriftInputError("reference and current share no column; nothing to compare")
    else:
        chosen = list(dict.fromkeys(columns))
        missing = {
            name: [c for c in chosen if c not in frame.columns]
            for name, frame in (("reference", reference), ("current", current))
        }
        missing = {k: v for k, v in missing.items() if v}
        if missing or not chosen:
            raise DriftInputError(
                f"columns to compare are missing: {missing or 'none given'}; pass columns "
                "present in both frames (the model's feature columns)"
            )
    numerical: list[str] = []
    categorical: list[str] = []
    skipped: dict[str, str] = {}
    for column in chosen:
        dtype = reference[column].dtype
        if pd.api.types.is_datetime64_any_dtype(dtype) or isinstance(dtype, pd.PeriodDtype):
            skipped[column] = "datetime columns are not tested for drift"
        elif reference[column].isna().all():
            skipped[column] = "no values in the reference data"
        elif current[column].isna().all():
            skipped[column] = "no values in the current data"
        elif pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
            if not pd.api.types.is_numeric_dtype(current[column].dtype):
                raise DriftInputError(
                    f"column {column!r} is numeric in the reference data but "
                    f"{current[column].dtype} in the current data; fix the producer's types"
                )
            numerical.append(column)
        else:
            categorical.append(column)
    if not numerical and not categorical:
        raise DriftInputError(f"no column can be tested for drift: {skipped}")
    return _Plan(numerical, categorical, skipped, len(reference), len(current))


def _prepare(frame: pd.DataFrame, plan: _Plan) -> pd.DataFrame:
    """Numerical columns as float64, categorical ones as strings (missing kept missing)."""
    prepared = pd.DataFrame(index=frame.index)
    for column in plan.numerical:
        prepared[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    for column in plan.categorical:
        prepared[column] = frame[column].astype(object).map(str, na_action="ignore")
    return prepared.reset_index(drop=True)


def _parse(report: dict[str, Any], plan: _Plan, drift_share_threshold: float) -> DriftResult:
    scores: dict[str, dict[str, Any]] = {}
    for metric in report.get("metrics", []):
        config = metric.get("config", {})
        if config.get("type") == _VALUE_DRIFT:
            scores[config["column"]] = {
                "stattest": config.get("method"),
                "score": float(metric["value"]),
                "threshold": config.get("threshold"),
            }
    verdicts: dict[str, bool] = {}
    for test in report.get("tests", []):
        params = test.get("metric_config", {}).get("params", {})
        if params.get("type") == _VALUE_DRIFT:
            verdicts[params["column"]] = test.get("status") == "FAIL"
    per_column: dict[str, dict[str, Any]] = {}
    for column in plan.tested:
        if column not in scores or column not in verdicts:
            raise RuntimeError(
                f"evidently returned no drift result for column {column!r}; the installed "
                "evidently version is not compatible with mlmesh_monitor.drift"
            )
        per_column[column] = {
            **scores[column],
            "drifted": verdicts[column],
            "column_type": "numerical" if column in plan.numerical else "categorical",
        }
    drifted = [c for c in plan.tested if per_column[c]["drifted"]]
    share = len(drifted) / len(plan.tested)
    return DriftResult(
        dataset_drift=share >= drift_share_threshold,
        share_drifted=share,
        drifted_columns=drifted,
        per_column=per_column,
        n_reference=plan.n_reference,
        n_current=plan.n_current,
        drift_share_threshold=drift_share_threshold,
        skipped_columns=plan.skipped,
    )
