"""Error classes the runtime understands, and the rule that tells transient from permanent."""

from __future__ import annotations


class MeshError(Exception):
    """Base of mlmesh's own errors."""


class PermanentError(MeshError):
    """Retrying cannot help (bad input, wrong version); the message goes to the DLQ at once."""


class TransientError(MeshError):
    """A dependency hiccup; the runtime retries in place with backoff."""


class UndecodableEvent(PermanentError):
    """The bytes on a topic are not an Envelope this consumer can read."""


class UnsupportedVersion(PermanentError):
    """The envelope's major schema version is not one this consumer speaks."""


class Cancelled(MeshError):
    """The experiment was cancelled; work stops between steps."""


_TRANSIENT_NAMES = {
    # Third-party transient errors, matched by name to keep libs/common free of the imports.
    "CircuitBreakerError", "KafkaError", "KafkaConnectionError", "RequestTimedOutError",
    "TransportError", "TimeoutException", "ConnectError", "ReadTimeout", "RemoteProtocolError",
    "OperationalError", "EndpointConnectionError", "ConnectionClosedError",
    "GitCommandError", "RestException",
}


def is_transient(exc: BaseException) -> bool:
    """True when retrying the same work later may succeed."""
    if isinstance(exc, PermanentError | Cancelled):
        return False
    if isinstance(exc, TransientError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError | PermissionError
                                                   | IsADirectoryError | NotADirectoryError):
        return True
    return any(cls.__name__ in _TRANSIENT_NAMES or cls.__name__.startswith("Transient")
               for cls in type(exc).__mro__)
