"""Generate a self-contained FastAPI serving folder for a trained model.

The folder holds ``app.py`` (rendered from ``templates/app.py.j2``), the model as
``model.joblib``, ``fastpath.py`` (compiled in-process scoring, see
:mod:`mlmesh_publish.fastpath`) with ``probe_rows.json`` to check it on,
``requirements.txt`` pinned to the versions installed here (including the libraries the
model's objects come from, e.g. lightgbm), ``model.onnx`` when a verified graph exists, a
multi-stage ``Dockerfile``, Kubernetes manifests in ``k8s/`` and a ``README.md``. It needs
nothing from mlmesh to run; prediction logging to Kafka is switched on by
``MLMESH_KAFKA_BOOTSTRAP`` and then needs ``mlmesh-common``.
"""

from __future__ import annotations

import importlib.metadata
import json
import keyword
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import joblib
import numpy as np
from pydantic import BaseModel

log = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).parent / "templates"
FEATURE_KINDS = ("numeric", "categorical", "boolean")
PROBLEM_TYPES = ("binary", "multiclass", "regression")

#: Always needed by the generated app (distribution names).
BASE_REQUIREMENTS = (
    "fastapi",
    "uvicorn",
    "pydantic",
    "prometheus-client",
    "pandas",
    "numpy",
    "scikit-learn",
    "joblib",
    "orjson",
)
#: Shared libraries the slim Python image lacks for some model libraries.
SYSTEM_PACKAGES = {"lightgbm": "libgomp1", "xgboost": "libgomp1", "catboost": "libgomp1",
                   "onnxruntime": "libgomp1"}
#: Rows written to probe_rows.json at most.
MAX_PROBE_ROWS = 200
_RESERVED = set(dir(BaseModel)) | {"model_config", "model_fields"}


class FeatureSchemaError(ValueError):
    """The feature schema is malformed or does not match the model's input columns."""


class ServingModelError(ValueError):
    """The model file is missing, cannot be loaded, or cannot serve the problem type."""


@dataclass(frozen=True)
class ServingField:
    """One request field of the generated API."""

    name: str  # original column name (JSON key)
    ident: str  # Python attribute name in the generated pydantic model
    kind: str  # numeric | categorical | boolean
    dtype: str  # dtype at training time
    pytype: str  # float | int | str | bool

    @property
    def description(self) -> str:
        return f"{self.kind} feature (training dtype {self.dtype}); null = missing"


def generate_serving_app(
    model_path: Path,
    out_dir: Path,
    *,
    model_name: str,
    model_version: str,
    feature_schema: list[dict],
    problem_type: str,
    example_row: Mapping[str, Any] | None = None,
    onnx_path: Path | None = None,
    probe_rows: Sequence[Mapping[str, Any]] | None = None,
) -> Path:
    """Write the serving folder for ``model_path`` into ``out_dir`` and return ``out_dir``.

    ``feature_schema`` lists the model inputs in order: ``{name, kind, dtype}`` with kind
    numeric, categorical or boolean. ``example_row`` (optional) is used for the README's
    curl example. ``onnx_path`` (a verified graph from ``onnx_export``, with its ``.json``
    sidecar) is copied as ``model.onnx`` and becomes the default backend. ``probe_rows``
    (optional, e.g. held-out rows) are written to ``probe_rows.json``: the app checks its
    compiled in-process scoring against the model on them at startup. Also writes a
    multi-stage ``Dockerfile`` and Kubernetes manifests under ``k8s/``.
    Raises FeatureSchemaError / ServingModelError on bad input.
    """
    if problem_type not in PROBLEM_TYPES:
        raise ServingModelError(
            f"problem_type {problem_type!r} is not one of {list(PROBLEM_TYPES)}"
        )
    if not str(model_name).strip() or not str(model_version).strip():
        raise ServingModelError("model_name and model_version must be non-empty")
    fields = build_fields(feature_schema)
    model = _load_model(Path(model_path))
    _check_model_matches(model, fields, problem_type)

    modules = model_modules(model)
    if onnx_path is not None:
        modules |= {"onnxruntime"}
    requirements, unresolved = pinned_requirements(modules)
    classes = [str(_native(c)) for c in getattr(model, "classes_", [])]
    example = dict(example_row) if example_row else _placeholder_row(fields)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    env = _environment()
    context = {
        "model_name": str(model_name),
        "model_version": str(model_version),
        "problem_type": problem_type,
        "fields": fields,
        "requirements": requirements,
        "python_version": f"{sys.version_info.major}.{sys.version_info.minor}",
        "system_packages": sorted({SYSTEM_PACKAGES[m] for m in modules if m in SYSTEM_PACKAGES}),
        "classifier": problem_type != "regression" and hasattr(model, "predict_proba"),
        "classes": classes if problem_type != "regression" else [],
        "example_json": json.dumps(example, default=str).replace("'", "'\\''"),
        "image_name": re.sub(r"[^a-z0-9._-]+", "-", str(model_name).lower()).strip("-.") or "model",
        "unresolved_modules": unresolved,
        "has_onnx": onnx_path is not None,
        "onnx_default": onnx_path is not None
        and json.loads(Path(f"{onnx_path}.json").read_text()).get("preferred", True),
        "k8s_name": re.sub(r"[^a-z0-9-]+", "-", str(model_name).lower())[:63].strip("-")
        or "model",
    }
    (out_dir / "k8s").mkdir(exist_ok=True)
    for template, target in (
        ("app.py.j2", "app.py"),
        ("requirements.txt.j2", "requirements.txt"),
        ("Dockerfile.j2", "Dockerfile"),
        ("README.md.j2", "README.md"),
        ("k8s/deployment.yaml.j2", "k8s/deployment.yaml"),
        ("k8s/service.yaml.j2", "k8s/service.yaml"),
        ("k8s/hpa.yaml.j2", "k8s/hpa.yaml"),
        ("k8s/kustomization.yaml.j2", "k8s/kustomization.yaml"),
    ):
        text = env.get_template(template).render(**context)
        (out_dir / target).write_text(text.rstrip() + "\n", encoding="utf-8")
    shutil.copyfile(model_path, out_dir / "model.joblib")
    shutil.copyfile(Path(__file__).with_name("fastpath.py"), out_dir / "fastpath.py")
    probes = [_json_record(r, fields) for r in (probe_rows or [])[:MAX_PROBE_ROWS]]
    if example_row:
        probes.insert(0, _json_record(example_row, fields))
    (out_dir / "probe_rows.json").write_text(json.dumps(probes, default=str) + "\n")
    if onnx_path is not None:
        shutil.copyfile(onnx_path, out_dir / "model.onnx")
        shutil.copyfile(f"{onnx_path}.json", out_dir / "model.onnx.json")
    if unresolved:
        log.warning(
            "model %s uses modules %s that are not installed distributions; "
            "the generated requirements.txt cannot include them",
            model_name,
            unresolved,
        )
    return out_dir


