"""The docs.generated handler on a real HandlerContext and local artifact store (no broker:
progress is recorded instead of produced), pushing to a local bare remote."""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from mlmesh.events.v1.common_pb2 import Metric
from mlmesh.events.v1.dataset_pb2 import DatasetPrepared
from mlmesh.events.v1.delivery_pb2 import DocsGenerated
from mlmesh.events.v1.envelope_pb2 import Producer
from mlmesh.events.v1.experiment_pb2 import ExperimentSpec, StageProgress
from mlmesh.events.v1.training_pb2 import Candidate, ModelSelected
from mlmesh_common import topics
from mlmesh_common.envelope import new_envelope
from mlmesh_common.runtime import HandlerContext, Service, member_ref
from mlmesh_common.runtime._context import artifact_ref
from mlmesh_common.settings import Settings
from mlmesh_git import service as git_service

TOKEN = "glpat-VerySecretToken0987654321"
PREFIX = "projects/penguins/experiments/e1"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


class Harness:
    """A git Service with its handler, a store under tmp_path and recorded progress."""

    def __init__(self, tmp_path: Path) -> None:
        self.service = Service("git", settings=Settings(home=tmp_path / "home"))
        self.progress: list[tuple[int, str]] = []

        async def record(cause, stage, state, percent, message, **extra) -> None:
            self.progress.append((state, message))

        self.service.send_progress = record  # type: ignore[method-assign]
        self.tmp = tmp_path

    def event(self, *, stages: list[str], with_docs: bool = True,
              script_in_folder_only: bool = False) -> DocsGenerated:
        store, tmp = self.service.store, self.tmp
        prepared = tmp / "prepared"
        prepared.mkdir()
        for split, rows in (("train", 8), ("valid", 2), ("test", 3)):
            pd.DataFrame({"bill": range(rows), "species": ["a"] * rows}).to_parquet(
                prepared / f"{split}.parquet")
        (prepared / "prep.json").write_text(json.dumps({"numeric": ["bill"], "scaler": "std"}))
        prepared_ref = artifact_ref(store.put_dir(prepared, f"{PREFIX}/prep", "prep/test"))
        (tmp / "profile.json").write_text('{"n_rows": 13}')
        profile_ref = artifact_ref(store.put_file(tmp / "profile.json",
                                                  f"{PREFIX}/profile/profile.json"))
        select = tmp / "select"
        select.mkdir()
        (select / "selection.json").write_text('{"family": "linear"}')
        (select / "model.joblib").write_bytes(b"model")
        selection_ref = artifact_ref(store.put_dir(select, f"{PREFIX}/select", "select/test"))
        model_ref = member_ref(selection_ref, select, "model.joblib")
        winner = Candidate(family="linear", params_json='{"C": 0.5}', metric="accuracy",
                           cv_mean=0.95, cv_std=0.01)
        selected = ModelSelected(
            dataset=DatasetPrepared(spec=ExperimentSpec(project="penguins", stages=stages),
                                    prepared=prepared_ref, profile=profile_ref,
                                    target="species", metric="accuracy"),
            winner=winner, leaderboard=[winner], metric="accuracy", test_score=0.9712,
            baseline_test_score=0.4412, test_metrics=[Metric(name="f1_macro", value=0.9601)],
            model=model_ref, selection=selection_ref, n_test=3)
        event = DocsGenerated(selection=selected, skipped=not with_docs)
        if with_docs:
            docs = tmp / "docs"
            docs.mkdir()
            for name in ("report.md", "model_card.md", "reproduce.py"):
                (docs / name).write_text(f"content of {name}\n")
            folder = artifact_ref(store.put_dir(docs, f"{PREFIX}/docs", "docs/test"))
            event.folder.CopyFrom(folder)
            fields = [("report.md", "report_markdown"), ("model_card.md", "model_card")]
            if not script_in_folder_only:
                fields.append(("reproduce.py", "reproduction"))
            for name, field in fields:
                getattr(event, field).CopyFrom(member_ref(folder, docs, name))
        return event

    async def run(self, event: DocsGenerated) -> HandlerContext:
        envelope = new_envelope(topics.DOCS_GENERATED, event, experiment_id="e1",
                                producer=Producer(service="test"))  # fmt: skip
        work = self.tmp / f"work{len(self.progress)}"
        work.mkdir()
        ctx = HandlerContext(self.service, "git", topics.DOCS_GENERATED, envelope, 1, work)
        await git_service.commit(ctx, event)
        return ctx


