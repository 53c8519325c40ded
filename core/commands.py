"""Shared parts of the gateway's management commands."""

from __future__ import annotations

import argparse
from decimal import Decimal, InvalidOperation

from django.core.management.base import BaseCommand

# The columns' ranges: a number past them must be a one-line error, not a database error.
INT_MAX = 2**31 - 1
BIGINT_MAX = 2**63 - 1
USD_MAX = Decimal("99999999.999999")  # DecimalField(max_digits=14, decimal_places=6)
DAYS_MAX = 36500


def whole_number(maximum: int, minimum: int = 0):
    """An argparse type: a whole number in [minimum, maximum]."""

    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{raw!r} must be {minimum} or more")
        if value > maximum:
            raise argparse.ArgumentTypeError(f"{raw!r} is larger than {maximum}")
        return value

    return parse


positive_int = whole_number(INT_MAX)
big_int = whole_number(BIGINT_MAX)
days = whole_number(DAYS_MAX, minimum=1)


def usd(raw: str) -> Decimal:
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a number") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"{raw!r} must be a non-negative amount")
    if value > USD_MAX:
        raise argparse.ArgumentTypeError(f"{raw!r} is larger than {USD_MAX}")
    return value.quantize(Decimal("0.000001"))


def add_limit_arguments(parser) -> None:
    parser.add_argument("--token-quota", type=big_int, help="tokens per period")
    parser.add_argument("--budget-usd", type=usd, help="USD per period")
    parser.add_argument("--rpm", type=positive_int, help="requests per minute")
    parser.add_argument("--tpm", type=positive_int, help="tokens per minute")


def limit_values(options: dict) -> dict:
    names = {"token_quota": "token_quota", "budget_usd": "budget_usd", "rpm": "rpm", "tpm": "tpm"}
    return {field: options[opt] for field, opt in names.items() if options.get(opt) is not None}


class GatewayCommand(BaseCommand):
    """A command whose bad input ends in one line on stderr and a non-zero exit."""

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # argparse prints the whole usage before its error; one line is easier to read in a script.
        parser.print_usage = lambda file=None: None
        return parser
