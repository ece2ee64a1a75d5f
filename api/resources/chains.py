"""/api/core/chains/: send a pipeline of tasks."""

from __future__ import annotations

from flask.views import MethodView

from api.auth import admin, audited
from api.blueprints import ResourceBlueprint
from api.resources import runtime
from api.schemas.tasks import ChainSchema, ChainSentSchema

blueprint = ResourceBlueprint(
    "chains", __name__, url_prefix="/api/core/chains", description="Pipelines of tasks"
)


@blueprint.route("/")
class Chains(MethodView):
    @admin
    @blueprint.arguments(ChainSchema)
    @blueprint.response(202, ChainSentSchema)
    @blueprint.errors(413)
    def post(self, chain):
        """Send a pipeline: each step runs after the one before, with its result as the last argument."""
        steps = [
            {"name": step["task_name"], "args": step["args"], "kwargs": step["kwargs"]}
            for step in chain["steps"]
        ]
        with audited("chain.send", target=" -> ".join(step["name"] for step in steps)) as action:
            messages = runtime().manager.send_chain(steps)
            action.details["task_ids"] = [message.message_id for message in messages]
        return {"task_ids": [message.message_id for message in messages]}
