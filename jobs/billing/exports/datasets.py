"""The exportable datasets: each table's output columns, its date column and its filters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Table

from jobs.billing.models import BILL_STATUSES, NOTIFICATION_STATES, Bill, Customer, Notification, Payment

FORMATS = ("csv", "jsonl", "xlsx")

# How a database value becomes an output value.
AS_IS = "as_is"
TIME = "time"
MONEY = "money"


@dataclass(frozen=True)
class Column:
    """One output column: its header, the table column it reads, and how the value is written."""

    header: str
    source: str
    kind: str = AS_IS


@dataclass(frozen=True)
class Dataset:
    """An exportable table: its columns, the date the range filter applies to, and its other filters.

    ``filters`` maps a filter name (``status``, ``currency``, ``customer_id``) to the column it
    compares; ``statuses`` lists the values ``status`` accepts.
    """

    name: str
    table: Table
    columns: tuple[Column, ...]
    date_column: str
    filters: Mapping[str, str]
    statuses: tuple[str, ...] = ()


DATASETS: dict[str, Dataset] = {
    dataset.name: dataset
    for dataset in (
        Dataset(
            name="bills",
            table=Bill.__table__,
            columns=(
                Column("id", "id"),
                Column("number", "number"),
                Column("customer_id", "customer_id"),
                Column("amount", "amount_minor", MONEY),
                Column("currency", "currency"),
                Column("issued_at", "issued_at", TIME),
                Column("due_at", "due_at", TIME),
                Column("status", "status"),
                Column("paid_at", "paid_at", TIME),
            ),
            date_column="issued_at",
            filters={"status": "status", "currency": "currency", "customer_id": "customer_id"},
            statuses=BILL_STATUSES,
        ),
        Dataset(
            name="payments",
            table=Payment.__table__,
            columns=(
                Column("id", "id"),
                Column("reference", "reference"),
                Column("bill_id", "bill_id"),
                Column("customer_id", "customer_id"),
                Column("amount", "amount_minor", MONEY),
                Column("currency", "currency"),
                Column("paid_at", "paid_at", TIME),
            ),
            date_column="paid_at",
            filters={"currency": "currency", "customer_id": "customer_id"},
        ),
        Dataset(
            name="customers",
            table=Customer.__table__,
            columns=(
                Column("id", "id"),
                Column("name", "name"),
                Column("email", "email"),
                Column("locale", "locale"),
                Column("created_at", "created_at", TIME),
            ),
            date_column="created_at",
            filters={"customer_id": "id"},
        ),
        Dataset(
            name="notifications",
            table=Notification.__table__,
            columns=(
                Column("id", "id"),
                Column("customer_id", "customer_id"),
                Column("bill_id", "bill_id"),
                Column("kind", "kind"),
                Column("state", "state"),
                Column("subject", "subject"),
                Column("created_at", "created_at", TIME),
                Column("sent_at", "sent_at", TIME),
                Column("message_id", "message_id"),
            ),
            date_column="created_at",
            filters={"status": "state", "customer_id": "customer_id"},
            statuses=NOTIFICATION_STATES,
        ),
    )
}


def source_columns(spec: Dataset) -> list[str]:
    """The table columns to select: each output column's source in output order, then currency for money."""
    names = [column.source for column in spec.columns]
    if any(column.kind == MONEY for column in spec.columns) and "currency" not in names:
        names.append("currency")
    return names
