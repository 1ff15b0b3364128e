"""Render the experiment report (HTML + Markdown) and the model card (Markdown).

The renderer is a pure function of the stage summaries (profile, prep, leaderboard,
tuning, selection, spec): it validates them, derives a formatted view model and feeds it
to the Jinja2 templates shipped in ``mlmesh_docs/templates``. The HTML report is a single
self-contained file (inline CSS and SVG, no external assets) with autoescaping on, so
column names or values coming from a dataset cannot inject markup.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

TEMPLATES_DIR = Path(__file__).parent / "templates"

REPORT_HTML = "report.html"
REPORT_MD = "report.md"
MODEL_CARD_MD = "model_card.md"

#: Metrics for which a smaller value is better; every other metric is maximised.
LOWER_IS_BETTER = frozenset({"rmse", "mse", "mae", "log_loss", "logloss", "mape"})

_REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "spec": ("experiment_id",),
    "profile": ("n_rows", "n_columns", "target", "problem_type", "metric", "columns"),
    "prep": ("split_sizes", "n_folds"),
    "selection": ("family", "metric", "test_score", "baseline_test_score"),
}
_REQUIRED_LEADERBOARD_KEYS = ("rank", "family", "cv_mean")


class ReportContextError(ValueError):
    """The stage summaries handed to the renderer are incomplete or malformed."""


@dataclass(frozen=True)
class ReportContext:
    """Everything the reports are rendered from: the JSON summaries of earlier stages.

    ``tuning`` is None when the tuning stage was skipped. ``generated_at`` defaults to the
    time the context is created (UTC) and is printed in the reports. ``evaluation`` holds
    the facts the docs stage computed from the stored model on the test split
    (``evaluation.evaluate(...).facts``), ``figures`` the drawn figures by key (objects
    with ``data_uri()``, ``path`` and ``caption``) and ``artifacts`` the names of the other
    documents written next to the reports (white paper, summary, reproduction script).
    """

    spec: Mapping[str, Any]
    profile: Mapping[str, Any]
    prep: Mapping[str, Any]
    leaderboard: Sequence[Mapping[str, Any]]
    selection: Mapping[str, Any]
    tuning: Mapping[str, Any] | None = None
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    evaluation: Mapping[str, Any] | None = None
    figures: Mapping[str, Any] = field(default_factory=dict)
    artifacts: Mapping[str, str] = field(default_factory=dict)


def render_reports(context: ReportContext, out_dir: Path) -> dict[str, Path]:
    """Render ``report.html``, ``report.md`` and ``model_card.md`` into ``out_dir``.

    Returns a mapping from file name to the written path. Raises ReportContextError when
    a summary lacks a field the reports need (the message names the summary and field).
    """
    view = build_view(context)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    html_env = _environment(autoescape=True)
    md_env = _environment(autoescape=False)
    outputs = {
        REPORT_HTML: html_env.get_template("report.html.j2"),
        REPORT_MD: md_env.get_template("report.md.j2"),
        MODEL_CARD_MD: md_env.get_template("model_card.md.j2"),
    }
    written: dict[str, Path] = {}
    for name, template in outputs.items():
        path = out_dir / name
        try:
            text = template.render(**view)
        except jinja2.UndefinedError as exc:
            raise ReportContextError(
                f"rendering {name} failed because a value is missing: {exc.message}; "
                "check that the stage summaries follow the documented contracts"
            ) from exc
        path.write_text(text.rstrip() + "\n", encoding="utf-8")
        written[name] = path
    return written


# --------------------------------------------------------------------------- formatting


def fmt_int(value: Any) -> str:
    """Format an integer count with thousands separators ("—" when missing)."""
    if _is_missing(value):
        return "—"
    return f"{int(value):,}"


def fmt_num(value: Any, digits: int = 4) -> str:
    """Format a statistic with ``digits`` significant digits ("—" when missing)."""
    if _is_missing(value):
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if not isinstance(value, float):
        return str(value)
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1e7 or magnitude < 1e-4:
        return f"{value:.{digits - 1}e}"
    text = f"{value:,.{digits}g}"
    if "e" in text:  # e.g. 12345.6 with 4 significant digits
        text = f"{value:,.0f}"
    return text


def fmt_metric(value: Any) -> str:
    """Format a model score: four decimals, thousands separators for large errors."""
    if _is_missing(value):
        return "—"
    value = float(value)
    if abs(value) >= 1000:
        return f"{value:,.2f}"
    return f"{value:.4f}"


def fmt_pct(value: Any) -> str:
    """Format a fraction in [0, 1] as a percentage with one decimal."""
    if _is_missing(value):
        return "—"
    return f"{100 * float(value):.1f}%"


def fmt_params(params: Any) -> str:
    """Format a hyper-parameter mapping as ``name=value`` pairs, sorted by name."""
    if not params:
        return "defaults"
    if not isinstance(params, Mapping):
        return str(params)
    parts = []
    for key in sorted(params):
        value = params[key]
        shown = fmt_num(value) if isinstance(value, float) else str(value)
        parts.append(f"{key}={shown}")
    return ", ".join(parts)


def md_cell(value: Any) -> str:
    """Make a value safe inside a Markdown table cell (pipes and newlines escaped)."""
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def md_text(value: Any) -> str:
    """Neutralise inline HTML in Markdown prose (``<`` and ``>`` become entities)."""
    text = "" if value is None else str(value)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _environment(*, autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        integer=fmt_int,
        num=fmt_num,
        metric=fmt_metric,
        pct=fmt_pct,
        params=fmt_params,
        md=md_cell,
        mdtext=md_text,
    )
    return env


# --------------------------------------------------------------------------- view model


def build_view(context: ReportContext) -> dict[str, Any]:
    """Validate the context and derive the template variables (public for debugging)."""
    _validate(context)
    profile, prep, selection = context.profile, context.prep, context.selection
    metric = str(selection.get("metric") or profile["metric"])
    lower_is_better = metric.lower() in LOWER_IS_BETTER
    return {
        "title": f"Experiment {context.spec['experiment_id']}",
        "generated_at": context.generated_at.strftime("%Y-%m-%d %H:%M:%S %Z").strip(),
        "spec": _spec_view(context.spec),
        "data": _data_view(profile),
        "prep": _prep_view(prep),
        "leaderboard": _leaderboard_view(context.leaderboard, selection),
        "tuning": _tuning_view(context.tuning) if context.tuning else None,
        "winner": _winner_view(selection, metric, lower_is_better),
        "metric": metric,
        "metric_direction": "lower is better" if lower_is_better else "higher is better",
        "caveats": _caveats(context, lower_is_better),
        "evaluation": _evaluation_view(context.evaluation, metric),
        "figures": {
            key: {"uri": fig.data_uri(), "caption": fig.caption,
                  "file": f"figures/{Path(fig.path).name}"}
            for key, fig in (context.figures or {}).items()
        },
        "statistics": _statistics_view(selection),
        "ensemble": _ensemble_view(selection),
        "artifacts": dict(context.artifacts or {}),
    }


def _validate(context: ReportContext) -> None:
    for name, keys in _REQUIRED_KEYS.items():
        summary = getattr(context, name)
        if not isinstance(summary, Mapping):
            raise ReportContextError(
                f"ReportContext.{name} must be a mapping (the stage's JSON summary), "
                f"got {type(summary).__name__}"
            )
        missing = [key for key in keys if key not in summary]
        if missing:
            raise ReportContextError(
                f"ReportContext.{name} lacks required field(s) {missing}; "
                "regenerate it with a stage that follows the documented contract"
            )
    if not isinstance(context.leaderboard, Sequence) or not context.leaderboard:
        raise ReportContextError(
            "ReportContext.leaderboard must be a non-empty list of candidate results; "
            "the training stage produced no model to report on"
        )
    for position, row in enumerate(context.leaderboard):
        missing = [key for key in _REQUIRED_LEADERBOARD_KEYS if key not in row]
        if missing:
            raise ReportContextError(
                f"leaderboard entry {position} lacks field(s) {missing}; each entry needs "
                f"{list(_REQUIRED_LEADERBOARD_KEYS)}"
            )
    if context.tuning is not None and not isinstance(context.tuning, Mapping):
        raise ReportContextError("ReportContext.tuning must be a mapping or None")
    columns = context.profile["columns"]
    if not isinstance(columns, Sequence) or any("name" not in c for c in columns):
        raise ReportContextError("profile.columns must be a list of column summaries with 'name'")


def _spec_view(spec: Mapping[str, Any]) -> dict[str, Any]:
    tags = spec.get("tags") or {}
    return {
        "experiment_id": spec["experiment_id"],
        "project": spec.get("project") or "—",
        "dataset_uri": spec.get("dataset_uri") or "—",
        "time_budget_s": spec.get("time_budget_s"),
        "seed": spec.get("seed"),
        "tags": dict(tags) if isinstance(tags, Mapping) else {},
    }


def _data_view(profile: Mapping[str, Any]) -> dict[str, Any]:
    balance = profile.get("class_balance") or {}
    total = sum(int(v) for v in balance.values()) or 1
    classes = [
        {"label": str(label), "count": int(count), "share": int(count) / total}
        for label, count in sorted(balance.items(), key=lambda item: -int(item[1]))
    ]
    columns = []
    for col in profile["columns"]:
        count = col.get("count")
        missing = col.get("missing") or 0
        n = (count or 0) + missing if count is not None else profile["n_rows"]
        top = col.get("top_values") or []
        columns.append(
            {
                "name": str(col["name"]),
                "is_target": col["name"] == profile["target"],
                "dtype": col.get("dtype", "—"),
                "kind": col.get("kind", "—"),
                "missing": missing,
                "missing_share": (missing / n) if n else 0.0,
                "unique": col.get("unique"),
                "mean": col.get("mean"),
                "std": col.get("std"),
                "min": col.get("min"),
                "median": col.get("median"),
                "max": col.get("max"),
                "top_values": ", ".join(f"{v} ({fmt_int(c)})" for v, c in top[:5]),
            }
        )
    return {
        "n_rows": profile["n_rows"],
        "n_columns": profile["n_columns"],
        "target": profile["target"],
        "target_reasons": list(profile.get("target_reasons") or []),
        "problem_type": profile["problem_type"],
        "metric": profile["metric"],
        "classes": classes,
        "columns": columns,
        "duplicate_rows": profile.get("duplicate_rows", 0),
        "warnings": list(profile.get("warnings") or []),
    }


def _prep_view(prep: Mapping[str, Any]) -> dict[str, Any]:
    sizes = prep["split_sizes"]
    total = sum(int(v) for v in sizes.values()) or 1
    dropped = prep.get("dropped_columns") or {}
    return {
        "feature_columns": list(prep.get("feature_columns") or []),
        "numeric_columns": list(prep.get("numeric_columns") or []),
        "categorical_columns": list(prep.get("categorical_columns") or []),
        "dropped": [{"name": str(k), "reason": str(v)} for k, v in dropped.items()],
        "splits": [
            {"name": name, "rows": int(rows), "share": int(rows) / total}
            for name, rows in sizes.items()
        ],
        "n_folds": prep["n_folds"],
        "seed": prep.get("seed"),
        "class_labels": [str(c) for c in prep.get("class_labels") or []],
    }


def _leaderboard_view(
    leaderboard: Sequence[Mapping[str, Any]], selection: Mapping[str, Any]
) -> list[dict[str, Any]]:
    ordered = sorted(leaderboard, key=lambda r: r["rank"])
    winner = _find_winner(ordered, selection)
    return [
        {
            "rank": row["rank"],
            "family": str(row["family"]),
            "source": row.get("source", "train"),
            "params": row.get("params") or {},
            "cv_mean": row["cv_mean"],
            "cv_std": row.get("cv_std"),
            "metric": row.get("metric", selection["metric"]),
            "is_winner": index == winner,
        }
        for index, row in enumerate(ordered)
    ]


def _find_winner(ordered: Sequence[Mapping[str, Any]], selection: Mapping[str, Any]) -> int | None:
    """Index of the leaderboard row the selection refers to (same family, same params)."""
    same_family = [i for i, row in enumerate(ordered) if row["family"] == selection["family"]]
    wanted = dict(selection.get("params") or {})
    for index in same_family:
        if dict(ordered[index].get("params") or {}) == wanted:
            return index
    return same_family[0] if same_family else None


def _tuning_view(tuning: Mapping[str, Any]) -> dict[str, Any]:
    history = list(tuning.get("history") or [])
    states = Counter(str(t.get("state", "COMPLETE")).upper() for t in history)
    complete = [
        (int(t.get("number", i)), float(t["value"]))
        for i, t in enumerate(history)
        if str(t.get("state", "COMPLETE")).upper() == "COMPLETE" and not _is_missing(t.get("value"))
    ]
    best_value = tuning.get("best_value")
    values = [v for _, v in complete]
    # The study's direction is not part of the contract: infer it from which extreme the
    # reported best value sits at (maximise when ambiguous).
    minimise = (
        bool(values)
        and best_value is not None
        and math.isclose(float(best_value), min(values))
        and not math.isclose(float(best_value), max(values))
    )
    best_so_far: list[tuple[int, float]] = []
    running: float | None = None
    for number, value in sorted(complete):
        if running is None or (value < running if minimise else value > running):
            running = value
        best_so_far.append((number, running))
    return {
        "family": tuning.get("family", "—"),
        "n_trials": tuning.get("n_trials", len(history)),
        "best_value": best_value,
        "best_params": tuning.get("best_params") or {},
        "states": dict(sorted(states.items())),
        "direction": "minimise" if minimise else "maximise",
        "chart": _history_svg(complete, best_so_far) if len(complete) >= 2 else None,
    }


def _history_svg(points: list[tuple[int, float]], best: list[tuple[int, float]]) -> dict[str, Any]:
    """Coordinates for an inline SVG chart of trial values and the best-so-far line."""
    width, height, pad = 560, 200, 30
    xs = [n for n, _ in points]
    ys = [v for _, v in points]
    x_lo, x_hi = min(xs), max(xs)
    y_lo, y_hi = min(ys), max(ys)
    x_span = (x_hi - x_lo) or 1
    y_span = (y_hi - y_lo) or 1

    def scale(n: float, v: float) -> tuple[float, float]:
        x = pad + (n - x_lo) / x_span * (width - 2 * pad)
        y = height - pad - (v - y_lo) / y_span * (height - 2 * pad)
        return round(x, 1), round(y, 1)

    return {
        "width": width,
        "height": height,
        "dots": [scale(n, v) for n, v in points],
        "best_line": " ".join(f"{x},{y}" for x, y in (scale(n, v) for n, v in best)),
        "y_lo": y_lo,
        "y_hi": y_hi,
        "x_lo": x_lo,
        "x_hi": x_hi,
        "pad": pad,
    }


def _winner_view(
    selection: Mapping[str, Any], metric: str, lower_is_better: bool
) -> dict[str, Any]:
    score = float(selection["test_score"])
    baseline = selection.get("baseline_test_score")
    delta = None if _is_missing(baseline) else score - float(baseline)
    beats = None
    relative = None
    if delta is not None:
        beats = delta < 0 if lower_is_better else delta > 0
        if float(baseline) != 0:
            relative = abs(delta) / abs(float(baseline))
    return {
        "family": selection["family"],
        "params": selection.get("params") or {},
        "metric": metric,
        "test_score": score,
        "baseline_test_score": baseline,
        "delta": delta,
        "relative": relative,
        "beats_baseline": beats,
        "test_metrics": dict(selection.get("test_metrics") or {}),
        "n_test": selection.get("n_test"),
        "model_path": selection.get("model_path"),
        "refitted_on_every_row": _refitted_on_every_row(selection),
    }


def _refitted_on_every_row(selection: Mapping[str, Any]) -> dict[str, int] | None:
    """Rows of the published model and of the fit the test split scored, when select
    refitted the winner on every row after scoring it; else None."""
    final = selection.get("final_fit") or {}
    evaluated = final.get("evaluated_fit") or {}
    if not final.get("rows") or not evaluated.get("rows"):
        return None
    return {"rows": int(final["rows"]), "evaluated_rows": int(evaluated["rows"])}


def _caveats(context: ReportContext, lower_is_better: bool) -> list[str]:
    profile, prep, selection = context.profile, context.prep, context.selection
    caveats = [
        (
            "This model was trained, tuned and selected automatically without human review; "
            "validate it on data from the intended deployment before relying on it."
        ),
        (
            "Predictions are only meaningful for rows drawn from the same population and schema "
            "as the training data; monitor input drift after deployment."
        ),
    ]
    n_rows = int(profile["n_rows"])
    if n_rows < 1000:
        caveats.append(
            f"The dataset is small ({n_rows:,} rows), so the test score has wide uncertainty."
        )
    balance = profile.get("class_balance") or {}
    if balance:
        total = sum(int(v) for v in balance.values())
        label, smallest = min(balance.items(), key=lambda item: int(item[1]))
        if total and int(smallest) / total < 0.1:
            caveats.append(
                f"Classes are imbalanced: '{label}' is only {fmt_pct(int(smallest) / total)} of "
                "rows; check per-class errors before use."
            )
    baseline = selection.get("baseline_test_score")
    if not _is_missing(baseline):
        delta = float(selection["test_score"]) - float(baseline)
        beats = delta < 0 if lower_is_better else delta > 0
        if not beats:
            caveats.append(
                "The selected model does NOT beat the dummy baseline on the test set; "
                "the features may carry little signal for this target."
            )
    dropped = prep.get("dropped_columns") or {}
    if dropped:
        caveats.append(
            f"{len(dropped)} column(s) were dropped before modelling ("
            + ", ".join(sorted(str(k) for k in dropped))
            + "); the model does not use them."
        )
    caveats.extend(str(w) for w in profile.get("warnings") or [])
    return caveats


def _evaluation_view(evaluation: Mapping[str, Any] | None, metric: str) -> dict[str, Any] | None:
    """Test metrics with bootstrap intervals, per-class errors, worst rows, importance."""
    if not evaluation:
        return None
    intervals = evaluation.get("confidence_intervals") or {}
    rows = []
    for name, value in (evaluation.get("test_metrics") or {}).items():
        ci = intervals.get(name) or {}
        rows.append({"name": name, "value": value, "low": ci.get("low"), "high": ci.get("high"),
                     "std": ci.get("std"), "is_headline": name == metric})
    return {
        "metrics": rows,
        "n_bootstrap": evaluation.get("n_bootstrap"),
        "n_test": evaluation.get("n_test"),
        "per_class": list(evaluation.get("per_class") or []),
        "worst_rows": list(evaluation.get("worst_rows") or []),
        "importance": list(evaluation.get("importance") or [])[:15],
        "residuals": evaluation.get("residuals"),
        "ece": evaluation.get("expected_calibration_error"),
        "brier": evaluation.get("brier_score"),
        "classes": list(evaluation.get("classes") or []),
    }


def _statistics_view(selection: Mapping[str, Any]) -> list[dict[str, str]] | None:
    """Selection statistics (significance tests between candidates) when select stored them.

    Accepts ``selection["statistics"]`` (or ``"statistical_tests"``) as a mapping of name to
    value or a list of mappings; each entry becomes one row of name/value text.
    """
    raw = selection.get("statistics") or selection.get("statistical_tests")
    if not raw:
        return None
    entries: list[dict[str, str]] = []
    if isinstance(raw, Mapping) and isinstance(raw.get("comparisons"), Sequence):
        return _comparison_rows(raw)
    if isinstance(raw, Mapping):
        for key, value in raw.items():
            entries.append({"name": str(key), "value": _plain(value)})
    elif isinstance(raw, Sequence) and not isinstance(raw, str):
        for position, item in enumerate(raw):
            if isinstance(item, Mapping):
                name = item.get("name") or item.get("test") or f"test {position + 1}"
                rest = {k: v for k, v in item.items() if k not in ("name", "test")}
                entries.append({"name": str(name), "value": _plain(rest)})
            else:
                entries.append({"name": f"entry {position + 1}", "value": _plain(item)})
    else:
        entries.append({"name": "statistics", "value": _plain(raw)})
    return entries


def _comparison_rows(stats: Mapping[str, Any]) -> list[dict[str, str]]:
    """One row per paired comparison of the winner (select's statistics format), after a
    row naming the tests, the correction and the significance level."""
    rows = [{"name": "method",
             "value": f"{stats.get('primary_test', 'paired tests')}, Wilcoxon signed-rank"
                      f" and McNemar on the holdout where available; "
                      f"{stats.get('correction', 'holm').capitalize()} correction, "
                      f"alpha {_plain(stats.get('alpha', 0.05))}, "
                      f"{stats.get('n_folds', '?')} folds"}]
    winner = stats.get("winner", "winner")
    for comparison in stats.get("comparisons") or []:
        if not isinstance(comparison, Mapping):
            continue
        parts = [f"mean difference {_signed(comparison.get('mean_difference'))}"]
        for label, key in (("t-test", "t"), ("Wilcoxon", "wilcoxon"), ("McNemar", "mcnemar")):
            if f"{key}_p_value" in comparison:
                parts.append(f"{label} p {_plain(comparison[f'{key}_p_value'])} "
                             f"(adjusted {_plain(comparison.get(f'{key}_p_adjusted', '—'))})")
        skipped = (stats.get("mcnemar_skipped") or {}).get(comparison.get("candidate"))
        if skipped:
            parts.append(f"no McNemar: {skipped}")
        parts.append(str(comparison.get("verdict", "")))
        rows.append({"name": f"{winner} vs {comparison.get('candidate', '?')}",
                     "value": "; ".join(p for p in parts if p)})
    return rows


def _signed(value: Any) -> str:
    return f"{value:+.4g}" if isinstance(value, int | float) else _plain(value)


def _ensemble_view(selection: Mapping[str, Any]) -> dict[str, Any] | None:
    """Ensemble composition (members with weights) when the winner is an ensemble."""
    raw = selection.get("ensemble")
    if not raw:
        return None
    members = raw.get("members") if isinstance(raw, Mapping) else raw
    rows = []
    for member in members or []:
        if isinstance(member, Mapping):
            rows.append({"family": str(member.get("family", "—")),
                         "weight": member.get("weight"),
                         "params": member.get("params") or {},
                         "cv_mean": member.get("cv_mean")})
    kind = raw.get("kind") or raw.get("method") if isinstance(raw, Mapping) else None
    return {"kind": str(kind or "ensemble"), "members": rows}


def _plain(value: Any) -> str:
    if isinstance(value, float):
        return fmt_num(value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_plain(v)}" for k, v in value.items())
    if isinstance(value, Sequence) and not isinstance(value, str):
        return ", ".join(_plain(v) for v in value)
    return str(value)
