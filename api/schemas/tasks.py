"""Tasks: one task (the read model's TaskRecord), sending, chains, results, history, stats, failures."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from jobs.platform.queues import QUEUES
from monitoring.actions import MAX_DELAY
from monitoring.records import STATES

TASK_ID_EXAMPLE = "5f0c2a8e-3b71-4a36-9d0e-2f9c4b1e7a10"
#: Most steps in one chain, and most tasks in one page of history.
MAX_CHAIN_STEPS = 50
MAX_PAGE_SIZE = 500


def _nullable(field_class, **options):
    return field_class(allow_none=True, **options)


class TimelineEventSchema(Schema):
    """One event in a task's life (an attempt starting, failing, a retry scheduled, ...)."""

    state = fields.String(required=True, metadata={"example": "STARTED"})
    at = _nullable(fields.DateTime)
    eta = _nullable(fields.DateTime)
    worker = _nullable(fields.String)
    attempt = _nullable(fields.Integer)
    error = _nullable(fields.String)
    reason = _nullable(fields.String)


class TaskSchema(Schema):
    """A task as the monitoring store knows it (arguments and results cut for display, secrets masked)."""

    task_id = fields.String(required=True, metadata={"example": TASK_ID_EXAMPLE})
    task_name = fields.String(required=True, metadata={"example": "check_pending_bills"})
    status = fields.String(required=True, validate=validate.OneOf(STATES), metadata={"example": "SUCCESS"})
    queue = fields.String(required=True, metadata={"example": "finance"})
    args = _nullable(fields.Raw, metadata={"example": []})
    kwargs = _nullable(fields.Raw, metadata={"example": {}})
    result = _nullable(fields.Raw, metadata={"example": {"overdue": 3}})
    error = _nullable(
        fields.Function,
        serialize=lambda task: f"{task.error_type}: {task.error_message}" if task.error_type else None,
        metadata={"description": "Type and message of the last error", "type": "string"},
    )
    error_type = _nullable(fields.String)
    error_message = _nullable(fields.String)
    timestamp = _nullable(
        fields.DateTime,
        metadata={"description": "When it last changed", "example": "2026-01-01T12:00:00+00:00"},
    )
    enqueued_at = _nullable(fields.DateTime)
    eta = _nullable(fields.DateTime, metadata={"description": "When a scheduled task may run"})
    started_at = _nullable(fields.DateTime)
    finished_at = _nullable(fields.DateTime)
    duration = _nullable(
        fields.Float, metadata={"description": "Seconds the last attempt ran", "example": 1.5}
    )
    worker = _nullable(fields.String)
    attempt = _nullable(fields.Integer)
    retries = fields.Integer(required=True, metadata={"example": 0})
    progress = _nullable(fields.Float, metadata={"description": "Percent done, as the job reported it"})
    progress_text = _nullable(fields.String)
    parent = _nullable(
        fields.String, attribute="parent_id", metadata={"description": "The task that sent it"}
    )
    pipeline = fields.List(
        fields.String(),
        allow_none=True,
        metadata={"description": "The jobs of the pipeline's steps after it"},
    )
    group_id = _nullable(fields.String)
    retry_of = _nullable(fields.String)
    retried_as = _nullable(fields.String)
    fingerprint = _nullable(fields.String, metadata={"description": "Its failure group"})
    orphaned = fields.Boolean(required=True, metadata={"description": "Its worker died while running it"})
    dead_lettered = fields.Boolean(required=True)
    revoke_requested = fields.Boolean(required=True)
    timeline = fields.List(fields.Nested(TimelineEventSchema), required=True)


class TaskListSchema(Schema):
    tasks = fields.List(fields.Nested(TaskSchema), required=True)
    count = fields.Integer(required=True)


class SendTaskSchema(Schema):
    """A task to send: the job's name, its arguments, and when and where it may run."""

    task_name = fields.String(
        required=True, validate=validate.Length(min=1, max=200), metadata={"example": "test_task"}
    )
    args = fields.List(fields.Raw(allow_none=True), load_default=list, metadata={"example": ["hello"]})
    kwargs = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True), load_default=dict)
    delay = fields.Float(
        validate=validate.Range(min=0, max=MAX_DELAY),
        metadata={"description": "Seconds to wait before it may run (at most 7 days)"},
    )
    eta = fields.AwareDateTime(metadata={"description": "When it may run, with its UTC offset"})
    queue = fields.String(
        validate=validate.OneOf(QUEUES), metadata={"description": "Another queue than the job's own"}
    )

    @validates_schema
    def _one_of_delay_or_eta(self, data, **kwargs):
        if "delay" in data and "eta" in data:
            raise ValidationError("give a delay or an eta, not both", "eta")


class ChainStepSchema(Schema):
    task_name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    args = fields.List(fields.Raw(allow_none=True), load_default=list)
    kwargs = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True), load_default=dict)


