"""The one error shape, as documented in the OpenAPI document."""

from __future__ import annotations

from marshmallow import Schema, fields


class ErrorDetailSchema(Schema):
    code = fields.String(
        required=True, metadata={"description": "What went wrong, in snake_case", "example": "unknown_task"}
    )
    message = fields.String(
        required=True,
        metadata={"description": "A sentence fit for a person", "example": "no task 'abc' is known"},
    )
    details = fields.Raw(
        allow_none=True,
        metadata={"description": "Where a validation error lies: location, then field, then messages"},
    )


class ErrorSchema(Schema):
    """Every error the API answers."""

    error = fields.Nested(ErrorDetailSchema, required=True)
