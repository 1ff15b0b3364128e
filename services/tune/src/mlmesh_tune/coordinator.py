"""The coordinator's decisions, as plain functions over the study storage.

The ledger keeps a :class:`TuneConfig` (what to tune, how, with which budget); the studies
keep the trials. Asking is idempotent per handled event (trials carry an ask tag), so a
coordinator that crashed anywhere resumes from study + ledger state: it re-emits the trials
an event already asked and never asks them twice.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import optuna
from optuna.trial import TrialState

from .budget import TuningBudget, grace_for
from .plan import next_family
from .report import pareto_indices
from .spaces import grid_size
from .strategy import make_pruner, make_sampler, objective_directions, resolve_sampler
from .study import ask_trial, completed_candidates, open_study, tagged_trials

#: Tuned candidates kept per family (by CV score) for select, besides the Pareto front.
KEEP_PER_FAMILY = 3
#: Trial user attribute: wall-clock time (epoch s) after which no new fold should start.
DEADLINE_ATTR = "deadline"
#: Trial user attribute: the trial's place among the experiment's trials in flight.
SLOT_ATTR = "slot"
#: Study user attribute: the tracking run the trial runs nest under.
PARENT_RUN_ATTR = "mlmesh.parent_run_id"


@dataclass
class TuneConfig:
    """What one experiment's tuning does; JSON-ready (kept in the ledger)."""

    study_prefix: str
    storage_url: str
    metric: str
    problem_type: str
    families: list[str]
    samplers: dict[str, str]
    pruner: str
    objectives: list[str]
    seed: int
    max_trials: int
    time_budget_s: float
    started_at: float
    parallelism: int = 2
    parent_run_id: str = ""
    max_trees: int = 1000
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(
        cls,
        *,
        study_prefix: str,
        storage_url: str,
        metric: str,
        problem_type: str,
        families: Sequence[str],
        sampler: str = "auto",
        pruner: str = "median",
        objectives: Sequence[str] = (),
        seed: int = 42,
        max_trials: int,
        time_budget_s: float,
        parallelism: int = 2,
        started_at: float | None = None,
    ) -> TuneConfig:
        """Resolve the sampler of each family (see :func:`resolve_sampler`) and validate."""
        directions = objective_directions(metric, objectives)
        per_family = max(1, math.ceil(max_trials / max(1, len(families))))
        samplers = {
            f: resolve_sampler(
                sampler,
                f,
                problem_type,
                trials_for_family=per_family,
                n_objectives=len(directions),
            )
            for f in families
        }
        make_pruner(pruner, 2)  # validates the name
        TuningBudget(max_trials, time_budget_s, parallelism)  # validates the numbers
        return cls(
            study_prefix=study_prefix,
            storage_url=storage_url,
            metric=metric,
            problem_type=problem_type,
            families=list(families),
            samplers=samplers,
            pruner=pruner or "median",
            objectives=[o for o in objectives if o],
            seed=seed,
            max_trials=max_trials,
            time_budget_s=time_budget_s,
            started_at=time.time() if started_at is None else started_at,
            parallelism=parallelism,
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TuneConfig:
        """Inverse of :meth:`to_dict`."""
        return cls(**dict(data))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    @property
    def directions(self) -> list[str]:
        """Optuna directions: score first, then latency when it is an objective."""
        return objective_directions(self.metric, self.objectives)

    @property
    def multi_objective(self) -> bool:
        """Whether latency is optimised next to the score."""
        return len(self.directions) > 1

    @property
    def deadline(self) -> float:
        """Epoch seconds after which no new trial (nor fold) starts."""
        return self.started_at + self.time_budget_s

    def study_name(self, family: str) -> str:
        """The study holding ``family``'s trials."""
        return f"{self.study_prefix}-{family}"

    def trial_limit(self, family: str) -> int | None:
        """At most this many trials for ``family`` (a grid's size), or None."""
        if self.samplers[family] == "grid":
            return grid_size(family, self.problem_type)
        return None

    def budget(self) -> TuningBudget:
        """The trial and wall-time budget."""
        return TuningBudget(
            max_trials=self.max_trials,
            time_budget_s=self.time_budget_s,
            parallelism=self.parallelism,
            grace_s=grace_for(self.time_budget_s),
        )


@dataclass(frozen=True)
class TrialTicket:
    """A trial to send to a worker."""

    family: str
    study_name: str
    number: int
    params: dict[str, Any]
    #: Which of the experiment's ``parallelism`` places in flight the trial takes: a trial
    #: asked because another finished takes the finished one's place, and the place picks
    #: the partition (spread_partition), so the worker that just finished gets the next trial.
    slot: int = 0


def open_studies(config: TuneConfig, *, n_folds: int = 5) -> dict[str, optuna.Study]:
    """Create or load every family's study with its sampler (the coordinator's view)."""
    studies = {}
    for index, family in enumerate(config.families):
        name = config.study_name(family)
        # Seed offset by family and by trials already stored: a restarted coordinator does
        # not replay the suggestions it already made.
        study = open_study(
            name,
            config.storage_url,
            directions=config.directions,
            sampler=optuna.samplers.RandomSampler(),
            user_attrs={PARENT_RUN_ATTR: config.parent_run_id} if config.parent_run_id else {},
        )
        existing = len(study.get_trials(deepcopy=False))
        study.sampler = make_sampler(
            config.samplers[family],
            family,
            config.problem_type,
            seed=config.seed + 1000 * index + existing,
            trials_for_family=max(1, math.ceil(config.max_trials / len(config.families))),
        )
        study.pruner = make_pruner(config.pruner, n_folds, n_objectives=len(config.directions))
        studies[family] = study
    return studies


def _counts(studies: Mapping[str, optuna.Study]) -> dict[str, int]:
    return {f: len(s.get_trials(deepcopy=False)) for f, s in studies.items()}


def exhausted(config: TuneConfig, studies: Mapping[str, optuna.Study]) -> bool:
    """True when no family can take another trial (every grid fully searched)."""
    return next_family(_counts(studies), config.families, _limits(config)) is None


def _limits(config: TuneConfig) -> dict[str, int | None]:
    return {f: config.trial_limit(f) for f in config.families}


def ask_batch(
    config: TuneConfig,
    studies: Mapping[str, optuna.Study],
    tag: str,
    *,
    n_finished: int,
    now: float | None = None,
) -> list[TrialTicket]:
    """The trials the event ``tag`` starts: as many as the budget allows now.

    Idempotent: trials an earlier run for the same ``tag`` already asked (before a crash)
    are found by their ask tags and returned again; only the missing ones are asked.
    """
    now = time.time() if now is None else now
    found: dict[int, TrialTicket] = {}
    for family, study in studies.items():
        for trial_tag, t in tagged_trials(study, f"{tag}:").items():
            found[int(trial_tag.rsplit(":", 1)[1])] = TrialTicket(
                family,
                study.study_name,
                t.number,
                dict(t.user_attrs.get("params", {})),
                int(t.user_attrs.get(SLOT_ATTR, 0)),
            )
    counts = _counts(studies)
    n_asked = sum(counts.values())
    count = config.budget().next_batch_size(
        n_asked - len(found), min(n_finished, n_asked - len(found)), now - config.started_at
    )
    limits = _limits(config)
    tickets = [found[i] for i in sorted(found)]
    busy = _busy_slots(studies)  # the trials in flight, those found here included
    free = (slot for slot in itertools.count() if slot not in busy)
    for index in range(len(found), count):
        family = next_family(counts, config.families, limits)
        if family is None:
            break
        study = studies[family]
        slot = next(free)
        number, params = ask_trial(
            study,
            family,
            config.problem_type,
            tag=f"{tag}:{index}",
            grid=config.samplers[family] == "grid",
            max_trees=config.max_trees,
            attrs={DEADLINE_ATTR: config.deadline, SLOT_ATTR: slot},
        )
        counts[family] += 1
        tickets.append(TrialTicket(family, study.study_name, number, params, slot))
    return tickets


def _busy_slots(studies: Mapping[str, optuna.Study]) -> set[int]:
    return {
        int(t.user_attrs.get(SLOT_ATTR, 0))
        for study in studies.values()
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    }


def n_asked(studies: Mapping[str, optuna.Study]) -> int:
    """Trials asked so far across every family."""
    return sum(_counts(studies).values())


def is_done(
    config: TuneConfig,
    studies: Mapping[str, optuna.Study],
    *,
    n_finished: int,
    now: float | None = None,
) -> bool:
    """True when tuning is over: budget spent (see TuningBudget.is_done) or, with every
    asked trial finished, no family able to take another trial."""
    now = time.time() if now is None else now
    asked = n_asked(studies)
    finished = min(n_finished, asked)
    if config.budget().is_done(asked, finished, now - config.started_at):
        return True
    return finished >= asked and exhausted(config, studies)


@dataclass
class TuningSummary:
    """The outcome of a finished tuning."""

    kept: list[dict[str, Any]]
    pareto_front: list[dict[str, Any]]
    measured: list[dict[str, Any]]
    best: dict[str, Any]
    counts: dict[str, int]


def trial_counts(studies: Mapping[str, optuna.Study]) -> dict[str, int]:
    """How many trials ended in each state (complete, pruned, fail, running)."""
    out = {"complete": 0, "pruned": 0, "fail": 0, "running": 0}
    for study in studies.values():
        for t in study.get_trials(deepcopy=False):
            key = {
                TrialState.COMPLETE: "complete",
                TrialState.PRUNED: "pruned",
                TrialState.FAIL: "fail",
            }.get(t.state, "running")
            out[key] += 1
    return out


def _score_key(maximize: bool):
    return lambda c: -c["cv_mean"] if maximize else c["cv_mean"]


def summarize(
    config: TuneConfig,
    studies: Mapping[str, optuna.Study],
    trained: Sequence[dict[str, Any]] = (),
) -> TuningSummary:
    """The tuned candidates to hand to select and the overall best.

    Kept: the best :data:`KEEP_PER_FAMILY` trials of each family plus, with latency as an
    objective, every trial on the Pareto front of (score, latency) over all families (those
    are flagged ``pareto_optimal``). ``best`` is the best by CV score over ``trained`` and
    the kept trials.
    """
    maximize = config.directions[0] == "maximize"
    key = _score_key(maximize)
    kept: dict[tuple[str, int], dict[str, Any]] = {}
    all_done: list[dict[str, Any]] = []
    for family, study in studies.items():
        done = completed_candidates(study)
        all_done.extend(done)
        for cand in sorted(done, key=key)[:KEEP_PER_FAMILY]:
            kept[(family, cand["trial_number"])] = cand
    measured = [c for c in all_done if c.get("latency_ms") is not None]
    front: list[dict[str, Any]] = []
    if config.multi_objective and measured:
        points = [(c["cv_mean"], c["latency_ms"]) for c in measured]
        for i in pareto_indices(points, config.directions):
            cand = {**measured[i], "pareto_optimal": True}
            front.append(cand)
            kept[(cand["family"], cand["trial_number"])] = cand
    kept_list = sorted(kept.values(), key=key)
    pool = list(trained) + kept_list
    if not pool:
        raise ValueError("nothing to choose from: no trained candidate and no completed trial")
    best = min(pool, key=key)
    return TuningSummary(
        kept=kept_list,
        pareto_front=sorted(front, key=lambda c: c["latency_ms"]),
        measured=measured,
        best=best,
        counts=trial_counts(studies),
    )
