"""Let evidently 0.7.x import under pandas 3.

evidently's legacy test suite (imported by ``import evidently``) does
``from pandas.core.dtypes.common import infer_dtype_from_object``, a private helper that
pandas 3 removed, so the import fails before any drift code runs. This module restores
an equivalent helper when it is missing. It is only used by evidently's legacy
column-type *test*, which mlmesh does not run; the drift metrics do not touch it.
Import this module before the first ``import evidently``. Drop it once evidently
supports pandas 3.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas.core.dtypes.common as _common
from pandas.api.extensions import ExtensionDtype


def _infer_dtype_from_object(dtype: Any) -> type:
    """Return the numpy/extension scalar type for a dtype-like (pandas 2 behaviour)."""
    if isinstance(dtype, type) and issubclass(dtype, np.generic):
        return dtype
    if isinstance(dtype, ExtensionDtype):
        return dtype.type
    return _common.pandas_dtype(dtype).type


if not hasattr(_common, "infer_dtype_from_object"):
    _common.infer_dtype_from_object = _infer_dtype_from_object
