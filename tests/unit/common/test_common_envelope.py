from __future__ import annotations

import pytest

from mlmesh.events.v1.dataset_pb2 import DatasetAcquired, DatasetProfiled
from mlmesh.events.v1.envelope_pb2 import Producer
from mlmesh_common import topics
from mlmesh_common.envelope import decode, derive_event_id, encode, new_envelope
from mlmesh_common.errors import UndecodableEvent, UnsupportedVersion


def _env(**kw):
    return new_envelope(topics.DATASET_ACQUIRED, DatasetAcquired(n_rows=3, columns=["a"]),
                        experiment_id="e1", producer=Producer(service="t", version="1"), **kw)


def test_round_trip_keeps_every_field() -> None:
    env = _env(correlation_id="c", causation_id="x", attempt=2)
    decoded, payload = decode(encode(env), topics.DATASET_ACQUIRED)
    assert decoded == env and payload.n_rows == 3 and list(payload.columns) == ["a"]
    assert decoded.type == "mlmesh.dataset.acquired" and decoded.schema_version == 1
    assert decoded.produced_at.seconds > 0 and decoded.producer.service == "t"


def test_wrong_payload_type_is_refused_at_build_time() -> None:
    with pytest.raises(TypeError, match="DatasetAcquired"):
        new_envelope(topics.DATASET_ACQUIRED, DatasetProfiled(), experiment_id="e",
                     producer=Producer())


@pytest.mark.parametrize("raw", [b"", b"\xff\xfe garbage", b"\x0a\x03abc\x12"])
def test_undecodable_bytes(raw: bytes) -> None:
    with pytest.raises(UndecodableEvent):
        decode(raw, topics.DATASET_ACQUIRED)


def test_other_major_version_is_refused() -> None:
    env = _env()
    env.schema_version = 2
    with pytest.raises(UnsupportedVersion, match="v2"):
        decode(encode(env), topics.DATASET_ACQUIRED)


def test_event_on_the_wrong_topic_is_refused() -> None:
    with pytest.raises(UndecodableEvent, match="does not belong"):
        decode(encode(_env()), topics.DATASET_PROFILED)


def test_derived_ids_are_stable_and_distinct() -> None:
    assert derive_event_id("a", "b") == derive_event_id("a", "b")
    assert derive_event_id("a", "b") != derive_event_id("a", "c")
    assert derive_event_id("ab", "c") != derive_event_id("a", "bc")
