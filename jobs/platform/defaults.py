"""Every default of jobdeck's configuration, defined once (rq's defaults.py habit).

Durations end in ``_S`` (seconds) or ``_MS`` (milliseconds): Dramatiq counts milliseconds,
jobdeck's settings seconds. ``jobs.platform.settings`` reads the environment over these; the
middleware and the monitoring store take them as their constructor defaults.
"""

from __future__ import annotations

#: Where jobdeck keeps its files when ``JOBDECK_VAR_DIR`` is not set.
DEFAULT_VAR_DIR = "var"
DEFAULT_TIMEZONE = "Asia/Shanghai"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
#: The file (under the var dir) through which every process finds the embedded Redis server.
REDIS_URL_FILE = "redis.url"
DEFAULT_PORT = 8000

#: The REST API: requests per token (flask-limiter's notation), the largest request body, and how
#: long a statistics window is cached.
DEFAULT_API_READ_RATE = "1200/minute"
DEFAULT_API_WRITE_RATE = "120/minute"
DEFAULT_API_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_API_STATS_CACHE_S = 10

DEFAULT_SOFT_TIME_LIMIT_S = 25 * 60
DEFAULT_TIME_LIMIT_S = 30 * 60
DEFAULT_MAX_RETRIES = 3
DEFAULT_RETRY_DELAY_S = 30
DEFAULT_TRANSIENT_RETRY_WINDOW_S = 5 * 60
DEFAULT_REDELIVERY_TIMEOUT_S = 60
DEFAULT_MAINTENANCE_CHANCE = 1000
DEFAULT_RESULT_TTL_S = 24 * 3600

DEFAULT_MAIL_FROM = "billing@jobdeck.localhost"
DEFAULT_SMTP_RATE = 10.0
REPORT_LANGUAGES = ("en", "zh-CN")
DEFAULT_REPORT_LANGUAGE = "en"
DEFAULT_BACKUP_KEEP = 7
#: The days of being overdue on which a bill is reminded (day 1 is the first 24 hours past due).
DEFAULT_OVERDUE_REMINDER_DAYS = (1, 7, 14, 30)
DEFAULT_EXPORT_TTL_DAYS = 7
DEFAULT_REPORT_FILE_TTL_DAYS = 400

#: Monitoring: how long finished tasks are kept, heartbeats, the poison cap, display size.
DEFAULT_SUCCESS_RETENTION_S = 24 * 3600
DEFAULT_FAILURE_RETENTION_S = 30 * 24 * 3600
DEFAULT_HEARTBEAT_INTERVAL_S = 5
DEFAULT_POISON_CAP = 3
DEFAULT_DISPLAY_LIMIT = 2000

#: Schedules (jobs.platform.schedules): how late a running scheduler may still send a tick whose
#: schedule has a shorter window (or none), in seconds; schedules firing more often than this
#: allow one gap between their fires instead.
DEFAULT_SCHEDULE_TOLERANCE_S = 15
#: The variable that changes one schedule: JOBDECK_SCHEDULE_<JOB> = a cron expression or "off",
#: JOBDECK_SCHEDULE_<JOB>_WINDOW = its catch-up window in seconds.
SCHEDULE_VARIABLE_PREFIX = "JOBDECK_SCHEDULE_"
SCHEDULE_WINDOW_SUFFIX = "_WINDOW"
SCHEDULE_OFF = "off"

#: Alerts (monitoring.alerts): seconds between evaluations, and the rules' thresholds.
DEFAULT_ALERT_INTERVAL_S = 60
DEFAULT_ALERT_FOLD_WINDOW_S = 600
DEFAULT_ALERT_FAILURE_RATE = 0.5
DEFAULT_ALERT_FAILURE_RATE_WINDOW_S = 900
DEFAULT_ALERT_FAILURE_RATE_MIN_TASKS = 10
DEFAULT_ALERT_QUEUE_LATENCY_S = 300
DEFAULT_ALERT_SCHEDULER_SILENCE_S = 180
#: The alert rules' names, in evaluation order (monitoring.alerts implements each one).
ALERT_RULES = (
    "task_failed",
    "failure_rate",
    "queue_latency",
    "no_consumer",
    "orphaned_tasks",
    "notification_unknown",
    "missed_schedule",
    "no_scheduler",
)
