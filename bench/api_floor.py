"""The stack's floor for bench/api_bench.py: a bare Flask endpoint doing one Redis HGETALL.

Served by gunicorn with the same settings as jobdeck's web process:
``gunicorn "bench.api_floor:create_app()"`` (REDIS_URL in the environment).
"""

from __future__ import annotations

import os

import redis
from flask import Flask, jsonify

from jobs.platform import keys


def create_app() -> Flask:
    app = Flask(__name__)
    client = redis.Redis.from_url(os.environ["REDIS_URL"])

    @app.get("/floor/tasks/<task_id>/")
    def task(task_id: str):
        fields = client.hgetall(keys.task(task_id))
        return jsonify({name.decode(): value.decode(errors="replace") for name, value in fields.items()})

    return app
