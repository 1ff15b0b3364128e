"""Domain logic of the publish service: model registry and generated serving apps."""

from mlmesh_publish.registry import (
    ModelFileError,
    RegisteredModel,
    RegistrationInputError,
    RegistryConfigError,
    register_model,
)
from mlmesh_publish.serving import (
    FeatureSchemaError,
    ServingModelError,
    generate_serving_app,
)

__all__ = [
    "FeatureSchemaError",
    "ModelFileError",
    "RegisteredModel",
    "RegistrationInputError",
    "RegistryConfigError",
    "ServingModelError",
    "generate_serving_app",
    "register_model",
]
