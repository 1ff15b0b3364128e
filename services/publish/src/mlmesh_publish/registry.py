"""Register a trained model in the MLflow model registry, once per experiment.

The model file is the joblib pickle written by the select stage (a scikit-learn style
estimator). It is logged with the ``mlflow.sklearn`` flavour (cloudpickle serialisation,
so pipelines holding third-party estimators such as LightGBM load back), which also
provides the ``pyfunc`` flavour: ``mlflow.pyfunc.load_model(model_uri).predict(df)``
works. The new version gets the tags ``experiment_id`` (and ``git_commit`` when given)
plus the caller's tags, and the alias ``challenger``.

Idempotency: a version of ``registered_name`` already tagged with this ``experiment_id``
is returned as is (``created=False``) instead of registering a second one. The tag is set
atomically when the version is created, so a crash between logging and registering at
worst leaves an orphan run, never an untagged duplicate version.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

EXPERIMENT_ID_TAG = "experiment_id"
GIT_COMMIT_TAG = "git_commit"
DEFAULT_ALIAS = "challenger"
CHAMPION_ALIAS = "champion"
GATE_METRIC_TAG = "mlmesh.gate_metric"
GATE_SCORE_TAG = "mlmesh.gate_score"
DEFAULT_MLFLOW_EXPERIMENT = "mlmesh"
MODEL_ARTIFACT_NAME = "model"
_SAFE_VALUE = re.compile(r"^[^'\"\\]+$")


class RegistrationInputError(ValueError):
    """The registration request is malformed (names, tags, input example)."""


class ModelFileError(ValueError):
    """The model file is missing, cannot be unpickled, or is not a predictor."""


class RegistryConfigError(ValueError):
    """MLflow is not configured: no tracking URI was given or set in the environment."""


@dataclass(frozen=True)
class RegisteredModel:
    """A model version in the registry.

    ``model_uri`` is ``models:/<name>/<version>``, loadable with ``mlflow.pyfunc.load_model``.
    ``created`` is False when an existing version of this experiment was returned.
    """

    name: str
    version: str
    model_uri: str
    run_id: str
    created: bool = True


def register_model(
    model_path: Path,
    *,
    registered_name: str,
    experiment_id: str,
    tags: Mapping[str, str],
    input_example: pd.DataFrame | None = None,
    git_commit: str | None = None,
    metrics: Mapping[str, float] | None = None,
    alias: str = DEFAULT_ALIAS,
    mlflow_experiment: str = DEFAULT_MLFLOW_EXPERIMENT,
    artifact_location: str | None = None,
    tracking_uri: str | None = None,
    description: str | None = None,
    extra_artifacts: Sequence[Path] = (),
) -> RegisteredModel:
    """Log ``model_path`` to MLflow and register it as a new version of ``registered_name``.

    ``tracking_uri`` defaults to the ``MLFLOW_TRACKING_URI`` environment variable.
    ``input_example`` (a few feature rows) gives the model a signature and example.
    ``metrics`` are logged on the run (e.g. the test score). ``artifact_location`` is
    used only when the MLflow experiment ``mlflow_experiment`` has to be created.
    ``description`` (lineage: experiment, commit, metric) is set on the new version.
    ``extra_artifacts`` (local files, e.g. the ONNX graph and the booster's native file)
    are logged on the same run under ``published/``.
    """
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise RegistryConfigError(
            "no MLflow tracking URI: set MLFLOW_TRACKING_URI (e.g. http://mlflow:5000 or "
            "sqlite:///mlflow.db) or pass tracking_uri"
        )
    _check_name("registered_name", registered_name)
    _check_name("experiment_id", experiment_id)
    version_tags = _version_tags(tags, experiment_id, git_commit)
    model = _load_model(Path(model_path))
    example = _check_example(model, input_example)

    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri)
    existing = _find_existing(client, registered_name, experiment_id)
    if existing is not None:
        _ensure_alias(client, registered_name, alias, existing)
        return _result(existing, created=False)

    mlflow_experiment_id = _ensure_mlflow_experiment(client, mlflow_experiment, artifact_location)
    signature = None
    if example is not None:
        signature = infer_signature(example, model.predict(example))
    with mlflow.start_run(
        experiment_id=mlflow_experiment_id,
        run_name=f"publish-{experiment_id}",
        tags={**version_tags, "mlmesh.stage": "publish"},
    ) as run:
        if metrics:
            mlflow.log_metrics({str(k): float(v) for k, v in metrics.items()})
        for path in extra_artifacts:
            mlflow.log_artifact(str(path), artifact_path="published")
        info = mlflow.sklearn.log_model(
            model,
            name=MODEL_ARTIFACT_NAME,
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
            signature=signature,
            input_example=example,
        )
        version = mlflow.register_model(info.model_uri, registered_name, tags=version_tags)
        if description:
            client.update_model_version(registered_name, str(version.version), description)
        mlflow.set_tag("mlmesh.registered_version", f"{registered_name}/{version.version}")
    _ensure_alias(client, registered_name, alias, version)
    return RegisteredModel(
        name=registered_name,
        version=str(version.version),
        model_uri=f"models:/{registered_name}/{version.version}",
        run_id=run.info.run_id,
        created=True,
    )


@dataclass(frozen=True)
class Promotion:
    """Outcome of the champion gate for one version."""

    alias: str  # champion or challenger: the alias the version holds now
    promoted: bool
    reason: str
    champion_version: str | None  # the champion compared against (None: there was none)
    champion_score: float | None


def promote_if_better(
    name: str,
    version: str,
    *,
    metric: str,
    score: float,
    greater_is_better: bool,
    tracking_uri: str | None = None,
) -> Promotion:
    """Give ``version`` the ``champion`` alias when it beats the current champion.

    The champion's score is read from its version tags ``GATE_METRIC_TAG`` /
    ``GATE_SCORE_TAG``. With no champion yet, the version becomes champion. A champion
    scored on another metric, or without a score tag, is not replaced (scores on different
    metrics cannot be compared). Ties keep the current champion. Replaying the gate for the
    version that is already champion returns ``promoted=True`` again.
    """
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise RegistryConfigError("no MLflow tracking URI: set MLFLOW_TRACKING_URI")
    client = MlflowClient(tracking_uri=uri)
    if not math.isfinite(float(score)):
        return Promotion(DEFAULT_ALIAS, False, f"{metric} score {score!r} is not a number",
                         None, None)
    try:
        champion = client.get_model_version_by_alias(name, CHAMPION_ALIAS)
    except MlflowException:
        champion = None
    if champion is None:
        client.set_registered_model_alias(name, CHAMPION_ALIAS, str(version))
        return Promotion(CHAMPION_ALIAS, True, "no champion yet", None, None)
    if str(champion.version) == str(version):
        return Promotion(CHAMPION_ALIAS, True, "already champion", str(version),
                         float(score))
    champion_metric = champion.tags.get(GATE_METRIC_TAG)
    try:
        champion_score = float(champion.tags[GATE_SCORE_TAG])
    except (KeyError, ValueError):
        champion_score = None
    if champion_metric != metric or champion_score is None or not math.isfinite(
            champion_score):
        return Promotion(
            DEFAULT_ALIAS, False,
            f"champion v{champion.version} has no comparable {metric} score "
            f"(tags: {champion_metric!r}={champion.tags.get(GATE_SCORE_TAG)!r}); "
            "promote by hand if intended", str(champion.version), champion_score)
    better = score > champion_score if greater_is_better else score < champion_score
    direction = "higher" if greater_is_better else "lower"
    if not better:
        return Promotion(
            DEFAULT_ALIAS, False,
            f"{metric} {score:.6g} does not beat champion v{champion.version}'s "
            f"{champion_score:.6g} ({direction} is better)", str(champion.version),
            champion_score)
    client.set_registered_model_alias(name, CHAMPION_ALIAS, str(version))
    return Promotion(
        CHAMPION_ALIAS, True,
        f"{metric} {score:.6g} beats champion v{champion.version}'s {champion_score:.6g} "
        f"({direction} is better)", str(champion.version), champion_score)


def _check_name(field: str, value: str) -> None:
    if not isinstance(value, str) or not value.strip() or not _SAFE_VALUE.match(value):
        raise RegistrationInputError(
            f"{field} {value!r} is empty or contains quotes/backslashes; "
            "use a plain name such as 'penguins-species' or an experiment id"
        )


def _version_tags(
    tags: Mapping[str, str], experiment_id: str, git_commit: str | None
) -> dict[str, str]:
    result: dict[str, str] = {}
    for key, value in (tags or {}).items():
        if not isinstance(key, str) or not key:
            raise RegistrationInputError(f"tag key {key!r} must be a non-empty string")
        if value is None:
            raise RegistrationInputError(f"tag {key!r} has no value; drop it or give a string")
        result[key] = str(value)
    result[EXPERIMENT_ID_TAG] = experiment_id
    if git_commit:
        result[GIT_COMMIT_TAG] = git_commit
    return result


def _load_model(model_path: Path) -> Any:
    if not model_path.is_file():
        raise ModelFileError(
            f"model file {model_path} does not exist; the select stage must write it first"
        )
    try:
        model = joblib.load(model_path)
    except (ModuleNotFoundError, AttributeError) as exc:
        raise ModelFileError(
            f"model file {model_path} refers to code that is not installed here ({exc}); "
            "install the package that defines the model class in the publish service"
        ) from exc
    except Exception as exc:
        raise ModelFileError(
            f"model file {model_path} cannot be loaded with joblib ({type(exc).__name__}: "
            f"{exc}); regenerate it with joblib.dump"
        ) from exc
    if not callable(getattr(model, "predict", None)):
        raise ModelFileError(
            f"model in {model_path} is a {type(model).__name__} without predict(); "
            "expected a fitted scikit-learn style estimator"
        )
    return model


def _check_example(model: Any, example: pd.DataFrame | None) -> pd.DataFrame | None:
    if example is None:
        return None
    if not isinstance(example, pd.DataFrame) or example.empty:
        raise RegistrationInputError("input_example must be a non-empty pandas DataFrame")
    features = getattr(model, "feature_columns", None)
    if features is not None:
        missing = [c for c in features if c not in example.columns]
        if missing:
            raise RegistrationInputError(
                f"input_example lacks the model's feature column(s) {missing}; pass rows "
                "of the prepared test split"
            )
        example = example[list(features)]
    example = example.copy()
    # Integer columns cannot hold missing values; declare them as doubles in the
    # signature so serving requests with a missing value are still accepted.
    for column in example.columns:
        if pd.api.types.is_integer_dtype(example[column].dtype):
            example[column] = example[column].astype("float64")
    return example


def _find_existing(client: MlflowClient, name: str, experiment_id: str) -> ModelVersion | None:
    versions = client.search_model_versions(
        f"name='{name}' and tags.{EXPERIMENT_ID_TAG}='{experiment_id}'"
    )
    if not versions:
        return None
    return min(versions, key=lambda v: int(v.version))


def _ensure_alias(client: MlflowClient, name: str, alias: str, version: ModelVersion) -> None:
    """Point ``alias`` at ``version`` unless it already points at the same or a newer one."""
    if not alias:
        return
    try:
        current = client.get_model_version_by_alias(name, alias)
    except MlflowException:
        current = None
    if current is None or int(current.version) < int(version.version):
        client.set_registered_model_alias(name, alias, str(version.version))


def _ensure_mlflow_experiment(
    client: MlflowClient, name: str, artifact_location: str | None
) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location)
    except MlflowException:
        experiment = client.get_experiment_by_name(name)  # created concurrently
        if experiment is None:
            raise
        return experiment.experiment_id


def _result(version: ModelVersion, *, created: bool) -> RegisteredModel:
    return RegisteredModel(
        name=version.name,
        version=str(version.version),
        model_uri=f"models:/{version.name}/{version.version}",
        run_id=version.run_id or "",
        created=created,
    )
