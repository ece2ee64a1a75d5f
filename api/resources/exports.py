"""/api/core/exports/: export runs and their files, streamed."""

from __future__ import annotations

from flask.views import MethodView

from api.auth import viewer
from api.blueprints import ResourceBlueprint
from api.resources import runtime
from api.resources.files import download_response, stream_file
from api.schemas.files import ExportPageSchema, ExportQuerySchema
from jobs.billing.exports.catalogue import MEDIA_TYPES, list_exports, open_export_file
from jobs.platform.storage import export_storage

blueprint = ResourceBlueprint("exports", __name__, url_prefix="/api/core/exports", description="Data exports")


@blueprint.route("/")
class Exports(MethodView):
    @viewer
    @blueprint.arguments(ExportQuerySchema, location="query")
    @blueprint.response(200, ExportPageSchema)
    def get(self, query):
        """Export runs newest first: dataset, format, filters, state, rows, size, checksum, expiry."""
        with runtime().sessions() as session:
            page = list_exports(
                session, state=query.get("state"), limit=query["limit"], cursor=query.get("cursor")
            )
            return {"exports": page.exports, "next_cursor": page.next_cursor}


@blueprint.route("/<int(min=1, max=2147483647):export_id>/download/")
class ExportDownload(MethodView):
    @viewer
    @blueprint.doc(responses=download_response(*MEDIA_TYPES.values()))
    @blueprint.errors(404, 409)
    def get(self, export_id):
        """The export's file, streamed; 409 while it is running, once it expired or failed."""
        jobdeck = runtime()
        with jobdeck.sessions() as session:
            export_file = open_export_file(session, export_storage(jobdeck.settings), export_id)
        return stream_file(export_file.stream, export_file.media_type, export_file.download_name)
