"""Everything the docs stage writes, from the stage summaries, the stored model and data.

``generate_docs`` evaluates the stored winner on the stored test split, draws the figures,
renders the HTML/Markdown report and model card, the executive summary (template or LLM
narrative), the LaTeX white paper compiled to PDF, and the reproduction script with its
configuration. It is plain Python (no Kafka), called by ``service.py``.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import joblib

from mlmesh_common.modeling import EnsembleModel, MeshModel, load_prepared
from mlmesh_docs import llm
from mlmesh_docs.evaluation import evaluate
from mlmesh_docs.figures import draw_figures
from mlmesh_docs.narrative import build_facts, template_narrative
from mlmesh_docs.reports import (
    MODEL_CARD_MD,
    REPORT_HTML,
    REPORT_MD,
    ReportContext,
    ReportContextError,
    _environment,
    build_view,
    render_reports,
)
from mlmesh_docs.whitepaper import (
    WHITE_PAPER_BIB,
    WHITE_PAPER_PDF,
    WHITE_PAPER_TEX,
    compile_pdf,
    find_compiler,
    render_white_paper,
)

log = logging.getLogger(__name__)

EXECUTIVE_SUMMARY_MD = "executive_summary.md"
REPRODUCE_PY = "reproduce.py"
REPRODUCTION_JSON = "reproduction.json"
FACTS_JSON = "facts.json"
FIGURES_DIR = "figures"

#: Allowed |reproduced - recorded| test score: CPU refits are deterministic given the seed;
#: a GPU-fitted winner refitted on the CPU may differ slightly.
CPU_TOLERANCE = 1e-6
GPU_TOLERANCE = 1e-2

FAMILY_CITATIONS = {
    "linear": "pedregosa2011scikit",
    "dummy": "pedregosa2011scikit",
    "lightgbm": "ke2017lightgbm",
    "xgboost": "chen2016xgboost",
    "catboost": "prokhorenkova2018catboost",
    "gaussian_process": "rasmussen2006gaussian",
}

DOCUMENTS = {
    REPORT_HTML: "the full technical report (self-contained HTML)",
    REPORT_MD: "the report in Markdown",
    MODEL_CARD_MD: "the model card",
    EXECUTIVE_SUMMARY_MD: "a plain-language summary for non-technical readers",
    WHITE_PAPER_PDF: "the white paper (LaTeX source: white_paper.tex, references.bib)",
    REPRODUCE_PY: "rebuilds the winner from the stored artifacts and checks the test score",
}


@dataclass(frozen=True)
class StoredArtifacts:
    """Where the reproduction script finds the experiment's inputs in the artifact store."""

    artifact_root: str
    prepared_uri: str
    selection_uri: str
    prepared_sha256: str = ""
    selection_sha256: str = ""


def generate_docs(
    context: ReportContext,
    prepared_dir: Path,
    model_path: Path,
    out_dir: Path,
    *,
    stored: StoredArtifacts,
    seed: int,
    llm_config: llm.LLMConfig | None = None,
) -> dict[str, Path]:
    """Write every document into ``out_dir``; returns the paths by file name.

    ``model_path`` is the model the test split scored (selection.json's
    ``evaluated_model_path``), so the report's test figures are out of sample.

    Raises ReportContextError for inconsistent summaries, LatexCompilerMissingError when no
    LaTeX compiler is installed, and LatexCompileError when the PDF cannot be built.
    """
    find_compiler()  # fail fast, before minutes of evaluation, when TeX is missing
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    started = time.perf_counter()

    model = joblib.load(model_path)
    if not isinstance(model, MeshModel | EnsembleModel):
        raise ReportContextError(f"{model_path.name} holds a {type(model).__name__}, "
                                 "not a MeshModel or EnsembleModel; re-run the select stage")
    data = load_prepared(Path(prepared_dir))
    metric = str(context.selection.get("metric") or data.metric)
    evaluation = evaluate(model, data.X_test, data.y_test, metric, seed=seed)
    timings["evaluate"] = time.perf_counter() - started

    mark = time.perf_counter()
    figures = draw_figures(evaluation, context.tuning, out_dir / FIGURES_DIR)
    timings["figures"] = time.perf_counter() - mark

    context = replace(context, evaluation=evaluation.facts, figures=figures,
                      artifacts={k: v for k, v in DOCUMENTS.items()
                                 if k not in (REPORT_HTML,)})
    written = render_reports(context, out_dir)
    view = build_view(context)

    facts = build_facts(view)
    draft = template_narrative(facts)
    narrative, writer = llm.write_narrative(facts, draft, llm_config)
    summary = _environment(autoescape=False).get_template("executive_summary.md.j2").render(
        facts=facts, narrative=narrative, writer=writer, generated_at=view["generated_at"])
    written[EXECUTIVE_SUMMARY_MD] = _write(out_dir / EXECUTIVE_SUMMARY_MD, summary)
    written[FACTS_JSON] = _write(out_dir / FACTS_JSON, json.dumps(
        {"facts": facts, "narrative_writer": writer, "evaluation": evaluation.facts},
        indent=2, default=str))

    mark = time.perf_counter()
    paper_view = {**view, **_paper_extras(view)}
    tex = render_white_paper(paper_view, {"conclusion": _plain_text(draft)}, out_dir)
    written[WHITE_PAPER_TEX] = tex
    written[WHITE_PAPER_BIB] = out_dir / WHITE_PAPER_BIB
    written[WHITE_PAPER_PDF] = compile_pdf(tex)
    timings["white_paper"] = time.perf_counter() - mark

    written.update(_write_reproduction(out_dir, context.selection, stored, seed, model))
    timings["total"] = time.perf_counter() - started
    log.info("docs written in %.1fs (%s)", timings["total"],
             ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
    return written


def _paper_extras(view: Mapping[str, Any]) -> dict[str, Any]:
    evaluation = view.get("evaluation")
    headline = None
    if evaluation:
        headline = next((m for m in evaluation["metrics"] if m["name"] == view["metric"]), None)
    families = list(dict.fromkeys(str(r["family"]) for r in view["leaderboard"]))
    return {"headline": headline, "families": families, "citations": FAMILY_CITATIONS}


def _plain_text(markdown: str) -> str:
    text = re.sub(r"[*`]", "", markdown)
    return re.sub(r"\s*\n\s*\n\s*", " ", text).strip()


def _write(path: Path, text: str) -> Path:
    path.write_text(text.rstrip() + "\n", encoding="utf-8")
    return path


def _write_reproduction(
    out_dir: Path, selection: Mapping[str, Any], stored: StoredArtifacts, seed: int,
    model: MeshModel | EnsembleModel,
) -> dict[str, Path]:
    device = str(selection.get("device") or getattr(model, "device_", "cpu"))
    config = {
        "artifact_root": stored.artifact_root,
        "prepared": {"uri": stored.prepared_uri, "sha256": stored.prepared_sha256},
        "selection": {"uri": stored.selection_uri, "sha256": stored.selection_sha256},
        "family": selection["family"],
        "params": selection.get("params") or {},
        "seed": seed,
        "metric": selection.get("metric"),
        "recorded_test_score": selection["test_score"],
        "fitted_on_device": device,
        "tolerance": CPU_TOLERANCE if device == "cpu" else GPU_TOLERANCE,
    }
    script = out_dir / REPRODUCE_PY
    shutil.copyfile(Path(__file__).with_name("reproduce_script.py"), script)
    script.chmod(0o755)
    return {REPRODUCE_PY: script,
            REPRODUCTION_JSON: _write(out_dir / REPRODUCTION_JSON, json.dumps(config, indent=2))}