def generate_api_docs(app_dir: Path, docs_dir: Path, *, timeout_s: float = 120.0) -> Path:
    """HTML API documentation of the generated ``app.py`` with pdoc, into ``docs_dir``.

    pdoc imports the module, so it runs in a subprocess with the folder as working
    directory (the model is loaded from there, sklearn backend). Raises RuntimeError with
    pdoc's output when it fails.
    """
    app_dir, docs_dir = Path(app_dir).resolve(), Path(docs_dir).resolve()
    env = {**os.environ, "MLMESH_SERVING_BACKEND": "sklearn"}
    for key in ("MLMESH_KAFKA_BOOTSTRAP", "MLMESH_SERVING_API_KEYS", "MLMESH_SERVING_RATE_LIMIT"):
        env.pop(key, None)
    completed = subprocess.run(
        [sys.executable, "-m", "pdoc", "--output-directory", str(docs_dir), "app"],
        cwd=app_dir, env=env, capture_output=True, text=True, timeout=timeout_s, check=False,
    )
    if completed.returncode != 0 or not (docs_dir / "app.html").is_file():
        raise RuntimeError(
            f"pdoc could not document {app_dir / 'app.py'} (exit {completed.returncode}): "
            f"{completed.stderr.strip()[-2000:]}"
        )
    return docs_dir


def build_fields(feature_schema: Sequence[Mapping[str, Any]]) -> list[ServingField]:
    """Validate the feature schema and derive request fields with safe Python names."""
    if not feature_schema:
        raise FeatureSchemaError("feature_schema is empty; the model needs at least one input")
    fields: list[ServingField] = []
    used: set[str] = set()
    seen: set[str] = set()
    for position, entry in enumerate(feature_schema):
        name = entry.get("name") if isinstance(entry, Mapping) else None
        kind = entry.get("kind") if isinstance(entry, Mapping) else None
        if not isinstance(name, str) or not name:
            raise FeatureSchemaError(f"feature_schema[{position}] has no column name")
        if name in seen:
            raise FeatureSchemaError(f"feature {name!r} appears twice in feature_schema")
        if kind not in FEATURE_KINDS:
            raise FeatureSchemaError(
                f"feature {name!r} has kind {kind!r}; expected one of {list(FEATURE_KINDS)} "
                "(drop id/text/datetime/constant columns before serving)"
            )
        seen.add(name)
        dtype = str(entry.get("dtype") or "object")
        ident = _identifier(name, used)
        used.add(ident)
        fields.append(ServingField(name, ident, kind, dtype, _python_type(kind, dtype)))
    return fields


