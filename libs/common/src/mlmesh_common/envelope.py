"""Build, encode and decode the Envelope every mlmesh message travels in."""

from __future__ import annotations

import uuid
from typing import TypeVar

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from google.protobuf.timestamp_pb2 import Timestamp

from mlmesh.events.v1.envelope_pb2 import Envelope, Producer
from mlmesh_common.errors import UndecodableEvent, UnsupportedVersion
from mlmesh_common.topics import Topic

M = TypeVar("M", bound=Message)
_NAMESPACE = uuid.UUID("6f0c52d4-8d1b-4a4e-9a1c-6d6c6573686d")


def derive_event_id(*parts: str) -> str:
    """A stable event id from its causes, so a redone handler re-emits the same ids."""
    return str(uuid.uuid5(_NAMESPACE, "\x1f".join(parts)))


def new_envelope(topic: Topic, payload: Message, *, experiment_id: str, producer: Producer,
                 correlation_id: str = "", causation_id: str = "", attempt: int = 1,
                 event_id: str | None = None) -> Envelope:
    """An envelope for `payload` on `topic`; the payload type must be the topic's."""
    if not isinstance(payload, topic.payload):
        raise TypeError(f"{topic.name} carries {topic.payload.__name__}, "
                        f"not {type(payload).__name__}")
    env = Envelope(event_id=event_id or str(uuid.uuid4()), type=topic.event_type,
                   schema_version=topic.major, experiment_id=experiment_id,
                   correlation_id=correlation_id, causation_id=causation_id,
                   attempt=attempt)
    env.produced_at.GetCurrentTime()
    env.producer.CopyFrom(producer)
    env.payload.Pack(payload, deterministic=True)
    return env


def encode(env: Envelope) -> bytes:
    """Serialize an envelope for the wire."""
    return env.SerializeToString(deterministic=True)


def decode(raw: bytes | None, topic: Topic) -> tuple[Envelope, Message]:
    """Parse bytes from `topic` into (envelope, payload).

    Raises UndecodableEvent for bytes that are not an envelope of the topic's payload, and
    UnsupportedVersion for a major schema version this code does not speak.
    """
    if not raw:
        raise UndecodableEvent(f"empty message on {topic.name}; producers must send an Envelope")
    env = Envelope()
    try:
        env.ParseFromString(raw)
    except DecodeError as exc:
        raise UndecodableEvent(f"bytes on {topic.name} are not an mlmesh Envelope: {exc}") from exc
    if env.schema_version != topic.major:
        raise UnsupportedVersion(
            f"{topic.name} speaks schema v{topic.major}, the event is v{env.schema_version}; "
            f"route v{env.schema_version} events to their own topic")
    if env.type != topic.event_type:
        raise UndecodableEvent(f"event type {env.type!r} does not belong on {topic.name} "
                               f"(expected {topic.event_type!r})")
    payload = topic.payload()
    if not env.payload.Unpack(payload):
        raise UndecodableEvent(f"payload {env.payload.type_url!r} on {topic.name} is not a "
                               f"{topic.payload.DESCRIPTOR.full_name}")
    return env, payload


def to_json(message: Message) -> str:
    """A message as compact JSON (field names as in the .proto)."""
    return json_format.MessageToJson(message, preserving_proto_field_name=True, indent=None)


def to_dict(message: Message) -> dict:
    """A message as a plain dict (field names as in the .proto)."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def timestamp_seconds(ts: Timestamp) -> float:
    """A protobuf Timestamp as POSIX seconds."""
    return ts.seconds + ts.nanos / 1e9
