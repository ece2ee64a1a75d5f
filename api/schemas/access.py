"""API tokens (as listed, never the secret) and the audit log."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.schemas.files import PageQuerySchema
from monitoring.access import ROLES
from monitoring.audit import OUTCOMES


class TokenSchema(Schema):
    name = fields.String(required=True)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    created_at = fields.DateTime(required=True)
    expires_at = fields.DateTime(allow_none=True, required=True)
    last_used_at = fields.DateTime(allow_none=True, required=True)
    revoked_at = fields.DateTime(allow_none=True, required=True)


class IssuedTokenSchema(Schema):
    """A token just created: ``token`` is shown this once."""

    name = fields.String(required=True)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    token = fields.String(required=True)


class AuditQuerySchema(PageQuerySchema):
    actor = fields.String(validate=validate.Length(min=1, max=100))
    action = fields.String(validate=validate.Length(min=1, max=64))


class AuditEntrySchema(Schema):
    id = fields.Integer(required=True)
    at = fields.DateTime(required=True)
    actor = fields.String(required=True, metadata={"description": "Token name, or the operator's user name"})
    action = fields.String(required=True, metadata={"example": "task.revoke"})
    target = fields.String(allow_none=True, required=True)
    source = fields.String(allow_none=True, required=True, metadata={"description": "Client address, or cli"})
    outcome = fields.String(required=True, validate=validate.OneOf(OUTCOMES))
    details = fields.Dict(required=True)


class AuditPageSchema(Schema):
    entries = fields.List(fields.Nested(AuditEntrySchema), required=True)
    next_cursor = fields.Integer(allow_none=True, required=True)
