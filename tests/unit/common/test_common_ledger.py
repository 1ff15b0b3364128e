"""The same ledger tests against both storages: SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from mlmesh_common.ledger import DeadLetterRecord, Ledger, open_ledger


@pytest.fixture(params=["sqlite", "postgres"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Ledger:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    led = open_ledger(url)
    yield led
    led.close()


def test_processed_events_are_remembered_per_group(ledger: Ledger) -> None:
    assert not ledger.has_processed("g", "e1")
    assert ledger.mark_processed("g", "e1") is True
    assert ledger.mark_processed("g", "e1") is False
    assert ledger.has_processed("g", "e1") and not ledger.has_processed("other", "e1")


def test_experiment_lifecycle(ledger: Ledger) -> None:
    assert ledger.create_experiment("x1", "p", {"dataset_uri": "file:///a"})
    assert not ledger.create_experiment("x1", "p", {"other": 1})
    assert ledger.get_experiment("x1").spec == {"dataset_uri": "file:///a"}
    assert ledger.set_status("x1", "running")
    assert not ledger.set_status("x1", "running")
    ledger.merge_result("x1", {"a": 1})
    ledger.merge_result("x1", {"b": 2})
    assert ledger.set_status("x1", "failed", "acquire failed: 404")
    assert not ledger.set_status("x1", "completed"), "a terminal status is never left"
    record = ledger.get_experiment("x1")
    assert record.status == "failed" and record.failure_reason == "acquire failed: 404"
    assert record.result == {"a": 1, "b": 2}
    assert ledger.get_experiment("missing") is None


def test_cancel_is_visible(ledger: Ledger) -> None:
    ledger.create_experiment("c1", "p", {})
    assert not ledger.is_cancelled("c1")
    ledger.set_status("c1", "cancelled")
    assert ledger.is_cancelled("c1")


def test_list_filters_and_orders_newest_first(ledger: Ledger) -> None:
    for i in range(3):
        ledger.create_experiment(f"l{i}", "a" if i < 2 else "b", {})
    assert [r.experiment_id for r in ledger.list_experiments("a")] == ["l1", "l0"]
    assert len(ledger.list_experiments(limit=2)) == 2


def test_stages_never_leave_finished(ledger: Ledger) -> None:
    ledger.create_experiment("s1", "p", {})
    ledger.upsert_stage("s1", "acquire", "running", 10, "fetching", at=1.0)
    ledger.upsert_stage("s1", "acquire", "finished", 100, "done", at=2.0)
    ledger.upsert_stage("s1", "acquire", "running", 50, "late progress", at=3.0)
    ledger.upsert_stage("s1", "profile", "running", 5, at=4.0)
    stages = ledger.get_stages("s1")
    assert [s.name for s in stages] == ["acquire", "profile"]
    assert stages[0].status == "finished" and stages[0].percent == 100
    assert stages[0].started_at == 1.0 and stages[0].finished_at == 2.0


def test_work_starts_with_the_first_stage_else_at_creation(ledger: Ledger) -> None:
    assert ledger.work_started_at("nobody") is None
    ledger.create_experiment("w1", "p", {})
    created = ledger.get_experiment("w1").created_at
    assert ledger.work_started_at("w1") == pytest.approx(created)
    ledger.upsert_stage("w1", "profile", "running", 5, at=created + 9.0)
    ledger.upsert_stage("w1", "acquire", "finished", 100, at=created + 4.0)
    assert ledger.work_started_at("w1") == pytest.approx(created + 4.0)


def test_event_log_dedups_and_pages(ledger: Ledger) -> None:
    ledger.create_experiment("v1", "p", {})
    first = ledger.append_event("v1", "ev1", "t", "acquire", "running", {"k": 1}, 1.0)
    assert ledger.append_event("v1", "ev1", "t", "acquire", "running", {}, 1.0) is None
    second = ledger.append_event("v1", "ev2", "t", "acquire", "finished", {}, 2.0)
    assert second > first
    assert [e.event_id for e in ledger.events_since("v1")] == ["ev1", "ev2"]
    assert [e.event_id for e in ledger.events_since("v1", first)] == ["ev2"]
    assert ledger.events_since("v1")[0].payload == {"k": 1}


def test_fanin_counts_each_item_once_under_concurrency(ledger: Ledger) -> None:
    def add(i: int) -> None:
        for _ in range(3):
            ledger.fanin_add("scope", f"item{i}", {"i": i})

    threads = [threading.Thread(target=add, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ledger.fanin_add("scope", "item0", {"i": 0}) == 8
    assert set(ledger.fanin_items("scope")) == {f"item{i}" for i in range(8)}


def test_coordinator_state(ledger: Ledger) -> None:
    assert ledger.state_get("s") is None
    assert ledger.state_init("s", {"n": 1}) == {"n": 1}
    assert ledger.state_init("s", {"n": 2}) == {"n": 1}
    ledger.state_put("s", {"n": 3})
    assert ledger.state_get("s") == {"n": 3}


def test_unknown_url_is_explained() -> None:
    with pytest.raises(ValueError, match="MLMESH_LEDGER_URL"):
        open_ledger("mysql://x")


def _letter(letter_id: str, **kw) -> DeadLetterRecord:
    values = dict(id=letter_id, dlq_topic="t.dlq", source_topic="t", experiment_id="x",
                  event_id="e", consumer_group="g", error_type="ValueError",
                  error_message="bad", stack="Traceback", attempt=1, failed_at=1.0,
                  original_key=b"k", original_value=b"\x00\xffbytes", original_headers={"a": "b"},
                  status="open", updated_at=1.0)
    values.update(kw)
    return DeadLetterRecord(**values)


def test_dead_letters_record_list_and_move(ledger: Ledger) -> None:
    assert ledger.record_dead_letter(_letter("t.dlq:0:1"))
    assert not ledger.record_dead_letter(_letter("t.dlq:0:1"))
    ledger.record_dead_letter(_letter("t.dlq:0:2", failed_at=2.0, experiment_id="y",
                                      source_topic="u"))
    assert [r.id for r in ledger.list_dead_letters()] == ["t.dlq:0:2", "t.dlq:0:1"]
    assert [r.id for r in ledger.list_dead_letters(experiment_id="x")] == ["t.dlq:0:1"]
    got = ledger.get_dead_letter("t.dlq:0:1")
    assert got.original_value == b"\x00\xffbytes" and got.original_headers == {"a": "b"}
    assert ledger.count_dead_letters() == {"t": 1, "u": 1}
    assert ledger.set_dead_letter_status("t.dlq:0:1", "replayed")
    assert not ledger.set_dead_letter_status("t.dlq:0:1", "purged"), "only open ones move"
    assert [r.id for r in ledger.list_dead_letters(status="replayed")] == ["t.dlq:0:1"]
    assert ledger.get_dead_letter("missing") is None


def test_reopen_only_failed(ledger: Ledger) -> None:
    ledger.create_experiment("r1", "p", {})
    assert not ledger.reopen("r1")
    ledger.set_status("r1", "failed", "boom")
    assert ledger.reopen("r1")
    record = ledger.get_experiment("r1")
    assert record.status == "running" and record.failure_reason == ""
