"""``jobdeck reports``, ``exports``, ``backups`` and ``db restore`` on the test's database."""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime

from jobs.billing.exports.actors import export_data
from jobs.billing.reports.actors import generate_daily_report
from jobs.platform.database import make_session_factory
from tests.api.cli.conftest import assert_red_line
from tests.support.billing import add_bill, add_customer, add_payment


def test_reports_and_exports_match_the_api(jobdeck, api, runtime):
    with make_session_factory(runtime.engine)() as session, session.begin():
        customer = add_customer(session, "grace@example.com", name="Grace Hopper")
        bill = add_bill(session, customer, "B-1", "99.00", "EUR")
        add_payment(session, bill, paid_at=datetime(2026, 6, 1, 4, tzinfo=UTC))
    # The jobs' own functions, run in this process: the listing is what is tested here.
    generate_daily_report.fn(period_start="2026-06-01")
    export_data.fn("customers", "csv")

    reports = json.loads(jobdeck("reports", "--json").stdout)
    found = json.loads(jobdeck("reports", "--grep", "hopper", "--kind", "daily", "--json").stdout)
    missed = json.loads(jobdeck("reports", "--grep", "lovelace", "--json").stdout)
    exports = json.loads(jobdeck("exports", "--json").stdout)
    report_table = jobdeck("reports").stdout
    export_table = jobdeck("exports", "--state", "ready").stdout

    assert reports == api("/api/core/reports/")["reports"]
    assert [(report["kind"], report["period_start"]) for report in found] == [("daily", "2026-06-01")]
    assert missed == []
    assert exports == api("/api/core/exports/")["exports"]
    assert [(export["dataset"], export["state"], export["rows"]) for export in exports] == [
        ("customers", "ready", 1)
    ]
    assert "2026-06-01 to 2026-06-02" in report_table and "daily" in report_table
    assert "customers" in export_table and "ready" in export_table


def test_backups_match_the_api_and_a_restore_is_confirmed_and_audited(jobdeck, api, runtime):
    taken = jobdeck("db", "backup")
    backup_id = json.loads(taken.stdout)["backup_id"]

    backups = json.loads(jobdeck("backups", "--json").stdout)
    table = jobdeck("backups").stdout
    refused = jobdeck("db", "restore", str(backup_id))
    declined = jobdeck("db", "restore", str(backup_id), input="n\n")
    restored = jobdeck("db", "restore", str(backup_id), "--yes")

    assert taken.exit_code == 0, taken.output
    assert backups == api("/api/core/backups/")["backups"]
    assert [(backup["id"], backup["state"], backup["verified"]) for backup in backups] == [
        (backup_id, "ready", True)
    ]
    assert str(backup_id) in table and "yes" in table
    assert_red_line(refused, "Standard input is not a terminal: add --yes to confirm.", 2)
    assert declined.exit_code == 2, "standard input that is not a terminal is never read as an answer"
    assert restored.exit_code == 0, restored.output
    assert f"Restored backup {backup_id}" in restored.stdout
    [entry] = runtime.audit.entries(action="db.restore").entries
    assert (entry.actor, entry.source, entry.target, entry.outcome) == (
        getpass.getuser(),
        "cli",
        str(backup_id),
        "ok",
    )


def test_an_unknown_backup_is_one_red_line(jobdeck, runtime):
    assert_red_line(jobdeck("db", "restore", "999", "--yes"), "there is no backup with id 999", 2)
    [entry] = runtime.audit.entries(action="db.restore").entries
    assert entry.outcome == "refused"
