"""Populated example events, one per registry topic, for the golden wire files.

Every field of every payload is set (booleans true, enums non-zero), so each field
number and type is on the wire; test_golden.py enforces that for new fields too.

`python contract-tests/golden_examples.py` writes contract-tests/golden/<topic>.bin (an
encoded Envelope per topic) and golden/dead_letter.bin; `--check` fails when the
committed files no longer match these examples. test_golden.py decodes every committed
file with mlmesh_common.envelope.decode and compares it with the example here, so a
renumbered, retyped or removed field (a wire change) fails the tests.

Regenerate only for an additive change (a new field set in an example below); a change
that makes an old golden file decode differently is a breaking change and needs a new
major version (ARCHITECTURE.md §3).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "libs" / "common" / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "libs" / "common" / "src"))

from google.protobuf.message import Message  # noqa: E402

from mlmesh.events.v1 import (  # noqa: E402
    common_pb2,
    dataset_pb2,
    delivery_pb2,
    envelope_pb2,
    experiment_pb2,
    monitoring_pb2,
    training_pb2,
)
from mlmesh_common import topics  # noqa: E402
from mlmesh_common.envelope import encode, new_envelope  # noqa: E402

GOLDEN = Path(__file__).resolve().parent / "golden"
DEAD_LETTER_FILE = "dead_letter.bin"
EXPERIMENT_ID = "exp-0c7a1f3e"
PROJECT = "credit"
PRODUCED_AT_S = 1_735_689_600  # 2025-01-01T00:00:00Z
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def _ref(key: str, media_type: str, size: int = 4096) -> common_pb2.ArtifactRef:
    return common_pb2.ArtifactRef(
        uri=f"s3://mlmesh/projects/{PROJECT}/experiments/{EXPERIMENT_ID}/{key}",
        sha256=SHA, size_bytes=size, media_type=media_type)


def _spec() -> experiment_pb2.ExperimentSpec:
    spec = experiment_pb2.ExperimentSpec(
        dataset_uri="https://example.org/data/credit.csv", dataset_sha256=SHA, target="default",
        problem_type=common_pb2.PROBLEM_TYPE_BINARY, metric="roc_auc", time_budget_s=900,
        seed=42, stages=["tune", "docs", "git", "publish"], project=PROJECT,
        parent_experiment_id="exp-5b21d9aa", max_trials=30,
        families=["linear", "lightgbm", "autogluon"], split_strategy="group",
        group_column="customer_id", time_column="applied_at", sensitive_columns=["sex"],
        max_latency_ms=5.0, max_model_size_mb=50.0, objectives=["score", "latency"],
        sampler="tpe", pruner="hyperband")
    spec.tags["team"] = "risk"
    spec.tags["ticket"] = "ML-142"
    spec.source_options["sheet"] = "loans"
    return spec


def _prepared() -> dataset_pb2.DatasetPrepared:
    return dataset_pb2.DatasetPrepared(
        spec=_spec(), prepared=_ref("prep/", "inode/directory", 0),
        profile=_ref("profile/profile.json", "application/json"), target="default",
        problem_type=common_pb2.PROBLEM_TYPE_BINARY, metric="roc_auc", n_train=6000,
        n_valid=2000, n_test=2000, n_folds=5, feature_columns=["age", "income", "region"],
        split_strategy="group", n_generated_features=3)


def _candidate(family: str, score: float, source: str = "train") -> training_pb2.Candidate:
    return training_pb2.Candidate(
        family=family, params_json='{"learning_rate": 0.05, "n_estimators": 400}',
        metric="roc_auc", cv_mean=score, cv_std=0.004,
        fold_scores=[score - 0.004, score, score + 0.004], fit_seconds=12.5, device="cuda",
        mlflow_run_id=f"run-{family}", source=source, greater_is_better=True,
        oof_predictions=_ref(f"{source}/{family}/oof.parquet", "application/vnd.apache.parquet"),
        latency_ms=0.02, size_bytes=1_250_000, fallback_from="catboost", pareto_optimal=True,
        ensemble_json='{"kind": "caruana", "members": [{"family": "lightgbm", "weight": 1.0}]}')


def _selected() -> training_pb2.ModelSelected:
    return training_pb2.ModelSelected(
        dataset=_prepared(), winner=_candidate("lightgbm", 0.91, "tune"),
        leaderboard=[_candidate("lightgbm", 0.91, "tune"), _candidate("dummy", 0.5)],
        metric="roc_auc", test_score=0.905, baseline_test_score=0.5,
        test_metrics=[common_pb2.Metric(name="roc_auc", value=0.905),
                      common_pb2.Metric(name="accuracy", value=0.83)],
        model=_ref("select/model.joblib", "application/octet-stream"),
        selection=_ref("select/selection.json", "application/json"), mlflow_run_id="run-refit",
        n_test=2000, test_score_ci_low=0.89, test_score_ci_high=0.92, ensemble_kind="caruana")


def _docs() -> delivery_pb2.DocsGenerated:
    return delivery_pb2.DocsGenerated(
        selection=_selected(), report_html=_ref("docs/report.html", "text/html"),
        report_markdown=_ref("docs/report.md", "text/markdown"),
        model_card=_ref("docs/model_card.md", "text/markdown"), skipped=True,
        white_paper_pdf=_ref("docs/white_paper.pdf", "application/pdf"),
        white_paper_tex=_ref("docs/white_paper.tex", "application/x-tex"),
        executive_summary=_ref("docs/executive_summary.md", "text/markdown"),
        reproduction=_ref("docs/reproduce.py", "text/x-python"),
        folder=_ref("docs/", "inode/directory", 0))


def _committed() -> delivery_pb2.ExperimentCommitted:
    return delivery_pb2.ExperimentCommitted(
        docs=_docs(), repository="/data/git/experiments", branch=f"exp/{EXPERIMENT_ID}",
        commit="3b18e512dba79e4c8300dd08aeb37f8e728b8dad", tag=f"exp-{EXPERIMENT_ID}",
        skipped=True, remote="https://git.example.org/ml/experiments.git",
        pull_request_url="https://git.example.org/ml/experiments/pull/7",
        commits=["9c0ffee1dba79e4c8300dd08aeb37f8e728b8dad",
                 "3b18e512dba79e4c8300dd08aeb37f8e728b8dad"], release_tag="model-v1.0.0")


def _timestamp_fields(message: Message) -> Message:
    for field in message.DESCRIPTOR.fields:
        if field.message_type and field.message_type.full_name == "google.protobuf.Timestamp":
            getattr(message, field.name).FromSeconds(PRODUCED_AT_S - 60)
    return message


def payloads() -> dict[str, Message]:
    """An example payload per registry topic, every field set."""
    columns = [dataset_pb2.ColumnSummary(name="age", kind="numeric", dtype="int64", missing=3,
                                         unique=61),
               dataset_pb2.ColumnSummary(name="region", kind="categorical", dtype="string",
                                         missing=0, unique=4)]
    examples: dict[str, Message] = {
        topics.EXPERIMENT_REQUESTED.name: _timestamp_fields(experiment_pb2.ExperimentRequested(
            spec=_spec(), requested_by="api-key:ci")),
        topics.DATASET_ACQUIRED.name: dataset_pb2.DatasetAcquired(
            spec=_spec(), table=_ref("acquire/table.parquet", "application/vnd.apache.parquet"),
            manifest=_ref("acquire/manifest.json", "application/json"),
            source_uri="https://example.org/data/credit.csv", source_sha256=SHA,
            source_bytes=812_345, source_format="csv", n_rows=10_000, n_columns=4,
            columns=["age", "income", "region", "default"]),
        topics.DATASET_PROFILED.name: dataset_pb2.DatasetProfiled(
            spec=_spec(), table=_ref("acquire/table.parquet", "application/vnd.apache.parquet"),
            profile=_ref("profile/profile.json", "application/json"), target="default",
            problem_type=common_pb2.PROBLEM_TYPE_BINARY, metric="roc_auc",
            target_reasons=["named by the request"], columns=columns, n_rows=10_000,
            warnings=["income has 3% missing values"]),
        topics.DATASET_PREPARED.name: _prepared(),
        topics.TRAIN_JOB.name: training_pb2.TrainJob(
            job_id=f"{EXPERIMENT_ID}/xgboost", family="xgboost", params_json='{"max_depth": 6}',
            dataset=_prepared(), time_budget_s=120.0, job_index=3, job_count=5),
        topics.TRAIN_JOB_COMPLETED.name: training_pb2.TrainJobCompleted(
            job_id=f"{EXPERIMENT_ID}/xgboost", candidate=_candidate("xgboost", 0.9),
            error="catboost: out of GPU memory", job_count=5),
        topics.TRAINING_COMPLETED.name: training_pb2.TrainingCompleted(
            dataset=_prepared(), candidates=[_candidate("lightgbm", 0.9),
                                             _candidate("dummy", 0.5)],
            best_family="lightgbm"),
        topics.TUNE_TRIAL.name: training_pb2.TuneTrial(
            trial_id=f"{EXPERIMENT_ID}/7", study_name=f"mlmesh-{EXPERIMENT_ID}",
            storage_url="postgresql+psycopg://mlmesh@postgres:5432/optuna", trial_number=7,
            family="lightgbm", params_json='{"num_leaves": 63}', dataset=_prepared()),
        topics.TUNE_TRIAL_COMPLETED.name: training_pb2.TuneTrialCompleted(
            trial_id=f"{EXPERIMENT_ID}/7", trial_number=7,
            candidate=_candidate("lightgbm", 0.91, "tune"), error="pruned at fold 2"),
        topics.TUNING_COMPLETED.name: training_pb2.TuningCompleted(
            dataset=_prepared(), candidates=[_candidate("lightgbm", 0.91, "tune")],
            best=_candidate("lightgbm", 0.91, "tune"), study_name=f"mlmesh-{EXPERIMENT_ID}",
            n_trials=30, skipped=True, history=_ref("tune/history.csv", "text/csv"),
            pareto_front=[_candidate("lightgbm", 0.91, "tune")],
            plots=_ref("tune/plots/", "inode/directory", 0)),
        topics.MODEL_SELECTED.name: _selected(),
        topics.DOCS_GENERATED.name: _docs(),
        topics.EXPERIMENT_COMMITTED.name: _committed(),
        topics.MODEL_PUBLISHED.name: delivery_pb2.ModelPublished(
            committed=_committed(), registered_model="credit-default", model_version="3",
            model_uri="models:/credit-default/3",
            model=_ref("publish/model.joblib", "application/octet-stream"),
            serving_app=_ref("publish/serving/", "inode/directory", 0),
            reference_data=_ref("publish/reference.parquet", "application/vnd.apache.parquet"),
            feature_columns=["age", "income", "region"], skipped=True,
            mlflow_run_id="run-refit", onnx=_ref("publish/model.onnx", "application/onnx"),
            alias="champion", promoted_to_champion=True,
            native_model=_ref("publish/model.txt", "text/plain"),
            serving_docs=_ref("publish/serving-docs/", "inode/directory", 0)),
        topics.EXPERIMENT_COMPLETED.name: experiment_pb2.ExperimentCompleted(
            project=PROJECT, winner_family="lightgbm", metric="roc_auc", test_score=0.905,
            baseline_test_score=0.5, registered_model="credit-default", model_version="3",
            git_commit="3b18e512dba79e4c8300dd08aeb37f8e728b8dad",
            report=_ref("docs/report.html", "text/html"),
            serving_app=_ref("publish/serving/", "inode/directory", 0), duration_s=734.2,
            mlflow_run_id="run-refit"),
        topics.EXPERIMENT_FAILED.name: experiment_pb2.ExperimentFailed(
            stage="acquire",
            reason="acquire failed: example.org kept failing after retries; check that it is up",
            error_type="ConnectTimeout",
            dead_letter_topic=topics.EXPERIMENT_REQUESTED.dlq, retryable=True),
        topics.EXPERIMENT_CANCEL.name: experiment_pb2.ExperimentCancel(
            reason="superseded by a newer request", requested_by="api-key:ci"),
        topics.STAGE_PROGRESS.name: experiment_pb2.StageProgress(
            stage="acquire", state=experiment_pb2.StageProgress.STATE_RUNNING, percent=42.5,
            message="downloading credit.csv", bytes_done=341_000, bytes_total=812_345,
            eta_s=3.5),
        topics.PREDICTION_LOGGED.name: monitoring_pb2.PredictionLogged(
            model_name="credit-default", model_version="3",
            rows_json='[{"age": 41, "income": 52000.0, "region": "north"}]',
            predictions_json="[0.12]", request_ids=["req-1"],
            probabilities_json='[{"0": 0.88, "1": 0.12}]'),
        topics.GROUND_TRUTH_LOGGED.name: monitoring_pb2.GroundTruthLogged(
            model_name="credit-default", model_version="3", request_ids=["req-1"],
            outcomes_json="[0]"),
        topics.DRIFT_DETECTED.name: _timestamp_fields(monitoring_pb2.DriftDetected(
            model_name="credit-default", model_version="3", dataset_drift=True,
            share_drifted=0.67, drifted_columns=["income", "region"], window_rows=5000,
            report=_ref("monitor/drift-0001.html", "text/html"),
            source_experiment_id=EXPERIMENT_ID,
            kinds=["data_drift", "prediction_drift", "performance_decay"],
            window_id="credit-default:3:000001", prediction_drift=True,
            prediction_drift_score=0.21, prediction_drift_stattest="jensenshannon",
            performance_decay=True, metric="roc_auc", window_score=0.71,
            reference_score=0.83, decay=0.145, labeled_rows=1200,
            report_json=_ref("monitor/drift-0001.json", "application/json"),
            retrain_experiment_id="9e1f0c2a7b3d4e5f",
            retrain_decision="requested retraining experiment 9e1f0c2a7b3d4e5f")),
    }
    missing = sorted({t.name for t in topics.TOPICS} - set(examples))
    if missing:
        raise SystemExit(f"golden_examples.py has no example for: {', '.join(missing)}")
    return examples


def envelopes() -> dict[str, envelope_pb2.Envelope]:
    """The example payloads in fixed envelopes (stable ids and times), by topic name."""
    out = {}
    for n, (name, payload) in enumerate(payloads().items(), start=1):
        topic = topics.topic_by_name(name)
        producer = (topic.producers[0] if topic.producers[0] not in ("serving", "other-systems")
                    else "served-model")
        env = new_envelope(
            topic, payload, experiment_id=EXPERIMENT_ID, attempt=2,
            producer=envelope_pb2.Producer(service=producer, version="0.1.0",
                                           instance=f"{producer}-7d9f-{n}"),
            correlation_id="5d2f3c1e-0000-4000-8000-000000000001",
            causation_id=f"5d2f3c1e-0000-4000-8000-{n - 1:012d}",
            event_id=f"5d2f3c1e-0000-4000-8000-{n:012d}")
        env.produced_at.FromSeconds(PRODUCED_AT_S + n)
        env.payload.Pack(payload, deterministic=True)  # map fields in a stable order
        out[name] = env
    return out


def dead_letter() -> envelope_pb2.DeadLetter:
    """An example of what the runtime writes to <topic>.dlq (a bare DeadLetter)."""
    source = envelopes()[topics.DATASET_ACQUIRED.name]
    letter = envelope_pb2.DeadLetter(
        source_topic=topics.DATASET_ACQUIRED.name, partition=3, offset=1234,
        consumer_group=topics.group("profile").group_id, error_type="UndecodableEvent",
        error_message="payload is not a DatasetAcquired", stack="Traceback ...", attempt=4,
        original_key=EXPERIMENT_ID.encode(), original_value=encode(source),
        experiment_id=EXPERIMENT_ID, event_id=source.event_id,
        consumer=envelope_pb2.Producer(service="profile", version="0.1.0",
                                       instance="profile-7d9f-1"))
    letter.original_headers["traceparent"] = (
        b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    letter.original_headers["mlmesh-type"] = b"mlmesh.dataset.acquired"
    letter.failed_at.FromSeconds(PRODUCED_AT_S + 3600)
    return letter


def golden_files() -> dict[str, bytes]:
    """File name -> bytes of every golden file."""
    files = {f"{name}.bin": encode(env) for name, env in envelopes().items()}
    files[DEAD_LETTER_FILE] = dead_letter().SerializeToString(deterministic=True)
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true",
                        help="fail if the committed golden files differ from the examples")
    args = parser.parse_args()
    files = golden_files()
    if args.check:
        stale = [n for n, data in files.items()
                 if not (GOLDEN / n).exists() or (GOLDEN / n).read_bytes() != data]
        extra = sorted(p.name for p in GOLDEN.glob("*.bin") if p.name not in files)
        if stale or extra:
            print("golden files differ from golden_examples.py:", *stale, *extra, sep="\n  ",
                  file=sys.stderr)
            return 1
        print(f"{len(files)} golden files are current")
        return 0
    GOLDEN.mkdir(exist_ok=True)
    for old in GOLDEN.glob("*.bin"):
        if old.name not in files:
            old.unlink()
    for name, data in files.items():
        (GOLDEN / name).write_bytes(data)
    print(f"wrote {len(files)} golden files to {GOLDEN}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
