"""Sending a file a job wrote: streamed, never read whole into memory."""

from __future__ import annotations

from typing import BinaryIO

from flask import send_file


def download_response(*media_types: str) -> dict:
    """A download's 200 response for the OpenAPI document, in each of its media types."""
    return {
        200: {
            "description": "The file, streamed",
            "content": {
                media_type: {"schema": {"type": "string", "format": "binary"}} for media_type in media_types
            },
        }
    }


def stream_file(stream: BinaryIO | str, media_type: str, download_name: str):
    return send_file(stream, mimetype=media_type, as_attachment=True, download_name=download_name, max_age=0)
