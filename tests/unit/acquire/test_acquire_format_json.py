"""JSON documents and JSON Lines: where the records are, flattening, streaming with drift."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from mlmesh_acquire import UnreadableTableError, to_parquet


def _convert(tmp_path: Path, name: str, content: str,
             **options: str) -> tuple[object, pd.DataFrame]:
    src = tmp_path / name
    src.write_text(content)
    out = tmp_path / f"{name}.parquet"
    info = to_parquet(src, out, options=options or None)
    return info, pd.read_parquet(out)


def test_array_of_records(tmp_path: Path) -> None:
    records = [{"a": 1, "b": "x"}, {"a": 2, "b": None}, {"a": 3, "c": 1.5}]
    info, back = _convert(tmp_path, "r.json", json.dumps(records))
    assert info.format == "json" and info.columns == ["a", "b", "c"]
    assert back["a"].tolist() == [1, 2, 3]
    assert back["c"].isna().tolist() == [True, True, False]


def test_data_key_with_nested_objects_flattened(tmp_path: Path) -> None:
    document = {
        "meta": {"page": 1, "total": 2},
        "data": [
            {"id": 1, "user": {"name": "ann", "address": {"city": "Oslo"}}, "tags": ["a"]},
            {"id": 2, "user": {"name": "bob", "address": {"city": "Rome"}}, "tags": []},
        ],
    }
    info, back = _convert(tmp_path, "api.json", json.dumps(document, indent=2))
    assert info.columns == ["id", "tags", "user.name", "user.address.city"]
    assert back["user.address.city"].tolist() == ["Oslo", "Rome"]
    assert back["tags"].tolist() == ['["a"]', "[]"]


def test_record_path_option_and_choice_among_arrays(tmp_path: Path) -> None:
    document = {"response": {"items": [{"k": 1}, {"k": 2}]},
                "errors": [{"code": 1}], "results": [{"r": 1}, {"r": 2}, {"r": 3}]}
    info, back = _convert(tmp_path, "multi.json", json.dumps(document))
    assert info.columns == ["r"] and "record_path" in info.warnings[0]
    info, back = _convert(tmp_path, "multi2.json", json.dumps(document),
                          record_path="response.items")
    assert back["k"].tolist() == [1, 2]
    with pytest.raises(UnreadableTableError, match="no 'nope'.*keys there: 'items'"):
        _convert(tmp_path, "multi3.json", json.dumps(document), record_path="response.nope")


def test_column_oriented_rows_of_lists_and_scalars(tmp_path: Path) -> None:
    _, columns = _convert(tmp_path, "cols.json", json.dumps({"x": [1, 2], "y": ["a", "b"]}))
    assert columns.to_dict("list") == {"x": [1, 2], "y": ["a", "b"]}
    _, rows = _convert(tmp_path, "rows.json", json.dumps([["name", "n"], ["a", 1], ["b", 2]]))
    assert rows.to_dict("list") == {"name": ["a", "b"], "n": [1, 2]}
    _, values = _convert(tmp_path, "values.json", json.dumps([3, 1, 2]))
    assert values["value"].tolist() == [3, 1, 2]
    _, mixed = _convert(tmp_path, "mixed.json", json.dumps([{"v": 1}, {"v": "one"}]))
    assert mixed["v"].tolist() == ["1", "one"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("[]", "empty array"),
        ('{"a": [1, 2], "b": [1]}', "without an array of records"),
        ('[{"a": 1}, {"a": 2}', "not valid JSON"),
        ('"just a string"', "single JSON str"),
    ],
)
def test_unreadable_json(tmp_path: Path, content: str, reason: str) -> None:
    with pytest.raises(UnreadableTableError, match=reason):
        _convert(tmp_path, "bad.json", content)


def test_json_lines_stream_in_chunks_with_new_keys_and_type_changes(tmp_path: Path) -> None:
    lines = [json.dumps({"id": i, "score": i}) for i in range(3000)]
    lines += [json.dumps({"id": i, "score": i + 0.5, "extra": {"k": "v"}})
              for i in range(3000, 3010)]
    lines += ["", json.dumps({"id": "last", "score": None})]
    src = tmp_path / "events.jsonl"
    src.write_text("\n".join(lines) + "\n")
    info = to_parquet(src, tmp_path / "t.parquet", chunk_bytes=8 * 1024)
    assert info.n_rows == 3011 and info.columns == ["id", "score", "extra.k"]
    table = pq.read_table(tmp_path / "t.parquet")
    assert [str(t) for t in table.schema.types] == ["string", "double", "string"]
    assert table.column("score").to_pylist()[3000] == 3000.5
    assert table.column("extra.k").to_pylist()[2999:3001] == [None, "v"]
    assert table.column("id").to_pylist()[-1] == "last"
    assert any("'id' changes type" in w for w in info.warnings)


def test_json_lines_detected_without_extension_and_bad_line_named(tmp_path: Path) -> None:
    src = tmp_path / "download"
    src.write_text('{"a": 1}\n{"a": 2}\n')
    assert to_parquet(src, tmp_path / "t.parquet").format == "jsonl"
    src.write_text('{"a": 1}\n{"a": 2\n')
    with pytest.raises(UnreadableTableError, match="line 2 is not valid JSON"):
        to_parquet(src, tmp_path / "t.parquet")
    src.write_text('{"a": 1}\n[1, 2]\n')
    with pytest.raises(UnreadableTableError, match="line 2 holds a JSON list"):
        to_parquet(src, tmp_path / "t.parquet")


def test_one_object_per_line_named_json_is_read_as_lines(tmp_path: Path) -> None:
    info, back = _convert(tmp_path, "x.json", '{"a": {"b": 1}}\n\n{"a": {"b": 2}}\n')
    assert back["a.b"].tolist() == [1, 2]
    assert info.format == "jsonl"
