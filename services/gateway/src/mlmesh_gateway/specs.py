"""Validation of experiment specs, shared by the REST and gRPC front ends."""

from __future__ import annotations

import re
from urllib.parse import urlparse

from mlmesh.events.v1.common_pb2 import ProblemType
from mlmesh.events.v1.experiment_pb2 import ExperimentSpec
from mlmesh_common.problems import (
    CLASSIFICATION_METRICS,
    MODEL_FAMILIES,
    OBJECTIVES,
    PRUNERS,
    REGRESSION_METRICS,
    SAMPLERS,
    SPLIT_STRATEGIES,
)

SUPPORTED_SCHEMES = ("file", "http", "https", "s3", "kaggle", "hf", "openml", "uci")
OPTIONAL_STAGES = ("tune", "docs", "git", "publish")
_PROJECT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SECRET_KEY = re.compile(r"(token|secret|password|passwd|api_?key|credential|auth)", re.I)
MIN_BUDGET_S, MAX_BUDGET_S = 10, 7 * 24 * 3600


class InvalidSpec(ValueError):
    """The spec cannot run as given; `errors` says, per field, what to change."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


def validate_spec(spec: ExperimentSpec, default_budget_s: int, default_max_trials: int,
                  ) -> ExperimentSpec:
    """A normalised copy of `spec` (defaults filled in), or InvalidSpec naming each problem."""
    errors: dict[str, str] = {}
    spec = ExperimentSpec.FromString(spec.SerializeToString())
    uri = spec.dataset_uri.strip()
    scheme = urlparse(uri).scheme
    if not uri:
        errors["dataset_uri"] = ("required: a dataset reference, one of "
                                 f"{', '.join(s + '://' for s in SUPPORTED_SCHEMES)}")
    elif urlparse(uri).username or urlparse(uri).password:
        errors["dataset_uri"] = ("put no credentials in the URI (they would be stored with "
                                 "the event); set them in the services' environment")
    elif scheme not in SUPPORTED_SCHEMES:
        errors["dataset_uri"] = (f"scheme {scheme or '(none)'!r} is not supported; use one of "
                                 f"{', '.join(s + '://' for s in SUPPORTED_SCHEMES)}")
    spec.dataset_uri = uri
    spec.dataset_sha256 = spec.dataset_sha256.strip().lower()
    if spec.dataset_sha256 and not _SHA256.match(spec.dataset_sha256):
        errors["dataset_sha256"] = "must be 64 hexadecimal characters (a sha256 digest)"
    spec.project = spec.project.strip() or "default"
    if not _PROJECT.match(spec.project):
        errors["project"] = ("lower-case letters, digits, '-' and '_', starting with a letter "
                             "or digit, at most 63 characters")
    if spec.metric:
        allowed = {ProblemType.PROBLEM_TYPE_REGRESSION: REGRESSION_METRICS}.get(
            spec.problem_type, CLASSIFICATION_METRICS if spec.problem_type else
            CLASSIFICATION_METRICS + REGRESSION_METRICS)
        if spec.metric not in allowed:
            errors["metric"] = f"{spec.metric!r} is not one of {', '.join(allowed)}"
    spec.time_budget_s = spec.time_budget_s or default_budget_s
    if not MIN_BUDGET_S <= spec.time_budget_s <= MAX_BUDGET_S:
        errors["time_budget_s"] = f"must be between {MIN_BUDGET_S} and {MAX_BUDGET_S} seconds"
    spec.max_trials = spec.max_trials or default_max_trials
    if spec.max_trials > 1000:
        errors["max_trials"] = "at most 1000"
    secrets = [k for k in spec.source_options if _SECRET_KEY.search(k)]
    if secrets:
        errors["source_options"] = (f"{secrets} look like credentials; set them in the "
                                    "services' environment instead, never in a spec")
    unknown = [s for s in spec.stages if s not in OPTIONAL_STAGES]
    if unknown:
        errors["stages"] = (f"unknown optional stage(s) {unknown}; choose from "
                            f"{', '.join(OPTIONAL_STAGES)} (acquire to select always run)")
    if not spec.stages:
        spec.stages.extend(OPTIONAL_STAGES)
    _check_modeling_options(spec, errors)
    if errors:
        raise InvalidSpec(errors)
    return spec


def _check_modeling_options(spec: ExperimentSpec, errors: dict[str, str]) -> None:
    """Families, split strategy, constraints and tuning options."""
    unknown = [f for f in spec.families if f not in MODEL_FAMILIES]
    if unknown:
        errors["families"] = (f"unknown family(ies) {unknown}; choose from "
                              f"{', '.join(MODEL_FAMILIES)}")
    strategy = spec.split_strategy.strip().lower()
    spec.split_strategy = "" if strategy == "auto" else strategy
    if strategy and strategy not in SPLIT_STRATEGIES:
        errors["split_strategy"] = f"{strategy!r} is not one of {', '.join(SPLIT_STRATEGIES)}"
    elif strategy == "group" and not spec.group_column:
        errors["group_column"] = "split_strategy=group needs group_column: the column to group by"
    elif strategy == "time" and not spec.time_column:
        errors["time_column"] = "split_strategy=time needs time_column: the column to order by"
    if spec.max_latency_ms < 0 or spec.max_model_size_mb < 0:
        errors["constraints"] = "max_latency_ms and max_model_size_mb must be 0 (none) or positive"
    bad = [o for o in spec.objectives if o not in OBJECTIVES]
    if bad:
        errors["objectives"] = f"{bad} not among {', '.join(OBJECTIVES)}"
    if spec.sampler and spec.sampler not in SAMPLERS:
        errors["sampler"] = f"{spec.sampler!r} is not one of {', '.join(SAMPLERS)}"
    if spec.pruner and spec.pruner not in PRUNERS:
        errors["pruner"] = f"{spec.pruner!r} is not one of {', '.join(PRUNERS)}"
