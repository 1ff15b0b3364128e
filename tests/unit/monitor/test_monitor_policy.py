"""Unit tests for mlmesh_monitor.policy: threshold, cooldown, budget and idempotency."""

from __future__ import annotations

import pytest

from mlmesh_common.ledger import open_ledger
from mlmesh_common.settings import Settings
from mlmesh_monitor.policy import (
    DATA_DRIFT,
    PERFORMANCE_DECAY,
    PolicyError,
    RetrainLedger,
    RetrainPolicy,
    decide,
    policy_from_settings,
    resolve_policy,
)

ON = RetrainPolicy(enabled=True, cooldown_s=100, budget=2, budget_period_s=1000)


@pytest.fixture
def ledger(tmp_path):
    store = open_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    yield RetrainLedger(store)
    store.close()


def _claim(ledger: RetrainLedger, trigger: str, now: float, policy: RetrainPolicy = ON):
    return ledger.claim("m", policy=policy, kinds=[DATA_DRIFT], trigger=trigger, now=now,
                        request={"version": "1", "parent_experiment_id": "parent"})


def test_decide_applies_enabled_triggers_cooldown_and_budget():
    assert not decide(RetrainPolicy(), [DATA_DRIFT], [], 0).allowed  # disabled by default
    only_decay = RetrainPolicy(enabled=True, retrain_on=(PERFORMANCE_DECAY,))
    assert "does not trigger" in decide(only_decay, [DATA_DRIFT], [], 0).reason
    assert decide(only_decay, [PERFORMANCE_DECAY], [], 0).allowed
    assert decide(ON, [DATA_DRIFT], [{"at": 0.0}], 150).allowed
    assert decide(ON, [DATA_DRIFT], [{"at": 0.0}], 99).reason.startswith("cooldown")
    spent = [{"at": 0.0}, {"at": 200.0}]
    assert decide(ON, [DATA_DRIFT], spent, 400).reason.startswith("budget")
    assert decide(ON, [DATA_DRIFT], spent, 1001).allowed  # the first left the period


def test_policy_layers_settings_then_tags_then_override():
    settings = Settings(monitor_retrain=True, monitor_retrain_cooldown_s=60,
                        monitor_retrain_on="performance_decay")
    default = policy_from_settings(settings)
    assert default.enabled and default.cooldown_s == 60
    assert default.retrain_on == (PERFORMANCE_DECAY,)
    policy = resolve_policy(default, {"mlmesh.monitor.cooldown_s": "600",
                                      "mlmesh.monitor.retrain_on": "data_drift",
                                      "other.tag": "x"}, {"budget": 7})
    assert (policy.cooldown_s, policy.retrain_on, policy.budget) == (600, (DATA_DRIFT,), 7)
    with pytest.raises(PolicyError, match="unknown policy field"):
        resolve_policy(default, {"mlmesh.monitor.coldown_s": "1"})
    with pytest.raises(PolicyError, match="unknown kinds"):
        RetrainPolicy(retrain_on=("drift",))
    with pytest.raises(PolicyError, match="not a valid value"):
        default.with_overrides({"enabled": "maybe"})


def test_claims_respect_cooldown_and_budget_across_ledger_instances(ledger, tmp_path):
    first = _claim(ledger, "w1", now=1000)
    assert first.decision.allowed and first.request["sent"] is False
    assert len(first.request["experiment_id"]) == 16
    ledger.mark_sent("m", first.request["event_id"])
    # a second ledger handle (another process, or after a restart) sees the claim
    other = RetrainLedger(open_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}"))
    assert _claim(other, "w2", now=1050).decision.reason.startswith("cooldown")
    second = _claim(other, "w3", now=1200)
    assert second.request is not None and second.unsent == []
    ledger.mark_sent("m", second.request["event_id"])
    assert _claim(ledger, "w4", now=1400).decision.reason.startswith("budget")
    assert [r["trigger"] for r in ledger.history("m")] == ["w1", "w3"]


def test_a_redelivered_trigger_is_never_claimed_twice_and_unsent_claims_come_back(ledger):
    policy = RetrainPolicy(enabled=True, cooldown_s=0, budget=10)
    first = _claim(ledger, "w1", now=10, policy=policy)
    again = _claim(ledger, "w1", now=11, policy=policy)  # same window delivered again
    assert again.request is None and "already claimed" in again.decision.reason
    # the first was never marked sent (a crash between claim and send): it is handed back
    # unchanged, so re-sending it reuses the same event id and experiment id
    assert again.unsent == [first.request]
    ledger.mark_sent("m", first.request["event_id"])
    assert _claim(ledger, "w2", now=12, policy=policy).unsent == []


def test_policy_override_is_validated_and_stored(ledger):
    assert ledger.policy_override("m") == {}
    ledger.set_policy("m", enabled=True, cooldown_s=5)
    assert ledger.set_policy("m", budget=1) == {"enabled": True, "cooldown_s": 5, "budget": 1}
    with pytest.raises(PolicyError):
        ledger.set_policy("m", budget="lots")
