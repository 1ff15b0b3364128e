"""Wiring: model.selected -> HTML and Markdown report and model card -> docs.generated."""

from __future__ import annotations

import json

from mlmesh.events.v1.delivery_pb2 import DocsGenerated
from mlmesh.events.v1.experiment_pb2 import StageProgress
from mlmesh.events.v1.training_pb2 import ModelSelected
from mlmesh_common import topics
from mlmesh_common.envelope import to_dict
from mlmesh_common.runtime import HandlerContext, Service, member_ref
from mlmesh_docs.reports import ReportContext, render_reports

STAGE = "docs"
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
    prep = json.loads((await ctx.run_blocking(
        ctx.store.get_file, f"{event.dataset.prepared.uri}/prep.json",
        ctx.work_dir / "prep.json")).read_text())
    spec_dict = {**to_dict(spec), "experiment_id": ctx.experiment_id,
                 "project": spec.project or "default"}
    context = ReportContext(spec=spec_dict, profile=profile, prep=prep,
                            leaderboard=selection["leaderboard"], selection=selection,
                            tuning=selection.get("tuning"))
    out = ctx.work_dir / "docs"
    await ctx.run_blocking(render_reports, context, out)
    folder = await ctx.save_dir(spec.project, STAGE, out)
    ctx.emit(topics.DOCS_GENERATED, DocsGenerated(
        selection=event, report_html=member_ref(folder, out, "report.html", "text/html"),
        report_markdown=member_ref(folder, out, "report.md", "text/markdown"),
        model_card=member_ref(folder, out, "model_card.md", "text/markdown")))
    await ctx.progress(STAGE, StageProgress.STATE_FINISHED, 100, "report and model card written")
