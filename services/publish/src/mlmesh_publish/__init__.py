"""Domain logic of the publish service: artifacts (native booster file, verified ONNX),
model registry with a champion gate, and generated serving apps."""

from mlmesh_publish.artifacts import PublishedArtifacts, export_artifacts
from mlmesh_publish.onnx_export import OnnxUnsupportedError, export_onnx, verify_onnx
from mlmesh_publish.registry import (
    ModelFileError,
    Promotion,
    RegisteredModel,
    RegistrationInputError,
    RegistryConfigError,
    promote_if_better,
    register_model,
)
from mlmesh_publish.serving import (
    FeatureSchemaError,
    ServingModelError,
    generate_api_docs,
    generate_serving_app,
)

__all__ = [
    "FeatureSchemaError",
    "ModelFileError",
    "OnnxUnsupportedError",
    "Promotion",
    "PublishedArtifacts",
    "RegisteredModel",
    "RegistrationInputError",
    "RegistryConfigError",
    "ServingModelError",
    "export_artifacts",
    "export_onnx",
    "generate_api_docs",
    "generate_serving_app",
    "promote_if_better",
    "register_model",
    "verify_onnx",
]
