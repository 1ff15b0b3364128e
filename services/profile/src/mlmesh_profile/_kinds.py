"""What a column is: the facts computed once per column, and its inferred kind."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mlmesh_profile._common import is_listlike_cell, is_string_like

#: Strings longer than this (on average) are free text rather than categories.
TEXT_MIN_MEAN_LENGTH = 50
#: Values looked at when checking the shape of strings (dates, lengths, words).
SHAPE_SAMPLE = 5_000
#: Values parsed when checking whether strings are dates.
PARSE_SAMPLE = 500
#: A column with an id-like name and at least this share of distinct values is an id even
#: when a few values repeat (e.g. a customer id in a table with some repeat customers).
ID_NAME_MIN_UNIQUE_SHARE = 0.9
_ID_NAME = re.compile(r"(^|_)(id|uuid|guid|key|index|idx)$|^row_?(id|num|number)$|^unnamed_0$")
_ID_CAMEL = re.compile(r"[a-z0-9](Id|ID)$")
_DATE_LIKE = re.compile(
    r"^\s*(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})"
    r"([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?\s*(Z|[+-]\d{2}:?\d{2})?\s*$"
)
_BOOL_WORDS = frozenset({"true", "false", "yes", "no", "y", "n", "t", "f"})


@dataclass
class ColumnFacts:
    """What is computed once per column and shared by kinds, statistics and checks.

    ``unique`` is the exact number of distinct values and ``top`` the most frequent ones
    with their exact counts (cells that cannot be hashed, such as lists, are counted by
    their text); ``sorted_values`` holds a plain numeric column's values sorted (for
    quantiles); ``shape_sample`` is a seeded sample of at most :data:`SHAPE_SAMPLE`
    non-missing values, used for string lengths and date checks.
    """

    name: str
    series: pd.Series
    non_null: pd.Series
    unique: int
    top: pd.Series
    shape_sample: pd.Series
    has_list_cells: bool = False
    sorted_values: np.ndarray | None = field(default=None, repr=False)
    parsed_dates: pd.Series | None = field(default=None, repr=False)

    @property
    def n(self) -> int:
        return int(self.series.size)

    @property
    def count(self) -> int:
        return int(self.non_null.size)

    @property
    def missing(self) -> int:
        return self.n - self.count


#: Most frequent values kept per column.
TOP_KEPT = 10


def column_facts(s: pd.Series, seed: int = 0) -> ColumnFacts:
    """Count the values of ``s`` once (exactly) and draw its shape sample.

    Plain numpy numbers are sorted once (distinct values and counts come from the runs
    of equal values, quantiles from the sorted array); everything else is counted with a
    hash table.
    """
    non_null = s.dropna()
    has_lists = False
    sorted_values = None
    if isinstance(s.dtype, np.dtype) and s.dtype.kind in "iuf":
        sorted_values = np.sort(non_null.to_numpy())
        unique, top = _sorted_counts(sorted_values)
    else:
        try:
            counts = non_null.value_counts(sort=True, dropna=True)
        except TypeError:  # unhashable cells (lists, dicts, arrays)
            has_lists = bool(non_null.head(PARSE_SAMPLE).map(is_listlike_cell).any())
            counts = non_null.astype(str).value_counts(sort=True)
        unique, top = int(counts.size), counts.head(TOP_KEPT)
    if non_null.size > SHAPE_SAMPLE:
        shape_sample = non_null.sample(SHAPE_SAMPLE, random_state=seed).sort_index()
    else:
        shape_sample = non_null
    if not has_lists and pd.api.types.is_object_dtype(s) and not non_null.empty:
        has_lists = bool(shape_sample.head(PARSE_SAMPLE).map(is_listlike_cell).any())
    return ColumnFacts(str(s.name), s, non_null, unique, top, shape_sample, has_lists,
                       sorted_values)  # fmt: skip


def _sorted_counts(values: np.ndarray) -> tuple[int, pd.Series]:
    """Distinct values and the most frequent ones (ties: smaller value first) of sorted
    ``values``."""
    if values.size == 0:
        return 0, pd.Series([], dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    counts = np.diff(np.r_[starts, values.size])
    distinct = values[starts]
    k = min(TOP_KEPT, distinct.size)
    best = np.argpartition(-counts, k - 1)[:k] if distinct.size > k else np.arange(k)
    best = best[np.lexsort((distinct[best], -counts[best]))]
    return int(distinct.size), pd.Series(counts[best], index=distinct[best])


def column_kind(s: pd.Series) -> str:
    """Classify a column as one of ``COLUMN_KINDS``.

    In order: ``constant`` (at most one distinct value), ``boolean`` (bool dtype, or two
    values that read as true/false, yes/no or 0/1), ``datetime`` (datetime dtype or
    strings that parse as dates), ``id`` (a distinct value in every row, and an id-like
    name, a run of integers or short strings; or an id-like name with at least 90%
    distinct values), ``text`` (long free strings), then ``numeric`` for numbers and
    ``categorical`` for the rest.
    """
    return kind_of(column_facts(s))


def kind_of(f: ColumnFacts) -> str:
    """The kind of the column described by ``f`` (see :func:`column_kind`)."""
    s = f.series
    if f.unique <= 1:
        return "constant"
    if _is_boolean(f):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(s) or _strings_are_dates(f):
        return "datetime"
    numeric = pd.api.types.is_numeric_dtype(s)
    if _is_id(f, numeric):
        return "id"
    if not numeric and not f.has_list_cells and _is_text(f):
        return "text"
    return "numeric" if numeric else "categorical"


def normalised_name(name: str) -> str:
    """Lower case, with runs of spaces and dashes read as one underscore."""
    return re.sub(r"[\s\-]+", "_", name.strip()).lower()


def id_like_name(name: str) -> bool:
    """Whether the column name reads as an identifier (``id``, ``order_id``, ``OrderId``...)."""
    return bool(_ID_NAME.search(normalised_name(name)) or _ID_CAMEL.search(name.strip()))


def _is_boolean(f: ColumnFacts) -> bool:
    if pd.api.types.is_bool_dtype(f.series):
        return True
    if f.unique != 2 or f.has_list_cells:
        return False
    values = f.top.index.tolist()
    if pd.api.types.is_numeric_dtype(f.series):
        return set(values) <= {0, 1}
    words = {str(v).strip().lower() for v in values}
    return words <= _BOOL_WORDS and len(words) == 2


def _strings_are_dates(f: ColumnFacts) -> bool:
    if not is_string_like(f.series) or f.non_null.empty or f.has_list_cells:
        return False
    sample = f.non_null.head(PARSE_SAMPLE).astype(str)
    if sample.str.match(_DATE_LIKE).mean() < 0.95:
        return False
    parsed = parse_dates(f.shape_sample)
    if parsed.notna().mean() < 0.95:
        return False
    f.parsed_dates = parsed
    return True


def parse_dates(values: pd.Series) -> pd.Series:
    """Strings parsed as datetimes (NaT where they do not parse).

    One format for all when a format guessed from the first value fits 95% of them
    (month first, then day first, so 31/12/2024 is read right), mixed formats otherwise.
    """
    strings = values.astype(str)
    guesses: list[str] = []
    if not strings.empty:
        for dayfirst in (False, True):
            try:
                guess = pd.tseries.api.guess_datetime_format(strings.iloc[0], dayfirst=dayfirst)
            except (TypeError, ValueError):
                guess = None
            if guess and guess not in guesses:
                guesses.append(guess)
    for guess in guesses:
        parsed = pd.to_datetime(strings, errors="coerce", format=guess)
        if parsed.notna().mean() >= 0.95:
            return parsed
    return pd.to_datetime(strings, errors="coerce", format="mixed")


def _is_id(f: ColumnFacts, numeric: bool) -> bool:
    s, n = f.series, f.n
    if n < 2 or f.has_list_cells:
        return False
    named = id_like_name(f.name)
    every_row_distinct = f.unique == n and f.count == n
    if not every_row_distinct:
        # an id-like name with nearly every value distinct (repeat customers, a few gaps)
        return bool(
            named
            and f.count >= 20
            and f.unique >= ID_NAME_MIN_UNIQUE_SHARE * f.count
            and (pd.api.types.is_integer_dtype(s) or is_string_like(s))
        )
    if named:
        return True
    if numeric:
        if not pd.api.types.is_integer_dtype(s):
            return False
        values = f.non_null.to_numpy(dtype=np.int64)
        return bool(values.max() - values.min() + 1 == n)  # a run of consecutive integers
    if not is_string_like(s) or n < 20:
        return False
    lengths = f.shape_sample.astype(str).str.len()
    return bool(lengths.mean() < TEXT_MIN_MEAN_LENGTH)


def _is_text(f: ColumnFacts) -> bool:
    strings = f.shape_sample.astype(str)
    if strings.empty:
        return False
    mean_length = strings.str.len().mean()
    words = strings.str.split().str.len().mean()
    unique_ratio = f.unique / max(f.count, 1)
    return bool(mean_length > TEXT_MIN_MEAN_LENGTH or (words >= 5 and unique_ratio >= 0.5))
