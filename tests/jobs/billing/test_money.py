"""Money is integer minor units plus a currency code: exact where floats are not."""

from __future__ import annotations

from decimal import Decimal

import pytest

from jobs.billing.money import MoneyError, format_money, from_minor, minor_exponent, round_to_minor, to_minor


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        (Decimal("12.34"), "USD", 1234),
        (Decimal("0.01"), "EUR", 1),
        (Decimal("1999"), "CNY", 199900),
        (Decimal("1500"), "JPY", 1500),
        (Decimal("-5.50"), "USD", -550),
        (Decimal("1.234"), "KWD", 1234),
    ],
)
def test_to_minor_and_back_round_trips(amount: Decimal, currency: str, minor: int) -> None:
    assert to_minor(amount, currency) == minor
    assert from_minor(minor, currency) == amount


def test_from_minor_keeps_the_currency_decimal_places() -> None:
    assert str(from_minor(1000, "USD")) == "10.00"
    assert str(from_minor(1000, "JPY")) == "1000"


def test_sums_in_minor_units_are_exact_where_float_sums_are_not() -> None:
    # Given ten cents and twenty cents added a thousand times each
    float_total = 0.0
    minor_total = 0
    for _ in range(1000):
        float_total += 0.10 + 0.20
        minor_total += to_minor(Decimal("0.10"), "USD") + to_minor(Decimal("0.20"), "USD")

    # Then the float total drifts while the minor-unit total is exactly 300.00
    assert float_total != 300.0
    assert minor_total == 30000
    assert from_minor(minor_total, "USD") == Decimal("300.00")


def test_jpy_has_no_minor_unit() -> None:
    assert minor_exponent("JPY") == 0
    assert to_minor(Decimal("123456"), "JPY") == 123456
    with pytest.raises(MoneyError, match="more decimal places"):
        to_minor(Decimal("10.5"), "JPY")


def test_sub_cent_amounts_and_floats_are_refused() -> None:
    with pytest.raises(MoneyError, match="more decimal places"):
        to_minor(Decimal("0.001"), "USD")
    with pytest.raises(MoneyError, match="Decimal"):
        to_minor(0.1, "USD")  # type: ignore[arg-type]
    with pytest.raises(MoneyError, match="finite"):
        to_minor(Decimal("NaN"), "USD")


def test_computed_amounts_round_half_even() -> None:
    assert round_to_minor(Decimal("0.125"), "USD") == 12
    assert round_to_minor(Decimal("0.135"), "USD") == 14
    assert round_to_minor(Decimal("99.5"), "JPY") == 100


@pytest.mark.parametrize(
    ("code", "exponent"),
    [
        ("CLP", 0),
        ("ISK", 0),
        ("KRW", 0),
        ("USD", 2),
        ("CNY", 2),
        ("IDR", 2),
        ("TND", 3),
        ("OMR", 3),
        ("JOD", 3),
    ],
)
def test_minor_units_follow_iso_4217(code: str, exponent: int) -> None:
    assert minor_exponent(code) == exponent
    smallest = Decimal(1).scaleb(-exponent)
    assert to_minor(smallest, code) == 1
    assert from_minor(1, code) == smallest


@pytest.mark.parametrize(
    ("code", "reason"), [("ABC", "not an ISO 4217"), ("XAU", "not an ISO 4217"), ("XTS", "not")]
)
def test_unknown_codes_and_codes_without_a_minor_unit_are_refused(code: str, reason: str) -> None:
    # Before, an unknown code silently got 2 decimals: 1.000 TND-like amounts would be scaled wrong.
    with pytest.raises(MoneyError, match=reason):
        to_minor(Decimal("1"), code)
    with pytest.raises(MoneyError, match=reason):
        from_minor(100, code)


@pytest.mark.parametrize("code", ["usd", "US", "USDT", "U$D", ""])
def test_bad_currency_codes_are_refused(code: str) -> None:
    with pytest.raises(MoneyError, match="3-letter"):
        to_minor(Decimal("1.00"), code)


def test_format_money() -> None:
    assert format_money(123450, "USD") == "1,234.50 USD"
    assert format_money(123450, "USD", symbol=True) == "$1,234.50"
    assert format_money(-550, "EUR", symbol=True) == "-€5.50"
    assert format_money(1500, "JPY", symbol=True) == "¥1,500"
    assert format_money(100, "CHF", symbol=True) == "1.00 CHF"
