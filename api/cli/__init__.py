"""The ``jobdeck`` command line: the same read and act model as the API, from a terminal.

One module per command group; ``output`` holds what they print with.
"""

from __future__ import annotations

from api.cli.database import db_group
from api.cli.demo import demo_group
from api.cli.main import main
from api.cli.redis import redis_group
from api.cli.tasks import send_command
from api.cli.tokens import tokens_group

for command in (send_command, db_group, demo_group, redis_group, tokens_group):
    main.add_command(command)

__all__ = ["main"]
