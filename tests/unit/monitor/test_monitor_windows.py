"""Unit tests for mlmesh_monitor.windows."""

from __future__ import annotations

import pandas as pd
import pytest

from mlmesh_monitor.windows import (
    ModelWindows,
    TumblingWindow,
    WindowConfigError,
    WindowInputError,
)


def _rows(start: int, n: int) -> list[dict]:
    return [{"x": float(i), "k": f"c{i % 3}"} for i in range(start, start + n)]


def test_closes_by_count_and_splits_large_batches():
    window = TumblingWindow(size=4)
    assert window.add(_rows(0, 3), now=0.0) == []
    assert window.pending == 3

    closed = window.add(_rows(3, 10), now=1.0)  # 13 rows -> 3 windows of 4, 1 pending

    assert [len(w) for w in closed] == [4, 4, 4]
    assert [w["x"].tolist() for w in closed] == [
        [0.0, 1.0, 2.0, 3.0],
        [4.0, 5.0, 6.0, 7.0],
        [8.0, 9.0, 10.0, 11.0],
    ]
    assert all(w.attrs["closed_by"] == "count" for w in closed)
    assert closed[0].attrs["window_start"] == 0.0
    assert closed[1].attrs["window_start"] == 1.0
    assert window.pending == 1
    assert window.opened_at == 1.0
    assert list(closed[0].columns) == ["x", "k"]


def test_closes_by_time_and_late_rows_open_the_next_window():
    window = TumblingWindow(seconds=10)
    assert window.add(_rows(0, 2), now=100.0) == []
    assert window.add(_rows(2, 2), now=109.9) == []
    assert window.poll(now=105.0) == []

    closed = window.add(_rows(4, 1), now=110.0)  # at the deadline: closes, row goes to next

    assert len(closed) == 1
    assert closed[0]["x"].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert closed[0].attrs == {"window_start": 100.0, "window_end": 110.0, "closed_by": "time"}
    assert window.pending == 1 and window.opened_at == 110.0

    # nothing arrives: poll closes it once the time is up, and only once
    assert window.poll(now=119.0) == []
    (late,) = window.poll(now=125.0)
    assert late["x"].tolist() == [4.0]
    assert window.poll(now=200.0) == []
    assert window.pending == 0 and window.opened_at is None


def test_count_or_time_whichever_first():
    window = TumblingWindow(size=3, seconds=5)
    assert [len(w) for w in window.add(_rows(0, 4), now=0.0)] == [3]  # count first
    (by_time,) = window.poll(now=5.0)  # the leftover row's window opened at 0.0
    assert by_time.attrs["closed_by"] == "time" and by_time["x"].tolist() == [3.0]


def test_clock_going_backwards_is_treated_as_now():
    window = TumblingWindow(seconds=10)
    window.add(_rows(0, 1), now=50.0)
    window.add(_rows(1, 1), now=40.0)  # out-of-order timestamp: counts as 50.0
    assert window.poll(now=59.0) == []
    assert len(window.poll(now=60.0)[0]) == 2


def test_dataframe_input_and_flush():
    window = TumblingWindow(size=100)
    frame = pd.DataFrame({"x": [1.0, 2.0], "k": ["a", None]}, index=[10, 20])
    window.add(frame, now=1.0)
    window.add([{"x": 3.0, "extra": 1}], now=2.0)
    flushed = window.flush(now=3.0)
    assert flushed["x"].tolist() == [1.0, 2.0, 3.0]
    assert list(flushed.index) == [0, 1, 2]
    assert set(flushed.columns) == {"x", "k", "extra"}
    assert flushed.attrs["closed_by"] == "flush"
    assert window.flush() is None
    assert window.add([], now=4.0) == []


def test_model_windows_keep_models_apart():
    windows = ModelWindows(size=2, seconds=60)
    assert windows.add("iris/1", _rows(0, 1), now=0.0) == []
    assert windows.add("penguins/2", _rows(10, 1), now=0.0) == []
    (closed,) = windows.add("iris/1", _rows(1, 1), now=1.0)
    assert closed["x"].tolist() == [0.0, 1.0]
    windows.add("iris/1", _rows(2, 1), now=30.0)
    expired = windows.poll(now=60.0)
    assert list(expired) == ["penguins/2"]
    assert expired["penguins/2"][0]["x"].tolist() == [10.0]
    assert {k: len(v) for k, v in windows.flush().items()} == {"iris/1": 1}


@pytest.mark.parametrize(
    ("size", "seconds"), [(None, None), (0, None), (-1, None), (None, 0), (2.5, None)]
)
def test_invalid_limits(size, seconds):
    with pytest.raises(WindowConfigError):
        TumblingWindow(size=size, seconds=seconds)


def test_invalid_rows():
    with pytest.raises(WindowInputError, match="iterable of mappings"):
        TumblingWindow(size=2).add([1, 2, 3], now=0.0)
