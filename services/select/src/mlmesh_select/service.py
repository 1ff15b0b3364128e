"""Wiring: tuning.completed -> leaderboard, constraints, ensembles, statistics, refit of the
winner, final test evaluation -> model.selected."""

from __future__ import annotations

import json

from mlmesh.events.v1.common_pb2 import Metric
from mlmesh.events.v1.experiment_pb2 import StageProgress
from mlmesh.events.v1.training_pb2 import ModelSelected, TuningCompleted
from mlmesh_common import candidates, topics
from mlmesh_common.breakers import breaker
from mlmesh_common.modeling import detect_device
from mlmesh_common.runtime import HandlerContext, Service, member_ref
from mlmesh_common.tracking import make_tracker
from mlmesh_select.pipeline import EVALUATED_MODEL, Selection, SelectionOptions, run_selection
from mlmesh_select.selection import build_leaderboard

STAGE = "select"
service = Service("select")


def tuning_summary(event: TuningCompleted, metric: str) -> dict | None:
    """What the reports say about tuning (None when it was skipped)."""
    if event.skipped:
        return None
    tuned = [c for c in event.candidates if c.source == "tune"]
    return {
        "family": event.best.family,
        "n_trials": event.n_trials,
        "best_value": event.best.cv_mean,
        "best_params": json.loads(event.best.params_json or "{}"),
        "best_source": event.best.source,
        "metric": metric,
        "history": [
            {"number": i, "value": c.cv_mean, "state": "COMPLETE", "family": c.family}
            for i, c in enumerate(tuned)
        ],
    }


def track_selection(
    experiment: str, run_name: str, selection: Selection, *, tags: dict, run_id_tag: str
) -> str:
    """One tracker run for the selection, with a nested run per ensemble member; plots,
    selection.json, the model and the ensemble's OOF predictions as artifacts."""
    summary, out = selection.summary, selection.out_dir
    tracker = make_tracker()
    with tracker.run(experiment, run_name, tags=tags, run_id_tag=run_id_tag) as run_id:
        if tracker.reused:
            return run_id
        tracker.log_params(
            {
                "family": summary["family"],
                "ensemble_kind": selection.ensemble_kind,
                **{f"param.{k}": v for k, v in summary["params"].items()},
            }
        )
        ci = summary["test_score_ci"]
        tracker.log_metrics(
            {
                "test_score": summary["test_score"],
                "baseline_test_score": summary["baseline_test_score"],
                "test_score_ci_low": ci["low"],
                "test_score_ci_high": ci["high"],
                **{f"test_{k}": v for k, v in summary["test_metrics"].items()},
            }
        )
        for name in ("model.joblib", EVALUATED_MODEL, "selection.json", "plots",
                     "ensemble_oof.parquet"):
            if (out / name).exists():
                tracker.log_artifact(out / name)
        for member in (summary.get("ensemble") or {}).get("members", []):
            with tracker.run(
                experiment,
                f"{run_name}/member-{member['family']}",
                tags={**tags, "mlmesh.family": member["family"]},
            ):
                tracker.log_params(member["params"])
                tracker.log_metrics(
                    {"cv_mean": member["cv_mean"], "weight": member["weight"] or 0.0}
                )
    return run_id


def _left(budget_s: float, elapsed_s: float | None) -> float | None:
    """Seconds of the experiment's time budget left (None when either is unknown)."""
    return None if elapsed_s is None or not budget_s > 0 else budget_s - elapsed_s


@service.handles(topics.TUNING_COMPLETED, stage=STAGE)
async def select(ctx: HandlerContext, event: TuningCompleted) -> None:
    dataset, spec = event.dataset, event.dataset.spec
    await ctx.progress(STAGE, StageProgress.STATE_STARTED, 0, "ranking candidates")
    leaderboard = build_leaderboard([candidates.to_dict(c) for c in event.candidates])
    folder = await ctx.fetch_dir(dataset.prepared, ctx.work_dir / "prepared")
    oof_paths = {}
    for i, entry in enumerate(leaderboard):
        ref = candidates.from_dict(entry).oof_predictions
        oof_paths[i] = (
            await ctx.fetch_file(ref, ctx.work_dir / "oof" / f"{i}.parquet") if ref.uri else None
        )
    ctx.check_cancelled()
    await ctx.progress(
        STAGE,
        StageProgress.STATE_RUNNING,
        20,
        f"ensembles, statistics and refit over {len(leaderboard)} candidates",
    )
    options = SelectionOptions(
        seed=spec.seed or 42,
        device=detect_device(),
        max_latency_ms=spec.max_latency_ms,
        max_model_size_mb=spec.max_model_size_mb,
        sensitive_columns=list(spec.sensitive_columns),
        time_left_s=_left(spec.time_budget_s, await ctx.elapsed_s()),
        **SelectionOptions.budget_shares(spec.time_budget_s or 600),
    )
    out = ctx.work_dir / "select"
    result = await ctx.run_blocking(run_selection, folder, leaderboard, oof_paths, out, options)
    summary = result.summary
    summary["tuning"] = tuning_summary(event, dataset.metric)
    (out / "selection.json").write_text(json.dumps(summary, indent=2, default=str))
    folder_ref = await ctx.save_dir(spec.project, STAGE, out)
    tags = {
        "mlmesh.experiment_id": ctx.experiment_id,
        "mlmesh.stage": STAGE,
        "mlmesh.family": summary["family"],
        "mlmesh.metric": summary["metric"],
    }
    run_id = await ctx.run_blocking(
        breaker("mlflow").call,
        track_selection,
        f"mlmesh/{spec.project}",
        f"{ctx.experiment_id}/selected-{summary['family']}",
        result,
        tags=tags,
        run_id_tag=ctx.envelope.event_id,
    )
    model_ref = member_ref(folder_ref, out, "model.joblib", "application/octet-stream")
    ci = summary["test_score_ci"]
    ctx.emit(
        topics.MODEL_SELECTED,
        ModelSelected(
            dataset=dataset,
            winner=candidates.from_dict(result.winner),
            leaderboard=[candidates.from_dict(c) for c in result.leaderboard],
            metric=summary["metric"],
            test_score=summary["test_score"],
            baseline_test_score=summary["baseline_test_score"],
            test_metrics=[Metric(name=k, value=v) for k, v in summary["test_metrics"].items()],
            model=model_ref,
            selection=folder_ref,
            mlflow_run_id=run_id,
            n_test=summary["n_test"],
            test_score_ci_low=ci["low"] or 0.0,
            test_score_ci_high=ci["high"] or 0.0,
            ensemble_kind=result.ensemble_kind,
        ),
    )
    verdict = "beats" if summary["beats_baseline"] else "does NOT beat"
    await ctx.progress(
        STAGE,
        StageProgress.STATE_FINISHED,
        100,
        f"{summary['family']} ({result.ensemble_kind}): test {summary['metric']} "
        f"{summary['test_score']:.4f} [{ci['low']:.4f}, {ci['high']:.4f}] "
        f"({verdict} the dummy's {summary['baseline_test_score']:.4f})",
    )