def model_modules(model: Any) -> set[str]:
    """Top-level packages of every object reachable from the model (estimators, steps)."""
    found: set[str] = set()
    seen: set[int] = set()
    stack: list[tuple[Any, int]] = [(model, 0)]
    while stack and len(seen) < 20000:
        obj, depth = stack.pop()
        if id(obj) in seen or depth > 8:
            continue
        seen.add(id(obj))
        if isinstance(obj, str | bytes | int | float | bool | type(None) | np.ndarray | np.generic):
            continue
        if isinstance(obj, Mapping):
            stack.extend((v, depth + 1) for v in obj.values())
            continue
        if isinstance(obj, list | tuple | set | frozenset):
            stack.extend((v, depth + 1) for v in obj)
            continue
        module = (type(obj).__module__ or "").split(".")[0]
        if module in ("builtins", "numpy", "pandas"):
            continue
        found.add(module)
        attributes = getattr(obj, "__dict__", None)
        if isinstance(attributes, dict):
            stack.extend((v, depth + 1) for v in attributes.values())
    return {m for m in found if m and m != "__main__" and m not in sys.stdlib_module_names}


def pinned_requirements(modules: Iterable[str]) -> tuple[list[str], list[str]]:
    """``name==version`` lines for the base needs plus the model's packages.

    Returns (requirements, modules that map to no installed distribution).
    """
    by_module = importlib.metadata.packages_distributions()
    distributions = set(BASE_REQUIREMENTS)
    unresolved = []
    for module in sorted(set(modules)):
        names = by_module.get(module)
        if names:
            distributions.update(names)
        else:
            unresolved.append(module)
    lines = []
    for dist in sorted(distributions, key=str.lower):
        try:
            lines.append(f"{dist}=={importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            lines.append(dist)
    return lines, unresolved


def _identifier(name: str, used: set[str]) -> str:
    ident = re.sub(r"\W+", "_", name, flags=re.ASCII).strip("_") or "feature"
    ident = re.sub(r"__+", "_", ident)
    if ident[0].isdigit():
        ident = f"f_{ident}"
    if keyword.iskeyword(ident) or ident in _RESERVED or ident.startswith("model_"):
        ident = f"{ident}_"
    base, n = ident, 2
    while ident in used:
        ident, n = f"{base}_{n}", n + 1
    return ident


def _python_type(kind: str, dtype: str) -> str:
    if kind == "numeric":
        return "float"
    if kind == "boolean" or dtype.startswith("bool"):
        return "bool"
    lowered = dtype.lower()
    if lowered.startswith(("int", "uint")):
        return "int"
    if lowered.startswith("float"):
        return "float"
    return "str"


def _load_model(model_path: Path) -> Any:
    if not model_path.is_file():
        raise ServingModelError(f"model file {model_path} does not exist")
    try:
        model = joblib.load(model_path)
    except Exception as exc:
        raise ServingModelError(
            f"model file {model_path} cannot be loaded ({type(exc).__name__}: {exc}); "
            "regenerate it with joblib.dump in an environment with the same libraries"
        ) from exc
    if not callable(getattr(model, "predict", None)):
        raise ServingModelError(
            f"model in {model_path} ({type(model).__name__}) has no predict() method"
        )
    return model


def _check_model_matches(model: Any, fields: list[ServingField], problem_type: str) -> None:
    expected = getattr(model, "feature_columns", None)
    if expected is not None:
        names = [f.name for f in fields]
        if list(expected) != names:
            missing = [c for c in expected if c not in names]
            extra = [c for c in names if c not in expected]
            raise FeatureSchemaError(
                "feature_schema does not match model.feature_columns "
                f"(missing {missing}, unexpected {extra}, or a different order); "
                "build the schema from prep.json's feature_columns"
            )
    if problem_type != "regression" and not hasattr(model, "classes_"):
        raise ServingModelError(
            f"problem_type is {problem_type} but the model has no classes_; is this a regressor?"
        )


def _placeholder_row(fields: list[ServingField]) -> dict[str, Any]:
    values = {"float": 0.0, "int": 0, "bool": True, "str": "value"}
    return {f.name: values[f.pytype] for f in fields}


def _json_record(row: Mapping[str, Any], fields: list[ServingField]) -> dict[str, Any]:
    """A row as a client would send it: schema columns only, missing values as null."""
    out = {}
    for f in fields:
        value = _native(row.get(f.name))
        if value is None or (isinstance(value, float) and not np.isfinite(value)):
            out[f.name] = None
        else:
            try:
                out[f.name] = None if bool(value != value) else value
            except (TypeError, ValueError):  # pd.NA and friends
                out[f.name] = None
    return out


def _native(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _pyrepr(value: Any) -> str:
    """A Python literal for a string/number, safe to paste into generated code."""
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid double-quoted Python literal
    if isinstance(value, int | float | bool) or value is None:
        return repr(value)
    raise TypeError(f"cannot render {type(value).__name__} as a Python literal")


def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=False,  # generating Python, Markdown and text, not HTML
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["pyrepr"] = _pyrepr
    env.filters["md"] = _md_cell
    return env
