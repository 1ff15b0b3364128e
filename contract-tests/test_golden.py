"""Golden events: committed wire bytes per topic still decode to the same example.

A renumbered, retyped or removed field makes a committed golden file decode differently
(or not at all) and fails here, in addition to `buf breaking` (test_buf.py).
"""

from __future__ import annotations

import golden_examples as golden
import pytest
from google.protobuf.message import Message

from mlmesh.events.v1.envelope_pb2 import DeadLetter
from mlmesh_common import topics
from mlmesh_common.envelope import decode

REGEN = "regenerate with `python contract-tests/golden_examples.py` (additive changes only)"


def _unset_fields(message: Message, path: str = "") -> list[str]:
    unset = []
    for field in message.DESCRIPTOR.fields:
        name = f"{path}{field.name}"
        value = getattr(message, field.name)
        if field.is_repeated:  # repeated and map fields
            if len(value) == 0:
                unset.append(name)
        elif field.message_type is not None:
            if not message.HasField(field.name):
                unset.append(name)
        elif value == field.default_value:
            unset.append(name)
    return unset


def test_every_topic_has_a_golden_file() -> None:
    missing = [t.name for t in topics.TOPICS if not (golden.GOLDEN / f"{t.name}.bin").exists()]
    assert not missing, f"no golden file for {missing}; {REGEN}"
    known = set(golden.golden_files())
    extra = sorted(p.name for p in golden.GOLDEN.glob("*.bin") if p.name not in known)
    assert not extra, f"golden files for unknown topics {extra}; {REGEN}"


@pytest.mark.parametrize("topic", topics.TOPICS, ids=lambda t: t.name)
def test_golden_decodes_to_the_example(topic: topics.Topic) -> None:
    raw = (golden.GOLDEN / f"{topic.name}.bin").read_bytes()
    env, payload = decode(raw, topic)
    expected = golden.envelopes()[topic.name]
    expected_payload = topic.payload()
    assert expected.payload.Unpack(expected_payload)
    assert payload == expected_payload, (
        f"{topic.name}: the committed wire bytes decode to a different "
        f"{topic.payload.__name__} than the example; if the .proto changed a field's number or "
        f"type that is a breaking change (new major version), otherwise {REGEN}")
    assert env == expected, f"{topic.name}: envelope differs from the example; {REGEN}"


@pytest.mark.parametrize("topic", topics.TOPICS, ids=lambda t: t.name)
def test_examples_set_every_field(topic: topics.Topic) -> None:
    """A field left at its default is not on the wire, so the golden file would not guard it."""
    payload = golden.payloads()[topic.name]
    unset = _unset_fields(payload)
    assert not unset, (f"{topic.name}: the example {topic.payload.__name__} leaves {unset} "
                       f"unset; set them in contract-tests/golden_examples.py, then {REGEN}")
    envelope = golden.envelopes()[topic.name]
    assert not _unset_fields(envelope), f"envelope fields unset: {_unset_fields(envelope)}"


def test_dead_letter_golden() -> None:
    raw = (golden.GOLDEN / golden.DEAD_LETTER_FILE).read_bytes()
    letter = DeadLetter.FromString(raw)
    assert letter == golden.dead_letter(), f"DeadLetter wire format changed; {REGEN}"
    assert not _unset_fields(letter), f"DeadLetter example leaves {_unset_fields(letter)} unset"
    source = topics.topic_by_name(letter.source_topic)
    _, payload = decode(letter.original_value, source)
    assert payload == golden.payloads()[source.name]


def test_golden_generator_check_mode() -> None:
    """The committed files are exactly what the generator writes."""
    files = golden.golden_files()
    stale = [n for n, data in files.items() if (golden.GOLDEN / n).read_bytes() != data]
    assert not stale, f"golden files differ from their examples: {stale}; {REGEN}"
