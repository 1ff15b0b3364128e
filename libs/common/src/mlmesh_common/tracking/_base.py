"""The tracker interface: runs holding params, metrics, tags and artifacts, nestable."""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

MAX_PARAM_CHARS = 6000
"""Longest parameter value any backend keeps (MLflow's limit); longer ones are artifacts."""

FINISHED, FAILED = "FINISHED", "FAILED"


class TrackingConfigError(ValueError):
    """A tracker that is unknown or lacks its configuration (e.g. no MLflow URI)."""


class TrackingInputError(ValueError):
    """Params, metrics, tags or artifacts that cannot be logged as given."""


class NoActiveRunError(RuntimeError):
    """A log call without a started run (call start_run first)."""


def param_text(key: str, value: Any) -> str:
    """A parameter value as the text trackers store (JSON for non-strings)."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, sort_keys=True, default=str)
        except (TypeError, ValueError) as exc:
            raise TrackingInputError(f"param {key!r} cannot be serialised: {exc}") from exc
    if len(text) > MAX_PARAM_CHARS:
        raise TrackingInputError(
            f"param {key!r} is {len(text)} characters; trackers keep at most {MAX_PARAM_CHARS}"
            " - log it as an artifact instead"
        )
    return text


def metric_number(key: str, value: Any) -> float:
    """A metric value as a float (booleans become 0/1; NaN is kept, infinity refused)."""
    if isinstance(value, bool):
        return float(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TrackingInputError(
            f"metric {key!r} must be a number; got {type(value).__name__}"
        ) from None
    if math.isinf(number):
        raise TrackingInputError(f"metric {key!r} is infinite; log a finite value")
    return number


def check_artifact(path: Path | str) -> Path:
    """The artifact path, or TrackingInputError when it does not exist."""
    path = Path(path)
    if not path.exists():
        raise TrackingInputError(f"artifact {path} does not exist; write it before logging it")
    return path


@dataclass
class _ActiveRun:
    run_id: str
    reused: bool


class Tracker(ABC):
    """One place that records runs (MLflow, Weights & Biases, or several at once).

    ``start_run`` opens a run; a run started while another is open is nested under it
    (or under ``parent_run_id`` when given). Log calls go to the innermost open run and
    ``end_run`` closes it. With ``run_id_tag`` (an idempotency key such as an event id) a
    backend that can find an earlier finished run with that key returns it instead; the log
    calls for such a ``reused`` run are skipped so a redelivered event logs nothing twice.
    A tracker instance keeps per-instance state: use one per unit of work (thread).
    """

    name: ClassVar[str] = "tracker"

    def __init__(self) -> None:
        self._stack: list[_ActiveRun] = []

    # -- public API -------------------------------------------------------------------

    @property
    def active_run_id(self) -> str | None:
        """Id of the innermost open run, or None."""
        return self._stack[-1].run_id if self._stack else None

    @property
    def reused(self) -> bool:
        """True when the innermost open run was found by its run_id_tag, not created."""
        return self._top().reused

    def start_run(
        self,
        experiment: str,
        run_name: str,
        *,
        tags: Mapping[str, Any] | None = None,
        parent_run_id: str | None = None,
        run_id_tag: str | None = None,
    ) -> str:
        """Open a run in ``experiment`` (nested under the open run) and return its id."""
        if not experiment:
            raise TrackingInputError("experiment name must not be empty")
        if run_id_tag is not None and ("'" in run_id_tag or not run_id_tag):
            raise TrackingInputError(
                f"run_id_tag {run_id_tag!r} must be non-empty and free of single quotes"
            )
        parent = parent_run_id or self.active_run_id
        text_tags = {str(k): str(v) for k, v in (tags or {}).items()}
        run_id, reused = self._start(experiment, run_name, text_tags, parent, run_id_tag)
        self._stack.append(_ActiveRun(run_id, reused))
        return run_id

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record parameters (values stored as text, JSON for non-strings)."""
        texts = {str(k): param_text(str(k), v) for k, v in params.items()}
        run = self._top()
        if texts and not run.reused:
            self._log_params(run.run_id, texts)

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Record metric values (at ``step`` for series such as per-fold scores)."""
        numbers = {str(k): metric_number(str(k), v) for k, v in metrics.items()}
        run = self._top()
        if numbers and not run.reused:
            self._log_metrics(run.run_id, numbers, step)

    def log_artifact(self, path: Path | str, artifact_path: str | None = None) -> None:
        """Store a file or a folder (folders keep their name) with the run."""
        checked = check_artifact(path)
        run = self._top()
        if not run.reused:
            self._log_artifact(run.run_id, checked, artifact_path)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set tags (text) on the open run."""
        run = self._top()
        if tags and not run.reused:
            self._set_tags(run.run_id, {str(k): str(v) for k, v in tags.items()})

    def end_run(self, status: str = FINISHED) -> str:
        """Close the innermost open run with ``status`` (FINISHED or FAILED); returns its id."""
        if status not in (FINISHED, FAILED):
            raise TrackingInputError(f"status must be {FINISHED} or {FAILED}; got {status!r}")
        run = self._top()
        self._stack.pop()
        if not run.reused:
            self._end(run.run_id, status)
        return run.run_id

    @contextmanager
    def run(
        self,
        experiment: str,
        run_name: str,
        *,
        tags: Mapping[str, Any] | None = None,
        parent_run_id: str | None = None,
        run_id_tag: str | None = None,
    ) -> Iterator[str]:
        """``with tracker.run(...) as run_id:`` - ends FINISHED, or FAILED on an exception."""
        run_id = self.start_run(
            experiment, run_name, tags=tags, parent_run_id=parent_run_id, run_id_tag=run_id_tag
        )
        try:
            yield run_id
        except BaseException:
            self.end_run(FAILED)
            raise
        self.end_run(FINISHED)

    def _top(self) -> _ActiveRun:
        if not self._stack:
            raise NoActiveRunError(f"{self.name}: no open run; call start_run first")
        return self._stack[-1]

    # -- backend hooks ----------------------------------------------------------------

    @abstractmethod
    def _start(
        self,
        experiment: str,
        run_name: str,
        tags: dict[str, str],
        parent_run_id: str | None,
        run_id_tag: str | None,
    ) -> tuple[str, bool]:
        """Create (or find by run_id_tag) a run; return (run id, reused)."""

    @abstractmethod
    def _log_params(self, run_id: str, params: dict[str, str]) -> None: ...

    @abstractmethod
    def _log_metrics(self, run_id: str, metrics: dict[str, float], step: int | None) -> None: ...

    @abstractmethod
    def _log_artifact(self, run_id: str, path: Path, artifact_path: str | None) -> None: ...

    @abstractmethod
    def _set_tags(self, run_id: str, tags: dict[str, str]) -> None: ...

    @abstractmethod
    def _end(self, run_id: str, status: str) -> None: ...


