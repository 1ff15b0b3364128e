"""The retraining policy per model: which drift kinds trigger it, a cooldown and a budget.

A policy comes from three layers, later ones winning field by field: the monitor's
settings (``MLMESH_MONITOR_RETRAIN*``), the model's experiment spec tags
(``mlmesh.monitor.<field>``, e.g. ``mlmesh.monitor.cooldown_s=600``), and an override
stored in the ledger (``set_policy``). Every retraining request is claimed in the ledger
*before* it is sent, inside one transaction that also checks the cooldown and the budget,
so no two requests for a model fall inside its cooldown, even across restarts, replicas
and redelivered windows. A claim whose send did not complete is re-sent later with the
same event id and experiment id, so downstream deduplication makes the retry harmless.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from mlmesh_common.envelope import derive_event_id
from mlmesh_common.ledger import Ledger

DATA_DRIFT = "data_drift"
PREDICTION_DRIFT = "prediction_drift"
PERFORMANCE_DECAY = "performance_decay"
KINDS = (DATA_DRIFT, PREDICTION_DRIFT, PERFORMANCE_DECAY)
TAG_PREFIX = "mlmesh.monitor."


class PolicyError(ValueError):
    """A policy field with a value it cannot take."""


@dataclass(frozen=True)
class RetrainPolicy:
    """When drift or decay of a model requests a retraining experiment."""

    enabled: bool = False
    retrain_on: tuple[str, ...] = KINDS
    cooldown_s: float = 3600.0
    budget: int = 3
    budget_period_s: float = 86_400.0
    drift_share: float = 0.5
    decay_threshold: float = 0.1

    def __post_init__(self) -> None:
        unknown = [k for k in self.retrain_on if k not in KINDS]
        if unknown:
            raise PolicyError(f"retrain_on has unknown kinds {unknown}; use any of {KINDS}")
        if self.cooldown_s < 0 or self.budget_period_s <= 0 or self.budget < 0:
            raise PolicyError("cooldown_s must be >= 0, budget >= 0 and budget_period_s > 0 "
                              f"(got {self.cooldown_s}, {self.budget}, {self.budget_period_s})")
        if not 0 < self.drift_share <= 1:
            raise PolicyError(f"drift_share {self.drift_share} must be in (0, 1]")
        if self.decay_threshold <= 0:
            raise PolicyError(f"decay_threshold {self.decay_threshold} must be positive (0.1 "
                              "= 10% worse than the test score)")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "retrain_on": list(self.retrain_on)}

    def with_overrides(self, values: Mapping[str, Any]) -> RetrainPolicy:
        """This policy with ``values`` (field name -> value or its text form) applied."""
        known = {f.name: f for f in fields(self)}
        changes: dict[str, Any] = {}
        for name, value in values.items():
            if name not in known:
                raise PolicyError(f"unknown policy field {name!r}; use one of {sorted(known)}")
            changes[name] = _coerce(name, value)
        return replace(self, **changes)


def _coerce(name: str, value: Any) -> Any:
    try:
        if name == "enabled":
            if isinstance(value, str):
                if value.strip().lower() not in ("1", "true", "yes", "on", "0", "false", "no",
                                                 "off"):
                    raise ValueError(value)
                return value.strip().lower() in ("1", "true", "yes", "on")
            return bool(value)
        if name == "retrain_on":
            items = value.split(",") if isinstance(value, str) else list(value)
            return tuple(i.strip() for i in items if i.strip())
        if name == "budget":
            return int(value)
        return float(value)
    except (TypeError, ValueError) as exc:
        raise PolicyError(f"policy field {name}={value!r} is not a valid value") from exc


def policy_from_settings(settings: Any) -> RetrainPolicy:
    """The default policy from the MLMESH_MONITOR_* settings."""
    return RetrainPolicy(
        enabled=settings.monitor_retrain,
        retrain_on=_coerce("retrain_on", settings.monitor_retrain_on),
        cooldown_s=settings.monitor_retrain_cooldown_s, budget=settings.monitor_retrain_budget,
        budget_period_s=settings.monitor_retrain_budget_period_s,
        drift_share=settings.monitor_drift_share,
        decay_threshold=settings.monitor_decay_threshold)


def resolve_policy(default: RetrainPolicy, tags: Mapping[str, str] | None = None,
                   override: Mapping[str, Any] | None = None) -> RetrainPolicy:
    """``default`` with the spec tags ``mlmesh.monitor.<field>`` and a stored override."""
    from_tags = {k[len(TAG_PREFIX):]: v for k, v in (tags or {}).items()
                 if k.startswith(TAG_PREFIX)}
    return default.with_overrides(from_tags).with_overrides(override or {})


@dataclass(frozen=True)
class Decision:
    """Whether a retraining request may go out now, and why (or why not)."""

    allowed: bool
    reason: str


def decide(policy: RetrainPolicy, kinds: Iterable[str], history: list[dict[str, Any]],
           now: float) -> Decision:
    """Apply ``policy`` to a window whose drift ``kinds`` were detected, given the model's
    earlier requests (``history``: dicts with ``at``, seconds)."""
    if not policy.enabled:
        return Decision(False, "retraining is disabled for this model")
    triggering = [k for k in kinds if k in policy.retrain_on]
    if not triggering:
        return Decision(False, f"{', '.join(kinds) or 'no drift'} does not trigger retraining "
                               f"(retrain_on: {', '.join(policy.retrain_on) or 'nothing'})")
    if history:
        last = max(r["at"] for r in history)
        if now - last < policy.cooldown_s:
            return Decision(False, f"cooldown: the last retraining was requested "
                                   f"{now - last:.0f} s ago (cooldown {policy.cooldown_s:.0f} s)")
    recent = [r for r in history if now - r["at"] < policy.budget_period_s]
    if len(recent) >= policy.budget:
        return Decision(False, f"budget: {len(recent)} retrainings in the last "
                               f"{policy.budget_period_s:.0f} s (budget {policy.budget})")
    return Decision(True, f"{', '.join(triggering)} detected")


@dataclass(frozen=True)
class Claim:
    """The outcome of a claim: the decision, the new request when allowed, and earlier
    requests whose sending never completed (to be sent again, unchanged)."""

    decision: Decision
    request: dict[str, Any] | None
    unsent: list[dict[str, Any]]


def _scope(model: str) -> str:
    return f"monitor.retrain:{model}"


def _policy_scope(model: str) -> str:
    return f"monitor.policy:{model}"


class RetrainLedger:
    """Per-model retraining requests and policy overrides, kept in the ledger."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def policy_override(self, model: str) -> dict[str, Any]:
        """The stored override of ``model`` (empty when none)."""
        return dict(self.ledger.state_get(_policy_scope(model)) or {})

    def set_policy(self, model: str, **values: Any) -> dict[str, Any]:
        """Store an override for ``model`` (validated; merged with the stored one)."""
        merged = {**self.policy_override(model), **values}
        RetrainPolicy().with_overrides(merged)  # raises PolicyError on a bad field
        self.ledger.state_put(_policy_scope(model), merged)
        return merged

    def history(self, model: str) -> list[dict[str, Any]]:
        """Every retraining request remembered for ``model``, oldest first."""
        return list((self.ledger.state_get(_scope(model)) or {}).get("requests", []))

    def claim(self, model: str, *, policy: RetrainPolicy, kinds: list[str], trigger: str,
              now: float, request: Mapping[str, Any]) -> Claim:
        """Atomically decide and, when allowed, record a request for ``model``.

        ``trigger`` identifies what caused it (the window id): a trigger already claimed
        is never claimed again. ``request`` holds what the caller wants to remember with
        the claim (model version, source experiment id).
        """
        outcome: dict[str, Any] = {}

        def update(state: dict[str, Any] | None) -> dict[str, Any] | None:
            history = list((state or {}).get("requests", []))
            outcome["unsent"] = [r for r in history if not r.get("sent")]
            if any(r.get("trigger") == trigger for r in history):
                outcome["decision"] = Decision(False, f"already claimed for {trigger}")
                return None
            decision = decide(policy, kinds, history, now)
            outcome["decision"] = decision
            if not decision.allowed:
                return None
            seq = len(history) + int((state or {}).get("pruned", 0)) + 1
            event_id = derive_event_id("monitor.retrain", model, str(seq), trigger)
            new = {**request, "trigger": trigger, "kinds": kinds, "at": now, "sent": False,
                   "event_id": event_id, "experiment_id": uuid.UUID(event_id).hex[:16],
                   "reason": decision.reason}
            outcome["request"] = new
            keep = max(policy.budget_period_s, policy.cooldown_s)
            kept = [r for r in history if now - r["at"] < keep or not r.get("sent")]
            pruned = int((state or {}).get("pruned", 0)) + len(history) - len(kept)
            return {"requests": [*kept, new], "pruned": pruned}

        self.ledger.state_update(_scope(model), update)
        return Claim(outcome["decision"], outcome.get("request"), outcome.get("unsent", []))

    def mark_sent(self, model: str, event_id: str) -> None:
        """Record that the request ``event_id`` of ``model`` was produced."""

        def update(state: dict[str, Any] | None) -> dict[str, Any] | None:
            if not state:
                return None
            requests = [{**r, "sent": True} if r.get("event_id") == event_id else r
                        for r in state.get("requests", [])]
            return {**state, "requests": requests}

        self.ledger.state_update(_scope(model), update)
