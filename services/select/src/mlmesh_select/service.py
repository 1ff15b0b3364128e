"""Wiring: tuning.completed -> leaderboard, refit of the winner, held-out test score ->
model.selected."""

from __future__ import annotations

import json

from mlmesh.events.v1.common_pb2 import Metric
from mlmesh.events.v1.experiment_pb2 import StageProgress
from mlmesh.events.v1.training_pb2 import ModelSelected, TuningCompleted
from mlmesh_common import candidates, topics
from mlmesh_common.breakers import breaker
from mlmesh_common.modeling import detect_device, log_run
from mlmesh_common.runtime import HandlerContext, Service, member_ref
from mlmesh_select.selection import build_leaderboard, refit_winner, save_model

STAGE = "select"
service = Service("select")


def tuning_summary(event: TuningCompleted, metric: str) -> dict | None:
    """What the reports say about tuning (None when it was skipped)."""
    if event.skipped:
        return None
    tuned = [c for c in event.candidates if c.source == "tune"]
    return {"family": event.best.family, "n_trials": event.n_trials,
            "best_value": event.best.cv_mean, "best_params": json.loads(event.best.params_json
                                                                        or "{}"),
            "best_source": event.best.source, "metric": metric,
            "history": [{"number": i, "value": c.cv_mean, "state": "COMPLETE",
                         "family": c.family} for i, c in enumerate(tuned)]}


@service.handles(topics.TUNING_COMPLETED, stage=STAGE)
async def select(ctx: HandlerContext, event: TuningCompleted) -> None:
    dataset, spec = event.dataset, event.dataset.spec
    await ctx.progress(STAGE, StageProgress.STATE_STARTED, 0, "ranking candidates")
    leaderboard = build_leaderboard([candidates.to_dict(c) for c in event.candidates])
    winner = leaderboard[0]
    folder = await ctx.fetch_dir(dataset.prepared, ctx.work_dir / "prepared")
    ctx.check_cancelled()
    await ctx.progress(STAGE, StageProgress.STATE_RUNNING, 20,
                       f"refitting {winner['family']} ({winner['source']}) on train+valid")
    result = await ctx.run_blocking(refit_winner, folder, winner, seed=spec.seed or 42,
                                    device=detect_device())
    out = ctx.work_dir / "select"
    out.mkdir()
    await ctx.run_blocking(save_model, result.model, out / "model.joblib")
    summary = result.summary()
    summary["leaderboard"] = leaderboard
    summary["model_path"] = "model.joblib"
    summary["tuning"] = tuning_summary(event, dataset.metric)
    (out / "selection.json").write_text(json.dumps(summary, indent=2, default=str))
    folder_ref = await ctx.save_dir(spec.project, STAGE, out)
    run_id = await ctx.run_blocking(
        breaker("mlflow").call, log_run, f"mlmesh/{spec.project}",
        f"{ctx.experiment_id}/selected-{result.family}", params=result.params,
        metrics={"test_score": result.test_score,
                 "baseline_test_score": result.baseline_test_score,
                 **{f"test_{k}": v for k, v in result.test_metrics.items()}},
        tags={"mlmesh.experiment_id": ctx.experiment_id, "mlmesh.stage": STAGE,
              "mlmesh.family": result.family, "mlmesh.metric": result.metric},
        artifacts=[out / "model.joblib", out / "selection.json"],
        run_id_tag=ctx.envelope.event_id)
    model_ref = member_ref(folder_ref, out, "model.joblib", "application/octet-stream")
    ctx.emit(topics.MODEL_SELECTED, ModelSelected(
        dataset=dataset, winner=candidates.from_dict(winner),
        leaderboard=[candidates.from_dict(c) for c in leaderboard], metric=result.metric,
        test_score=result.test_score, baseline_test_score=result.baseline_test_score,
        test_metrics=[Metric(name=k, value=v) for k, v in result.test_metrics.items()],
        model=model_ref, selection=folder_ref, mlflow_run_id=run_id, n_test=result.n_test))
    verdict = "beats" if result.beats_baseline else "does NOT beat"
    await ctx.progress(STAGE, StageProgress.STATE_FINISHED, 100,
                       f"{result.family}: test {result.metric} {result.test_score:.4f} "
                       f"({verdict} the dummy's {result.baseline_test_score:.4f})")