class CompositeTracker(Tracker):
    """Several trackers used together; run ids are those of the first (primary) tracker.

    When the primary finds an earlier run by ``run_id_tag`` the others start nothing, so a
    redelivered event is recorded once everywhere.
    """

    name = "composite"

    def __init__(self, trackers: list[Tracker]) -> None:
        super().__init__()
        if not trackers:
            raise TrackingConfigError("a composite tracker needs at least one tracker")
        self.trackers = list(trackers)
        self._ids: dict[str, list[str | None]] = {}

    def _start(self, experiment, run_name, tags, parent_run_id, run_id_tag):
        parents = self._ids.get(parent_run_id or "", [parent_run_id] * len(self.trackers))
        primary_id, reused = self.trackers[0]._start(
            experiment, run_name, tags, parents[0], run_id_tag
        )
        ids: list[str | None] = [primary_id]
        for tracker, parent in zip(self.trackers[1:], parents[1:], strict=True):
            ids.append(
                None if reused else tracker._start(experiment, run_name, tags, parent, None)[0]
            )
        self._ids[primary_id] = ids
        return primary_id, reused

    def _each(self, run_id: str) -> Iterator[tuple[Tracker, str]]:
        for tracker, child_id in zip(self.trackers, self._ids[run_id], strict=True):
            if child_id is not None:
                yield tracker, child_id

    def _log_params(self, run_id, params):
        for tracker, child in self._each(run_id):
            tracker._log_params(child, params)

    def _log_metrics(self, run_id, metrics, step):
        for tracker, child in self._each(run_id):
            tracker._log_metrics(child, metrics, step)

    def _log_artifact(self, run_id, path, artifact_path):
        for tracker, child in self._each(run_id):
            tracker._log_artifact(child, path, artifact_path)

    def _set_tags(self, run_id, tags):
        for tracker, child in self._each(run_id):
            tracker._set_tags(child, tags)

    def _end(self, run_id, status):
        for tracker, child in self._each(run_id):
            tracker._end(child, status)
