"""Python values and pandas frames to Arrow, without failing on mixed columns."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import pandas as pd
import pyarrow as pa

from mlmesh_acquire.formats._sink import ParquetSink


def is_missing(value: object) -> bool:
    """``None`` and float NaN (pandas' "missing")."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def values_to_array(name: str, values: Sequence[object], sink: ParquetSink) -> pa.Array:
    """An Arrow array of ``values``; a column mixing kinds (numbers and text) becomes text."""
    cleaned = [None if is_missing(v) else v for v in values]
    try:
        return pa.array(cleaned)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        pass
    sink.warn(f"column {name!r} mixes kinds of values (e.g. numbers and text); stored as text")
    return pa.array([None if v is None else _as_text(v) for v in cleaned], type=pa.string())


def frame_to_table(frame: pd.DataFrame, sink: ParquetSink) -> pa.Table:
    """A pandas chunk as an Arrow table, column by column (object columns checked)."""
    arrays = []
    for position in range(frame.shape[1]):
        series = frame.iloc[:, position]
        name = str(frame.columns[position])
        if series.dtype == object:
            arrays.append(values_to_array(name, series.tolist(), sink))
        else:
            try:
                arrays.append(pa.Array.from_pandas(series))
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                arrays.append(values_to_array(name, series.astype(object).tolist(), sink))
    return pa.Table.from_arrays(arrays, names=[str(c) for c in frame.columns])


def _as_text(value: object) -> str:
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=str, ensure_ascii=False)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)
