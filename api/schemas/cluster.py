"""Workers, queues and the registered jobs (actors)."""

from __future__ import annotations

from marshmallow import Schema, fields


class WorkerSchema(Schema):
    """A worker process: alive unless it missed three heartbeats; stopped if it said goodbye."""

    worker_id = fields.String(required=True)
    host = fields.String(required=True)
    pid = fields.Integer(required=True)
    queues = fields.List(fields.String(), required=True)
    threads = fields.Integer(required=True)
    in_flight = fields.Integer(required=True, metadata={"description": "Tasks it is running now"})
    done = fields.Integer(required=True, metadata={"description": "Tasks it finished since it started"})
    alive = fields.Boolean(required=True)
    stopped = fields.Boolean(required=True)
    started_at = fields.DateTime(allow_none=True, required=True)
    last_heartbeat = fields.DateTime(allow_none=True, required=True, attribute="last_seen")


class WorkerListSchema(Schema):
    workers = fields.List(fields.Nested(WorkerSchema), required=True)


class QueueSchema(Schema):
    """One queue now; ``latency`` is how long (s) its oldest waiting message has waited."""

    name = fields.String(required=True, metadata={"example": "finance"})
    ready = fields.Integer(required=True)
    delayed = fields.Integer(required=True)
    in_flight = fields.Integer(required=True)
    dead = fields.Integer(required=True, attribute="dead_lettered")
    latency = fields.Float(required=True)
    consumers = fields.Integer(required=True, metadata={"description": "Live workers consuming it"})


class QueueListSchema(Schema):
    queues = fields.List(fields.Nested(QueueSchema), required=True)


class PurgeOutcomeSchema(Schema):
    queue = fields.String(required=True)
    purged = fields.Integer(required=True, metadata={"description": "Messages removed"})


class ActorOptionsSchema(Schema):
    max_retries = fields.Integer(required=True)
    retry_delay = fields.Float(required=True, metadata={"description": "Seconds between retries"})
    soft_time_limit = fields.Float(required=True, metadata={"description": "Seconds until asked to stop"})
    time_limit = fields.Float(required=True, metadata={"description": "Seconds until failed"})


class ActorSchema(Schema):
    """A registered job."""

    name = fields.String(required=True, metadata={"example": "check_pending_bills"})
    queue = fields.String(required=True)
    options = fields.Nested(ActorOptionsSchema, required=True)
    schedule = fields.String(
        allow_none=True, required=True, metadata={"description": "Its cron schedule, if any"}
    )


class ActorListSchema(Schema):
    actors = fields.List(fields.Nested(ActorSchema), required=True)
