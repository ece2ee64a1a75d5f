"""/api/core/audit/: the audit log of admin actions (admin)."""

from __future__ import annotations

from flask.views import MethodView

from api.auth import admin
from api.blueprints import ResourceBlueprint
from api.resources import runtime
from api.schemas.access import AuditPageSchema, AuditQuerySchema

blueprint = ResourceBlueprint("audit", __name__, url_prefix="/api/core/audit", description="Audit log")


@blueprint.route("/")
class Audit(MethodView):
    @admin
    @blueprint.arguments(AuditQuerySchema, location="query")
    @blueprint.response(200, AuditPageSchema)
    def get(self, query):
        """Who did what to which target, when, from where, and the outcome; newest first."""
        page = runtime().audit.entries(
            limit=query["limit"],
            cursor=query.get("cursor"),
            actor=query.get("actor"),
            action=query.get("action"),
        )
        return {"entries": page.entries, "next_cursor": page.next_cursor}
