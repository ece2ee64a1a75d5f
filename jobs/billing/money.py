"""Money as integer minor units plus an ISO 4217 code: exact in every database, never a float.

The database stores ``amount_minor`` (BIGINT) and ``currency`` (CHAR(3)); code above the data layer
works in :class:`~decimal.Decimal` and converts at the edge with :func:`to_minor` / :func:`from_minor`.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache

from iso4217 import Currency

from jobs.platform.errors import PermanentError

#: Digits after the decimal point of every ISO 4217 currency that has a minor unit (JPY 0,
#: USD 2, TND 3, CLF 4), from the iso4217 package's copy of the standard's list. Codes the list
#: marks "N.A." (gold XAU, the test code XTS) have none and are refused, never scaled by a guess.
MINOR_UNIT_EXPONENTS: dict[str, int] = {
    currency.code: currency.exponent for currency in Currency if currency.exponent is not None
}
#: The currencies of each exponent, for SQL that formats amounts per exponent (CASE ... IN).
CURRENCIES_BY_EXPONENT: dict[int, tuple[str, ...]] = {
    exponent: tuple(sorted(code for code, places in MINOR_UNIT_EXPONENTS.items() if places == exponent))
    for exponent in sorted(set(MINOR_UNIT_EXPONENTS.values()))
}
#: The exponent of most currencies: SQL CASE expressions use it as their ELSE branch.
COMMON_MINOR_EXPONENT = 2

CURRENCY_SYMBOLS: dict[str, str] = {"CNY": "¥", "JPY": "¥", "USD": "$", "EUR": "€", "GBP": "£"}


class MoneyError(PermanentError, ValueError):
    """Raised when an amount or currency code cannot be represented exactly (a retry cannot help)."""


@lru_cache(maxsize=512)
def minor_exponent(currency: str) -> int:
    """Return how many decimal digits the currency's minor unit has (JPY 0, USD 2, TND 3).

    Raises MoneyError for a code ISO 4217 does not list, or one with no minor unit (XAU).
    """
    code = checked_currency(currency)
    if code not in MINOR_UNIT_EXPONENTS:
        raise MoneyError(f"{code} is not an ISO 4217 currency with a minor unit")
    return MINOR_UNIT_EXPONENTS[code]


def to_minor(amount: Decimal, currency: str) -> int:
    """Convert a Decimal amount to integer minor units, refusing floats and sub-minor fractions."""
    if isinstance(amount, float) or not isinstance(amount, (Decimal, int)):
        # A float has already lost exactness (0.1 is not 1/10); make the caller decide.
        raise MoneyError(f"amount must be a Decimal or int, got {type(amount).__name__} {amount!r}")
    if not Decimal(amount).is_finite():
        raise MoneyError(f"amount must be finite, got {amount!r}")
    scaled = Decimal(amount).scaleb(minor_exponent(currency))
    if scaled != scaled.to_integral_value():
        raise MoneyError(f"{amount} has more decimal places than {currency} allows")
    return int(scaled)


def from_minor(minor: int, currency: str) -> Decimal:
    """Convert integer minor units back to a Decimal with the currency's number of decimal places."""
    exponent = minor_exponent(currency)
    return Decimal(int(minor)).scaleb(-exponent).quantize(Decimal(1).scaleb(-exponent))


def round_to_minor(amount: Decimal, currency: str) -> int:
    """Convert a computed amount (e.g. a share or a rate) to minor units with banker's rounding."""
    exponent = minor_exponent(currency)
    return int(Decimal(amount).scaleb(exponent).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def format_money(minor: int, currency: str, *, symbol: bool = False) -> str:
    """Format minor units for people: ``1,234.50 USD`` (or ``$1,234.50`` with ``symbol=True``)."""
    code = checked_currency(currency)
    amount = from_minor(minor, code)
    digits = f"{abs(amount):,.{minor_exponent(code)}f}"
    sign = "-" if amount < 0 else ""
    if symbol and code in CURRENCY_SYMBOLS:
        return f"{sign}{CURRENCY_SYMBOLS[code]}{digits}"
    return f"{sign}{digits} {code}"


def checked_currency(currency: object, *, what: str = "currency") -> str:
    """``currency`` if it is a 3-letter upper-case code, else MoneyError naming ``what``."""
    if not (
        isinstance(currency, str)
        and len(currency) == 3
        and currency.isascii()
        and currency.isalpha()
        and currency.isupper()
    ):
        raise MoneyError(f"{what} must be a 3-letter upper-case ISO 4217 code like USD, got {currency!r}")
    return currency
