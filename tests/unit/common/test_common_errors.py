from __future__ import annotations

import pytest

from mlmesh_common.errors import Cancelled, PermanentError, TransientError, is_transient


class TransientSourceError(Exception):
    pass


class CircuitBreakerError(Exception):
    pass


@pytest.mark.parametrize("exc, transient", [
    (ConnectionError("refused"), True), (TimeoutError(), True), (TransientError(), True),
    (TransientSourceError(), True), (CircuitBreakerError(), True), (OSError("disk"), True),
    (FileNotFoundError("x"), False), (ValueError("bad"), False), (KeyError("k"), False),
    (PermanentError(), False), (Cancelled(), False),
])
def test_transient_classification(exc: BaseException, transient: bool) -> None:
    assert is_transient(exc) is transient
