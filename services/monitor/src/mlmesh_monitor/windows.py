"""Tumbling (non-overlapping) windows of served rows, one per model.

A window opens when its first row arrives and closes when it holds ``size`` rows or
when ``seconds`` have passed since it opened, whichever comes first (either limit may
be None, not both). Rows that arrive at or after the time limit start the next window.
A batch larger than ``size`` closes several windows at once; the remainder opens the
next one. Empty windows are never emitted.

Time is whatever clock the caller passes as ``now`` (seconds, e.g. ``time.time()`` or the
Kafka timestamps of the prediction events); it is treated as non-decreasing, so an
earlier ``now`` than already seen is taken as the latest one. Not thread-safe: use one
instance per consumer task.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any

import pandas as pd

Rows = pd.DataFrame | Iterable[Mapping[str, Any]]


class WindowConfigError(ValueError):
    """The window limits are missing or not positive."""


class WindowInputError(ValueError):
    """Rows are neither a DataFrame nor an iterable of mappings."""


class TumblingWindow:
    """Accumulates rows and hands back closed windows as DataFrames.

    Each closed frame has ``attrs`` ``window_start`` (when its first row arrived),
    ``window_end`` (when it closed) and ``closed_by`` ("count", "time" or "flush").
    """

    def __init__(self, size: int | None = None, seconds: float | None = None) -> None:
        if size is None and seconds is None:
            raise WindowConfigError("give a window size (rows), a duration (seconds) or both")
        if size is not None and (not isinstance(size, int) or size < 1):
            raise WindowConfigError(f"window size must be a positive integer, got {size!r}")
        if seconds is not None and not seconds > 0:
            raise WindowConfigError(f"window duration must be positive seconds, got {seconds!r}")
        self.size = size
        self.seconds = seconds
        self._chunks: list[pd.DataFrame] = []
        self._pending = 0
        self._opened_at: float | None = None
        self._clock: float | None = None

    @property
    def pending(self) -> int:
        """Rows in the open window."""
        return self._pending

    @property
    def opened_at(self) -> float | None:
        """When the open window received its first row (None when empty)."""
        return self._opened_at

    def add(self, rows: Rows, now: float) -> list[pd.DataFrame]:
        """Add ``rows`` that arrived at ``now``; return the windows this closes, oldest first."""
        now = self._tick(now)
        closed = self._close_if_expired(now)
        frame = _to_frame(rows)
        if frame.empty:
            return closed
        if self._opened_at is None:
            self._opened_at = now
        self._chunks.append(frame)
        self._pending += len(frame)
        if self.size is not None:
            while self._pending >= self.size:
                closed.append(self._cut(self.size, now, "count"))
        return closed

    def poll(self, now: float) -> list[pd.DataFrame]:
        """Close the open window if its time is up (call periodically when rows are sparse)."""
        return self._close_if_expired(self._tick(now))

    def flush(self, now: float | None = None) -> pd.DataFrame | None:
        """Close the open window whatever its size or age (e.g. on shutdown)."""
        if self._pending == 0:
            return None
        end = self._tick(now) if now is not None else (self._clock or 0.0)
        return self._cut(self._pending, end, "flush")

    # ------------------------------------------------------------------ internals

    def _tick(self, now: float) -> float:
        now = float(now)
        if self._clock is not None and now < self._clock:
            now = self._clock
        self._clock = now
        return now

    def _close_if_expired(self, now: float) -> list[pd.DataFrame]:
        if (
            self.seconds is not None
            and self._opened_at is not None
            and now >= self._opened_at + self.seconds
        ):
            return [self._cut(self._pending, self._opened_at + self.seconds, "time")]
        return []

    def _cut(self, n: int, end: float, closed_by: str) -> pd.DataFrame:
        if len(self._chunks) == 1:
            buffered = self._chunks[0]
        else:
            buffered = pd.concat(self._chunks, ignore_index=True)
        window = buffered.iloc[:n].reset_index(drop=True)
        rest = buffered.iloc[n:].reset_index(drop=True)
        window.attrs.update(window_start=self._opened_at, window_end=end, closed_by=closed_by)
        self._chunks = [rest] if len(rest) else []
        self._pending = len(rest)
        # leftover rows arrived in the batch that closed the window: they open the next one
        self._opened_at = end if len(rest) else None
        return window


class ModelWindows:
    """One TumblingWindow per model key, created on first use with the same limits."""

    def __init__(self, size: int | None = None, seconds: float | None = None) -> None:
        TumblingWindow(size, seconds)  # validate the limits once, up front
        self._factory: Callable[[], TumblingWindow] = lambda: TumblingWindow(size, seconds)
        self._windows: dict[Hashable, TumblingWindow] = {}

    def add(self, model: Hashable, rows: Rows, now: float) -> list[pd.DataFrame]:
        """Add rows for ``model``; return that model's closed windows."""
        window = self._windows.get(model)
        if window is None:
            window = self._windows[model] = self._factory()
        return window.add(rows, now)

    def poll(self, now: float) -> dict[Hashable, list[pd.DataFrame]]:
        """Close every model's expired window; only models with closed windows appear."""
        closed = {model: window.poll(now) for model, window in self._windows.items()}
        return {model: frames for model, frames in closed.items() if frames}

    def flush(self, now: float | None = None) -> dict[Hashable, pd.DataFrame]:
        """Close every open window (shutdown)."""
        closed = {model: window.flush(now) for model, window in self._windows.items()}
        return {model: frame for model, frame in closed.items() if frame is not None}


def _to_frame(rows: Rows) -> pd.DataFrame:
    if isinstance(rows, pd.DataFrame):
        return rows.reset_index(drop=True)
    records = list(rows)
    if records and not all(isinstance(r, Mapping) for r in records):
        raise WindowInputError(
            "rows must be a DataFrame or an iterable of mappings (column -> value)"
        )
    return pd.DataFrame.from_records(records)
