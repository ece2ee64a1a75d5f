"""Export values in Python: money as exact decimal text, times as ISO 8601 (where SQL does not)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from jobs.billing.exports.datasets import MONEY, TIME, Dataset, source_columns
from jobs.billing.money import minor_exponent


def row_formatter(spec: Dataset) -> Callable[[Sequence], list]:
    """A function turning one selected row into the output values (money as text, times as ISO).

    It runs once per exported row, so it converts only the money and time positions in place.
    """
    positions = {name: index for index, name in enumerate(source_columns(spec))}
    currency_at = positions.get("currency")
    money_at = [positions[column.source] for column in spec.columns if column.kind == MONEY]
    time_at = [positions[column.source] for column in spec.columns if column.kind == TIME]
    width = len(spec.columns)

    def format_row(row: Sequence) -> list:
        values = list(row)
        for at in money_at:
            values[at] = money_text(values[at], values[currency_at])
        for at in time_at:
            if values[at] is not None:
                values[at] = values[at].isoformat()
        # Drop the currency selected only for the money columns.
        return values if len(values) == width else values[:width]

    return format_row


def money_text(amount_minor: int, currency: str) -> str:
    """Minor units as a decimal string with the currency's places: (123450, 'USD') -> '1234.50'.

    The same text as ``str(jobs.billing.money.from_minor(...))``, computed with integers because it
    runs once per exported row.
    """
    exponent = minor_exponent(currency)
    if exponent == 0:
        return str(amount_minor)
    whole, fraction = divmod(abs(amount_minor), 10**exponent)
    sign = "-" if amount_minor < 0 else ""
    return f"{sign}{whole}.{fraction:0{exponent}d}"
