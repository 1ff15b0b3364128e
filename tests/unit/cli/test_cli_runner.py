from __future__ import annotations

import pytest

from mlmesh_cli.runner import SERVICES, parse_replicas


def test_replicas_parse() -> None:
    assert parse_replicas("tune=2, train-gpu=3") == {"tune": 2, "train-gpu": 3}
    assert parse_replicas("") == {}


@pytest.mark.parametrize("text", ["tune", "tune=0", "nope=2", "tune=x"])
def test_bad_replicas_are_explained(text: str) -> None:
    with pytest.raises(ValueError, match="service"):
        parse_replicas(text)


def test_every_service_has_a_module() -> None:
    assert set(SERVICES) == {"gateway", "acquire", "profile", "prep", "train-gpu", "tune",
                             "select", "docs", "git", "publish", "monitor", "watchdog"}
