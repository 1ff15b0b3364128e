"""The ledger projection: events move experiments through their stages to completion."""

from __future__ import annotations

from pathlib import Path

from mlmesh_common.ledger import open_ledger
from mlmesh_gateway.projection import FINISHING_EVENTS, STAGES, transition
from mlmesh_gateway.service import apply_event


def test_progress_never_finishes_a_stage() -> None:
    change = transition("mlmesh.stage.progress", {"stage": "train", "state": "STATE_FINISHED",
                                                  "percent": 100})
    assert change.stage == "train" and change.stage_status == "running"


def test_failure_carries_the_reason() -> None:
    change = transition("mlmesh.experiment.failed", {"stage": "acquire",
                                                     "reason": "acquire failed: 404"})
    assert change.status == "failed" and change.failure_reason == "acquire failed: 404"


def test_completion_waits_for_every_stage_in_any_order(tmp_path: Path) -> None:
    ledger = open_ledger(f"sqlite:///{tmp_path / 'l.db'}")
    apply_event(ledger, "x", "r", "mlmesh.experiment.requested",
                {"spec": {"project": "p"}}, 1.0)
    events = list(FINISHING_EVENTS.items())
    # publish arrives before git: not complete yet; git completes it.
    order = [e for e in events if e[1] != "git"] + [e for e in events if e[1] == "git"]
    outcomes = [apply_event(ledger, "x", f"e{i}", etype,
                            {"skipped": stage == "docs"} if stage == "docs" else {}, 2.0 + i)
                for i, (etype, stage) in enumerate(order)]
    assert outcomes[:-1] == [False] * (len(order) - 1) and outcomes[-1] is True
    record = ledger.get_experiment("x")
    assert record.status == "running"  # the gateway's emitted experiment.completed finishes it
    assert {s.name: s.status for s in record.stages}["docs"] == "skipped"
    assert {s.name for s in record.stages} == set(STAGES)


def test_results_accumulate(tmp_path: Path) -> None:
    ledger = open_ledger(f"sqlite:///{tmp_path / 'l.db'}")
    apply_event(ledger, "x", "r", "mlmesh.experiment.requested", {"spec": {}}, 1.0)
    apply_event(ledger, "x", "a", "mlmesh.model.selected", {
        "winner": {"family": "lightgbm"}, "test_score": 0.9, "baseline_test_score": 0.4,
        "metric": "accuracy", "leaderboard": [{"family": "lightgbm", "cv_mean": 0.91}],
        "model": {"uri": "file:///m"}, "selection": {"uri": "file:///s/"},
        "test_score_ci_low": 0.85, "test_score_ci_high": 0.94, "ensemble_kind": "caruana"},
        2.0)
    apply_event(ledger, "x", "b", "mlmesh.experiment.failed", {"stage": "docs",
                                                              "reason": "boom"}, 3.0)
    record = ledger.get_experiment("x")
    assert record.result["winner"] == "lightgbm" and record.result["model_uri"] == "file:///m"
    assert record.result["test_score_ci"] == [0.85, 0.94]
    assert record.result["ensemble_kind"] == "caruana"
    assert record.result["selection_uri"] == "file:///s/"
    assert record.status == "failed" and record.failure_reason == "boom"


def test_delivery_results_are_visible(tmp_path: Path) -> None:
    ledger = open_ledger(f"sqlite:///{tmp_path / 'l.db'}")
    apply_event(ledger, "x", "r", "mlmesh.experiment.requested", {"spec": {}}, 1.0)
    apply_event(ledger, "x", "d", "mlmesh.docs.generated", {
        "white_paper_pdf": {"uri": "file:///wp.pdf"}, "reproduction": {"uri": "file:///r.py"}},
        2.0)
    apply_event(ledger, "x", "g", "mlmesh.experiment.committed", {
        "commit": "c2", "commits": ["c1", "c2"], "release_tag": "p/y/model-v1.0.0"}, 3.0)
    apply_event(ledger, "x", "p", "mlmesh.model.published", {
        "alias": "champion", "promoted_to_champion": True, "onnx": {"uri": "file:///m.onnx"}},
        4.0)
    result = ledger.get_experiment("x").result
    assert result["white_paper_uri"] == "file:///wp.pdf"
    assert result["reproduction_uri"] == "file:///r.py"
    assert result["git"]["commits"] == ["c1", "c2"]
    assert result["git"]["release_tag"] == "p/y/model-v1.0.0"
    assert result["registry_alias"] == "champion" and result["promoted_to_champion"] is True
    assert result["onnx_uri"] == "file:///m.onnx"
