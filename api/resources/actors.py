"""/api/core/actors/: the registered jobs."""

from __future__ import annotations

from flask.views import MethodView

from api.auth import viewer
from api.blueprints import ResourceBlueprint
from api.resources import runtime
from api.schemas.cluster import ActorListSchema

blueprint = ResourceBlueprint(
    "actors", __name__, url_prefix="/api/core/actors", description="Registered jobs"
)


@blueprint.route("/")
class Actors(MethodView):
    @viewer
    @blueprint.response(200, ActorListSchema)
    def get(self):
        """Every registered job: its queue, retries and time limits, and its schedule if it has one."""
        return {"actors": runtime().describe_actors()}
