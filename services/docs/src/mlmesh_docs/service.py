"""Wiring: model.selected -> report, model card, executive summary, white paper (PDF) and
reproduction script -> docs.generated."""

from __future__ import annotations

import json

from mlmesh.events.v1.delivery_pb2 import DocsGenerated
from mlmesh.events.v1.experiment_pb2 import StageProgress
from mlmesh.events.v1.training_pb2 import ModelSelected
from mlmesh_common import topics
from mlmesh_common.envelope import to_dict
from mlmesh_common.runtime import HandlerContext, Service, member_ref
from mlmesh_docs.generate import StoredArtifacts, generate_docs
from mlmesh_docs.reports import ReportContext

STAGE = "docs"
DEFAULT_SEED = 42  # the seed select refits with when the spec sets none
service = Service("docs")


@service.handles(topics.MODEL_SELECTED, stage=STAGE)
async def document(ctx: HandlerContext, event: ModelSelected) -> None:
    spec = event.dataset.spec
    if "docs" not in spec.stages:
        ctx.emit(topics.DOCS_GENERATED, DocsGenerated(selection=event, skipped=True))
        await ctx.progress(STAGE, StageProgress.STATE_SKIPPED, 100, "docs not requested")
        return
    await ctx.progress(STAGE, StageProgress.STATE_STARTED, 0, "gathering stage summaries")
    profile = json.loads((await ctx.fetch_file(event.dataset.profile)).read_text())
    selection_dir = await ctx.fetch_dir(event.selection, ctx.work_dir / "select")
    selection = json.loads((selection_dir / "selection.json").read_text())
    prepared_dir = await ctx.fetch_dir(event.dataset.prepared, ctx.work_dir / "prepared")
    prep = json.loads((prepared_dir / "prep.json").read_text())
    spec_dict = {**to_dict(spec), "experiment_id": ctx.experiment_id,
                 "project": spec.project or "default"}
    context = ReportContext(spec=spec_dict, profile=profile, prep=prep,
                            leaderboard=selection["leaderboard"], selection=selection,
                            tuning=selection.get("tuning"))
    stored = StoredArtifacts(artifact_root=ctx.store.root_uri,
                             prepared_uri=event.dataset.prepared.uri,
                             prepared_sha256=event.dataset.prepared.sha256,
                             selection_uri=event.selection.uri,
                             selection_sha256=event.selection.sha256)
    ctx.check_cancelled()
    await ctx.progress(STAGE, StageProgress.STATE_RUNNING, 20,
                       "evaluating the model, drawing figures, writing and compiling")
    out = ctx.work_dir / "docs"
    # The model the test split scored (the published one may be its refit on every row).
    model_path = selection_dir / str(selection.get("evaluated_model_path")
                                     or selection.get("model_path") or "model.joblib")
    await ctx.run_blocking(generate_docs, context, prepared_dir, model_path, out,
                           stored=stored, seed=spec.seed or DEFAULT_SEED)
    folder = await ctx.save_dir(spec.project, STAGE, out)
    ctx.emit(topics.DOCS_GENERATED, DocsGenerated(
        selection=event, report_html=member_ref(folder, out, "report.html", "text/html"),
        report_markdown=member_ref(folder, out, "report.md", "text/markdown"),
        model_card=member_ref(folder, out, "model_card.md", "text/markdown"),
        white_paper_pdf=member_ref(folder, out, "white_paper.pdf", "application/pdf"),
        white_paper_tex=member_ref(folder, out, "white_paper.tex", "application/x-tex"),
        executive_summary=member_ref(folder, out, "executive_summary.md", "text/markdown"),
        reproduction=member_ref(folder, out, "reproduce.py", "text/x-python"),
        folder=folder))
    await ctx.progress(STAGE, StageProgress.STATE_FINISHED, 100,
                       "report, model card, executive summary, white paper and "
                       "reproduction script written")
