"""What goes into each of an experiment's stage commits, under ``experiments/<id>/``.

1. data: ``config/experiment.json`` (spec, target, metric, winner), the prepared splits
   (``data/*.parquet``, tracked with DVC), their manifest and the data profile;
2. pipeline: ``pipeline/pipeline.json`` (preprocessing spec + model family and params),
   ``pipeline/prep.json``, ``pipeline/params.json``, ``pipeline/reproduce.py`` when docs
   wrote one, and ``environment/`` (requirements lock, Python version, platform);
3. evaluation: ``evaluation/metrics.json``, ``leaderboard.json``/``.csv`` and the select
   stage's ``selection.json``;
4. report: every report file docs wrote (report, model card, white paper, summary).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlmesh_git.repository import StageCommit

PREP_SPEC_NAME = "prep.json"
DATA_SUFFIXES = (".parquet",)


@dataclass(frozen=True)
class ExperimentFacts:
    """Plain inputs of the stage commits (already fetched from the artifact store)."""

    experiment_id: str
    config: Mapping[str, Any]
    prepared_dir: Path
    profile: Mapping[str, Any] | None
    winner_family: str
    winner_params: Mapping[str, Any]
    metric: str
    metrics: Mapping[str, Any]
    leaderboard: Sequence[Mapping[str, Any]]
    environment: Mapping[str, bytes]
    selection: Mapping[str, Any] | None = None
    reproduction: bytes | None = None
    reports: Mapping[str, bytes] = field(default_factory=dict)


def experiment_root(experiment_id: str) -> str:
    """Folder of an experiment's files in the repository."""
    return f"experiments/{experiment_id}"


def key_metrics(facts: ExperimentFacts) -> dict[str, str]:
    """The figures every commit message carries, by name."""
    out = {"model": facts.winner_family}
    test_score = facts.metrics.get("test_score")
    if isinstance(test_score, int | float):
        out[f"test {facts.metric}"] = f"{test_score:.4f}"
    baseline = facts.metrics.get("baseline_test_score")
    if isinstance(baseline, int | float):
        out[f"baseline {facts.metric}"] = f"{baseline:.4f}"
    for name, value in sorted(dict(facts.metrics.get("test_metrics") or {}).items()):
        if name != facts.metric and isinstance(value, int | float):
            out[f"test {name}"] = f"{value:.4f}"
    return out


def summary_line(facts: ExperimentFacts) -> str:
    """One line: the winner and its test score against the baseline."""
    figures = key_metrics(facts)
    score = figures.get(f"test {facts.metric}", "n/a")
    baseline = figures.get(f"baseline {facts.metric}", "n/a")
    return f"{facts.winner_family} test {facts.metric}={score} (baseline {baseline})"


def experiment_stages(facts: ExperimentFacts) -> list[StageCommit]:
    """The stage commits of the experiment, in order; the report stage only when docs ran."""
    root = experiment_root(facts.experiment_id)
    stages = [_data_stage(facts, root), _pipeline_stage(facts, root),
              _evaluation_stage(facts, root)]
    if facts.reports:
        stages.append(StageCommit(
            stage="report", title="report, model card and white paper",
            files={f"{root}/report/{name}": content for name, content in facts.reports.items()}))
    return stages


def _data_stage(facts: ExperimentFacts, root: str) -> StageCommit:
    folder = facts.prepared_dir
    data_files = {f"{root}/data/{p.name}": p for p in sorted(folder.iterdir())
                  if p.is_file() and p.suffix in DATA_SUFFIXES}
    if not data_files:
        raise ValueError(f"prepared folder {folder} holds no {'/'.join(DATA_SUFFIXES)} files; "
                         "the prep stage output is incomplete, re-run the experiment")
    files = {f"{root}/config/experiment.json": _json(facts.config)}
    manifest = folder / "manifest.json"
    if manifest.is_file():
        files[f"{root}/data/prepared_manifest.json"] = manifest.read_bytes()
    if facts.profile is not None:
        files[f"{root}/data/profile.json"] = _json(facts.profile)
    return StageCommit(stage="data", title="configuration and data (DVC)", files=files,
                       dvc_files=data_files)


def _pipeline_stage(facts: ExperimentFacts, root: str) -> StageCommit:
    prep_path = facts.prepared_dir / PREP_SPEC_NAME
    prep_spec = json.loads(prep_path.read_text()) if prep_path.is_file() else None
    pipeline = {
        "experiment_id": facts.experiment_id,
        "target": facts.config.get("target"),
        "metric": facts.metric,
        "preprocessing": prep_spec,
        "model": {"family": facts.winner_family, "params": dict(facts.winner_params)},
        "data": {"train": "../data/train.parquet", "valid": "../data/valid.parquet",
                 "test": "../data/test.parquet", "fetch": "dvc pull"},
    }
    files = {f"{root}/pipeline/pipeline.json": _json(pipeline),
             f"{root}/pipeline/params.json": _json(dict(facts.winner_params))}
    if prep_spec is not None:
        files[f"{root}/pipeline/prep.json"] = _json(prep_spec)
    if facts.reproduction is not None:
        files[f"{root}/pipeline/reproduce.py"] = facts.reproduction
    files |= {f"{root}/environment/{name}": content
              for name, content in facts.environment.items()}
    return StageCommit(stage="pipeline", title="pipeline code and exact environment",
                       files=files)


def _evaluation_stage(facts: ExperimentFacts, root: str) -> StageCommit:
    files = {f"{root}/evaluation/metrics.json": _json(facts.metrics),
             f"{root}/evaluation/leaderboard.json": _json(list(facts.leaderboard)),
             f"{root}/evaluation/leaderboard.csv": _leaderboard_csv(facts.leaderboard)}
    if facts.selection is not None:
        files[f"{root}/evaluation/selection.json"] = _json(facts.selection)
    return StageCommit(stage="evaluation", title="metrics and leaderboard",
                       files=files)


def _leaderboard_csv(rows: Sequence[Mapping[str, Any]]) -> bytes:
    columns = ["rank", "family", "metric", "cv_mean", "cv_std", "fit_seconds", "source",
               "params_json"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for rank, row in enumerate(rows, start=1):
        writer.writerow([rank, *(row.get(c, "") for c in columns[1:])])
    return out.getvalue().encode()


def _json(body: Any) -> bytes:
    return (json.dumps(body, indent=2, sort_keys=True, default=str) + "\n").encode()
