"""Circuit breakers (pybreaker) around external dependencies, with their state as a metric."""

from __future__ import annotations

import threading

import pybreaker
from prometheus_client import Gauge

from mlmesh_common.errors import is_transient

BREAKER_STATE = Gauge("mlmesh_breaker_state", "circuit breaker state: 0 closed, 1 half-open, "
                      "2 open", ["breaker"])
_STATES = {pybreaker.STATE_CLOSED: 0, pybreaker.STATE_HALF_OPEN: 1, pybreaker.STATE_OPEN: 2}
_breakers: dict[str, pybreaker.CircuitBreaker] = {}
_lock = threading.Lock()
_defaults = {"fail_max": 5, "reset_timeout": 30.0}


class _StateMetric(pybreaker.CircuitBreakerListener):
    def state_change(self, cb: pybreaker.CircuitBreaker, old_state, new_state) -> None:
        BREAKER_STATE.labels(cb.name).set(_STATES.get(new_state.name, 0))


def configure(fail_max: int, reset_timeout_s: float) -> None:
    """Defaults for breakers created from now on (from Settings)."""
    _defaults.update(fail_max=fail_max, reset_timeout=reset_timeout_s)


def breaker(name: str) -> pybreaker.CircuitBreaker:
    """The process-wide breaker for dependency `name` (created on first use)."""
    with _lock:
        if name not in _breakers:
            cb = pybreaker.CircuitBreaker(fail_max=int(_defaults["fail_max"]),
                                          reset_timeout=float(_defaults["reset_timeout"]),
                                          name=name, listeners=[_StateMetric()],
                                          # Bad input says nothing about the dependency's
                                          # health: only transient errors count as failures.
                                          exclude=[lambda exc: not is_transient(exc)])
            BREAKER_STATE.labels(name).set(0)
            _breakers[name] = cb
        return _breakers[name]


def states() -> dict[str, str]:
    """Every breaker's current state by name."""
    with _lock:
        return {name: cb.current_state for name, cb in _breakers.items()}
