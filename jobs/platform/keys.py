"""Every Redis key jobdeck reads or writes, with its Redis type. No other module formats a key.

jobdeck's own keys (``P`` is PREFIX, ``jobdeck:``)::

    P task:<id>                       HASH    one task: state, actor, queue, times, worker, attempt,
                                              retries, progress, display args/result, error,
                                              timeline (JSON), a revocation (revoked_until, ms), and
                                              while a failure is kept the full original message
                                              (field ``message``, never shown)
    P history                         ZSET    every task id, scored by enqueue time (ms)
    P history:actor:<actor>           ZSET    the same, one per actor
    P history:queue:<queue>           ZSET    the same, one per queue
    P history:state:<state>           ZSET    task ids in each state, scored by enqueue time
    P expiries                        ZSET    "<id> TAB <actor> TAB <queue>" -> its expiry time (ms);
                                              upkeep removes expired tasks from every history index
    P failure-groups                  HASH    fingerprint -> JSON {type, message, count, first, last}
    P failure-group:<fingerprint>     ZSET    failed task ids of one fingerprint, by failure time
    P revoked:<id>                    STRING  a revocation, for workers of the previous release
                                              (record.lua writes it; it checks revoked_until)
    P stats:minute:<n>                HASH    counters of minute n since the epoch: <actor>@<queue>:<metric>
    P stats:hour:<n>                  HASH      (enqueued, succeeded, failed, retried, revoked,
    P stats:day:<n>                   HASH      duration_sum, duration_max, b<i>); see counters.py
    P stats:rolled-up                 STRING  the last minute rolled up into hour and day buckets
    P workers                         ZSET    worker process id -> last heartbeat (ms)
    P worker:<id>                     HASH    host, pid, queues, threads, started_at, in_flight, done
    P claim:<name>:<n>                STRING  a once-per-period job claimed by one process (SET NX)
    P lock:<name>                     STRING  one-at-a-time lease of a finance or report job: its holder
                                              (broker id:pid:token); lives three heartbeats, renewed
                                              while the job runs (jobs/platform/locks.py)
    P cache:<name>                    STRING  web-process cache entries, JSON with a TTL (cache.py)
    P ratelimit:<flask-limiter key>   STRING  the API's rate-limit counters (flask-limiter's, per token)
    P result:<queue>:<actor>:<id>     LIST    one task's result, written by Dramatiq's Redis results
                                              backend (RESULTS_NAMESPACE), kept its result TTL
    P alert:fold:<rule>:<subject>     HASH    one alert's folding: sent_at (ms), folded (repeats since)
    P alert:cursor:<rule>             STRING  ms up to which a rule has read new events (task_failed, ...)
    P scheduler:heartbeat             STRING  ms of the last tick of any scheduler process
    P missed-schedules                ZSET    JSON {schedule, fire_time} of missed runs, by record time (ms)
    P schedule:<name>                 HASH    one schedule's summary: last tick (last_fire_ms, last_outcome),
                                              last sent (last_run_ms, last_task_id, last_lateness_ms),
                                              last_handled_ms, checked_until (the missed-run check's cursor)
    P schedule:<name>:ticks           ZSET    JSON tick records {outcome, task_id, lateness_ms, recorded_at,
                                              recorded_by, requested_by, detail}, by nominal fire time (ms)
    P schedule:<name>:claim:<ms>      STRING  who took the tick due at <ms>: a scheduler process, or the
                                              missed-run check; SET NX, lives the schedule's grace + 2 h
    P schedule:<name>:paused          STRING  JSON {by, at} while the schedule is paused (never expires)
    P schedule-actions                ZSET    JSON {schedule, action, requested_by, at, changed, task_id}
                                              of pause, resume and run-now requests, by request time (ms)

Dramatiq's keys (``N`` is the broker namespace, ``dramatiq``), read for queue figures::

    N:<queue>                         LIST    message ids ready to run, oldest first
    N:<queue>.msgs                    HASH    message id -> encoded message
    N:<queue>.DQ / .DQ.msgs           LIST / HASH  delayed messages
    N:<queue>.XQ / .XQ.msgs           ZSET / HASH  dead-lettered messages
    N:__heartbeats__                  ZSET    broker id -> last heartbeat
    N:__acks__.<broker id>.<queue>    SET     message ids a worker process holds (in flight)
"""

