"""``jobdeck revoke`` and ``jobdeck retry``: one task by id, or many (a failure group, history filters).

Every action goes to the audit log as the operator; acting on many asks first (``--yes`` in a script).
"""

from __future__ import annotations

import sys
from typing import Any
from urllib.parse import urlencode

import click

from api.cli import output
from api.cli.context import audited, confirm, runtime
from api.cli.inputs import checked, history_filter_options, history_query, json_option, yes_option
from api.resources.history import FILTER_ARGUMENTS, history_filters
from api.schemas.tasks import BulkActionSchema, BulkOutcomeSchema, RetryOutcomeSchema, RevokeOutcomeSchema
from jobs.platform.errors import BadArguments

#: How the command line names the API's fields in an error message.
OPTION_NAMES = {"q": "--grep", "action": "selection"}


def dry_run_option(function):
    return click.option("--dry-run", is_flag=True, help="Only count and list the tasks it would act on.")(
        function
    )


@click.command("revoke")
@click.argument("task_id", required=False)
@history_filter_options
@dry_run_option
@yes_option
@json_option
def revoke_command(task_id: str | None, dry_run: bool, yes: bool, as_json: bool, **filters: str) -> None:
    """Revoke the task TASK_ID, or every waiting or running task matching filters.

    A waiting task never runs; a running one is aborted and not retried; a finished one stays
    as it is (exit 1). Revoking by filters asks first.

    \b
    Examples:
      jobdeck revoke 5f0c2a8e-3b71-4a36-9d0e-2f9c4b1e7a10
      jobdeck revoke --actor export_data --status SCHEDULED --dry-run
    """
    if task_id is None:
        bulk_action("revoke", None, filters, dry_run=dry_run, yes=yes, as_json=as_json)
        return
    refuse_selection_with_id(filters, dry_run)
    with audited("task.revoke", task_id) as action:
        outcome = runtime().manager.revoke_task(task_id)
        action.details["revoked"] = outcome.done
    revoked = {
        "task_id": task_id,
        "revoked": outcome.done,
        "status": outcome.status,
        "reason": outcome.detail,
    }
    if as_json:
        output.dump_json(RevokeOutcomeSchema(), revoked)
    else:
        click.secho(f"{task_id}: {outcome.detail}", fg="green" if outcome.done else "yellow")
    if not outcome.done:
        sys.exit(output.EXIT_FAILED)


@click.command("retry")
@click.argument("task_id", required=False)
@click.option("--fingerprint", help="Retry every failed task of this failure group (see jobdeck failures).")
@history_filter_options
@dry_run_option
@yes_option
@json_option
def retry_command(
    task_id: str | None, fingerprint: str | None, dry_run: bool, yes: bool, as_json: bool, **filters: str
) -> None:
    """Send the failed task TASK_ID again, exactly as first sent; or a failure group; or by filters.

    Retrying many asks first. A task that did not fail, or was retried already, is refused (exit 1).

    \b
    Examples:
      jobdeck retry 5f0c2a8e-3b71-4a36-9d0e-2f9c4b1e7a10
      jobdeck retry --fingerprint 3f2a9c1d0b7e4a55 --dry-run
      jobdeck retry --actor send_notification_email --since 2h --yes
    """
    if task_id is None:
        bulk_action("retry", fingerprint, filters, dry_run=dry_run, yes=yes, as_json=as_json)
        return
    refuse_selection_with_id({**filters, "fingerprint": fingerprint}, dry_run)
    with audited("task.retry", task_id) as action:
        outcome = runtime().manager.retry_task(task_id)
        action.details["new_task_id"] = outcome.new_task_id
    retried = {"task_id": task_id, "retried": outcome.done, "new_task_id": outcome.new_task_id}
    if as_json:
        output.dump_json(RetryOutcomeSchema(), retried)
    else:
        click.secho(f"{task_id}: sent again as {outcome.new_task_id}", fg="green")


def refuse_selection_with_id(selection: dict[str, Any], dry_run: bool) -> None:
    chosen = [name for name, value in selection.items() if value]
    if chosen or dry_run:
        raise BadArguments(f"give a task id or a selection ({', '.join(chosen) or '--dry-run'}), not both")


def bulk_action(
    action_name: str,
    fingerprint: str | None,
    filters: dict[str, str],
    *,
    dry_run: bool,
    yes: bool,
    as_json: bool,
) -> None:
    """Retry or revoke many tasks: confirm (unless a dry run), act, audit, print the outcome."""
    jobdeck = runtime()
    query = history_query(jobdeck.settings.timezone, **filters)
    bulk = checked(
        BulkActionSchema(),
        {"action": action_name, "fingerprint": fingerprint, "dry_run": dry_run, **query},
        OPTION_NAMES,
    )
    manager = jobdeck.manager

    def act(dry: bool) -> dict[str, Any]:
        if fingerprint:
            return manager.retry_failure_group(fingerprint, dry_run=dry)
        acting = manager.retry_matching if action_name == "retry" else manager.revoke_matching
        return acting(dry_run=dry, **history_filters(bulk))

    target = fingerprint or urlencode(
        {name: str(value) for name, value in bulk.items() if name in FILTER_ARGUMENTS}
    )
    if not dry_run:
        confirm(f"{action_name.capitalize()} {act(True)['matched']} tasks ({target})?", yes)
    with audited(f"tasks.bulk_{action_name}", target) as action:
        outcome = act(dry_run)
        action.details.update(dry_run=dry_run, matched=outcome["matched"], done=outcome["done"])
    if as_json:
        output.dump_json(BulkOutcomeSchema(), {"action": action_name, "dry_run": dry_run, **outcome})
        return
    verb = {"retry": "retried", "revoke": "revoked"}[action_name]
    if dry_run:
        click.echo(f"Dry run: {outcome['matched']} tasks would be {verb}.")
    else:
        click.secho(f"{outcome['done']} of {outcome['matched']} tasks {verb}.", fg="green")
    for task_id in outcome["task_ids"]:
        click.echo(task_id)
