"""Out-of-fold predictions on disk: ``oof.parquet``, one row per PREPARED train row.

Classification: one float column per class, named ``str(class)`` in the order of
``MeshModel.classes_``, holding probabilities. Regression: one column ``prediction``. Rows
of folds that were not scored (time budget) are NaN. The original class values (with their
types, e.g. int 0/1 rather than "0"/"1") travel in the parquet metadata.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

OOF_FILE = "oof.parquet"
REGRESSION_COLUMN = "prediction"
_CLASSES_KEY = b"mlmesh.classes"


class OOFFormatError(ValueError):
    """OOF predictions that do not have the agreed shape or columns."""


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def oof_frame(oof: np.ndarray, classes: list[Any] | None) -> pd.DataFrame:
    """The OOF frame for an array (n,) (regression) or (n, n_classes) (classification)."""
    arr = np.asarray(oof, dtype=float)
    if classes is None:
        if arr.ndim != 1:
            raise OOFFormatError(f"regression OOF must be 1-D; got shape {arr.shape}")
        return pd.DataFrame({REGRESSION_COLUMN: arr})
    if arr.ndim != 2 or arr.shape[1] != len(classes):
        raise OOFFormatError(
            f"classification OOF must have one column per class ({len(classes)}); "
            f"got shape {arr.shape}"
        )
    names = [str(c) for c in classes]
    if len(set(names)) != len(names):
        raise OOFFormatError(f"class names collide as strings: {names}")
    return pd.DataFrame(arr, columns=names)


def save_oof(cv_result: Any, path: Path | str) -> Path:
    """Write ``cv_result.oof`` (a CVResult, or anything with ``oof`` and ``classes``) to
    ``path`` (a file, or a folder that gets ``oof.parquet``) and return the file's path."""
    path = Path(path)
    if path.is_dir():
        path = path / OOF_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    classes = getattr(cv_result, "classes", None)
    frame = oof_frame(cv_result.oof, classes)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if classes is not None:
        meta = dict(table.schema.metadata or {})
        meta[_CLASSES_KEY] = json.dumps([_plain(c) for c in classes], default=str).encode()
        table = table.replace_schema_metadata(meta)
    pq.write_table(table, path)
    return path


def load_oof(path: Path | str) -> tuple[np.ndarray, list[Any] | None]:
    """Read an ``oof.parquet`` (or a folder holding one): ``(array, classes)``; classes is
    None for regression (array 1-D), else the class values in column order."""
    path = Path(path)
    if path.is_dir():
        path = path / OOF_FILE
    table = pq.read_table(path)
    frame = table.to_pandas()
    if list(frame.columns) == [REGRESSION_COLUMN]:
        return frame[REGRESSION_COLUMN].to_numpy(dtype=float), None
    if frame.shape[1] == 0:
        raise OOFFormatError(f"{path} has no columns; expected class columns or 'prediction'")
    names = [str(c) for c in frame.columns]
    raw = (table.schema.metadata or {}).get(_CLASSES_KEY)
    classes: list[Any] = names
    if raw is not None:
        stored = json.loads(raw)
        if [str(c) for c in stored] == names:
            classes = stored
    return frame.to_numpy(dtype=float), classes
