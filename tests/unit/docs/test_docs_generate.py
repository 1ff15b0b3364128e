"""generate_docs end to end on real fitted models: report, model card, summary, white paper."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mlmesh_docs.generate import StoredArtifacts, generate_docs
from mlmesh_docs.reports import ReportContext

SEED = 7


def _context(exp, **overrides) -> ReportContext:
    selection = {**exp.selection, **overrides}
    return ReportContext(
        spec={"experiment_id": "exp-docs", "project": "test", "seed": SEED,
              "dataset_uri": "file:///data/penguins_&_co%.csv"},
        profile=exp.profile, prep=exp.prep, leaderboard=selection["leaderboard"],
        selection=selection, tuning=selection.get("tuning"))


def _generate(exp, out: Path, **overrides) -> dict[str, Path]:
    stored = StoredArtifacts(str(exp.store_root), exp.prepared_uri, exp.selection_uri,
                             exp.prepared_sha256, exp.selection_sha256)
    return generate_docs(_context(exp, **overrides), exp.prepared_dir,
                         exp.select_dir / "model.joblib", out, stored=stored, seed=SEED)


@pytest.fixture(scope="module")
def penguins_docs(penguins_experiment, tmp_path_factory):
    return _generate(penguins_experiment, tmp_path_factory.mktemp("penguins-out"))


@pytest.fixture(scope="module")
def diabetes_docs(diabetes_experiment, tmp_path_factory):
    return _generate(diabetes_experiment, tmp_path_factory.mktemp("diabetes-out"))


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []
        self.sections: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.refs.append((tag, name, value))
            if tag == "section" and name == "id":
                self.sections.append(value)


def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text())
    return parser


def test_every_document_is_written(penguins_docs):
    expected = {"report.html", "report.md", "model_card.md", "executive_summary.md",
                "white_paper.tex", "white_paper.pdf", "references.bib", "reproduce.py",
                "reproduction.json", "facts.json"}
    assert expected <= set(penguins_docs)
    for path in penguins_docs.values():
        assert path.is_file() and path.stat().st_size > 0, path


def test_html_is_self_contained_with_inline_plots(penguins_docs):
    parsed = _parse(penguins_docs["report.html"])
    images = [value for tag, _, value in parsed.refs if tag == "img"]
    assert len(images) >= 6  # confusion, roc, pr, calibration, importance, tuning history
    assert all(v.startswith("data:image/png;base64,") for v in images)
    external = [v for _, _, v in parsed.refs if not v.startswith(("data:", "#"))]
    assert external == []
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:)?//", penguins_docs[
        "report.html"].read_text())


def test_html_has_every_section(penguins_docs):
    sections = _parse(penguins_docs["report.html"]).sections
    for section in ("data", "preprocessing", "leaderboard", "tuning", "selection-statistics",
                    "test-metrics", "diagnostics", "importance", "error-analysis", "caveats"):
        assert section in sections
    html = penguins_docs["report.html"].read_text()
    assert "Not computed: the select stage stored no statistical comparison" in html
    assert "Not computed: the selected model is a single lightgbm model" in html
    assert "Errors per class" in html and "Worst test rows" in html


def test_confidence_interval_brackets_the_recorded_score(penguins_docs, penguins_experiment):
    facts = json.loads(penguins_docs["facts.json"].read_text())["evaluation"]
    recorded = penguins_experiment.selection["test_score"]
    assert facts["test_metrics"]["accuracy"] == pytest.approx(recorded)
    ci = facts["confidence_intervals"]["accuracy"]
    assert ci["low"] <= recorded <= ci["high"]
    matrix = facts["confusion_matrix"]
    assert sum(map(sum, matrix)) == facts["n_test"] == penguins_experiment.selection["n_test"]
    correct = sum(matrix[i][i] for i in range(len(matrix)))
    assert correct / facts["n_test"] == pytest.approx(recorded)
    assert {c["label"] for c in facts["per_class"]} == {"Adelie", "Chinstrap", "Gentoo"}
    assert facts["importance"] and {"feature", "mean", "std"} <= set(facts["importance"][0])


@pytest.fixture(scope="module")
def binary_docs(binary_experiment, tmp_path_factory):
    return _generate(binary_experiment, tmp_path_factory.mktemp("binary-out"))


def test_binary_docs_intervals_curves_and_errors(binary_docs, binary_experiment):
    facts = json.loads(binary_docs["facts.json"].read_text())["evaluation"]
    recorded = binary_experiment.selection["test_score"]
    assert facts["metric"] == "roc_auc"
    assert facts["test_metrics"]["roc_auc"] == pytest.approx(recorded)
    for name in ("roc_auc", "accuracy", "log_loss", "f1_macro", "balanced_accuracy"):
        ci = facts["confidence_intervals"][name]
        assert ci["low"] < ci["high"], name
        assert ci["low"] <= facts["test_metrics"][name] <= ci["high"], name
    assert list(facts["roc_auc_by_class"]) == ["stay"]  # one curve: the positive class
    assert facts["roc_auc_by_class"]["stay"] == pytest.approx(recorded)
    errors = sum(c["errors"] for c in facts["per_class"])
    assert errors > 0 and len(facts["worst_rows"]) == min(errors, 10)
    assert all(r["actual"] != r["predicted"] for r in facts["worst_rows"])
    assert 0 <= facts["expected_calibration_error"] <= 1
    html = binary_docs["report.html"].read_text()
    assert "ROC curves" in html and "Precision-recall curves" in html and "Calibration" in html


def test_markdown_report_lists_intervals_and_figures(penguins_docs):
    report = penguins_docs["report.md"].read_text()
    assert "## Test metrics with 95% confidence intervals" in report
    for figure in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report):
        assert (penguins_docs["report.md"].parent / figure).is_file(), figure
    assert "](figures/confusion_matrix.png)" in report


def test_model_card_has_the_standard_sections(penguins_docs):
    card = penguins_docs["model_card.md"].read_text()
    for heading in ("## Model details", "## Intended use", "## Out-of-scope uses", "## Factors",
                    "## Metrics", "## Training data", "## Evaluation data",
                    "## Ethical considerations", "## Caveats and recommendations"):
        assert heading in card
    assert "95% CI" in card


def _pdf_text(pdf: Path) -> str:
    assert pdf.read_bytes().startswith(b"%PDF-")
    if shutil.which("pdftotext"):
        return subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                              check=True).stdout
    raw = pdf.read_bytes()
    assert len(re.findall(rb"/Type\s*/Page[^s]", raw)) >= 3
    return ""


def test_white_paper_pdf_has_sections_tables_figures_and_references(penguins_docs):
    text = _pdf_text(penguins_docs["white_paper.pdf"])
    if text:
        for heading in ("Abstract", "Introduction", "Data", "Methodology", "Experiments",
                        "Results", "Statistical analysis", "Limitations", "Conclusion",
                        "References"):
            assert heading in text, heading
        assert "LightGBM" in text and "Optuna" in text  # cited from references.bib
        assert "penguins_&_co%.csv" in text  # escaped in the source, printed verbatim
    tex = penguins_docs["white_paper.tex"].read_text()
    assert r"penguins\_\&\_co\%.csv" in tex
    assert tex.count(r"\includegraphics") >= 5 and r"\begin{tabular}" in tex
    assert r"\bibliography{references}" in tex


def test_regression_docs_have_residual_and_qq_plots(diabetes_docs):
    html = diabetes_docs["report.html"].read_text()
    assert "Normal Q-Q plot" in html and "Residuals (actual minus predicted)" in html
    assert "Confusion matrix" not in html
    facts = json.loads(diabetes_docs["facts.json"].read_text())["evaluation"]
    assert set(facts["residuals"]) == {"mean", "std", "median_abs", "max_abs"}
    assert len(facts["worst_rows"]) == 10
    assert "Residuals have mean" in _pdf_text(diabetes_docs["white_paper.pdf"]) or not shutil.which(
        "pdftotext")


def test_executive_summary_is_plain_language(penguins_docs, penguins_experiment):
    summary = penguins_docs["executive_summary.md"].read_text()
    assert summary.startswith("# Executive summary")
    assert f"{penguins_experiment.selection['test_score']:.4f}" in summary
    assert "does better than guessing" in summary
    assert "Narrative written by template" in summary


def test_selection_statistics_and_ensemble_rendered_when_present(penguins_experiment,
                                                                  tmp_path):
    out = _generate(penguins_experiment, tmp_path, statistics=[
        {"test": "Friedman", "statistic": 12.5, "p_value": 0.002},
        {"test": "Wilcoxon lightgbm vs linear", "p_value": 0.03}],
        ensemble={"kind": "weighted average", "members": [
            {"family": "lightgbm", "weight": 0.7}, {"family": "linear", "weight": 0.3}]})
    html = out["report.html"].read_text()
    assert "Friedman" in html and "p_value=0.002" in html
    assert "weighted average of 2 member(s)" in html
    assert "Not computed" not in html
    assert "Friedman" in _pdf_text(out["white_paper.pdf"]) or not shutil.which("pdftotext")


def test_select_statistics_format_renders_one_row_per_comparison(penguins_experiment, tmp_path):
    stats = {"winner": "caruana", "alpha": 0.05, "correction": "holm",
             "primary_test": "paired t-test across CV folds", "n_folds": 5,
             "comparisons": [
                 {"candidate": "linear", "mean_difference": 0.0123, "t_p_value": 0.004,
                  "t_p_adjusted": 0.008, "wilcoxon_p_value": 0.0625,
                  "wilcoxon_p_adjusted": 0.125, "mcnemar_p_value": 0.5,
                  "mcnemar_p_adjusted": 1.0, "verdict": "winner significantly better"},
                 {"candidate": "knn", "mean_difference": -0.001, "t_p_value": 0.7,
                  "t_p_adjusted": 0.7, "verdict": "no significant difference"}],
             "mcnemar_skipped": {"knn": "a train-only fit (about 9.0 s) would exceed the "
                                        "6 s budget for rivals' fits"}}
    out = _generate(penguins_experiment, tmp_path, statistics=stats,
                    ensemble={"kind": "caruana", "members": [
                        {"family": "linear", "weight": 0.6, "params": {}, "cv_mean": 0.98},
                        {"family": "lightgbm", "weight": 0.4, "params": {}, "cv_mean": 0.97}]})
    html = out["report.html"].read_text()
    assert "caruana vs linear" in html and "caruana vs knn" in html
    assert "mean difference +0.0123" in html
    assert "adjusted 0.008" in html and "winner significantly better" in html
    assert "Holm correction" in html
    markdown = out["report.md"].read_text()
    assert "caruana vs knn" in markdown and "no significant difference" in markdown
    assert "no McNemar: a train-only fit (about 9.0 s) would exceed" in markdown


def test_docs_for_an_ensemble_winner(penguins_experiment, tmp_path):
    """select may write an EnsembleModel: docs evaluates and reports it like a MeshModel."""
    import joblib

    from mlmesh_common.modeling import EnsembleModel, load_prepared, new_model

    data = load_prepared(penguins_experiment.prepared_dir)
    members = [new_model(data, family, {}, device="cpu", seed=SEED)
               for family in ("linear", "knn")]
    model = EnsembleModel(members, [0.6, 0.4], kind="caruana").fit(
        *data.combined(("train", "valid")))
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    stored = StoredArtifacts(str(penguins_experiment.store_root),
                             penguins_experiment.prepared_uri, penguins_experiment.selection_uri,
                             penguins_experiment.prepared_sha256,
                             penguins_experiment.selection_sha256)
    out = generate_docs(
        _context(penguins_experiment, ensemble={"kind": "caruana", "members": [
            {"family": "linear", "weight": 0.6, "params": {}, "cv_mean": 0.98},
            {"family": "knn", "weight": 0.4, "params": {}, "cv_mean": 0.97}]}),
        penguins_experiment.prepared_dir, path, tmp_path / "out", stored=stored, seed=SEED)
    html = out["report.html"].read_text()
    assert "caruana" in html and "confusion" in html.lower()


def test_a_model_refitted_on_every_row_is_said_so(penguins_experiment, penguins_docs, tmp_path):
    final_fit = {"splits": ["train", "valid", "test"], "rows": 344,
                 "status": "refitted on every row",
                 "evaluated_fit": {"splits": ["train", "valid"], "rows": 292}}
    out = _generate(penguins_experiment, tmp_path, final_fit=final_fit)
    card = out["model_card.md"].read_text()
    assert "refitted on every row (344, test split included)" in card
    assert "fit on train and valid (292 rows)" in card
    for name in ("report.md", "report.html"):
        assert "then refitted on every row (344, test split included)" in out[name].read_text()
    assert "all 344 rows, test split included" in out["white_paper.tex"].read_text()
    for name in ("model_card.md", "report.md", "report.html", "white_paper.tex"):
        assert "refitted on" not in penguins_docs[name].read_text().replace(
            "refitted on\ntrain plus validation", "")  # without final_fit: not claimed
