from __future__ import annotations

import json
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})


@dataclass
class StageRecord:
    """One stage of one experiment."""

    name: str
    status: str
    percent: float = 0.0
    message: str = ""
    started_at: float | None = None
    finished_at: float | None = None


@dataclass
class ExperimentRecord:
    """The ledger's projection of an experiment."""

    experiment_id: str
    project: str
    status: str
    spec: dict[str, Any]
    created_at: float
    updated_at: float
    result: dict[str, Any] = field(default_factory=dict)
    failure_reason: str = ""
    stages: list[StageRecord] = field(default_factory=list)


@dataclass
class DeadLetterRecord:
    """A message that could not be handled, as recorded from its `<topic>.dlq`."""

    id: str
    dlq_topic: str
    source_topic: str
    experiment_id: str
    event_id: str
    consumer_group: str
    error_type: str
    error_message: str
    stack: str
    attempt: int
    failed_at: float
    original_key: bytes
    original_value: bytes
    original_headers: dict[str, str]
    status: str
    updated_at: float


@dataclass
class WebhookRecord:
    """A project's subscription to event types, delivered to `url` signed with `secret`."""

    id: str
    project: str
    url: str
    event_types: list[str]
    secret: str
    created_at: float
    active: bool = True


@dataclass
class DeliveryRecord:
    """One event for one webhook: its attempts and outcome (the delivery log)."""

    id: str
    webhook_id: str
    event_id: str
    event_type: str
    body: str
    status: str
    attempts: int
    last_status_code: int
    last_error: str
    next_attempt_at: float
    created_at: float
    updated_at: float


@dataclass
class ApiKeyRecord:
    """An API key as stored: its digest (never the key), role and project scope."""

    id: str
    name: str
    role: str
    projects: list[str]
    digest: str
    created_at: float
    created_by: str = ""
    revoked_at: float | None = None


@dataclass
class AuditRecord:
    """One write through the API: who, what, on what, in which project, when, and how."""

    id: int
    at: float
    key_id: str
    role: str
    action: str
    target: str
    project: str
    outcome: str
    status_code: int
    detail: str = ""


@dataclass
class EventRecord:
    """One event of an experiment as the ledger saw it."""

    sequence: int
    experiment_id: str
    event_id: str
    type: str
    stage: str
    status: str
    payload: dict[str, Any]
    produced_at: float


