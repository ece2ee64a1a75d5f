"""/api/core/backups/: database backups with their checksum and verification (admin)."""

from __future__ import annotations

from flask.views import MethodView

from api.auth import admin
from api.blueprints import ResourceBlueprint
from api.resources import runtime
from api.schemas.files import BackupListSchema
from jobs.billing.backups.catalogue import read_catalogue

blueprint = ResourceBlueprint(
    "backups", __name__, url_prefix="/api/core/backups", description="Database backups"
)


@blueprint.route("/")
class Backups(MethodView):
    @admin
    @blueprint.response(200, BackupListSchema)
    def get(self):
        """Every backup, newest first: state, checksum, size, rows per table, whether it was verified."""
        return {"backups": list(reversed(read_catalogue(runtime().engine)))}
