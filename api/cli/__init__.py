"""The ``jobdeck`` command line: the same read and act model as the API, from a terminal.

One module per command group; ``output`` holds what they print with, ``inputs`` what they read
with, ``context`` the runtime, the operator and confirmations they share.
"""

from __future__ import annotations

from api.cli.actions import retry_command, revoke_command
from api.cli.cluster import actors_command, queues_command, workers_command
from api.cli.database import db_group
from api.cli.demo import demo_group
from api.cli.files import backups_command, exports_command, reports_command
from api.cli.history import failures_command, history_command, stats_command
from api.cli.main import main
from api.cli.redis import redis_group
from api.cli.schedules import schedules_group
from api.cli.sending import chain_command, ping_command, send_command
from api.cli.tasks import result_command, status_command, tasks_command
from api.cli.tokens import tokens_group

COMMANDS = (
    actors_command,
    tasks_command,
    send_command,
    chain_command,
    status_command,
    revoke_command,
    retry_command,
    result_command,
    workers_command,
    queues_command,
    stats_command,
    history_command,
    failures_command,
    ping_command,
    reports_command,
    exports_command,
    backups_command,
    schedules_group,
    tokens_group,
    db_group,
    demo_group,
    redis_group,
)
for command in COMMANDS:
    main.add_command(command)

__all__ = ["main"]