class ChainSchema(Schema):
    """A pipeline: each step's result is passed to the next as its last argument."""

    steps = fields.List(
        fields.Nested(ChainStepSchema),
        required=True,
        validate=validate.Length(min=2, max=MAX_CHAIN_STEPS),
        metadata={"example": [{"task_name": "test_task", "args": [1]}, {"task_name": "test_task"}]},
    )


class ChainSentSchema(Schema):
    task_ids = fields.List(
        fields.String(), required=True, metadata={"description": "In the order of the steps"}
    )


class RevokeOutcomeSchema(Schema):
    task_id = fields.String(required=True)
    revoked = fields.Boolean(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATES))
    reason = fields.String(required=True, metadata={"example": "not revoked: already SUCCESS"})


class RetryOutcomeSchema(Schema):
    task_id = fields.String(required=True)
    retried = fields.Boolean(required=True)
    new_task_id = fields.String(required=True, metadata={"description": "The new task sent"})


class ResultSchema(Schema):
    """A task's outcome: its result once it succeeded, its error once it failed."""

    task_id = fields.String(required=True)
    task_name = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATES))
    result = fields.Raw(allow_none=True)
    error = fields.String(allow_none=True)


class HistoryFilterSchema(Schema):
    """History filters (every one optional; together they all apply)."""

    actor = fields.String(validate=validate.Length(min=1, max=200))
    queue = fields.String(validate=validate.OneOf(QUEUES))
    status = fields.String(validate=validate.OneOf(STATES))
    since = fields.AwareDateTime()
    until = fields.AwareDateTime()
    q = fields.String(
        validate=validate.Length(min=1, max=200),
        metadata={"description": "Text in arguments, results, errors"},
    )


class HistoryQuerySchema(HistoryFilterSchema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=MAX_PAGE_SIZE))
    cursor = fields.String(
        validate=validate.Regexp(r"^\d{1,16}:\d{1,9}$"),
        metadata={"description": "next_cursor of the page before"},
    )


class HistoryPageSchema(Schema):
    tasks = fields.List(fields.Nested(TaskSchema), required=True)
    next_cursor = fields.String(
        allow_none=True, required=True, metadata={"description": "null on the last page"}
    )


class StatsQuerySchema(Schema):
    window = fields.Integer(
        load_default=3600,
        validate=validate.Range(min=60, max=366 * 86400),
        metadata={"description": "Seconds back from now (60 s to a year)"},
    )


class ActorStatsSchema(Schema):
    actor = fields.String(required=True)
    enqueued = fields.Integer(required=True)
    processed = fields.Integer(required=True, metadata={"description": "Attempts that ran"})
    succeeded = fields.Integer(required=True)
    failed = fields.Integer(required=True)
    retried = fields.Integer(required=True)
    revoked = fields.Integer(required=True)
    failure_rate = fields.Float(required=True, metadata={"description": "failed / (succeeded + failed)"})
    duration_mean = fields.Float(allow_none=True, required=True)
    duration_p50 = fields.Float(allow_none=True, required=True, metadata={"description": "Seconds"})
    duration_p95 = fields.Float(allow_none=True, required=True)
    duration_max = fields.Float(allow_none=True, required=True)


class StatsSchema(Schema):
    window = fields.Integer(required=True)
    actors = fields.List(fields.Nested(ActorStatsSchema), required=True)


class FailureGroupSchema(Schema):
    fingerprint = fields.String(required=True)
    error_type = fields.String(required=True, metadata={"example": "ConnectionError"})
    error_message = fields.String(required=True, metadata={"description": "A sample error of the group"})
    count = fields.Integer(required=True)
    first_seen = fields.DateTime(allow_none=True, required=True)
    last_seen = fields.DateTime(allow_none=True, required=True)


class FailureGroupListSchema(Schema):
    groups = fields.List(fields.Nested(FailureGroupSchema), required=True)


class BulkActionSchema(HistoryFilterSchema):
    """Retry or revoke many tasks: a failure group's (retry only) or those matching history filters."""

    action = fields.String(required=True, validate=validate.OneOf(("retry", "revoke")))
    fingerprint = fields.String(validate=validate.Length(min=1, max=200))
    dry_run = fields.Boolean(load_default=False, metadata={"description": "Only count and list them"})

    @validates_schema
    def _one_selection(self, data, **kwargs):
        filters = [name for name in HistoryFilterSchema().fields if name in data]
        if "fingerprint" in data and filters:
            raise ValidationError("give a fingerprint or history filters, not both", "fingerprint")
        if "fingerprint" not in data and not filters:
            raise ValidationError("give a fingerprint or at least one history filter", "action")
        if "fingerprint" in data and data["action"] != "retry":
            raise ValidationError("a fingerprint selects failures, which can only be retried", "fingerprint")


class BulkOutcomeSchema(Schema):
    action = fields.String(required=True)
    dry_run = fields.Boolean(required=True)
    matched = fields.Integer(required=True, metadata={"description": "Tasks the action applies to"})
    done = fields.Integer(required=True)
    task_ids = fields.List(
        fields.String(), required=True, metadata={"description": "Acted on (dry run: matched)"}
    )