class Ledger(ABC):
    """Durable state shared by the services; every method is safe to call from threads."""

    #: SQL parameter placeholder of the driver.
    placeholder = "%s"
    #: Appended to a SELECT to lock the rows it reads until the transaction ends.
    row_lock_clause = " FOR UPDATE"

    def __init__(self) -> None:
        self._lock = threading.RLock()

    # -- storage primitives ---------------------------------------------------------------
    @abstractmethod
    def _schema(self) -> Sequence[str]:
        """DDL statements creating the tables (idempotent)."""

    @abstractmethod
    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        """A cursor inside one transaction, committed on success."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""

    def migrate(self) -> None:
        """Create the tables when missing."""
        with self._cursor() as cur:
            for stmt in self._schema():
                cur.execute(stmt)

    def _sql(self, sql: str) -> str:
        return sql.replace("%s", self.placeholder)

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self._cursor() as cur:
            cur.execute(self._sql(sql), tuple(params))
            return list(cur.fetchall()) if cur.description else []

    # -- processed events (idempotency) ---------------------------------------------------
    def has_processed(self, consumer_group: str, event_id: str) -> bool:
        """True when `consumer_group` already handled `event_id`."""
        return bool(self._exec("SELECT 1 FROM processed_events WHERE consumer_group=%s AND "
                               "event_id=%s", (consumer_group, event_id)))

    def mark_processed(self, consumer_group: str, event_id: str) -> bool:
        """Remember that `consumer_group` handled `event_id`; False if it was already known."""
        rows = self._exec("INSERT INTO processed_events(consumer_group, event_id, processed_at) "
                          "VALUES (%s,%s,%s) ON CONFLICT DO NOTHING RETURNING event_id",
                          (consumer_group, event_id, time.time()))
        return bool(rows)

    # -- experiments ----------------------------------------------------------------------
    def create_experiment(self, experiment_id: str, project: str, spec: dict[str, Any],
                          status: str = "pending") -> bool:
        """Insert an experiment; False (and no change) when the id exists."""
        now = time.time()
        rows = self._exec(
            "INSERT INTO experiments(experiment_id, project, status, spec_json, result_json, "
            "failure_reason, created_at, updated_at) VALUES (%s,%s,%s,%s,'{}','',%s,%s) "
            "ON CONFLICT DO NOTHING RETURNING experiment_id",
            (experiment_id, project, status, json.dumps(spec), now, now))
        return bool(rows)

    def get_experiment(self, experiment_id: str) -> ExperimentRecord | None:
        """The experiment with its stages, or None."""
        rows = self._exec("SELECT experiment_id, project, status, spec_json, result_json, "
                          "failure_reason, created_at, updated_at FROM experiments "
                          "WHERE experiment_id=%s", (experiment_id,))
        if not rows:
            return None
        record = _experiment(rows[0])
        record.stages = self.get_stages(experiment_id)
        return record

    def work_started_at(self, experiment_id: str) -> float | None:
        """When work on the experiment began: its first stage's start, else its creation
        (epoch seconds); None for an unknown experiment. Time spent queued before the
        first stage does not count against its budget."""
        rows = self._exec("SELECT MIN(COALESCE(started_at, finished_at)) FROM stages "
                          "WHERE experiment_id=%s", (experiment_id,))
        if rows and rows[0][0] is not None:
            return float(rows[0][0])
        record = self._exec("SELECT created_at FROM experiments WHERE experiment_id=%s",
                            (experiment_id,))
        return float(record[0][0]) if record else None

    def list_experiments(self, project: str | None = None, status: str | None = None,
                         limit: int = 50, projects: Sequence[str] | None = None,
                         ) -> list[ExperimentRecord]:
        """Experiments, newest first, optionally filtered (`projects`: any of these)."""
        where, params = [], []
        if project:
            where.append("project=%s")
            params.append(project)
        if projects is not None:
            where.append(_any_of("project", projects))
            params.extend(projects)
        if status:
            where.append("status=%s")
            params.append(status)
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        rows = self._exec("SELECT experiment_id, project, status, spec_json, result_json, "
                          "failure_reason, created_at, updated_at FROM experiments "
                          f"{clause}ORDER BY created_at DESC LIMIT %s", (*params, max(1, limit)))
        return [_experiment(r) for r in rows]

    def reopen(self, experiment_id: str) -> bool:
        """Put a failed experiment back to running (an operator replayed its message)."""
        rows = self._exec("UPDATE experiments SET status='running', failure_reason='', "
                          "updated_at=%s WHERE experiment_id=%s AND status='failed' "
                          "RETURNING experiment_id", (time.time(), experiment_id))
        return bool(rows)

    def set_status(self, experiment_id: str, status: str, failure_reason: str = "") -> bool:
        """Move an experiment to `status`; a terminal status is never left. False if unchanged."""
        rows = self._exec(
            "UPDATE experiments SET status=%s, failure_reason=CASE WHEN %s='' THEN "
            "failure_reason ELSE %s END, updated_at=%s WHERE experiment_id=%s AND status NOT IN "
            "('completed','failed','cancelled') AND status<>%s RETURNING experiment_id",
            (status, failure_reason, failure_reason, time.time(), experiment_id, status))
        return bool(rows)

    def merge_result(self, experiment_id: str, result: dict[str, Any]) -> None:
        """Merge keys into the experiment's result summary."""
        with self._lock, self._cursor() as cur:
            cur.execute(self._sql("SELECT result_json FROM experiments WHERE experiment_id=%s"),
                        (experiment_id,))
            row = cur.fetchone()
            if row is None:
                return
            merged = {**json.loads(row[0] or "{}"), **result}
            cur.execute(self._sql("UPDATE experiments SET result_json=%s, updated_at=%s "
                                  "WHERE experiment_id=%s"),
                        (json.dumps(merged), time.time(), experiment_id))

    def is_cancelled(self, experiment_id: str) -> bool:
        """True when the experiment was cancelled."""
        rows = self._exec("SELECT status FROM experiments WHERE experiment_id=%s",
                          (experiment_id,))
        return bool(rows) and rows[0][0] == "cancelled"

    # -- stages ---------------------------------------------------------------------------
    def upsert_stage(self, experiment_id: str, stage: str, status: str, percent: float = 0.0,
                     message: str = "", at: float | None = None) -> None:
        """Record a stage's state; a finished stage stays finished."""
        at = at or time.time()
        started = at if status in ("running", "started") else None
        finished = at if status in ("finished", "skipped", "failed") else None
        self._exec(
            "INSERT INTO stages(experiment_id, stage, status, percent, message, started_at, "
            "finished_at) VALUES (%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (experiment_id, stage) DO "
            "UPDATE SET status=CASE WHEN stages.status IN ('finished','skipped') THEN "
            "stages.status ELSE excluded.status END, percent=CASE WHEN stages.status IN "
            "('finished','skipped') THEN stages.percent ELSE excluded.percent END, "
            "message=excluded.message, started_at=COALESCE(stages.started_at, "
            "excluded.started_at), finished_at=COALESCE(excluded.finished_at, "
            "stages.finished_at)",
            (experiment_id, stage, status, percent, message, started, finished))

    def get_stages(self, experiment_id: str) -> list[StageRecord]:
        """The experiment's stages in the order they started."""
        rows = self._exec("SELECT stage, status, percent, message, started_at, finished_at "
                          "FROM stages WHERE experiment_id=%s ORDER BY "
                          "COALESCE(started_at, finished_at)", (experiment_id,))
        return [StageRecord(*r) for r in rows]

    # -- event log ------------------------------------------------------------------------
    def append_event(self, experiment_id: str, event_id: str, type_: str, stage: str,
                     status: str, payload: dict[str, Any], produced_at: float) -> int | None:
        """Append to the experiment's event log; None when the event id is already there."""
        rows = self._exec(
            "INSERT INTO events(experiment_id, event_id, type, stage, status, payload_json, "
            "produced_at) VALUES (%s,%s,%s,%s,%s,%s,%s) ON CONFLICT DO NOTHING "
            "RETURNING sequence",
            (experiment_id, event_id, type_, stage, status, json.dumps(payload), produced_at))
        return int(rows[0][0]) if rows else None

    def events_since(self, experiment_id: str, after_sequence: int = 0,
                     limit: int = 500) -> list[EventRecord]:
        """The experiment's events after `after_sequence`, oldest first."""
        rows = self._exec("SELECT sequence, experiment_id, event_id, type, stage, status, "
                          "payload_json, produced_at FROM events WHERE experiment_id=%s AND "
                          "sequence>%s ORDER BY sequence LIMIT %s",
                          (experiment_id, after_sequence, limit))
        return [EventRecord(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), r[7])
                for r in rows]

    def latest_event(self, experiment_id: str, event_type: str) -> EventRecord | None:
        """The experiment's newest event of `event_type`, or None (the watchdog's input)."""
        rows = self._exec("SELECT sequence, experiment_id, event_id, type, stage, status, "
                          "payload_json, produced_at FROM events WHERE experiment_id=%s AND "
                          "type=%s ORDER BY sequence DESC LIMIT 1", (experiment_id, event_type))
        return (EventRecord(rows[0][0], rows[0][1], rows[0][2], rows[0][3], rows[0][4],
                            rows[0][5], json.loads(rows[0][6]), rows[0][7]) if rows else None)

    def idle_experiments(self, idle_before: float, limit: int = 100) -> list[str]:
        """Running or pending experiments whose newest event (or creation, when none is
        logged) is older than `idle_before` (POSIX seconds), the longest idle first (the
        watchdog's candidates)."""
        rows = self._exec("SELECT e.experiment_id FROM experiments e LEFT JOIN events v ON "
                          "v.experiment_id=e.experiment_id WHERE e.status IN "
                          "('running','pending') GROUP BY e.experiment_id, e.created_at HAVING "
                          "COALESCE(MAX(v.produced_at), e.created_at)<%s ORDER BY "
                          "COALESCE(MAX(v.produced_at), e.created_at) LIMIT %s",
                          (idle_before, max(1, limit)))
        return [r[0] for r in rows]

    def forget_processed(self, consumer_group: str, event_id: str) -> bool:
        """Let `consumer_group` handle `event_id` again (a watchdog re-drive); False if it
        had not handled it."""
        return bool(self._exec("DELETE FROM processed_events WHERE consumer_group=%s AND "
                               "event_id=%s RETURNING event_id", (consumer_group, event_id)))

    # -- dead letters ---------------------------------------------------------------------
    def record_dead_letter(self, record: DeadLetterRecord) -> bool:
        """Remember a dead letter (idempotent on its id); False if it was already known."""
        rows = self._exec(
            "INSERT INTO dead_letters(id, dlq_topic, source_topic, experiment_id, event_id, "
            "consumer_group, error_type, error_message, stack, attempt, failed_at, "
            "original_key, original_value, headers_json, status, updated_at) VALUES "
            "(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT DO NOTHING "
            "RETURNING id",
            (record.id, record.dlq_topic, record.source_topic, record.experiment_id,
             record.event_id, record.consumer_group, record.error_type, record.error_message,
             record.stack, record.attempt, record.failed_at, record.original_key,
             record.original_value, json.dumps(record.original_headers), record.status,
             record.updated_at))
        return bool(rows)

    _DLQ_COLUMNS = ("id, dlq_topic, source_topic, experiment_id, event_id, consumer_group, "
                    "error_type, error_message, stack, attempt, failed_at, original_key, "
                    "original_value, headers_json, status, updated_at")

    def list_dead_letters(self, *, source_topic: str = "", experiment_id: str = "",
                          status: str = "open", limit: int = 100,
                          projects: Sequence[str] | None = None) -> list[DeadLetterRecord]:
        """Dead letters, newest first, filtered by topic, experiment and status ('' = any);
        `projects`: only those of experiments in these projects."""
        where, params = [], []
        for column, value in (("source_topic", source_topic), ("experiment_id", experiment_id),
                              ("status", status)):
            if value:
                where.append(f"{column}=%s")
                params.append(value)
        if projects is not None:
            where.append("experiment_id IN (SELECT experiment_id FROM experiments WHERE "
                         + _any_of("project", projects) + ")")
            params.extend(projects)
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        rows = self._exec(f"SELECT {self._DLQ_COLUMNS} FROM dead_letters {clause}"
                          "ORDER BY failed_at DESC LIMIT %s", (*params, max(1, limit)))
        return [_dead_letter(r) for r in rows]

    def get_dead_letter(self, letter_id: str) -> DeadLetterRecord | None:
        rows = self._exec(f"SELECT {self._DLQ_COLUMNS} FROM dead_letters WHERE id=%s",
                          (letter_id,))
        return _dead_letter(rows[0]) if rows else None

    def set_dead_letter_status(self, letter_id: str, status: str, expected: str = "open",
                               ) -> bool:
        """Move a dead letter from `expected` to `status`; False when it was not `expected`."""
        rows = self._exec("UPDATE dead_letters SET status=%s, updated_at=%s WHERE id=%s AND "
                          "status=%s RETURNING id", (status, time.time(), letter_id, expected))
        return bool(rows)

    def count_dead_letters(self, projects: Sequence[str] | None = None) -> dict[str, int]:
        """Open dead letters per source topic (`projects`: only of these projects)."""
        scope = ""
        if projects is not None:
            scope = (" AND experiment_id IN (SELECT experiment_id FROM experiments WHERE "
                     + _any_of("project", projects) + ")")
        rows = self._exec("SELECT source_topic, COUNT(*) FROM dead_letters WHERE "
                          f"status='open'{scope} GROUP BY source_topic", tuple(projects or ()))
        return {topic: int(n) for topic, n in rows}

    # -- API keys and the audit log -------------------------------------------------------
    _KEY_COLUMNS = "id, name, role, projects_json, digest, created_at, created_by, revoked_at"

    def add_api_key(self, record: ApiKeyRecord) -> bool:
        """Store a key's digest; False when the id exists (then nothing changes)."""
        return bool(self._exec(
            f"INSERT INTO api_keys({self._KEY_COLUMNS}) VALUES (%s,%s,%s,%s,%s,%s,%s,%s) "
            "ON CONFLICT DO NOTHING RETURNING id",
            (record.id, record.name, record.role, json.dumps(record.projects), record.digest,
             record.created_at, record.created_by, record.revoked_at)))

    def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        """The key with that id, revoked or not."""
        rows = self._exec(f"SELECT {self._KEY_COLUMNS} FROM api_keys WHERE id=%s", (key_id,))
        return _api_key(rows[0]) if rows else None

    def list_api_keys(self, include_revoked: bool = False) -> list[ApiKeyRecord]:
        """Keys, oldest first."""
        rows = self._exec(f"SELECT {self._KEY_COLUMNS} FROM api_keys"
                          + ("" if include_revoked else " WHERE revoked_at IS NULL")
                          + " ORDER BY created_at")
        return [_api_key(r) for r in rows]

    def revoke_api_key(self, key_id: str) -> bool:
        """Revoke a key; False when there is no active key with that id."""
        return bool(self._exec("UPDATE api_keys SET revoked_at=%s WHERE id=%s AND revoked_at "
                               "IS NULL RETURNING id", (time.time(), key_id)))

    def record_audit(self, record: AuditRecord) -> None:
        """Append to the audit log (its id is assigned here)."""
        self._exec("INSERT INTO audit_log(at, key_id, role, action, target, project, outcome, "
                   "status_code, detail) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                   (record.at, record.key_id, record.role, record.action, record.target,
                    record.project, record.outcome, record.status_code, record.detail))

    def list_audit(self, *, projects: Sequence[str] | None = None, key_id: str = "",
                   action: str = "", since: float = 0.0, limit: int = 100) -> list[AuditRecord]:
        """Audit entries, newest first, filtered by projects, key, action and time."""
        where, params = ["at>=%s"], [since]
        for column, value in (("key_id", key_id), ("action", action)):
            if value:
                where.append(f"{column}=%s")
                params.append(value)
        if projects is not None:
            where.append(_any_of("project", projects))
            params.extend(projects)
        rows = self._exec("SELECT id, at, key_id, role, action, target, project, outcome, "
                          f"status_code, detail FROM audit_log WHERE {' AND '.join(where)} "
                          "ORDER BY id DESC LIMIT %s", (*params, max(1, limit)))
        return [AuditRecord(*r) for r in rows]

    def events_of_type(self, type_: str, limit: int = 200) -> list[EventRecord]:
        """The newest events of one type across experiments, newest first."""
        rows = self._exec("SELECT sequence, experiment_id, event_id, type, stage, status, "
                          "payload_json, produced_at FROM events WHERE type=%s "
                          "ORDER BY sequence DESC LIMIT %s", (type_, limit))
        return [EventRecord(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), r[7])
                for r in rows]

    # -- webhooks ---------------------------------------------------------------------------
    def add_webhook(self, record: WebhookRecord) -> None:
        self._exec("INSERT INTO webhooks(id, project, url, event_types_json, secret, created_at, "
                   "active) VALUES (%s,%s,%s,%s,%s,%s,%s)",
                   (record.id, record.project, record.url, json.dumps(record.event_types),
                    record.secret, record.created_at, 1 if record.active else 0))

    def list_webhooks(self, project: str = "", event_type: str = "") -> list[WebhookRecord]:
        """Active subscriptions, optionally of one project and wanting one event type."""
        rows = self._exec("SELECT id, project, url, event_types_json, secret, created_at, active "
                          "FROM webhooks WHERE active=1" + (" AND project=%s" if project else "")
                          + " ORDER BY created_at", (project,) if project else ())
        hooks = [WebhookRecord(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5], bool(r[6]))
                 for r in rows]
        return [h for h in hooks if not event_type or event_type in h.event_types]

    def get_webhook(self, webhook_id: str) -> WebhookRecord | None:
        rows = self._exec("SELECT id, project, url, event_types_json, secret, created_at, active "
                          "FROM webhooks WHERE id=%s AND active=1", (webhook_id,))
        return (WebhookRecord(rows[0][0], rows[0][1], rows[0][2], json.loads(rows[0][3]),
                              rows[0][4], rows[0][5], bool(rows[0][6])) if rows else None)

    def remove_webhook(self, webhook_id: str) -> bool:
        return bool(self._exec("UPDATE webhooks SET active=0 WHERE id=%s AND active=1 "
                               "RETURNING id", (webhook_id,)))

    def enqueue_delivery(self, record: DeliveryRecord) -> bool:
        """Queue an event for a webhook; False when that pair is already queued (a redo)."""
        return bool(self._exec(
            "INSERT INTO webhook_deliveries(id, webhook_id, event_id, event_type, body, status, "
            "attempts, last_status_code, last_error, next_attempt_at, created_at, updated_at) "
            "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT DO NOTHING RETURNING id",
            (record.id, record.webhook_id, record.event_id, record.event_type, record.body,
             record.status, record.attempts, record.last_status_code, record.last_error,
             record.next_attempt_at, record.created_at, record.updated_at)))

    _DELIVERY_COLUMNS = ("id, webhook_id, event_id, event_type, body, status, attempts, "
                         "last_status_code, last_error, next_attempt_at, created_at, updated_at")

    def due_deliveries(self, now: float, limit: int = 20) -> list[DeliveryRecord]:
        """Deliveries whose next attempt is due (pending, or claimed by a replica whose lease
        ran out), oldest first."""
        rows = self._exec(f"SELECT {self._DELIVERY_COLUMNS} FROM webhook_deliveries WHERE "
                          "status IN ('pending','sending') AND next_attempt_at<=%s "
                          "ORDER BY next_attempt_at LIMIT %s", (now, limit))
        return [DeliveryRecord(*r) for r in rows]

    def claim_delivery(self, delivery_id: str, lease_s: float) -> bool:
        """Take a due delivery for one attempt; False when another replica has it."""
        now = time.time()
        return bool(self._exec(
            "UPDATE webhook_deliveries SET status='sending', next_attempt_at=%s WHERE id=%s "
            "AND status IN ('pending','sending') AND next_attempt_at<=%s RETURNING id",
            (now + lease_s, delivery_id, now)))

    def record_attempt(self, delivery_id: str, *, status: str, status_code: int, error: str,
                       next_attempt_at: float) -> None:
        """Log one delivery attempt and its outcome."""
        self._exec("UPDATE webhook_deliveries SET status=%s, attempts=attempts+1, "
                   "last_status_code=%s, last_error=%s, next_attempt_at=%s, updated_at=%s "
                   "WHERE id=%s", (status, status_code, error, next_attempt_at, time.time(),
                                   delivery_id))

    def list_deliveries(self, webhook_id: str, limit: int = 100) -> list[DeliveryRecord]:
        rows = self._exec(f"SELECT {self._DELIVERY_COLUMNS} FROM webhook_deliveries WHERE "
                          "webhook_id=%s ORDER BY created_at DESC LIMIT %s", (webhook_id, limit))
        return [DeliveryRecord(*r) for r in rows]

    # -- fan-in and coordinator state -----------------------------------------------------
    def fanin_add(self, scope: str, item: str, value: dict[str, Any]) -> int:
        """Record one result of a fan-out (idempotent per item); returns how many are in."""
        with self._cursor() as cur:
            cur.execute(self._sql("INSERT INTO fanin(scope, item, value_json, added_at) VALUES "
                                  "(%s,%s,%s,%s) ON CONFLICT DO NOTHING"),
                        (scope, item, json.dumps(value), time.time()))
            cur.execute(self._sql("SELECT COUNT(*) FROM fanin WHERE scope=%s"), (scope,))
            return int(cur.fetchone()[0])

    def fanin_items(self, scope: str) -> dict[str, dict[str, Any]]:
        """Every result recorded for `scope`, by item."""
        rows = self._exec("SELECT item, value_json FROM fanin WHERE scope=%s ORDER BY added_at",
                          (scope,))
        return {item: json.loads(value) for item, value in rows}

    def state_get(self, scope: str) -> dict[str, Any] | None:
        """A coordinator's saved state, or None."""
        rows = self._exec("SELECT value_json FROM coordinator_state WHERE scope=%s", (scope,))
        return json.loads(rows[0][0]) if rows else None

    def state_put(self, scope: str, value: dict[str, Any]) -> None:
        """Save a coordinator's state (overwrites)."""
        self._exec("INSERT INTO coordinator_state(scope, value_json, updated_at) VALUES "
                   "(%s,%s,%s) ON CONFLICT (scope) DO UPDATE SET value_json=excluded.value_json, "
                   "updated_at=excluded.updated_at", (scope, json.dumps(value), time.time()))

    def state_update(self, scope: str,
                     update: Callable[[dict[str, Any] | None], dict[str, Any] | None],
                     ) -> dict[str, Any] | None:
        """Read-modify-write `scope`'s state in one transaction, serialized against every
        other writer of the scope (row lock on PostgreSQL, the write lock on SQLite).
        `update` gets the stored value (None when there is none) and returns the new value,
        or None to keep it; returns what is stored afterwards. Keep `update` short and free
        of I/O: it runs while the lock is held."""
        with self._cursor() as cur:
            cur.execute(self._sql("INSERT INTO coordinator_state(scope, value_json, updated_at) "
                                  "VALUES (%s,%s,%s) ON CONFLICT DO NOTHING"),
                        (scope, "null", time.time()))
            cur.execute(self._sql("SELECT value_json FROM coordinator_state WHERE scope=%s"
                                  + self.row_lock_clause), (scope,))
            current = json.loads(cur.fetchone()[0])
            new = update(current)
            if new is None:
                return current
            cur.execute(self._sql("UPDATE coordinator_state SET value_json=%s, updated_at=%s "
                                  "WHERE scope=%s"), (json.dumps(new), time.time(), scope))
            return new

    def state_init(self, scope: str, value: dict[str, Any]) -> dict[str, Any]:
        """Save `value` unless state exists; return what is stored."""
        self._exec("INSERT INTO coordinator_state(scope, value_json, updated_at) VALUES "
                   "(%s,%s,%s) ON CONFLICT DO NOTHING", (scope, json.dumps(value), time.time()))
        stored = self.state_get(scope)
        assert stored is not None
        return stored


