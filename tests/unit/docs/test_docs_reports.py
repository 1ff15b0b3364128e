"""Unit tests for mlmesh_docs.reports."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mlmesh_docs.reports import (
    ReportContext,
    ReportContextError,
    fmt_metric,
    fmt_num,
    md_cell,
    render_reports,
)


def _column(name, kind, dtype, *, missing=0, unique=3, stats=None, top=None):
    stats = stats or {}
    return {
        "name": name,
        "dtype": dtype,
        "kind": kind,
        "count": 344 - missing,
        "missing": missing,
        "unique": unique,
        "mean": stats.get("mean"),
        "std": stats.get("std"),
        "min": stats.get("min"),
        "q25": stats.get("q25"),
        "median": stats.get("median"),
        "q75": stats.get("q75"),
        "max": stats.get("max"),
        "top_values": top or [],
    }


PROFILE = {
    "n_rows": 344,
    "n_columns": 9,
    "target": "species",
    "target_reasons": ["named in the experiment spec"],
    "problem_type": "multiclass",
    "metric": "accuracy",
    "class_balance": {"Adelie": 152, "Gentoo": 124, "Chinstrap": 68},
    "columns": [
        _column(
            "species",
            "categorical",
            "str",
            top=[["Adelie", 152], ["Gentoo", 124], ["Chinstrap", 68]],
        ),
        _column("island", "categorical", "str", top=[["Biscoe", 168], ["Dream", 124]]),
        _column(
            "bill_length_mm",
            "numeric",
            "float64",
            missing=2,
            unique=164,
            stats={"mean": 43.9219298, "std": 5.4595837, "min": 32.1, "median": 44.45, "max": 59.6},
        ),
        _column(
            "body_mass_g",
            "numeric",
            "float64",
            missing=2,
            unique=94,
            stats={
                "mean": 4201.754386,
                "std": 801.954536,
                "min": 2700.0,
                "median": 4050.0,
                "max": 6300.0,
            },
        ),
        _column("sex", "categorical", "str", missing=11, unique=2, top=[["male", 168]]),
        _column(
            "<script>alert(1)</script>",
            "numeric",
            "int64",
            unique=3,
            stats={"mean": 2008.03, "std": 0.818, "min": 2007, "median": 2008, "max": 2009},
        ),
        _column("row_id", "id", "int64", unique=344),
    ],
    "duplicate_rows": 0,
    "warnings": [
        "column 'sex' has 3.2% missing values",
        "column '<script>alert(1)</script>' has only 3 distinct values",
    ],
}

PREP = {
    "target": "species",
    "problem_type": "multiclass",
    "metric": "accuracy",
    "feature_columns": [
        "island",
        "bill_length_mm",
        "body_mass_g",
        "sex",
        "<script>alert(1)</script>",
    ],
    "numeric_columns": ["bill_length_mm", "body_mass_g", "<script>alert(1)</script>"],
    "categorical_columns": ["island", "sex"],
    "dropped_columns": {"row_id": "identifier: unique per row, carries no signal"},
    "n_folds": 5,
    "seed": 42,
    "split_sizes": {"train": 240, "valid": 52, "test": 52},
    "class_labels": ["Adelie", "Chinstrap", "Gentoo"],
}

LEADERBOARD = [
    {
        "rank": 1,
        "family": "lightgbm",
        "source": "tune",
        "params": {"num_leaves": 15, "learning_rate": 0.0832713},
        "cv_mean": 0.987654,
        "cv_std": 0.0123,
        "metric": "accuracy",
    },
    {
        "rank": 2,
        "family": "logistic_regression",
        "source": "train",
        "params": {"C": 1.0},
        "cv_mean": 0.98125,
        "cv_std": 0.0151,
        "metric": "accuracy",
    },
    {
        "rank": 3,
        "family": "random_forest",
        "source": "train",
        "params": {"n_estimators": 200},
        "cv_mean": 0.975,
        "cv_std": 0.02,
        "metric": "accuracy",
    },
    {
        "rank": 4,
        "family": "xgboost",
        "source": "train",
        "params": {},
        "cv_mean": 0.9708,
        "cv_std": 0.018,
        "metric": "accuracy",
    },
]

SELECTION = {
    "family": "lightgbm",
    "params": {"num_leaves": 15, "learning_rate": 0.0832713},
    "metric": "accuracy",
    "test_score": 0.9807692,
    "baseline_test_score": 0.4423077,
    "test_metrics": {"accuracy": 0.9807692, "f1_macro": 0.9771, "log_loss": 0.0712},
    "n_test": 52,
    "model_path": "select/model.joblib",
}

TUNING = {
    "family": "lightgbm",
    "n_trials": 6,
    "best_value": 0.987654,
    "best_params": {"num_leaves": 15, "learning_rate": 0.0832713},
    "history": [
        {"number": 0, "value": 0.9625, "state": "COMPLETE"},
        {"number": 1, "value": 0.975, "state": "COMPLETE"},
        {"number": 2, "value": None, "state": "PRUNED"},
        {"number": 3, "value": 0.987654, "state": "COMPLETE"},
        {"number": 4, "value": 0.97, "state": "COMPLETE"},
        {"number": 5, "value": None, "state": "FAIL"},
    ],
}

SPEC = {
    "experiment_id": "exp-penguins-01",
    "project": "demo",
    "dataset_uri": "https://example.org/penguins.csv",
    "target": "species",
    "time_budget_s": 600,
    "seed": 42,
    "tags": {"team": "ml"},
}


def _context(**overrides) -> ReportContext:
    values = {
        "spec": SPEC,
        "profile": PROFILE,
        "prep": PREP,
        "leaderboard": LEADERBOARD,
        "selection": SELECTION,
        "tuning": TUNING,
        "generated_at": datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
    }
    values.update(overrides)
    return ReportContext(**copy.deepcopy(values))


class _TagCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


@pytest.fixture()
def rendered(tmp_path: Path) -> dict[str, str]:
    paths = render_reports(_context(), tmp_path / "docs")
    assert set(paths) == {"report.html", "report.md", "model_card.md"}
    for name, path in paths.items():
        assert path == tmp_path / "docs" / name
        assert path.is_file()
    return {name: path.read_text(encoding="utf-8") for name, path in paths.items()}


def test_reports_name_winner_score_and_baseline(rendered):
    for name in ("report.html", "report.md", "model_card.md"):
        text = rendered[name]
        assert "lightgbm" in text, name
        assert "0.9808" in text, name  # test score, four decimals
        assert "0.4423" in text, name  # dummy baseline
    assert "+0.5385" in rendered["report.md"]  # score minus baseline
    assert "121.7% better" in rendered["report.md"]


def test_reports_list_every_leaderboard_family_in_rank_order(rendered):
    for name in ("report.html", "report.md"):
        text = rendered[name]
        positions = [text.index(row["family"]) for row in LEADERBOARD]
        assert all(p >= 0 for p in positions)
    md = rendered["report.md"]
    table = md[md.index("## Leaderboard") : md.index("## Tuning")]
    rows = [line for line in table.splitlines() if re.match(r"^\| \d", line)]
    assert [r.split("|")[1].strip() for r in rows] == ["1", "2", "3", "4"]
    assert "**lightgbm** ★" in rows[0]
    assert "0.9877" in rows[0] and "0.0123" in rows[0]
    assert "learning_rate=0.08327" in rows[0]


def test_html_escapes_hostile_column_names(rendered):
    html = rendered["report.html"]
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    collector = _TagCollector()
    collector.feed(html)
    tags = {tag for tag, _ in collector.tags}
    assert "script" not in tags
    # self-contained: no external stylesheet, script or image
    for tag, attrs in collector.tags:
        assert "src" not in attrs, tag
        if tag == "link":
            raise AssertionError("report.html must not link external assets")
    assert "<style>" in html
    # Markdown prose neutralises inline HTML; code spans keep the literal name
    card = rendered["model_card.md"]
    assert "- column '&lt;script&gt;alert(1)&lt;/script&gt;' has only 3 distinct values" in card
    assert "`<script>alert(1)</script>`" in card
    assert "http://" not in html.replace("https://example.org/penguins.csv", "")


def test_data_and_preprocessing_sections(rendered):
    md = rendered["report.md"]
    assert "Rows: 344; columns: 9" in md
    assert "| Adelie | 152 | 44.2% |" in md
    assert "| `row_id` | identifier: unique per row, carries no signal |" in md
    assert "| train | 240 | 69.8% |" in md
    assert "5-fold cross-validation" in md
    assert "4,202" in md  # body mass mean, 4 significant digits with separators
    assert "43.92" in md
    html = rendered["report.html"]
    assert "width: 44.2%" in html  # class balance bar


def test_tuning_summary_and_chart(rendered):
    md = rendered["report.md"]
    assert "6 trial(s) tuned **lightgbm** (maximise); 4 complete, 1 fail, 1 pruned." in md
    html = rendered["report.html"]
    collector = _TagCollector()
    collector.feed(html)
    polyline = [attrs for tag, attrs in collector.tags if tag == "polyline"]
    assert len(polyline) == 1
    points = polyline[0]["points"].split()
    assert len(points) == 4  # one point per completed trial
    ys = [float(p.split(",")[1]) for p in points]
    assert ys == sorted(ys, reverse=True)  # best-so-far never gets worse (SVG y grows downward)
    assert len([t for t, _ in collector.tags if t == "circle"]) == 4


def test_model_card_sections(rendered):
    card = rendered["model_card.md"]
    for heading in (
        "## Model details",
        "## Intended use",
        "## Metrics",
        "## Training data",
        "## Evaluation data",
        "## Caveats",
    ):
        assert heading in card
    assert "Classes: Adelie, Chinstrap, Gentoo" in card
    assert "| Cross-validation (5 folds, mean ± std) | 0.9877 ± 0.0123 |" in card
    assert "Test split: 52 rows" in card
    assert "`row_id` (identifier: unique per row, carries no signal)" in card
    assert "column 'sex' has 3.2% missing values" in card


def test_regression_lower_is_better_and_no_tuning(tmp_path):
    profile = dict(PROFILE, problem_type="regression", metric="rmse", class_balance={})
    selection = dict(
        SELECTION,
        metric="rmse",
        test_score=310.5,
        baseline_test_score=780.25,
        test_metrics={"rmse": 310.5, "r2": 0.84},
    )
    leaderboard = [dict(row, metric="rmse") for row in LEADERBOARD]
    paths = render_reports(
        _context(profile=profile, selection=selection, leaderboard=leaderboard, tuning=None),
        tmp_path,
    )
    md = paths["report.md"].read_text()
    assert "lower is better" in md
    assert "-469.7500 (60.2% better)" in md
    assert "Tuning was not run" in md
    assert "Class balance" not in md
    assert "does NOT beat" not in md


def test_model_worse_than_baseline_is_flagged(tmp_path):
    selection = dict(SELECTION, test_score=0.40)
    paths = render_reports(_context(selection=selection), tmp_path)
    assert "does NOT beat the dummy baseline" in paths["model_card.md"].read_text()
    assert "worse" in paths["report.html"].read_text()


def test_markdown_cells_escape_pipes(tmp_path):
    profile = copy.deepcopy(PROFILE)
    profile["columns"][1]["name"] = "a|b"
    paths = render_reports(_context(profile=profile), tmp_path)
    assert "`a\\|b`" in paths["report.md"].read_text()


def test_missing_fields_raise_actionable_error(tmp_path):
    selection = {k: v for k, v in SELECTION.items() if k != "test_score"}
    with pytest.raises(
        ReportContextError, match=r"selection lacks required field\(s\) \['test_score'\]"
    ):
        render_reports(_context(selection=selection), tmp_path)
    with pytest.raises(ReportContextError, match="leaderboard must be a non-empty list"):
        render_reports(_context(leaderboard=[]), tmp_path)
    with pytest.raises(ReportContextError, match="leaderboard entry 1"):
        render_reports(_context(leaderboard=[LEADERBOARD[0], {"rank": 2}]), tmp_path)
    assert not (tmp_path / "report.html").exists()


def test_number_formatting():
    assert fmt_num(None) == "—"
    assert fmt_num(float("nan")) == "—"
    assert fmt_num(43.9219298) == "43.92"
    assert fmt_num(4201.754386) == "4,202"
    assert fmt_num(123456.7) == "123,457"
    assert fmt_num(0.000012) == "1.200e-05"
    assert fmt_num(7) == "7"
    assert fmt_metric(0.98765) == "0.9877"
    assert fmt_metric(12345.678) == "12,345.68"
    assert md_cell("a|b\nc") == "a\\|b c"