async def test_committed_event_has_stage_commits_release_and_no_token(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(bare)], check=True)
    monkeypatch.setenv("MLMESH_GIT_REMOTE", str(bare))
    monkeypatch.setenv("MLMESH_GIT_USERNAME", "bot")
    monkeypatch.setenv("MLMESH_GIT_TOKEN", TOKEN)
    harness = Harness(tmp_path)
    event = harness.event(stages=["git"])

    ctx = await harness.run(event)
    again = await harness.run(event)

    (output,) = ctx.outputs
    committed = output.payload
    assert output.topic is topics.EXPERIMENT_COMMITTED
    assert committed.branch == "exp/e1" and committed.tag == "exp-e1"
    assert committed.release_tag == "penguins/species/model-v1.0.0"
    assert len(committed.commits) == 4 and committed.commit == committed.commits[-1]
    assert committed.remote == str(bare) and committed.pull_request_url == ""
    assert again.outputs[0].payload.commits == committed.commits  # redelivery: nothing new
    assert _git(bare, "rev-parse", "exp/e1") == committed.commit
    assert TOKEN.encode() not in committed.SerializeToString()
    assert TOKEN not in caplog.text and TOKEN not in str(harness.progress)
    repo = Path(committed.repository)
    assert TOKEN not in (repo / ".git" / "config").read_text()

    files = set(_git(repo, "ls-tree", "-r", "--name-only", committed.commit).split())
    root = "experiments/e1"
    assert {f"{root}/data/{s}.parquet.dvc" for s in ("train", "valid", "test")} <= files
    assert not any(f.endswith(".parquet") for f in files)
    assert {f"{root}/config/experiment.json", f"{root}/data/profile.json",
            f"{root}/pipeline/pipeline.json", f"{root}/pipeline/prep.json",
            f"{root}/pipeline/reproduce.py", f"{root}/environment/requirements.lock",
            f"{root}/environment/.python-version", f"{root}/environment/platform.json",
            f"{root}/evaluation/metrics.json", f"{root}/evaluation/leaderboard.csv",
            f"{root}/evaluation/selection.json", f"{root}/report/report.md",
            f"{root}/report/model_card.md"} <= files
    selection = _git(repo, "show", f"{committed.commit}:{root}/evaluation/selection.json")
    assert json.loads(selection) == {"family": "linear"}
    pipeline = json.loads(_git(repo, "show", f"{committed.commit}:{root}/pipeline/pipeline.json"))
    assert pipeline["model"] == {"family": "linear", "params": {"C": 0.5}}
    assert pipeline["preprocessing"] == {"numeric": ["bill"], "scaler": "std"}
    subject = _git(repo, "log", "-1", "--format=%s", committed.commits[0])
    assert subject.startswith("exp e1 data:") and "accuracy=0.9712 (baseline 0.4412)" in subject
    body = _git(repo, "log", "-1", "--format=%b", committed.commits[2])
    assert "test f1_macro: 0.9601" in body
    assert [s for s, _ in harness.progress].count(StageProgress.STATE_FINISHED) == 2
    assert "already committed" in harness.progress[-1][1]


async def test_without_docs_there_is_no_report_commit(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    ctx = await harness.run(harness.event(stages=["git"], with_docs=False))
    committed = ctx.outputs[0].payload
    assert len(committed.commits) == 3 and committed.remote == ""
    subjects = _git(Path(committed.repository), "log", "--format=%s", "main..exp/e1")
    assert "report" not in subjects and "evaluation" in subjects


async def test_git_not_requested_is_skipped(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    ctx = await harness.run(harness.event(stages=["docs"]))
    assert ctx.outputs[0].payload.skipped
    assert not (tmp_path / "home" / "experiments-repo").exists()


async def test_reproduction_script_found_in_the_docs_folder(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    ctx = await harness.run(harness.event(stages=["git"], script_in_folder_only=True))
    committed = ctx.outputs[0].payload
    script = _git(Path(committed.repository), "show",
                  f"{committed.commit}:experiments/e1/pipeline/reproduce.py")
    assert script == "content of reproduce.py"
