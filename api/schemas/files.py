"""Reports, exports and backups: the files jobs write, and their catalogue rows."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.schemas.tasks import MAX_PAGE_SIZE
from jobs.billing.exports.datasets import FORMATS
from jobs.billing.models import FILE_STATES
from jobs.billing.reports.catalogue import REPORT_FILES
from jobs.billing.reports.generating import REPORT_PERIODS


class PageQuerySchema(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=MAX_PAGE_SIZE))
    cursor = fields.Integer(
        validate=validate.Range(min=1, max=2**53), metadata={"description": "next_cursor of the page before"}
    )


class ReportQuerySchema(PageQuerySchema):
    q = fields.String(
        validate=validate.Length(min=1, max=200),
        metadata={
            "description": "Words the report's content must all hold (customer names, currencies, ...)"
        },
    )
    kind = fields.String(validate=validate.OneOf(tuple(REPORT_PERIODS)))


class ReportSchema(Schema):
    id = fields.Integer(required=True)
    kind = fields.String(required=True, metadata={"example": "daily"})
    period_start = fields.Date(required=True, metadata={"description": "First local day of the period"})
    period_end = fields.Date(required=True, metadata={"description": "The local day after the period"})
    period_starts_at = fields.DateTime(required=True)
    timezone = fields.String(required=True, metadata={"example": "Asia/Shanghai"})
    language = fields.String(required=True, metadata={"example": "en"})
    created_at = fields.DateTime(required=True)
    expires_at = fields.DateTime(
        allow_none=True, required=True, metadata={"description": "When its files go"}
    )
    data = fields.Dict(required=True, metadata={"description": "The report's figures"})


class ReportPageSchema(Schema):
    reports = fields.List(fields.Nested(ReportSchema), required=True)
    next_cursor = fields.Integer(allow_none=True, required=True)


class ReportDownloadQuerySchema(Schema):
    format = fields.String(load_default="csv", validate=validate.OneOf(tuple(REPORT_FILES)))


class ExportQuerySchema(PageQuerySchema):
    state = fields.String(validate=validate.OneOf(FILE_STATES))


class ExportSchema(Schema):
    id = fields.Integer(required=True)
    dataset = fields.String(required=True, metadata={"example": "bills"})
    format = fields.String(required=True, validate=validate.OneOf(FORMATS))
    filters = fields.Dict(required=True)
    state = fields.String(required=True, validate=validate.OneOf(FILE_STATES))
    rows = fields.Integer(allow_none=True, required=True)
    size_bytes = fields.Integer(allow_none=True, required=True)
    sha256 = fields.String(allow_none=True, required=True)
    created_at = fields.DateTime(required=True)
    expires_at = fields.DateTime(allow_none=True, required=True)


class ExportPageSchema(Schema):
    exports = fields.List(fields.Nested(ExportSchema), required=True)
    next_cursor = fields.Integer(allow_none=True, required=True)


class BackupSchema(Schema):
    id = fields.Integer(required=True)
    engine = fields.String(required=True, metadata={"example": "sqlite"})
    state = fields.String(required=True, validate=validate.OneOf(FILE_STATES))
    verified = fields.Boolean(
        required=True, metadata={"description": "Restored and checked after it was taken"}
    )
    sha256 = fields.String(allow_none=True, required=True, metadata={"description": "Checksum of the file"})
    size_bytes = fields.Integer(allow_none=True, required=True)
    tables = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        required=True,
        metadata={"description": "Rows per table"},
    )
    created_at = fields.DateTime(required=True)


class BackupListSchema(Schema):
    backups = fields.List(fields.Nested(BackupSchema), required=True)