def _experiment(row: tuple) -> ExperimentRecord:
    return ExperimentRecord(experiment_id=row[0], project=row[1], status=row[2],
                            spec=json.loads(row[3]), result=json.loads(row[4] or "{}"),
                            failure_reason=row[5] or "", created_at=row[6], updated_at=row[7])


def _any_of(column: str, values: Sequence[str]) -> str:
    """`column IN (...)` with one placeholder per value (never matches when empty)."""
    return f"{column} IN ({','.join(['%s'] * len(values))})" if values else "1=0"


def _api_key(row: tuple) -> ApiKeyRecord:
    return ApiKeyRecord(id=row[0], name=row[1], role=row[2], projects=json.loads(row[3]),
                        digest=row[4], created_at=row[5], created_by=row[6], revoked_at=row[7])


def _dead_letter(row: tuple) -> DeadLetterRecord:
    return DeadLetterRecord(
        id=row[0], dlq_topic=row[1], source_topic=row[2], experiment_id=row[3], event_id=row[4],
        consumer_group=row[5], error_type=row[6], error_message=row[7], stack=row[8],
        attempt=int(row[9]), failed_at=float(row[10]), original_key=bytes(row[11]),
        original_value=bytes(row[12]), original_headers=json.loads(row[13]), status=row[14],
        updated_at=float(row[15]))


