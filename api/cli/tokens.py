"""``jobdeck tokens``: create, list and revoke API tokens (written to the audit log as the operator)."""

from __future__ import annotations

import getpass
import json

import click

from api.schemas.access import IssuedTokenSchema, TokenSchema
from jobs.runtime import Runtime, start
from monitoring.access import ROLES, parse_duration

#: What the audit log says a command-line action came from.
CLI_SOURCE = "cli"


def operator() -> str:
    """The operator's user name, for the audit log."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@click.group("tokens")
def tokens_group() -> None:
    """API tokens: bearer tokens with a viewer or admin role."""


@tokens_group.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True, help="viewer reads; admin also acts.")
@click.option("--expires", "expires_text", help="Lifetime such as 90d, 12h or 2w (default: never).")
@click.option("--json", "as_json", is_flag=True, help='Print {"name", "role", "token"}.')
def create_command(name: str, role: str, expires_text: str | None, as_json: bool) -> None:
    """Create the token NAME and print it, this once."""
    expires_in = parse_duration(expires_text) if expires_text else None
    runtime = start()
    with _audited(runtime, "token.create", name) as action:
        issued = runtime.tokens.create(name, role, expires_in)
        action.details.update(
            role=role, expires_at=issued.expires_at.isoformat() if issued.expires_at else None
        )
    if as_json:
        click.echo(json.dumps(IssuedTokenSchema().dump(issued)))
        return
    expiry = f", expires {issued.expires_at:%Y-%m-%d %H:%M} UTC" if issued.expires_at else ""
    click.echo(f"Token {name} ({role}{expiry}); it is shown only now:")
    click.echo(issued.token)


@tokens_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the tokens as JSON.")
def list_command(as_json: bool) -> None:
    """List every token: name, role, created, expires, last used, revoked (never the token)."""
    listed = TokenSchema(many=True).dump(start().tokens.list())
    if as_json:
        click.echo(json.dumps(listed))
        return
    for token in listed:
        state = "revoked" if token["revoked_at"] else "live"
        click.echo(
            f"{token['name']:<24} {token['role']:<7} {state:<8} created {token['created_at']}"
            f"  expires {token['expires_at'] or 'never'}  last used {token['last_used_at'] or 'never'}"
        )


@tokens_group.command("revoke")
@click.argument("name")
def revoke_command(name: str) -> None:
    """Revoke the live token NAME (web processes refuse it within seconds)."""
    runtime = start()
    with _audited(runtime, "token.revoke", name):
        runtime.tokens.revoke(name)
    click.echo(f"Token {name} revoked.")


def _audited(runtime: Runtime, action: str, target: str):
    return runtime.audit.audited(actor=operator(), action=action, target=target, source=CLI_SOURCE)
