from __future__ import annotations

import time
import uuid

import pybreaker
import pytest

from mlmesh_common import breakers


def test_breaker_opens_probes_and_closes() -> None:
    breakers.configure(fail_max=2, reset_timeout_s=0.2)
    name = f"dep-{uuid.uuid4().hex[:6]}"
    cb = breakers.breaker(name)

    def down() -> None:
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        cb.call(down)
    with pytest.raises(pybreaker.CircuitBreakerError):
        cb.call(down)
    assert breakers.states()[name] == "open"
    assert breakers.BREAKER_STATE.labels(name)._value.get() == 2
    with pytest.raises(pybreaker.CircuitBreakerError):
        cb.call(lambda: "never called")
    time.sleep(0.25)
    assert cb.call(lambda: "up") == "up"
    assert breakers.states()[name] == "closed"
    assert breakers.BREAKER_STATE.labels(name)._value.get() == 0


def test_bad_input_does_not_trip_the_breaker() -> None:
    breakers.configure(fail_max=1, reset_timeout_s=10)
    cb = breakers.breaker(f"dep-{uuid.uuid4().hex[:6]}")
    for _ in range(3):
        with pytest.raises(ValueError):
            cb.call(lambda: int("x"))
    assert cb.current_state == "closed"
