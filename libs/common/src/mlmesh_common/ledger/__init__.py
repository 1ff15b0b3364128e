"""The ledger: experiments, stages, processed events, fan-in state and the event log.

One abstract base (`Ledger`) with a SQLite and a PostgreSQL storage behind it;
`open_ledger(url)` picks one from the URL.
"""

from mlmesh_common.ledger._base import (
    ApiKeyRecord,
    AuditRecord,
    DeadLetterRecord,
    DeliveryRecord,
    EventRecord,
    ExperimentRecord,
    Ledger,
    StageRecord,
    WebhookRecord,
)
from mlmesh_common.ledger._factory import open_ledger

__all__ = ["ApiKeyRecord", "AuditRecord", "DeadLetterRecord", "DeliveryRecord", "EventRecord",
           "ExperimentRecord", "Ledger", "StageRecord", "WebhookRecord", "open_ledger"]