from __future__ import annotations

#: Everything jobdeck writes to Redis starts with this.
PREFIX = "jobdeck:"
#: One-at-a-time locks of finance and report jobs.
LOCK_PREFIX = PREFIX + "lock:"
#: The namespace of Dramatiq's results backend: its keys are <namespace>:<queue>:<actor>:<id>.
RESULTS_NAMESPACE = PREFIX + "result"
#: The web process's cache entries; cleanup_cache deletes under this prefix only.
CACHE_PREFIX = PREFIX + "cache:"

#: The API's rate-limit counters (flask-limiter writes under this prefix).
RATE_LIMIT_PREFIX = PREFIX + "ratelimit"

HISTORY = PREFIX + "history"
FAILURE_GROUPS = PREFIX + "failure-groups"
STATS_ROLLED_UP = PREFIX + "stats:rolled-up"
WORKERS = PREFIX + "workers"

#: Counter granularities, the length of one bucket in milliseconds.
GRANULARITIES = {"minute": 60_000, "hour": 3_600_000, "day": 86_400_000}


def task(task_id: str) -> str:
    return f"{PREFIX}task:{task_id}"


def history_by(field: str, value: str) -> str:
    """The history index of one actor, queue or state (``field`` is actor, queue or state)."""
    return f"{HISTORY}:{field}:{value}"


def failure_group(fingerprint: str) -> str:
    return f"{PREFIX}failure-group:{fingerprint}"


def revoked(task_id: str) -> str:
    """The revocation key workers of the previous release check (record.lua writes it too)."""
    return f"{PREFIX}revoked:{task_id}"


def stats(granularity: str, bucket: int) -> str:
    return f"{PREFIX}stats:{granularity}:{bucket}"


def worker(worker_id: str) -> str:
    return f"{PREFIX}worker:{worker_id}"


def claim(name: str, period: int) -> str:
    return f"{PREFIX}claim:{name}:{period}"


def cache(name: str) -> str:
    return CACHE_PREFIX + name


def broker_queue(namespace: str, queue: str) -> str:
    return f"{namespace}:{queue}"


def broker_messages(namespace: str, queue: str) -> str:
    return f"{namespace}:{queue}.msgs"


def broker_delayed(namespace: str, queue: str) -> str:
    return f"{namespace}:{queue}.DQ"


def broker_dead(namespace: str, queue: str) -> str:
    return f"{namespace}:{queue}.XQ"


def broker_dead_messages(namespace: str, queue: str) -> str:
    return f"{namespace}:{queue}.XQ.msgs"


def broker_heartbeats(namespace: str) -> str:
    return f"{namespace}:__heartbeats__"


def broker_acks(namespace: str, broker_id: str, queue: str) -> str:
    return f"{namespace}:__acks__.{broker_id}.{queue}"


SCHEDULER_HEARTBEAT = PREFIX + "scheduler:heartbeat"
MISSED_SCHEDULES = PREFIX + "missed-schedules"


SCHEDULE_ACTIONS = PREFIX + "schedule-actions"


def schedule(name: str) -> str:
    return f"{PREFIX}schedule:{name}"


def schedule_ticks(name: str) -> str:
    return f"{PREFIX}schedule:{name}:ticks"


def schedule_claim(name: str, fire_ms: int) -> str:
    return f"{PREFIX}schedule:{name}:claim:{fire_ms}"


def schedule_paused(name: str) -> str:
    return f"{PREFIX}schedule:{name}:paused"


def alert_fold(rule: str, subject: str) -> str:
    return f"{PREFIX}alert:fold:{rule}:{subject}"


def alert_cursor(rule: str) -> str:
    return f"{PREFIX}alert:cursor:{rule}"