def common_schema(serial: str, real: str = "DOUBLE PRECISION", blob: str = "BYTEA",
                  ) -> list[str]:
    """DDL shared by both storages; `serial` is the auto-increment primary key type."""
    return [
        "CREATE TABLE IF NOT EXISTS processed_events (consumer_group TEXT NOT NULL, "
        f"event_id TEXT NOT NULL, processed_at {real} NOT NULL, "
        "PRIMARY KEY (consumer_group, event_id))",
        "CREATE TABLE IF NOT EXISTS experiments (experiment_id TEXT PRIMARY KEY, "
        "project TEXT NOT NULL, status TEXT NOT NULL, spec_json TEXT NOT NULL, "
        f"result_json TEXT NOT NULL, failure_reason TEXT NOT NULL, created_at {real} NOT NULL, "
        f"updated_at {real} NOT NULL)",
        "CREATE INDEX IF NOT EXISTS experiments_project ON experiments(project, created_at)",
        "CREATE TABLE IF NOT EXISTS stages (experiment_id TEXT NOT NULL, stage TEXT NOT NULL, "
        f"status TEXT NOT NULL, percent {real} NOT NULL, message TEXT NOT NULL, "
        f"started_at {real}, finished_at {real}, PRIMARY KEY (experiment_id, stage))",
        f"CREATE TABLE IF NOT EXISTS events (sequence {serial}, experiment_id TEXT NOT NULL, "
        "event_id TEXT NOT NULL UNIQUE, type TEXT NOT NULL, stage TEXT NOT NULL, "
        f"status TEXT NOT NULL, payload_json TEXT NOT NULL, produced_at {real} NOT NULL)",
        "CREATE INDEX IF NOT EXISTS events_experiment ON events(experiment_id, sequence)",
        "CREATE TABLE IF NOT EXISTS fanin (scope TEXT NOT NULL, item TEXT NOT NULL, "
        f"value_json TEXT NOT NULL, added_at {real} NOT NULL, PRIMARY KEY (scope, item))",
        "CREATE TABLE IF NOT EXISTS coordinator_state (scope TEXT PRIMARY KEY, "
        f"value_json TEXT NOT NULL, updated_at {real} NOT NULL)",
        "CREATE TABLE IF NOT EXISTS dead_letters (id TEXT PRIMARY KEY, dlq_topic TEXT NOT NULL, "
        "source_topic TEXT NOT NULL, experiment_id TEXT NOT NULL, event_id TEXT NOT NULL, "
        "consumer_group TEXT NOT NULL, error_type TEXT NOT NULL, error_message TEXT NOT NULL, "
        f"stack TEXT NOT NULL, attempt INTEGER NOT NULL, failed_at {real} NOT NULL, "
        f"original_key {blob} NOT NULL, original_value {blob} NOT NULL, "
        f"headers_json TEXT NOT NULL, status TEXT NOT NULL, updated_at {real} NOT NULL)",
        "CREATE INDEX IF NOT EXISTS dead_letters_topic ON dead_letters(source_topic, status)",
        "CREATE TABLE IF NOT EXISTS webhooks (id TEXT PRIMARY KEY, project TEXT NOT NULL, "
        "url TEXT NOT NULL, event_types_json TEXT NOT NULL, secret TEXT NOT NULL, "
        f"created_at {real} NOT NULL, active INTEGER NOT NULL)",
        "CREATE TABLE IF NOT EXISTS webhook_deliveries (id TEXT PRIMARY KEY, "
        "webhook_id TEXT NOT NULL, event_id TEXT NOT NULL, event_type TEXT NOT NULL, "
        "body TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL, "
        "last_status_code INTEGER NOT NULL, last_error TEXT NOT NULL, "
        f"next_attempt_at {real} NOT NULL, created_at {real} NOT NULL, "
        f"updated_at {real} NOT NULL, UNIQUE (webhook_id, event_id))",
        "CREATE INDEX IF NOT EXISTS deliveries_due ON webhook_deliveries(status, "
        "next_attempt_at)",
        "CREATE TABLE IF NOT EXISTS api_keys (id TEXT PRIMARY KEY, name TEXT NOT NULL, "
        "role TEXT NOT NULL, projects_json TEXT NOT NULL, digest TEXT NOT NULL, "
        f"created_at {real} NOT NULL, created_by TEXT NOT NULL, revoked_at {real})",
        f"CREATE TABLE IF NOT EXISTS audit_log (id {serial}, at {real} NOT NULL, "
        "key_id TEXT NOT NULL, role TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL, "
        "project TEXT NOT NULL, outcome TEXT NOT NULL, status_code INTEGER NOT NULL, "
        "detail TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS audit_project ON audit_log(project, at)",
        "CREATE INDEX IF NOT EXISTS events_type ON events(type, sequence)",
    ]
