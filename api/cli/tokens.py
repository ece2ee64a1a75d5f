"""``jobdeck tokens``: create, list and revoke API tokens (written to the audit log as the operator)."""

from __future__ import annotations

from datetime import datetime, tzinfo

import click
from rich.text import Text

from api.cli import output
from api.cli.context import audited, runtime
from api.cli.inputs import json_option
from api.schemas.access import IssuedTokenSchema, TokenSchema
from monitoring.access import ROLES, TokenInfo, parse_duration


@click.group("tokens")
def tokens_group() -> None:
    """API tokens: bearer tokens with a viewer or admin role."""


@tokens_group.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True, help="viewer reads; admin also acts.")
@click.option("--expires", "expires_text", help="Lifetime such as 90d, 12h or 2w (default: never).")
@json_option
def create_command(name: str, role: str, expires_text: str | None, as_json: bool) -> None:
    """Create the token NAME and print it, this once.

    \b
    Example:
      jobdeck tokens create grafana --role viewer --expires 90d
    """
    expires_in = parse_duration(expires_text) if expires_text else None
    with audited("token.create", name) as action:
        issued = runtime().tokens.create(name, role, expires_in)
        action.details.update(
            role=role, expires_at=issued.expires_at.isoformat() if issued.expires_at else None
        )
    if as_json:
        output.dump_json(IssuedTokenSchema(), issued)
        return
    expiry = f", expires {issued.expires_at:%Y-%m-%d %H:%M} UTC" if issued.expires_at else ""
    click.echo(f"Token {name} ({role}{expiry}); it is shown only now:")
    click.echo(issued.token)


def token_row(token: TokenInfo, zone: tzinfo, now: datetime) -> list:
    return [
        token.name,
        token.role,
        Text("revoked", style="dim") if token.revoked_at else Text("live", style="green"),
        output.short_moment(token.created_at, zone, now=now),
        output.short_moment(token.expires_at, zone, now=now) or "never",
        output.short_moment(token.last_used_at, zone, now=now) or "never",
    ]


@tokens_group.command("list")
@json_option
def list_command(as_json: bool) -> None:
    """List every token: name, role, created, expires, last used, revoked (never the token).

    \b
    Example:
      jobdeck tokens list
    """
    jobdeck = runtime()
    output.print_listing(
        jobdeck.tokens.list(),
        schema=TokenSchema(),
        as_json=as_json,
        columns=("Name", "Role", "State", "Created", "Expires", "Last used"),
        row=token_row,
        zone=jobdeck.settings.timezone,
        empty="No token exists.",
    )


@tokens_group.command("revoke")
@click.argument("name")
def revoke_command(name: str) -> None:
    """Revoke the live token NAME (web processes refuse it within seconds).

    \b
    Example:
      jobdeck tokens revoke grafana
    """
    with audited("token.revoke", name):
        runtime().tokens.revoke(name)
    click.echo(f"Token {name} revoked.")
