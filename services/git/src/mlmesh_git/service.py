"""Wiring: docs.generated -> stage commits on exp/<experiment-id> (data with DVC, pipeline,
evaluation, report), experiment and release tags, push and pull request ->
experiment.committed."""

from __future__ import annotations

import json
from pathlib import Path

from mlmesh.events.v1.common_pb2 import ArtifactRef
from mlmesh.events.v1.delivery_pb2 import DocsGenerated, ExperimentCommitted
from mlmesh.events.v1.experiment_pb2 import StageProgress
from mlmesh_common import topics
from mlmesh_common.breakers import breaker
from mlmesh_common.envelope import to_dict
from mlmesh_common.runtime import HandlerContext, Service
from mlmesh_git.config import GitConfig
from mlmesh_git.environment import environment_files
from mlmesh_git.layout import ExperimentFacts, experiment_stages, key_metrics, summary_line
from mlmesh_git.repository import ExperimentRecord, record_experiment

STAGE = "git"
service = Service("git")
REPORT_FIELDS = (("report_markdown", "report.md"), ("report_html", "report.html"),
                 ("model_card", "model_card.md"), ("executive_summary", "executive_summary.md"),
                 ("white_paper_pdf", "white_paper.pdf"), ("white_paper_tex", "white_paper.tex"))


async def fetch_member(ctx: HandlerContext, ref: ArtifactRef, name: str,
                       required: bool = True) -> Path | None:
    """File ``name`` of a stored folder (checked against the folder's manifest), or the
    artifact itself when ``ref`` is a single file; None when absent and not ``required``."""
    dest = ctx.work_dir / name
    if ref.media_type != "inode/directory":
        return await ctx.fetch_file(ref, dest)
    folder = ref.uri.rstrip("/")
    files = await ctx.run_blocking(ctx.store.folder_files, folder,
                                   ctx.work_dir / f"{name}.folder", ref.sha256)
    if name not in files:
        if not required:
            return None
        raise ValueError(f"{folder} has no {name}; its stage did not finish writing, re-run it")
    return await ctx.run_blocking(ctx.store.get_file, f"{folder}/{name}", dest, files[name])


async def experiment_facts(ctx: HandlerContext, event: DocsGenerated) -> ExperimentFacts:
    """Fetch what the commits need from the artifact store into the work dir."""
    selected = event.selection
    dataset = selected.dataset
    prepared_dir = await ctx.fetch_dir(dataset.prepared, ctx.work_dir / "prepared")
    profile = None
    if dataset.profile.uri:
        profile = json.loads((await ctx.fetch_file(
            dataset.profile, ctx.work_dir / "profile.json")).read_text())
    selection = None
    if selected.selection.uri:
        selection_file = await fetch_member(ctx, selected.selection, "selection.json")
        selection = json.loads(selection_file.read_text()) if selection_file else None
    reports: dict[str, bytes] = {}
    reproduction = None
    if not event.skipped:
        for field_name, default_name in REPORT_FIELDS:
            ref = getattr(event, field_name)
            if ref.uri:
                name = Path(ref.uri.rstrip("/")).name or default_name
                name = default_name if name in reports else name
                reports[name] = (await ctx.fetch_file(
                    ref, ctx.work_dir / f"report-{name}")).read_bytes()
        script = None
        if event.reproduction.uri:
            script = await ctx.fetch_file(event.reproduction, ctx.work_dir / "reproduce.py")
        elif event.folder.uri:
            script = await fetch_member(ctx, event.folder, "reproduce.py", required=False)
        reproduction = script.read_bytes() if script else None
    winner = selected.winner
    metrics = {"metric": selected.metric, "test_score": selected.test_score,
               "baseline_test_score": selected.baseline_test_score, "n_test": selected.n_test,
               "test_metrics": {m.name: m.value for m in selected.test_metrics},
               "mlflow_run_id": selected.mlflow_run_id, "model": to_dict(selected.model)}
    config = {"experiment_id": ctx.experiment_id, "spec": to_dict(dataset.spec),
              "target": dataset.target, "metric": selected.metric,
              "problem_type": dataset.problem_type, "winner": to_dict(winner)}
    return ExperimentFacts(
        experiment_id=ctx.experiment_id, config=config, prepared_dir=prepared_dir,
        profile=profile, winner_family=winner.family,
        winner_params=json.loads(winner.params_json or "{}"), metric=selected.metric,
        metrics=metrics, leaderboard=[to_dict(c) for c in selected.leaderboard],
        environment=await ctx.run_blocking(environment_files), selection=selection,
        reproduction=reproduction, reports=reports)


@service.handles(topics.DOCS_GENERATED, stage=STAGE)
async def commit(ctx: HandlerContext, event: DocsGenerated) -> None:
    selected = event.selection
    if "git" not in selected.dataset.spec.stages:
        ctx.emit(topics.EXPERIMENT_COMMITTED, ExperimentCommitted(docs=event, skipped=True))
        await ctx.progress(STAGE, StageProgress.STATE_SKIPPED, 100, "git not requested")
        return
    await ctx.progress(STAGE, StageProgress.STATE_STARTED, 0, "committing")
    config = GitConfig.from_env(ctx.settings.resolved_git_repo, ctx.settings.resolved_home)
    facts = await experiment_facts(ctx, event)
    ctx.check_cancelled()
    record = ExperimentRecord(
        experiment_id=ctx.experiment_id, project=selected.dataset.spec.project,
        target=selected.dataset.target, summary=summary_line(facts),
        key_metrics=key_metrics(facts), stages=experiment_stages(facts),
        release=bool(selected.model.uri))
    result = await ctx.run_blocking(breaker(f"git:{config.repo_path}").call, record_experiment,
                                    config, record, ctx.work_dir)
    ctx.emit(topics.EXPERIMENT_COMMITTED, ExperimentCommitted(
        docs=event, repository=str(result.repo_path), branch=result.branch, commit=result.sha,
        tag=result.tag, remote=result.remote, pull_request_url=result.pull_request_url,
        commits=result.commits, release_tag=result.release_tag))
    where = f", pushed to {result.remote}" if result.remote else ""
    pull_request = f", {result.pull_request_url}" if result.pull_request_url else ""
    await ctx.progress(STAGE, StageProgress.STATE_FINISHED, 100,
                       f"{len(result.commits)} commits on {result.branch}, "
                       f"{result.release_tag or result.tag}{where}{pull_request}"
                       + ("" if result.created else " (already committed)"))
