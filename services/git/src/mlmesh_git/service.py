"""Wiring: docs.generated -> commit config, metrics, data manifest and report on branch
exp/<experiment-id>, tagged -> experiment.committed."""

from __future__ import annotations

import json

from mlmesh.events.v1.delivery_pb2 import DocsGenerated, ExperimentCommitted
from mlmesh.events.v1.experiment_pb2 import StageProgress
from mlmesh_common import topics
from mlmesh_common.breakers import breaker
from mlmesh_common.envelope import to_dict
from mlmesh_common.runtime import HandlerContext, Service
from mlmesh_git.committer import commit_experiment

STAGE = "git"
service = Service("git")


async def experiment_files(ctx: HandlerContext, event: DocsGenerated) -> dict[str, bytes]:
    """What goes into the experiment's commit, by path in the repository."""
    selected = event.selection
    dataset = selected.dataset
    root = f"experiments/{ctx.experiment_id}"
    prep_manifest = await ctx.run_blocking(
        ctx.store.get_file, f"{dataset.prepared.uri}/manifest.json",
        ctx.work_dir / "prep-manifest.json", dataset.prepared.sha256)
    config = {"experiment_id": ctx.experiment_id, "spec": to_dict(dataset.spec),
              "target": dataset.target, "metric": selected.metric,
              "winner": to_dict(selected.winner)}
    metrics = {"metric": selected.metric, "test_score": selected.test_score,
               "baseline_test_score": selected.baseline_test_score, "n_test": selected.n_test,
               "test_metrics": {m.name: m.value for m in selected.test_metrics},
               "leaderboard": [to_dict(c) for c in selected.leaderboard],
               "mlflow_run_id": selected.mlflow_run_id}
    data = {"prepared": to_dict(dataset.prepared), "profile": to_dict(dataset.profile),
            "model": to_dict(selected.model),
            "prepared_manifest": json.loads(prep_manifest.read_text())}
    files = {f"{root}/config.json": config, f"{root}/metrics.json": metrics,
             f"{root}/data_manifest.json": data}
    out = {path: (json.dumps(body, indent=2, sort_keys=True) + "\n").encode()
           for path, body in files.items()}
    if not event.skipped:
        for name, ref in (("report.md", event.report_markdown),
                          ("report.html", event.report_html),
                          ("model_card.md", event.model_card)):
            out[f"{root}/{name}"] = (await ctx.fetch_file(ref, ctx.work_dir / name)).read_bytes()
    return out


@service.handles(topics.DOCS_GENERATED, stage=STAGE)
async def commit(ctx: HandlerContext, event: DocsGenerated) -> None:
    selected = event.selection
    if "git" not in selected.dataset.spec.stages:
        ctx.emit(topics.EXPERIMENT_COMMITTED, ExperimentCommitted(docs=event, skipped=True))
        await ctx.progress(STAGE, StageProgress.STATE_SKIPPED, 100, "git not requested")
        return
    await ctx.progress(STAGE, StageProgress.STATE_STARTED, 0, "committing")
    files = await experiment_files(ctx, event)
    message = (f"experiment {ctx.experiment_id}: {selected.winner.family} "
               f"test {selected.metric}={selected.test_score:.4f} "
               f"(baseline {selected.baseline_test_score:.4f})")
    repo = ctx.settings.resolved_git_repo
    result = await ctx.run_blocking(breaker(f"git:{repo}").call, commit_experiment, repo,
                                    ctx.experiment_id, files, message=message)
    ctx.emit(topics.EXPERIMENT_COMMITTED, ExperimentCommitted(
        docs=event, repository=str(result.repo_path), branch=result.branch, commit=result.sha,
        tag=result.tag))
    await ctx.progress(STAGE, StageProgress.STATE_FINISHED, 100,
                       f"{result.sha[:12]} on {result.branch}"
                       + ("" if result.created else " (already committed)"))
