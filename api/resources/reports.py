"""/api/core/reports/: generated reports, full-text search over their content, their files."""

from __future__ import annotations

from flask.views import MethodView

from api.auth import viewer
from api.blueprints import ResourceBlueprint
from api.resources import runtime
from api.resources.files import download_response, stream_file
from api.schemas.files import ReportDownloadQuerySchema, ReportPageSchema, ReportQuerySchema
from jobs.billing.reports.catalogue import REPORT_FILES, get_report, list_reports, report_file

blueprint = ResourceBlueprint(
    "reports", __name__, url_prefix="/api/core/reports", description="Generated reports"
)


@blueprint.route("/")
class Reports(MethodView):
    @viewer
    @blueprint.arguments(ReportQuerySchema, location="query")
    @blueprint.response(200, ReportPageSchema)
    def get(self, query):
        """Generated reports, newest first; ``q`` finds those whose content holds every word."""
        with runtime().sessions() as session:
            page = list_reports(
                session,
                search=query.get("q"),
                kind=query.get("kind"),
                limit=query["limit"],
                cursor=query.get("cursor"),
            )
            return {"reports": page.reports, "next_cursor": page.next_cursor}


@blueprint.route("/<int(min=1, max=2147483647):report_id>/download/")
class ReportDownload(MethodView):
    @viewer
    @blueprint.arguments(ReportDownloadQuerySchema, location="query")
    @blueprint.doc(responses=download_response(*(media for _, media in REPORT_FILES.values())))
    @blueprint.errors(404, 409)
    def get(self, query, report_id):
        """The report's CSV (default) or HTML file."""
        with runtime().sessions() as session:
            report = get_report(session, report_id)
            path, media_type = report_file(report, query["format"])
        return stream_file(str(path), media_type, path.name)
